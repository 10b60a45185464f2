"""Developer tooling: the launcher (`python -m dev`), the offline stand-ins, the stack the tests share.

Nothing in `app/` imports this package at run time.
"""
