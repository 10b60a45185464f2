"""Settings of the web process, from the environment (documented defaults)."""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    # Where the Restate ingress is: the only way this process reaches the agents.
    ingress_url: str = "http://localhost:8080"
    # A progress stream with no new event for this long ends (the reader may reconnect).
    stream_idle_seconds: float = 300.0
    # How often the reviewers' inbox stream asks the ingress for the list (the run streams are pushed).
    poll_seconds: float = 0.25
    # The longest `wait` a long-poll may ask for.
    max_wait_seconds: float = 60.0
    # The trace viewer (Phoenix) that the run pages link to; empty: traces are off.
    traces_url: str = ""
    # The project the runs' spans are filed under there.
    traces_project: str = "durable-agents-tour"

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            ingress_url=os.environ.get("RESTATE_INGRESS_URL", "http://localhost:8080").rstrip("/"),
            stream_idle_seconds=float(os.environ.get("STREAM_IDLE_SECONDS", "300")),
            poll_seconds=float(os.environ.get("STREAM_POLL_SECONDS", "0.25")),
            traces_url=os.environ.get("TRACES_URL", "").rstrip("/"),
            traces_project=os.environ.get("TRACES_PROJECT", "durable-agents-tour"),
        )
