"""LLM settings shared by every agent of the tour.

Everything is configured by environment variables (see the README's configuration table).
With `OPENAI_API_KEY` set, the agents talk to OpenAI (or to `OPENAI_BASE_URL`); `make run` without
a key points them at the offline stand-in instead. The code is the same either way.
"""

import os
from datetime import timedelta

from restate import RunOptions

# The tour's agents do not name a model, so they ran on the Agents SDK's default of that time.
# Newer SDKs default to a reasoning model with its own settings: pin the model here instead.
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4.1")

# Every LLM call is a journaled step. Restate retries a failed call with backoff, but only this
# many times in all: a broken prompt or an expired key must not turn into an endless, paid loop.
LLM_MAX_ATTEMPTS = int(os.environ.get("LLM_MAX_ATTEMPTS", "5"))

LLM_RETRY = RunOptions[object](
    max_attempts=LLM_MAX_ATTEMPTS,
    initial_retry_interval=timedelta(milliseconds=500),
    max_retry_interval=timedelta(seconds=10),
)

# Seconds one LLM request may take before it counts as a failed attempt.
LLM_TIMEOUT_SECONDS = float(os.environ.get("LLM_TIMEOUT_SECONDS", "120"))


def configure_openai_client() -> None:
    """Make the Agents SDK use a client that leaves retrying to Restate.

    The OpenAI client retries twice on its own by default. Those retries are invisible to Restate
    and would multiply with its durable retries, so the attempt cap above would not hold.
    """
    from agents import set_default_openai_client
    from openai import AsyncOpenAI

    set_default_openai_client(AsyncOpenAI(max_retries=0, timeout=LLM_TIMEOUT_SECONDS))
