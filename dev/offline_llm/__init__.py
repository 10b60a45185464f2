"""An offline, OpenAI-compatible stand-in LLM (plus a wttr.in look-alike) for the tour and its tests.

Its answers are scripted by `policy`; what Restate does with them (journaling, retries, replay) is
real. See `python -m dev.offline_llm --help`.
"""
