"""Benchmarks of the tour against the real restate-server and the offline LLM: `make bench`."""
