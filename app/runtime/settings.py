"""The LLM settings every agent shares, read from the environment (docs/configuration.md)."""

import os
from datetime import timedelta
from typing import Any

from restate import RunOptions

# The reference tour's agents use gpt-4o. The default here is gpt-4.1, its successor without
# reasoning settings; OPENAI_MODEL picks another. (Left unset, newer Agents SDKs would pick a
# reasoning model with settings of its own.)
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4.1")

# Which OpenAI API the agents speak: "responses" (OpenAI's own) or "chat_completions", which every
# OpenAI-compatible server speaks (Ollama, vLLM, llama.cpp, LM Studio; OPENAI_BASE_URL points there).
OPENAI_API = os.environ.get("OPENAI_API", "responses")
if OPENAI_API not in ("responses", "chat_completions"):
    raise ValueError(f"OPENAI_API must be responses or chat_completions, not {OPENAI_API!r}")

# Every LLM call is a journaled step. Restate retries a failed call with backoff, but only this
# many times in all: a broken prompt or an expired key must not turn into an endless, paid loop.
LLM_MAX_ATTEMPTS = int(os.environ.get("LLM_MAX_ATTEMPTS", "5"))

LLM_RETRY: RunOptions[Any] = RunOptions(
    max_attempts=LLM_MAX_ATTEMPTS,
    initial_retry_interval=timedelta(milliseconds=500),
    max_retry_interval=timedelta(seconds=10),
)

# Each turn is one LLM call: an agent that needs more than this many is looping.
MAX_TURNS = int(os.environ.get("AGENT_MAX_TURNS", "10"))

# Seconds one LLM request may take before it counts as a failed attempt.
LLM_TIMEOUT_SECONDS = float(os.environ.get("LLM_TIMEOUT_SECONDS", "120"))

# How long Restate keeps a finished run's journal: for that long it can be rerun from any of its
# steps, or forked onto a fix or another model, without paying again for what came before
# (docs/control.md). A week: time to notice a bad answer, fix it and rerun, over a weekend.
JOURNAL_RETENTION = timedelta(days=float(os.environ.get("JOURNAL_RETENTION_DAYS", "7")))


def restate_ingress_url() -> str:
    """Where the endpoint reaches the Restate ingress (RESTATE_INGRESS_URL, default
    http://localhost:8080): printed in the approval commands, and where streamed text is sent."""
    return os.environ.get("RESTATE_INGRESS_URL", "http://localhost:8080").rstrip("/")


def stream_live_url() -> str:
    """Where streamed text also goes live, beside the durable topic (STREAM_LIVE_URL: the web
    process, default http://localhost:8000; empty: nowhere). See app/web/live.py."""
    return os.environ.get("STREAM_LIVE_URL", "http://localhost:8000").rstrip("/")
