"""How the endpoint is served (app/runtime/serving.py): one process or several, stopped cleanly,
a crashed worker replaced, a taken port named. The endpoint alone: no Restate Server needed."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev.harness import Tour, wait_until
from dev.stack import Endpoint, free_port, python_env, worker_pids

ENV = {"OPENAI_API_KEY": "offline-stand-in", "RESTATE_ADMIN_URL": ""}


@pytest.fixture
def endpoint(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    workers = getattr(request, "param", 1)
    proc = Endpoint(free_port(), {**ENV, "APP_WORKERS": str(workers)}, tmp_path / "endpoint.log")
    proc.start()
    proc.wait_ready()
    yield proc
    proc.stop()


def serves(endpoint: Endpoint) -> bool:
    return httpx.get(f"{endpoint.url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("endpoint", [2], indirect=True)
def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all(endpoint: Endpoint) -> None:
    first = wait_until(lambda: len(pids := worker_pids(endpoint.pid)) == 2 and pids, what="two workers")

    os.kill(first[0], signal.SIGKILL)

    replaced = wait_until(
        lambda: len(pids := worker_pids(endpoint.pid)) == 2 and first[0] not in pids and pids,
        what="a new worker in place of the killed one",
    )
    assert first[1] in replaced
    assert serves(endpoint)
    assert "was killed (signal 9); starting a new one" in endpoint.log_tail(50)

    endpoint.stop(timeout=15)

    assert not endpoint.alive()
    assert all(not Path(f"/proc/{pid}").exists() for pid in replaced)


def test_a_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "app", "--port", str(port)],
            env=python_env(ENV),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr


@pytest.mark.e2e
def test_the_endpoint_keeps_restates_connection_past_a_thousand_invocations(stack: Tour) -> None:
    # hypercorn closes a connection after 1,000 requests by default, with the invocations on it in
    # flight: Restate then retried the thousandth one about 35 s later (app/runtime/serving.py).
    log = stack.workdir / "restate-server.log"
    before = log.stat().st_size
    with httpx.Client(base_url=stack.ingress, timeout=60) as client:
        for _ in range(1100):  # more than 1,000 invocations on Restate's connections to the endpoint
            assert client.get("/Spend/connections/get").status_code == 200
    with log.open(errors="replace") as f:
        f.seek(before)
        troubles = [line for line in f if " WARN " in line and "invoker" in line]
    assert troubles == [], troubles[:3]
