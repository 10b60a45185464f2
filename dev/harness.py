"""The whole stack on free ports — real restate-server, offline LLM, endpoint, web — for tests and benchmarks.

They talk to it as a user does (HTTP through the ingress) and look inside through the admin API's
SQL introspection. Built from `dev.stack`, the same parts `make run` uses.
"""

import json
import os
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from dev.cluster import NODE_NAMES, RestateCluster
from dev.identity import ensure_identity
from dev.stack import (
    TOUR_SERVER_ENV,
    Admin,
    Endpoint,
    OfflineLLM,
    Ports,
    RestateServer,
    Web,
    free_port,
    worker_pids,
)

FORCE_REPLAY = os.environ.get("TOUR_FORCE_REPLAY") == "1"


def wait_until(
    check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def run_curl(command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a printed `curl ...` command as a user would, with `--fail`: an HTTP error is an error."""
    assert command.startswith("curl "), command
    return subprocess.run(
        "curl --fail --silent --show-error " + command.removeprefix("curl "),
        shell=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Tour:
    def __init__(
        self,
        workdir: Path,
        server_env: dict[str, str] | None = None,
        endpoint_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.ports = Ports.free()
        env = dict(TOUR_SERVER_ENV)
        # Small and quick: one partition is plenty for tests and starts faster.
        env["RESTATE_DEFAULT_NUM_PARTITIONS"] = "2"
        env["RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE"] = "256 MB"
        if FORCE_REPLAY:
            # Every time the handler waits, the server makes it suspend; the next step replays the
            # journal from the start. Non-deterministic handler code fails loudly under this.
            env["RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT"] = "0s"
        env.update(server_env or {})
        # Requests to the endpoint are signed, as with `make run`.
        identity_pem, self.identity_key = ensure_identity(workdir / "identity")
        self.restate = self.restate_nodes(env, identity_pem)
        self.llm = OfflineLLM(self.ports.llm, workdir / "offline-llm.log")
        self.endpoint_env: dict[str, str] = {}
        self.extra_endpoint_env = endpoint_env or {}
        self.endpoint: Endpoint | None = None
        self.endpoint_overrides: dict[str, str] = {}
        self.web: Web | None = None
        self.web_overrides: dict[str, str] = {}
        self.more_endpoints: list[tuple[Endpoint, str]] = []  # second versions (`deploy`), deployment ids
        self.admin = Admin(f"http://127.0.0.1:{self.ports.admin}")
        self.ingress = f"http://127.0.0.1:{self.ports.ingress}"
        self.http = httpx.Client(base_url=self.ingress, timeout=60)

    def restate_nodes(self, env: dict[str, str], identity_pem: Path) -> RestateServer | RestateCluster:
        """One restate-server; ClusterTour has three."""
        return RestateServer(
            self.workdir / "data",
            self.ports,
            env,
            log_path=self.workdir / "restate-server.log",
            identity_pem=identity_pem,
        )

    @property
    def server(self) -> RestateServer:
        assert isinstance(self.restate, RestateServer), "a ClusterTour has .cluster, not .server"
        return self.restate

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.restate.start()
        self.llm.start()
        self.restate.wait_ready()
        self.llm.wait_ready()
        self.endpoint_env = {
            **self.llm.endpoint_env(),
            "RESTATE_INGRESS_URL": self.ingress,
            "RESTATE_IDENTITY_KEYS": self.identity_key,
            "RESTATE_ADMIN_URL": self.admin_urls(),
            "STREAM_LIVE_URL": self.web_url,
            **self.extra_endpoint_env,
        }
        self.start_endpoint()
        self.admin.register(self.endpoint_url)
        self.start_web()

    def admin_urls(self) -> str:
        """Where the endpoint announces that it is back (see app/runtime/recovery.py)."""
        return self.admin.url

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app}"

    def start_endpoint(self, **env_overrides: str) -> None:
        self.endpoint_overrides = env_overrides
        self.endpoint = Endpoint(
            self.ports.app, {**self.endpoint_env, **env_overrides}, self.workdir / "endpoint.log"
        )
        self.endpoint.start()
        self.endpoint.wait_ready()

    @property
    def web_url(self) -> str:
        """The public web process (progress streams): what a browser or `curl -N` reaches."""
        return f"http://127.0.0.1:{self.ports.web}"

    def start_web(self, **env_overrides: str) -> None:
        self.web_overrides = env_overrides
        env = {"RESTATE_ADMIN_URL": self.admin.url, **env_overrides}
        self.web = Web(self.ports.web, self.ingress, env, self.workdir / "web.log")
        self.web.start()
        self.web.wait_ready()

    def restart_web(self, **env_overrides: str) -> None:
        """Stop and start the web process, e.g. with STREAM_IDLE_SECONDS set."""
        if self.web is not None:
            self.web.stop()
        self.start_web(**env_overrides)

    def deploy(self, **env_overrides: str) -> tuple[Endpoint, str]:
        """A second version of the endpoint beside the first (as `python -m dev.deploy` starts
        one), registered without force: returns it and its deployment id. Stopped with the stack."""
        port = free_port()
        second = Endpoint(port, {**self.endpoint_env, **env_overrides}, self.workdir / f"endpoint-{port}.log")
        second.start()
        second.wait_ready()
        deployment = str(self.admin.register(f"http://127.0.0.1:{port}", force=False)["id"])
        self.more_endpoints.append((second, deployment))
        return second, deployment

    def undeploy(self) -> None:
        """Stop the second versions and remove their deployments; the first one is the latest again."""
        for second, deployment in self.more_endpoints:
            second.stop()
            httpx.delete(f"{self.admin.url}/deployments/{deployment}", params={"force": "true"}, timeout=30)
        if self.more_endpoints:
            self.admin.register(self.endpoint_url)  # (forced: it becomes the latest again)
        self.more_endpoints = []

    def restart_endpoint(self, **env_overrides: str) -> None:
        """Stop and start the endpoint; as under `make run`, it asks Restate to retry its invocations."""
        assert self.endpoint is not None
        self.endpoint.stop()
        self.start_endpoint(**env_overrides)

    def kill_endpoint(self) -> None:
        assert self.endpoint is not None
        self.endpoint.kill()

    def restart_server(self, kill: bool = False) -> None:
        """Stop restate-server (SIGKILL if `kill`) and start it again on the same data directory.

        On a ClusterTour: all three nodes at once, as after a power cut of the whole cluster."""
        if kill:
            self.restate.kill()
        else:
            self.restate.stop()
        self.restate.start()
        self.restate.wait_ready()

    def stop(self) -> None:
        self.http.close()
        for proc in (
            self.web,
            *(second for second, _ in self.more_endpoints),
            self.endpoint,
            self.llm,
            self.restate,
        ):
            if proc is not None:
                proc.stop()

    # --- calling services ---------------------------------------------------------------------
    def call(self, path: str, body: Any = None, *, raw: bytes | None = None, **kw: Any) -> httpx.Response:
        """POST to the ingress and wait for the result, like `curl localhost:8080/<path> --json ...`."""
        if raw is not None:
            return self.http.post(f"/{path}", content=raw, headers={"content-type": "application/json"}, **kw)
        return self.http.post(f"/{path}", json=body if body is not None else {}, **kw)

    def send(self, path: str, body: Any = None) -> str:
        """Start an invocation without waiting (`/send`); returns its id."""
        resp = self.http.post(f"/{path}/send", json=body if body is not None else {})
        assert resp.status_code == 202, resp.text
        invocation_id: str = resp.json()["invocationId"]
        return invocation_id

    def output(self, invocation_id: str, timeout: float = 60) -> httpx.Response:
        """Wait for an invocation to finish and return its result (ingress attach)."""
        return self.http.get(f"/restate/invocation/{invocation_id}/attach", timeout=timeout)

    # --- looking inside -----------------------------------------------------------------------
    def invocation(self, invocation_id: str) -> dict[str, Any]:
        rows = self.admin.query(f"SELECT * FROM sys_invocation WHERE id = '{invocation_id}'")
        return rows[0] if rows else {}

    def wait_status(self, invocation_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        return wait_until(
            lambda: (row := self.invocation(invocation_id)) and row.get("status") in statuses and row,
            timeout=timeout,
            what=f"{invocation_id} to be {'/'.join(statuses)}",
        )

    def journal(self, invocation_id: str) -> list[dict[str, Any]]:
        return self.admin.query(
            f"SELECT index, entry_type, name FROM sys_journal WHERE id = '{invocation_id}' ORDER BY index"
        )

    def step_times(self, invocation_id: str) -> list[tuple[str, datetime, datetime | None]]:
        """(name, started, finished) of every `ctx.run` step, from the journal's timestamps."""
        rows = self.admin.query(
            f"SELECT entry_type, name, appended_at, entry_lite_json FROM sys_journal "
            f"WHERE id = '{invocation_id}' ORDER BY index"
        )
        started: dict[int, tuple[str, datetime]] = {}
        finished: dict[int, datetime] = {}
        for row in rows:
            entry = json.loads(row["entry_lite_json"])
            at = datetime.fromisoformat(row["appended_at"].replace("Z", "+00:00"))
            if row["entry_type"] == "Command: Run":
                started[entry["Command"]["Run"]["completion_id"]] = (row["name"], at)
            elif row["entry_type"] == "Notification: Run":
                finished[entry["Notification"]["id"]["CompletionId"]] = at
        return [(name, at, finished.get(cid)) for cid, (name, at) in sorted(started.items())]

    def llm_calls(self, containing: str) -> list[dict[str, Any]]:
        """The stand-in's log of LLM requests whose latest user message contains `containing`."""
        return [
            c
            for c in self.llm.stats()["calls"]
            if c["api"] in ("responses", "chat") and containing in c.get("input", "")
        ]

    def llm_calls_of(self, agent: str, since: int = 0) -> list[dict[str, Any]]:
        """The stand-in's log of LLM requests after `since` (see `llm_seq`) by the agent whose
        instructions start with `agent`."""
        return [
            c
            for c in self.llm.stats()["calls"]
            if c["seq"] > since and c["api"] in ("responses", "chat") and c.get("agent", "").startswith(agent)
        ]

    def llm_seq(self) -> int:
        """The number of the stand-in's latest request (0 before the first)."""
        calls = self.llm.stats()["calls"]
        return int(calls[-1]["seq"]) if calls else 0

    def sends(self, invocation_id: str) -> list[str]:
        """The targets (`Service/key/handler`, or `Service/handler`) of the invocation's journaled
        one-way calls, in journal order."""
        rows = self.admin.query(
            f"SELECT entry_lite_json FROM sys_journal WHERE id = '{invocation_id}' "
            "AND entry_type = 'Command: OneWayCall' ORDER BY index"
        )
        targets = []
        for row in rows:
            target = json.loads(row["entry_lite_json"])["Command"]["OneWayCall"]["invocation_target"]
            (kind, t), *_ = target.items()
            targets.append("/".join([t["name"], *([t["key"]] if kind != "Service" else []), t["handler"]]))
        return targets

    def run_steps(self, invocation_id: str) -> list[str]:
        """The names of the invocation's durable steps (`ctx.run`), in journal order."""
        return [row["name"] for row in self.journal(invocation_id) if row["entry_type"] == "Command: Run"]

    def review_requests(self, marker: str) -> list[tuple[str, str]]:
        """(approve, reject) commands printed in the endpoint log for claims whose line has `marker`."""
        lines = (self.workdir / "endpoint.log").read_text(errors="replace").splitlines()
        found = []
        for i, line in enumerate(lines):
            if "Human review requested" in line and marker in line and i + 2 < len(lines):
                approve, reject = (lines[i + j].split(":", 1)[1].strip() for j in (1, 2))
                found.append((approve, reject))
        return found

    def wait_review(self, marker: str, count: int = 1, timeout: float = 30) -> tuple[str, str]:
        """Wait for the `count`-th review request for `marker`; return its (approve, reject) commands."""
        requests = wait_until(
            lambda: (r := self.review_requests(marker)) and len(r) >= count and r,
            timeout=timeout,
            what=f"review request #{count} for {marker!r}",
        )
        found: tuple[str, str] = requests[count - 1]
        return found

    def weather_calls(self, city: str) -> list[dict[str, Any]]:
        return [c for c in self.llm.stats()["calls"] if c["api"] == "weather" and c.get("input") == city]


class TracedTour(Tour):
    """The stack of `make run-traced`: Phoenix (dev/phoenix.py) on free ports beside it, receiving
    the spans of restate-server and of the endpoint under one project; the web links runs to it."""

    def __init__(
        self,
        workdir: Path,
        server_env: dict[str, str] | None = None,
        endpoint_env: dict[str, str] | None = None,
    ) -> None:
        from dev.phoenix import PROJECT, Phoenix

        self.phoenix = Phoenix(
            workdir / "phoenix", free_port(), free_port(), log_path=workdir / "phoenix.log"
        )
        self.project = PROJECT
        otlp = self.phoenix.otlp_endpoint
        super().__init__(
            workdir,
            {
                "RESTATE_TRACING_ENDPOINT": otlp,
                "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={PROJECT}",
                **(server_env or {}),
            },
            {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp, "TRACES_PROJECT": PROJECT, **(endpoint_env or {})},
        )

    def start(self) -> None:
        self.phoenix.start()
        self.phoenix.wait_ready()
        super().start()

    def start_web(self, **env_overrides: str) -> None:
        super().start_web(TRACES_URL=self.phoenix.url, TRACES_PROJECT=self.project, **env_overrides)
        self.web_overrides = env_overrides  # (the trace settings are this stack's own, not overrides)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.phoenix.stop()

    def spans(self, **filters: str) -> list[dict[str, Any]]:
        """The spans Phoenix holds for this stack's project (see `Phoenix.spans`)."""
        return self.phoenix.spans(self.project, **filters)

    def trace_of(self, invocation_id: str) -> list[dict[str, Any]]:
        """Every span of the trace that holds the invocation's, oldest first ([] if none yet)."""
        tagged = self.spans(attribute=f"restate.invocation.id:{invocation_id}")
        return self.spans(trace_id=tagged[0]["context"]["trace_id"]) if tagged else []


class ClusterTour(Tour):
    """The same tour on a three-node cluster (dev/cluster.py) and an endpoint of `workers` processes.

    It starts by talking to n1's ingress and admin API; `use_node` switches, e.g. after n1 crashed.
    """

    def __init__(
        self,
        workdir: Path,
        server_env: dict[str, str] | None = None,
        endpoint_env: dict[str, str] | None = None,
        workers: int = 2,
    ) -> None:
        super().__init__(workdir, server_env, {"APP_WORKERS": str(workers), **(endpoint_env or {})})

    def restate_nodes(self, env: dict[str, str], identity_pem: Path) -> RestateServer | RestateCluster:
        # n1 takes the ports a single-node Tour would have; n2 and n3 get their own.
        others = [Ports(free_port(), free_port(), free_port()) for _ in NODE_NAMES[1:]]
        return RestateCluster(self.workdir / "cluster", [self.ports, *others], env, identity_pem)

    @property
    def cluster(self) -> RestateCluster:
        assert isinstance(self.restate, RestateCluster)
        return self.restate

    def admin_urls(self) -> str:
        return ",".join(self.cluster.admin_urls())

    def use_node(self, name: str) -> None:
        """Send calls and admin queries to node `name` from now on."""
        node = self.cluster.node(name)
        self.ingress = f"http://127.0.0.1:{node.ports.ingress}"
        self.admin = Admin(f"http://127.0.0.1:{node.ports.admin}")
        self.http.close()
        self.http = httpx.Client(base_url=self.ingress, timeout=60)

    def worker_pids(self) -> list[int]:
        """The endpoint's worker processes."""
        assert self.endpoint is not None
        return worker_pids(self.endpoint.pid)


class LocalModelTour(Tour):
    """The tour with a real small model (dev/local_model.py: llama.cpp's server with SmolLM2-135M)
    instead of the stand-in, over the Chat Completions API; the stand-in serves the weather API only.

    `model.chat_completions` counts the requests the model server received. `model.adapt` (settable)
    makes its proxy rewrite requests for llama.cpp's tool calling (dev/local_model.py)."""

    def __init__(
        self, workdir: Path, endpoint_env: dict[str, str] | None = None, adapt: bool = False
    ) -> None:
        from dev.local_model import MODEL_ALIAS, LocalModelServer

        super().__init__(workdir, endpoint_env=endpoint_env)
        self.model = LocalModelServer(workdir / "local-model.log", adapt=adapt)
        self.model_alias = MODEL_ALIAS

    def start(self) -> None:
        self.model.start()
        self.extra_endpoint_env = {
            "OPENAI_BASE_URL": self.model.url,
            "OPENAI_API_KEY": "local-model",
            "OPENAI_API": "chat_completions",
            "OPENAI_MODEL": self.model_alias,
            **self.extra_endpoint_env,
        }
        super().start()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.model.stop()
