"""The tour's processes — restate-server, the offline LLM, the endpoint, the web — and the admin API.

Shared by the launcher (`python -m dev`) and the end-to-end tests, so the tests run the stack the
way a user does. Every failure a user can fix is a `StackError` with a one-line message.
"""

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


class StackError(Exception):
    """Something the user can fix; the message says what, in one line."""


# --- ports ---------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


_handed_out: set[int] = set()


def free_port() -> int:
    """A port that is free now and that this process has not handed out before.

    The kernel may offer a port again as soon as the probing socket is closed; a cluster needs a
    dozen distinct ports chosen before any process binds them, so no port is given twice.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port: int = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def require_free(port: int, what: str, env_var: str) -> None:
    if not port_is_free(port):
        how = f"{env_var}=<port>" if env_var.endswith("_PORT") else env_var
        raise StackError(
            f"port {port} ({what}) is already in use: stop what runs there "
            f"(another `make run` or `make cluster`?) or choose another port with {how}."
        )


@dataclass
class Ports:
    ingress: int = 8080
    admin: int = 9070
    node: int = 5122
    app: int = 9080
    llm: int = 0  # 0: any free port
    web: int = 8000

    @classmethod
    def from_env(cls) -> "Ports":
        return cls(
            ingress=int(os.environ.get("RESTATE_INGRESS_PORT", "8080")),
            admin=int(os.environ.get("RESTATE_ADMIN_PORT", "9070")),
            node=int(os.environ.get("RESTATE_NODE_PORT", "5122")),
            app=int(os.environ.get("APP_PORT", "9080")),
            llm=int(os.environ.get("OFFLINE_LLM_PORT", "0")),
            web=int(os.environ.get("WEB_PORT", "8000")),
        )

    @classmethod
    def free(cls) -> "Ports":
        return cls(free_port(), free_port(), free_port(), free_port(), free_port(), free_port())


# --- processes -----------------------------------------------------------------------------------


class Proc:
    """A child process whose output goes to a log file and, optionally, to a line callback."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.on_line = on_line
        self.popen: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches the launcher only
        )
        self._pump = threading.Thread(target=self._copy_output, args=(self.popen.stdout,), daemon=True)
        self._pump.start()

    def _copy_output(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        with stream, open(self.log_path, "ab") as log:
            for raw in iter(stream.readline, b""):
                log.write(raw)
                log.flush()
                if self.on_line is not None:
                    self.on_line(raw.decode(errors="replace").rstrip("\n"))

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._join()

    def kill(self) -> None:
        """SIGKILL: a crash, as far as everyone else can tell."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._join()

    def _join(self) -> None:
        if self._pump is not None:
            self._pump.join(timeout=5)
            self._pump = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float, ok: Callable[[httpx.Response], bool] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(
                    f"{self.name} exited during start-up; its log ({self.log_path}) ends with:\n"
                    f"{self.log_tail()}"
                )
            try:
                resp = httpx.get(url, timeout=1.0)
                if (ok or (lambda r: r.status_code == 200))(resp):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise StackError(
            f"{self.name} did not become ready at {url} within {timeout:.0f}s (log: {self.log_path})"
        )


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


# --- restate-server ------------------------------------------------------------------------------


def find_restate_binary(name: str) -> list[str]:
    """The pinned npm package's native binary, else its Node wrapper, else `name` on PATH.

    `name` is restate-server or restatectl (the cluster admin tool, see dev/cluster.py).
    """
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system(), platform.system().lower())
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    native = REPO / "node_modules" / "@restatedev" / f"{name}-{system}-{arch}" / "bin" / name
    if native.is_file() and os.access(native, os.X_OK):
        return [str(native)]
    wrapper = REPO / "node_modules" / ".bin" / name
    if wrapper.exists():
        return [str(wrapper)]
    on_path = shutil.which(name)
    if on_path:
        return [on_path]
    raise StackError(
        f"{name} not found: run `npm install` in the repository (make run does it), "
        f"or put a {name} binary on PATH."
    )


def find_restate_server() -> list[str]:
    return find_restate_binary("restate-server")


# The server settings `make run` and the tests use. A failing step is retried quickly enough to
# watch, and the Denver outage stays visibly "retrying" for minutes before Restate pauses it.
TOUR_SERVER_ENV = {
    "RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL": "500ms",
    "RESTATE_DEFAULT_RETRY_POLICY__EXPONENTIATION_FACTOR": "2.0",
    "RESTATE_DEFAULT_RETRY_POLICY__MAX_INTERVAL": "2s",
    # Several HTTP/2 connections to the endpoint instead of one: with APP_WORKERS > 1 the kernel
    # spreads connections over the worker processes, so the streams on them use every core.
    "RESTATE_WORKER__INVOKER__HTTP2_STREAMS_PER_CONNECTION_LIMIT": "8",
}


class RestateServer(Proc):
    """A Restate Server node on loopback, with its data in `data_dir`.

    On its own it is a single-node cluster; dev/cluster.py starts three of them as one cluster.
    """

    def __init__(
        self,
        data_dir: Path,
        ports: Ports,
        extra_env: dict[str, str] | None = None,
        log_path: Path | None = None,
        identity_pem: Path | None = None,
        node_name: str = "tour",
    ) -> None:
        env = dict(os.environ)
        env.update(
            {
                "RESTATE_INGRESS__BIND_ADDRESS": f"{LOOPBACK}:{ports.ingress}",
                "RESTATE_ADMIN__BIND_ADDRESS": f"{LOOPBACK}:{ports.admin}",
                "RESTATE_DISABLE_TELEMETRY": "true",
                "RESTATE_LOG_DISABLE_ANSI_CODES": "true",
                # No stack trace for every error the server handles. With RUST_BACKTRACE=1 in the
                # shell, each one (a refused connection to a dead node, retried) captures one: when
                # a cluster node died, the survivors spent a core unwinding stacks, and the new
                # leader waited ~0.3 s longer for it. Panics still print theirs (RUST_BACKTRACE).
                "RUST_LIB_BACKTRACE": "0",
            }
        )
        if identity_pem is not None:
            # Sign every request to the endpoint (see dev/identity.py).
            env["RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"] = str(identity_pem)
        env.update(extra_env or {})
        argv = [
            *find_restate_server(),
            "--no-logo",
            "--bind-ip", LOOPBACK,
            "--bind-port", str(ports.node),
            "--listen-mode", "tcp",
            "--base-dir", str(data_dir),
            "--node-name", node_name,
        ]  # fmt: skip
        single = node_name == "tour"
        name = "restate-server" if single else f"restate-server {node_name}"
        super().__init__(name, argv, env, log_path or data_dir.parent / "restate-server.log")
        self.ports = ports
        self.data_dir = data_dir
        self.node_name = node_name
        # What moves the ports, for the message when one is taken.
        cluster = "RESTATE_CLUSTER_PORTS (nine: ingress,admin,node of n1, n2, n3)"
        self.port_vars = (
            ("RESTATE_INGRESS_PORT", "RESTATE_ADMIN_PORT", "RESTATE_NODE_PORT") if single else (cluster,) * 3
        )

    def start(self) -> None:
        ingress_var, admin_var, node_var = self.port_vars
        require_free(self.ports.ingress, f"{self.name} ingress", ingress_var)
        require_free(self.ports.admin, f"{self.name} admin API and UI", admin_var)
        require_free(self.ports.node, f"{self.name} node-to-node", node_var)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait_http(f"http://{LOOPBACK}:{self.ports.admin}/health", timeout)
        self.wait_http(f"http://{LOOPBACK}:{self.ports.ingress}/restate/health", timeout)


# --- offline LLM and endpoint --------------------------------------------------------------------


class PythonService(Proc):
    """A Python process of this repository serving HTTP on one loopback port, with /health."""

    def __init__(
        self,
        name: str,
        module_args: list[str],
        port: int,
        port_env_var: str,
        env: dict[str, str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name, [sys.executable, "-m", *module_args], python_env(env), log_path, on_line)
        self.port = port
        self.port_env_var = port_env_var
        self.url = f"http://{LOOPBACK}:{port}"

    def start(self) -> None:
        require_free(self.port, self.name, self.port_env_var)
        super().start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait_http(f"{self.url}/health", timeout)


def stand_in_env(url: str) -> dict[str, str]:
    """What an endpoint needs to talk to the stand-in at `url` instead of OpenAI and wttr.in."""
    return {
        "OPENAI_API_KEY": "offline-stand-in",
        "OPENAI_BASE_URL": f"{url}/v1",
        "WEATHER_API_URL": f"{url}/wttr",
        # Traces would be uploaded to OpenAI with the dummy key above: keep them local.
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }


class OfflineLLM(PythonService):
    def __init__(self, port: int, log_path: Path, latency_ms: int = 0, token_ms: int | None = None) -> None:
        args = ["dev.offline_llm", "--port", str(port), "--latency-ms", str(latency_ms)]
        if token_ms is not None:  # else the stand-in reads OFFLINE_LLM_TOKEN_MS (default 0)
            args += ["--token-ms", str(token_ms)]
        super().__init__("offline LLM", args, port, "OFFLINE_LLM_PORT", {}, log_path)

    def endpoint_env(self) -> dict[str, str]:
        """What the endpoint needs to talk to this stand-in instead of OpenAI and wttr.in."""
        return stand_in_env(self.url)

    def stats(self) -> dict[str, Any]:
        resp = httpx.get(f"{self.url}/_stub/stats", timeout=5)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def fault(self, target: str = "llm", count: int = 1, **spec: Any) -> None:
        """Fail (`status=`, `retry_after=`, `hang=`, `after=`) or, with `misbehave=KIND` (and
        `tool=`, `length=`), misbehave on the next `count` requests; see dev/offline_llm/server.py."""
        httpx.post(
            f"{self.url}/_stub/faults", json={"target": target, "count": count, **spec}, timeout=5
        ).raise_for_status()

    def latency(self, ms: int) -> None:
        """A fixed delay for every LLM call from now on (reset() restores the start value, 0)."""
        httpx.post(f"{self.url}/_stub/latency", json={"ms": ms}, timeout=5).raise_for_status()

    def token_pace(self, ms: int) -> None:
        """`ms` milliseconds between two deltas of every streamed answer from now on (the first
        delta is not delayed; `latency()` delays the response itself). reset() restores the start
        value: OFFLINE_LLM_TOKEN_MS, else 0."""
        httpx.post(f"{self.url}/_stub/latency", json={"token_ms": ms}, timeout=5).raise_for_status()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_stub/reset", timeout=5).raise_for_status()


class Endpoint(PythonService):
    """`python -m app`: the tour's services."""

    def __init__(
        self,
        port: int,
        env: dict[str, str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        args = ["app", "--host", LOOPBACK, "--port", str(port)]
        super().__init__("tour endpoint", args, port, "APP_PORT", env, log_path, on_line)


class Web(PythonService):
    """`python -m app.web`: the public web process (progress streams; later the pages)."""

    def __init__(
        self,
        port: int,
        ingress_url: str,
        env: dict[str, str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        args = ["app.web", "--host", LOOPBACK, "--port", str(port)]
        super().__init__(
            "web", args, port, "WEB_PORT", {"RESTATE_INGRESS_URL": ingress_url, **env}, log_path, on_line
        )


def worker_pids(endpoint_pid: int) -> list[int]:
    """The worker processes of an endpoint started with APP_WORKERS > 1 (Linux: from /proc)."""
    workers = []
    for child in Path(f"/proc/{endpoint_pid}/task/{endpoint_pid}/children").read_text().split():
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        if "resource_tracker" not in cmdline:  # multiprocessing's helper, not a worker
            workers.append(int(child))
    return workers


# --- admin API -----------------------------------------------------------------------------------


class Admin:
    def __init__(self, admin_url: str) -> None:
        self.url = admin_url.rstrip("/")

    def register(self, uri: str, force: bool = True) -> dict[str, Any]:
        """Register (or re-register, after a code change) the deployment at `uri`.

        force: the same URI may come back with changed services, and Restate takes the new ones
        (the runs pinned to it resume on the new code). Without: a new URI becomes a deployment
        beside the others (docs/control.md, two versions side by side)."""
        try:
            resp = httpx.post(f"{self.url}/deployments", json={"uri": uri, "force": force}, timeout=30)
        except httpx.HTTPError as e:
            raise StackError(f"cannot reach the Restate admin API at {self.url}: {e}") from e
        if resp.status_code >= 300:
            try:
                detail = resp.json().get("message", resp.text)
            except ValueError:
                detail = resp.text
            one_line = " ".join(str(detail).split())[:400]
            raise StackError(f"registering {uri} failed (HTTP {resp.status_code}): {one_line}")
        data: dict[str, Any] = resp.json()
        return data

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL against Restate's introspection tables (sys_invocation, sys_journal, state, ...)."""
        resp = httpx.post(
            f"{self.url}/query", json={"query": sql}, headers={"accept": "application/json"}, timeout=30
        )
        if resp.status_code >= 300:
            raise StackError(f"query at {self.url} failed (HTTP {resp.status_code}): {resp.text[:300]}")
        rows: list[dict[str, Any]] = resp.json().get("rows", [])
        return rows


# --- at most N runs of a tenant at once (a preview of restate-server 1.7) -----------------------------

TENANT_SCOPE = "tenant"  # the scope of the ingress path: /restate/scope/tenant/call/<service>/<handler>


def tenant_limit_server_env() -> dict[str, str]:
    """What restate-server 1.7 needs for per-scope concurrency limits: vqueues and protocol v7.
    Turned on, they migrate the data directory for good: use a data directory of their own."""
    return {
        "RESTATE_EXPERIMENTAL_ENABLE_VQUEUES": "true",
        "RESTATE_EXPERIMENTAL_ENABLE_PROTOCOL_V7": "true",
    }


def tenant_limits(admin: Admin, concurrency: int) -> None:
    """At most `concurrency` runs of each tenant at once: the rule `tenant/*` (the tenant is the
    limit key of a run sent through the scope `tenant`); the others queue, none is refused."""
    rule = {
        "pattern": f"{TENANT_SCOPE}/*",
        "limits": {"concurrency": concurrency},
        "description": "runs of one tenant at once (TENANT_CONCURRENCY)",
    }
    resp = httpx.put(f"{admin.url}/limits/rules", json=[rule], timeout=30)
    if resp.status_code >= 300:
        raise StackError(
            f"setting the tenants' concurrency limit failed (HTTP {resp.status_code}): {resp.text[:300]}"
        )


def services_of(deployment: dict[str, Any]) -> list[str]:
    return [s["name"] for s in deployment.get("services", [])]
