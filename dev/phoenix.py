"""Arize Phoenix, a local trace viewer, for `make run-traced` and the tests of traces.

    python -m dev.phoenix --install    # create .venv-phoenix/ (about 1.5 minutes, ~860 MB), then exit

Phoenix lives in a virtualenv of its own (.venv-phoenix/), installed on first use from
requirements-phoenix.lock, every version pinned with its hashes: its many dependencies never
move the project's. It runs offline: no request leaves this machine (its UI asks no font, no
telemetry, no update check), and it keeps its data (SQLite) in the directory it is given,
.restate/phoenix/ under `make run-traced`.

It takes OTLP over gRPC (`grpc_port`, 4317; Phoenix binds it on all interfaces, whatever the host
setting says) and over HTTP (`/v1/traces` on the UI's port, 6006), and answers for the spans it
holds at `/v1/projects/<project>/spans` (`spans()` below).
"""

import argparse
import fcntl
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from dev.stack import LOOPBACK, REPO, Proc, StackError, require_free

REQUIREMENT = "arize-phoenix==20.26.1"  # `make lock` pins it, and what it needs, in LOCK
LOCK = REPO / "requirements-phoenix.lock"
VENV_DIR = REPO / ".venv-phoenix"
MARKER = VENV_DIR / "installed-from.txt"  # the lock's digest, once installed from it
PROJECT = "durable-agents-tour"  # the project the traces are filed under (TRACES_PROJECT)


def _say(message: str) -> None:
    print(f"[phoenix] {message}", flush=True)


def _digest() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()


def _installed() -> bool:
    return (VENV_DIR / "bin" / "phoenix").exists() and MARKER.exists() and MARKER.read_text() == _digest()


@contextmanager
def _locked() -> Iterator[None]:
    """One install at a time, across processes (a test session beside `make run-traced`)."""
    with (REPO / ".venv-phoenix.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_installed() -> Path:
    """.venv-phoenix/ with exactly the locked versions; quick when done before. Returns `phoenix`."""
    if not _installed():
        with _locked():
            if not _installed():
                _install()
    return VENV_DIR / "bin" / "phoenix"


def _install() -> None:
    started = time.monotonic()
    MARKER.unlink(missing_ok=True)
    if not (VENV_DIR / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV_DIR)], check=True)
    log = VENV_DIR / "install.log"
    _say(f"installing {REQUIREMENT} into {VENV_DIR.name}/ (the first time only: ~1.5 minutes; log: {log})")
    pip = [str(VENV_DIR / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    with log.open("w") as out:
        done = subprocess.run(
            [*pip, "--require-hashes", "-r", str(LOCK)], stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StackError(f"installing Phoenix failed (log: {log}):\n{tail}")
    MARKER.write_text(_digest())
    _say(f"installed in {time.monotonic() - started:.0f} s")


class Phoenix(Proc):
    """`phoenix serve` on loopback, offline and quiet, with its data in `data_dir`."""

    def __init__(
        self, data_dir: Path, ui_port: int = 6006, grpc_port: int = 4317, log_path: Path | None = None
    ):
        # Its own settings only: an OTEL_* variable of the shell would make it trace itself.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
        env.update(
            PHOENIX_WORKING_DIR=str(data_dir),
            PHOENIX_HOST=LOOPBACK,
            PHOENIX_PORT=str(ui_port),
            PHOENIX_GRPC_PORT=str(grpc_port),
            # Without it, Phoenix fetches a sandbox binary and docs at start, and its UI asks
            # Google Fonts, a telemetry pixel, GitHub and PyPI: offline, nothing leaves the machine.
            PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
            PHOENIX_TELEMETRY_ENABLED="false",
            PHOENIX_DISABLE_AGENT_ASSISTANT="true",
            PHOENIX_LOG_MIGRATIONS="false",
        )
        super().__init__(
            "phoenix", [str(VENV_DIR / "bin" / "phoenix"), "serve"], env, log_path or data_dir / "phoenix.log"
        )
        self.data_dir = data_dir
        self.ui_port, self.grpc_port = ui_port, grpc_port
        self.url = f"http://{LOOPBACK}:{ui_port}"
        # Where restate-server and the endpoint send their spans (OTLP/gRPC).
        self.otlp_endpoint = f"http://{LOOPBACK}:{grpc_port}"

    def start(self) -> None:
        ensure_installed()
        require_free(self.ui_port, "Phoenix UI", "PHOENIX_PORT")
        require_free(self.grpc_port, "Phoenix OTLP/gRPC", "PHOENIX_GRPC_PORT")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().start()

    def wait_ready(self, timeout: float = 120.0) -> None:
        # ~15 s: its database migrations, then the UI.
        self.wait_http(f"{self.url}/healthz", timeout)

    def spans(self, project: str = PROJECT, **filters: str) -> list[dict[str, Any]]:
        """The project's spans, oldest first (filters: trace_id, span_kind, name, attribute=key:value).

        Phoenix gives at most 1000 at a time; this follows its cursor to the end."""
        spans: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "1000", "sort": "start_time", "order": "asc", **filters}
            if cursor:
                params["cursor"] = cursor
            resp = httpx.get(f"{self.url}/v1/projects/{project}/spans", params=params, timeout=30)
            if resp.status_code == 404:
                return []  # no span has reached the project yet
            resp.raise_for_status()
            page = resp.json()
            spans += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return spans


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.phoenix", description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="install Phoenix into .venv-phoenix/ and exit")
    args = parser.parse_args()
    if args.install:
        print(ensure_installed())
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
