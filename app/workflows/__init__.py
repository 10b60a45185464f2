"""Agentic workflows: services that call agents step by step (the reference tour's patterns), a
workflow that notifies when its agent is done, and a durable evaluation run."""
