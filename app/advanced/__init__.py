"""Advanced patterns: manual agent loop, rollback, and what the tour only points to."""
