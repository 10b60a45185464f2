"""Shared pieces of the tour: models, tool functions and LLM settings."""
