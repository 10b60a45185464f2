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
    # Restate's admin API: the run pages read a run's status and journal there (server side).
    admin_url: str = "http://localhost:9070"
    # Whether the run pages may pause, resume, cancel, kill and rerun runs (docs/front-door.md).
    run_controls: bool = False

    @classmethod
    def from_env(cls, host: str = "127.0.0.1") -> "Settings":
        """`host`: where the process listens. The run controls are on when that is this machine
        only, unless RUN_CONTROLS says otherwise (on/off)."""
        controls = os.environ.get("RUN_CONTROLS", "").strip().lower()
        if controls not in ("", "on", "off"):
            raise ValueError(f"RUN_CONTROLS must be on or off, not {controls!r}")
        local = host in ("127.0.0.1", "localhost", "::1")
        return cls(
            ingress_url=os.environ.get("RESTATE_INGRESS_URL", "http://localhost:8080").rstrip("/"),
            stream_idle_seconds=float(os.environ.get("STREAM_IDLE_SECONDS", "300")),
            poll_seconds=float(os.environ.get("STREAM_POLL_SECONDS", "0.25")),
            traces_url=os.environ.get("TRACES_URL", "").rstrip("/"),
            traces_project=os.environ.get("TRACES_PROJECT", "durable-agents-tour"),
            # (A cluster's comma-separated list: the first node's.)
            admin_url=os.environ.get("RESTATE_ADMIN_URL", "http://localhost:9070").split(",")[0].rstrip("/"),
            run_controls=controls == "on" or (controls == "" and local),
        )
