"""The durable agents tour: every tour step is a module in this package, served by `python -m app`."""
