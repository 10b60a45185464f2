"""`make run`'s launcher (`python -m dev`) and `python -m app`, as a user meets them."""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev import stack
from dev.harness import run_curl, wait_until
from dev.stack import REPO, Ports, StackError, find_restate_server, free_port, port_is_free, worker_pids

pytestmark = pytest.mark.e2e


class Running:
    """A launcher process whose output lines arrive on a queue."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dev", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        stderr = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        raise AssertionError(f"launcher never printed {text!r}; output:\n" + "\n".join(self.seen) + stderr)


def launcher_env(tmp_path: Path, ports: Ports, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(
        RESTATE_INGRESS_PORT=str(ports.ingress),
        RESTATE_ADMIN_PORT=str(ports.admin),
        RESTATE_NODE_PORT=str(ports.node),
        APP_PORT=str(ports.app),
        WEB_PORT=str(ports.web),
        RESTATE_DIR=str(tmp_path / "restate"),
        **extra,
    )
    env.pop("WEATHER_API_URL", None)
    return env


@pytest.fixture
def ports() -> Ports:
    return Ports.free()


def stopped(running: Running) -> None:
    if running.proc.poll() is None:
        # SIGTERM first: the launcher stops its children; a SIGKILL would leave them running.
        running.proc.terminate()
        try:
            running.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            running.proc.kill()
    running.proc.wait()
    running.pump.join(timeout=5)
    for pipe in (running.proc.stdout, running.proc.stderr):
        if pipe is not None:
            pipe.close()


@pytest.fixture
def launcher(tmp_path: Path, ports: Ports) -> Iterator[Running]:
    running = Running(launcher_env(tmp_path, ports))
    yield running
    stopped(running)


def test_make_run_serves_the_tour_restarts_a_killed_endpoint_and_stops_cleanly(
    launcher: Running, ports: Ports, tmp_path: Path
) -> None:
    launcher.wait_for("registered")
    # The public web process runs at the printed address.
    web = launcher.wait_for("Public web: ").split("Public web: ", 1)[1].split()[0]
    assert web == f"http://localhost:{ports.web}"
    curl_line = launcher.wait_for("curl localhost:")
    assert sum("No OPENAI_API_KEY set" in line for line in launcher.seen) == 1

    # The printed command works as printed.
    answer = run_curl(curl_line.strip())
    assert answer.stdout == '"The weather in San Francisco is currently partly cloudy, 16 degrees Celsius."'

    # Requests are signed: the endpoint refuses a call that does not come from our restate-server.
    unsigned = httpx.post(f"http://127.0.0.1:{ports.app}/invoke/WeatherAgent/run", json={}, timeout=10)
    assert unsigned.status_code == 401
    assert httpx.get(f"{web}/health", timeout=10).json()["status"] == "ok"

    # A crashed endpoint is brought back and registered again; the tour goes on.
    endpoint_pid = int((tmp_path / "restate" / "endpoint.pid").read_text())
    os.kill(endpoint_pid, signal.SIGKILL)
    launcher.wait_for("the endpoint exited")
    launcher.wait_for("registered")
    resp = httpx.post(f"http://localhost:{ports.ingress}/WeatherAgent/run", json={}, timeout=60)
    assert (
        resp.status_code == 200
        and resp.json() == "The weather in San Francisco is currently partly cloudy, 16 degrees Celsius."
    )

    # Saving a file under app/ restarts and re-registers the endpoint (only the mtime changes here).
    os.utime(REPO / "app" / "utils" / "__init__.py")
    launcher.wait_for("a file under app/ changed")
    launcher.wait_for("registered")

    # Ctrl-C / SIGTERM: everything stops, exit code 0, ports released.
    children = [
        int((tmp_path / "restate" / f"{name}.pid").read_text())
        for name in ("restate-server", "endpoint", "web")
    ]
    launcher.proc.send_signal(signal.SIGTERM)
    assert launcher.proc.wait(timeout=30) == 0
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert all(port_is_free(p) for p in (ports.ingress, ports.admin, ports.app, ports.web))


def test_make_deploy_puts_a_second_version_beside_the_first(
    launcher: Running, ports: Ports, tmp_path: Path
) -> None:
    launcher.wait_for("curl localhost:")
    first = httpx.post(f"http://localhost:{ports.ingress}/WeatherAgent/run", json={}, timeout=60)
    second_port = free_port()
    env = launcher_env(
        tmp_path, ports, RESTATE_ADMIN_URL=f"http://localhost:{ports.admin}", FAIL_ON_DENVER="false"
    )
    second = subprocess.Popen(
        [sys.executable, "-m", "dev.deploy", "--port", str(second_port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert second.stdout is not None
        registered = next(line for line in second.stdout if "[deploy] registered" in line)
        deployment = registered.split(" as ", 1)[1].split(",", 1)[0]
        # New runs go to the second version, which has the fix: Denver answers at once.
        denver = httpx.post(
            f"http://localhost:{ports.ingress}/WeatherAgent/run",
            json={"message": "What is the weather like in Denver?"},
            timeout=60,
        )
        assert denver.status_code == 200, denver.text
        assert denver.json() == "The weather in Denver is currently clear, 7 degrees Celsius."
        pinned = httpx.post(
            f"http://localhost:{ports.admin}/query",
            json={
                "query": f"SELECT pinned_deployment_id AS d FROM sys_invocation WHERE id = '{denver.headers['x-restate-id']}'"
            },
            headers={"accept": "application/json"},
            timeout=10,
        ).json()["rows"][0]["d"]
        assert pinned == deployment
        assert first.headers["x-restate-id"] != denver.headers["x-restate-id"]
    finally:
        second.send_signal(signal.SIGINT)  # Ctrl-C
        assert second.wait(timeout=30) == 0
        second.stdout.close()
    assert port_is_free(second_port)


@pytest.mark.phoenix
def test_make_run_traced_puts_the_first_run_in_phoenix_and_stops_it_too(tmp_path: Path, ports: Ports) -> None:
    ui, grpc = free_port(), free_port()
    env = launcher_env(tmp_path, ports, PHOENIX_PORT=str(ui), PHOENIX_GRPC_PORT=str(grpc))
    running = Running(env, "--traced")
    try:
        traces = running.wait_for("Traces: ", timeout=180).split("Traces: ", 1)[1].split()[0]
        assert traces == f"http://localhost:{ui}"
        curl_line = running.wait_for("curl localhost:")
        answer = subprocess.run(
            curl_line.strip().replace("curl ", "curl --fail --silent -D - ", 1),
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert answer.stdout.endswith(
            '"The weather in San Francisco is currently partly cloudy, 16 degrees Celsius."'
        )
        invocation = next(
            line.split(":", 1)[1].strip()
            for line in answer.stdout.splitlines()
            if line.startswith("x-restate-id")
        )

        # The run's page knows where its trace is, and Phoenix has it: both sides' spans, one trace.
        def trace_link() -> dict[str, str] | None:
            resp = httpx.get(f"http://localhost:{ports.web}/api/runs/{invocation}/trace", timeout=10)
            return resp.json() if resp.status_code == 200 else None

        link = wait_until(trace_link, timeout=30, what="the run's trace link")
        assert link["url"] == f"{traces}/redirects/traces/{link['trace_id']}"
        spans = httpx.get(
            f"{traces}/v1/projects/durable-agents-tour/spans",
            params={"trace_id": link["trace_id"], "limit": 1000},
            timeout=10,
        ).json()["data"]
        names = {span["name"] for span in spans}
        assert {"ingress WeatherAgent/run", "invocation-attempt WeatherAgent/run", "Get weather"} <= names
        assert (tmp_path / "restate" / "phoenix").is_dir()  # its data beside Restate's: make clean wipes both

        phoenix = int((tmp_path / "restate" / "phoenix.pid").read_text())
        running.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert running.proc.wait(timeout=60) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(phoenix, 0)
        assert port_is_free(ui) and port_is_free(grpc, "0.0.0.0")
    finally:
        stopped(running)


@pytest.mark.cluster
def test_make_cluster_serves_the_tour_on_three_nodes_and_brings_a_crashed_one_back(tmp_path: Path) -> None:
    nodes = [Ports.free() for _ in range(3)]
    app = free_port()
    env = launcher_env(
        tmp_path,
        Ports(nodes[0].ingress, nodes[0].admin, nodes[0].node, app, web=free_port()),
        RESTATE_CLUSTER_PORTS=",".join(f"{p.ingress},{p.admin},{p.node}" for p in nodes),
        NODE_RESTART_SECONDS="2",
    )
    running = Running(env, "--cluster")
    try:
        running.wait_for("registered", timeout=120)
        curl_line = running.wait_for("curl localhost:")
        answer = run_curl(curl_line.strip())
        assert (
            answer.stdout == '"The weather in San Francisco is currently partly cloudy, 16 degrees Celsius."'
        )
        # One endpoint address, two processes behind it.
        endpoint_pid = int((tmp_path / "restate" / "endpoint.pid").read_text())
        assert len(worker_pids(endpoint_pid)) == 2

        # n1 crashes: the tour goes on through the other nodes, and n1 comes back.
        state = tmp_path / "restate" / "cluster"
        os.kill(int((state / "n1.pid").read_text()), signal.SIGKILL)
        running.wait_for("node n1 exited (code -9); the cluster carries on with n2")
        for node in nodes[1:]:
            resp = httpx.post(
                f"http://localhost:{node.ingress}/WeatherAgent/run",
                json={"message": "Weather in Tokyo?"},
                timeout=90,
            )
            assert (
                resp.status_code == 200
                and resp.json() == "The weather in Tokyo is currently cloudy, 17 degrees Celsius."
            )
        running.wait_for("node n1 is back and rejoins the cluster")

        pids = [int((state / f"{name}.pid").read_text()) for name in ("n1", "n2", "n3")] + [endpoint_pid]
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(timeout=60) == 0
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert all(port_is_free(p.ingress) and port_is_free(p.node) for p in nodes)
    finally:
        stopped(running)


def test_a_taken_port_ends_with_one_actionable_line(tmp_path: Path, ports: Ports) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.ingress))
        squatter.listen()
        done = subprocess.run(
            [sys.executable, "-m", "dev"], cwd=REPO, env=launcher_env(tmp_path, ports),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: port {ports.ingress} (restate-server ingress) is already in use: stop what runs there "
        "(another `make run` or `make cluster`?) or choose another port with RESTATE_INGRESS_PORT=<port>."
    ]
    assert "Traceback" not in done.stdout + done.stderr


def test_a_failed_registration_ends_with_one_line_and_stops_the_server(tmp_path: Path, ports: Ports) -> None:
    nobody = stack.free_port()
    done = subprocess.run(
        [sys.executable, "-m", "dev"], cwd=REPO,
        env=launcher_env(tmp_path, ports, APP_URL=f"http://127.0.0.1:{nobody}"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: registering http://127.0.0.1:{nobody} failed")
    assert "Traceback" not in done.stdout + done.stderr
    assert port_is_free(ports.ingress) and port_is_free(ports.admin)


def test_a_missing_restate_server_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stack, "REPO", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"restate-server not found: run `npm install`"):
        find_restate_server()


def test_the_server_keeps_panic_backtraces_but_captures_none_per_handled_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ports: Ports
) -> None:
    """RUST_BACKTRACE=1 in a developer's shell must not reach the errors the server handles (a
    refused connection to a dead node, retried): each would capture a stack trace, and a cluster
    node's loss made the survivors spend a core unwinding them (bench/NOTES.md, "Node loss")."""
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    server = stack.RestateServer(tmp_path / "data", ports)
    assert server.env["RUST_LIB_BACKTRACE"] == "0"
    assert server.env["RUST_BACKTRACE"] == "1"


def test_the_endpoint_without_a_key_says_what_to_do() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "app"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1
    assert "OPENAI_API_KEY is not set" in done.stderr and "make run" in done.stderr
    assert "Traceback" not in done.stderr
