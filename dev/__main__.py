"""The launcher behind `make run`: Restate Server + offline LLM (without a key) + the tour endpoint + web.

    python -m dev

It starts restate-server with its data in .restate/ (so invocations and state survive a restart
of `make run`), the offline stand-in LLM when OPENAI_API_KEY is unset, `python -m app` (the
endpoint, Restate's alone) and `python -m app.web` (the public web process: the pages for the
people in the loop and the progress streams, on http://localhost:8000); it registers the endpoint, prints the first curl command and forwards
the endpoint's log. While it runs it restarts the endpoint (and the web process) when a file
under app/ changes, and either one when it dies (try
`kill -9 $(cat .restate/endpoint.pid)`), re-registers it and asks Restate to retry the waiting
invocations at once. Ctrl-C stops everything.

    python -m dev --local-model  # `make run-local`: a real small model instead of the stand-in

    python -m dev --traced       # `make run-traced`: plus Phoenix, a local trace viewer (dev/phoenix.py)

With --traced, Arize Phoenix runs at http://localhost:6006 (PHOENIX_PORT; OTLP/gRPC on
PHOENIX_GRPC_PORT, 4317), with its data in .restate/phoenix/; restate-server and the endpoint
export their spans to it under one project (TRACES_PROJECT, durable-agents-tour), so each run is
one trace, and the run page (/runs/<invocation id>) links to it.

    python -m dev --cluster      # `make cluster`

The same tour on a three-node Restate cluster (see dev/cluster.py for its ports), with the
endpoint as APP_WORKERS (default 2) processes behind one address. Its data is in
.restate/cluster/. A node that dies is started again NODE_RESTART_SECONDS (15) later, so that
there is time to watch the other two carry on (try `kill -9 $(cat .restate/cluster/n2.pid)`: n2
and n3 lead the partitions, n1 runs the cluster controller).
RESTATE_CLUSTER_PORTS moves the nodes' ports (see dev/cluster.py).

Settings (environment): RESTATE_INGRESS_PORT (8080), RESTATE_ADMIN_PORT (9070),
RESTATE_NODE_PORT (5122), APP_PORT (9080), APP_WORKERS (1; 2 with --cluster), WEB_PORT (8000),
OFFLINE_LLM_PORT (free port), PHOENIX_PORT (6006), PHOENIX_GRPC_PORT (4317), RESTATE_DIR (.restate), TENANT_CONCURRENCY (unset: no limit; N: at most N runs of a tenant at once,
for runs sent through the ingress's scope `tenant`, a preview of restate-server 1.7 with its data in
.restate/data-tenant-limits; docs/beyond-the-tour.md), RESTATE_ADMIN_URL (use a Restate Server that is already
running instead of starting one), APP_URL (the address that Restate should call the endpoint at).
"""

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from dev.cluster import CONTROL_NODE, NODE_NAMES, RestateCluster, standard_ports
from dev.identity import ensure_identity
from dev.local_model import LocalModelServer
from dev.phoenix import PROJECT, Phoenix
from dev.stack import (
    LOOPBACK,
    REPO,
    TENANT_SCOPE,
    TOUR_SERVER_ENV,
    Admin,
    Endpoint,
    OfflineLLM,
    Ports,
    RestateServer,
    StackError,
    Web,
    free_port,
    services_of,
    tenant_limit_server_env,
    tenant_limits,
)

FIRST_CURL = (
    "curl localhost:{ingress}/WeatherAgent/run --json "
    '\'{{"message": "What is the weather like in San Francisco?"}}\''
)


def say(message: str) -> None:
    print(f"[tour] {message}", flush=True)


# How long a crashed cluster node stays down before the launcher starts it again.
NODE_RESTART_DELAY = float(os.environ.get("NODE_RESTART_SECONDS", "15"))


class Launcher:
    def __init__(self, cluster: bool = False, local_model: bool = False, traced: bool = False) -> None:
        self.ports = Ports.from_env()
        self.cluster: RestateCluster | None = None
        self.cluster_mode = cluster
        self.use_local_model = local_model
        self.node_died_at: dict[str, float] = {}
        if cluster:
            # n1 has the single node's ingress and admin ports: the tour's commands work as written.
            first = standard_ports()[0]
            self.ports.ingress, self.ports.admin, self.ports.node = first.ingress, first.admin, first.node
        self.state_dir = Path(os.environ.get("RESTATE_DIR", REPO / ".restate")).resolve()
        self.external_admin = os.environ.get("RESTATE_ADMIN_URL")
        self.app_url = os.environ.get("APP_URL", f"http://{LOOPBACK}:{self.ports.app}")
        self.server: RestateServer | None = None
        self.llm: OfflineLLM | None = None
        self.local_model: LocalModelServer | None = None
        self.phoenix: Phoenix | None = None
        self.traced = traced
        # Where both export their spans (OTLP/gRPC): Phoenix's with --traced, else the user's collector.
        self.otlp = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        self.project = os.environ.get("TRACES_PROJECT", PROJECT)
        self.endpoint: Endpoint | None = None
        self.web: Web | None = None
        self.admin = Admin(self.external_admin or f"http://{LOOPBACK}:{self.ports.admin}")
        self.stopping = False
        self.endpoint_broken = False
        self.web_broken = False
        self.identity_pem: Path | None = None

    # --- start-up --------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        endpoint_env: dict[str, str] = {}
        if self.external_admin and self.cluster_mode:
            raise StackError("--cluster starts its own three nodes: unset RESTATE_ADMIN_URL to use it.")
        if self.traced and (self.cluster_mode or self.external_admin):
            raise StackError(
                "--traced starts its own single-node Restate Server: not with --cluster or RESTATE_ADMIN_URL."
            )
        if self.traced:
            self.start_phoenix()
        if self.external_admin:
            say(f"using the Restate Server at {self.external_admin} (RESTATE_ADMIN_URL)")
        else:
            # Our server signs its requests, and the endpoint serves nobody else.
            self.identity_pem, endpoint_env["RESTATE_IDENTITY_KEYS"] = ensure_identity(
                self.state_dir / "identity"
            )
            if self.cluster_mode:
                self.start_cluster()
            else:
                self.start_server()

        if self.use_local_model:
            self.start_local_model(endpoint_env)
        elif os.environ.get("OPENAI_API_KEY"):
            say(
                "OPENAI_API_KEY is set: the agents call the OpenAI API (model: "
                f"{os.environ.get('OPENAI_MODEL', 'gpt-4.1')})."
            )
        else:
            port = self.ports.llm or free_port()
            self.llm = OfflineLLM(port, self.state_dir / "offline-llm.log")
            self.llm.start()
            self.llm.wait_ready()
            (self.state_dir / "offline-llm.url").write_text(self.llm.url + "\n")
            endpoint_env.update(self.llm.endpoint_env())
            # An explicit weather URL wins, e.g. to use the real wttr.in with the offline LLM.
            if os.environ.get("WEATHER_API_URL"):
                endpoint_env.pop("WEATHER_API_URL")
            say(
                f"No OPENAI_API_KEY set: using the offline stand-in LLM at {self.llm.url}/v1 "
                "(scripted answers; the durability is real)."
            )
        endpoint_env.setdefault("RESTATE_INGRESS_URL", f"http://localhost:{self.ports.ingress}")
        # The run pages read runs and steer them through the admin API (on this machine only).
        web_env = {"RESTATE_ADMIN_URL": self.admin.url}
        if self.otlp:
            endpoint_env.update(OTEL_EXPORTER_OTLP_ENDPOINT=self.otlp, TRACES_PROJECT=self.project)
        if self.phoenix is not None:
            # The run page links each run to its trace.
            web_env.update(TRACES_URL=f"http://localhost:{self.phoenix.ui_port}", TRACES_PROJECT=self.project)
        # The review requests in the log point at the reviewers' inbox of the web process.
        endpoint_env["PUBLIC_WEB_URL"] = f"http://localhost:{self.ports.web}"
        # Streamed text also goes straight to the web process's readers (app/web/live.py).
        endpoint_env.setdefault("STREAM_LIVE_URL", f"http://localhost:{self.ports.web}")
        # The endpoint tells Restate when it is back, so interrupted invocations resume at once.
        endpoint_env.setdefault("RESTATE_ADMIN_URL", self.admin.url)
        if self.cluster is not None:
            # Any node's admin API will do for that; the endpoint tries them in turn.
            endpoint_env["RESTATE_ADMIN_URL"] = ",".join(self.cluster.admin_urls())
            # Several processes behind one address, as several pods behind one Service would be.
            endpoint_env["APP_WORKERS"] = os.environ.get("APP_WORKERS", "2")
        self.endpoint = Endpoint(
            self.ports.app,
            endpoint_env,
            self.state_dir / "endpoint.log",
            on_line=lambda line: print(f"[app] {line}", flush=True),
        )
        self.start_endpoint()
        self.web = Web(
            self.ports.web,
            endpoint_env["RESTATE_INGRESS_URL"],
            web_env,
            self.state_dir / "web.log",
            on_line=lambda line: print(f"[web] {line}", flush=True),
        )
        self.start_web()

        ui = self.external_admin or f"http://localhost:{self.ports.admin}"
        say(f"Restate UI: {ui}   (invocations, journals, state)")
        web = f"http://localhost:{self.ports.web}"
        say(f"Public web: {web}   (/reviews, /runs/<invocation id>, /spend, /chat/<key>, /streams/...)")
        say(f"Reviewers' inbox: {web}/reviews   (the pending human reviews, with Approve and Reject)")
        if self.phoenix is not None:
            say(
                f"Traces: http://localhost:{self.phoenix.ui_port}   (Phoenix, project {self.project}: one "
                f"trace per run; a run's page links to its own)"
            )
        if self.cluster is not None:
            say(
                "the same cluster answers on every node: ingress "
                + ", ".join(f"http://localhost:{n.ports.ingress}" for n in self.cluster.nodes)
            )
        say("Try the first step of the tour:")
        print("\n    " + FIRST_CURL.format(ingress=self.ports.ingress) + "\n", flush=True)
        say("Edit a file under app/ and the endpoint restarts; Ctrl-C stops everything.")

    def start_local_model(self, endpoint_env: dict[str, str]) -> None:
        """The real small model (dev/local_model.py) for the agents; the stand-in for the weather API."""
        from dev.local_model import MODEL_ALIAS, LocalModelServer, ensure_installed, ensure_model

        say("preparing the local model (the first time, llama.cpp is compiled: about 10 minutes) ...")
        ensure_installed()
        ensure_model()
        # adapt: llama-cpp-python's server needs requests rewritten for tool calls (docs/local-models.md).
        self.local_model = LocalModelServer(self.state_dir / "local-model.log", adapt=True)
        self.local_model.start()
        self.llm = OfflineLLM(self.ports.llm or free_port(), self.state_dir / "offline-llm.log")
        self.llm.start()
        self.llm.wait_ready()
        endpoint_env.update(self.llm.endpoint_env())
        endpoint_env.update(
            OPENAI_API_KEY="local-model",
            OPENAI_BASE_URL=self.local_model.url,
            OPENAI_API="chat_completions",
            OPENAI_MODEL=MODEL_ALIAS,
        )
        say(
            f"using the local model {MODEL_ALIAS} at {self.local_model.url} (llama.cpp; a 135M model: "
            "expect it to misbehave, and the tour to stay durable); the weather API is the stand-in's"
        )

    def start_phoenix(self) -> None:
        self.phoenix = Phoenix(
            self.state_dir / "phoenix",
            int(os.environ.get("PHOENIX_PORT", "6006")),
            int(os.environ.get("PHOENIX_GRPC_PORT", "4317")),
            log_path=self.state_dir / "phoenix.log",
        )
        say("starting Phoenix, the trace viewer (about 15 s; log: .restate/phoenix.log)")
        self.phoenix.start()
        self.otlp = self.phoenix.otlp_endpoint
        self.phoenix.wait_ready()
        self.write_pid("phoenix", self.phoenix.pid)

    def start_server(self) -> None:
        server_env = dict(TOUR_SERVER_ENV)
        data_dir = self.state_dir / "data"
        tenant_concurrency = int(os.environ.get("TENANT_CONCURRENCY", "0") or 0)
        if tenant_concurrency:
            # A preview of restate-server 1.7, which migrates its data for good: data of its own.
            server_env.update(tenant_limit_server_env())
            data_dir = self.state_dir / "data-tenant-limits"
        if self.otlp:
            # One collector for both, one project: the server's invocation spans and the agents'.
            server_env["RESTATE_TRACING_ENDPOINT"] = self.otlp
            server_env["OTEL_RESOURCE_ATTRIBUTES"] = f"openinference.project.name={self.project}"
            say(f"exporting traces of restate-server and the endpoint to {self.otlp} (OTLP/gRPC)")
        self.server = RestateServer(
            data_dir,
            self.ports,
            server_env,
            log_path=self.state_dir / "restate-server.log",
            identity_pem=self.identity_pem,
        )
        self.server.start()
        self.server.wait_ready()
        self.write_pid("restate-server", self.server.pid)
        if tenant_concurrency:
            tenant_limits(self.admin, tenant_concurrency)
            say(
                f"at most {tenant_concurrency} runs of each tenant at once, for runs sent through the scope "
                f"'{TENANT_SCOPE}': curl localhost:{self.ports.ingress}/restate/scope/{TENANT_SCOPE}/call/"
                "WeatherAgent/run -H 'x-tenant: acme' -H 'x-restate-limit-key: acme' --json '{}'"
            )
        say(
            f"restate-server is up: ingress http://localhost:{self.ports.ingress}, admin "
            f"http://localhost:{self.ports.admin} (data: {self.server.data_dir}, log: {self.server.log_path})"
        )

    def start_cluster(self) -> None:
        self.cluster = RestateCluster(
            self.state_dir / "cluster",
            standard_ports(),
            dict(TOUR_SERVER_ENV),
            identity_pem=self.identity_pem,
        )
        say(f"starting a three-node Restate cluster (data and logs: {self.cluster.base_dir})")
        self.cluster.start()
        for node in self.cluster.nodes:
            self.write_pid(f"cluster/{node.node_name}", node.pid)
        for node in self.cluster.nodes:
            role = "cluster controller, no partitions" if node.node_name == CONTROL_NODE else "partitions"
            say(
                f"{node.node_name} ({role}): ingress http://localhost:{node.ports.ingress}, admin and UI "
                f"http://localhost:{node.ports.admin}, node-to-node {node.ports.node}"
            )
        say(
            "which node leads which partition: "
            f"npx restatectl -s http://127.0.0.1:{self.cluster.nodes[1].ports.node} partitions list"
        )

    def start_endpoint(self) -> None:
        assert self.endpoint is not None
        self.endpoint.start()
        self.endpoint.wait_ready()
        self.write_pid("endpoint", self.endpoint.pid)
        # A cluster's registration is cluster-wide: ask a node that is up.
        if self.cluster is not None and (alive := self.cluster.admin_urls(alive_only=True)):
            self.admin = Admin(alive[0])
        deployment = self.admin.register(self.app_url)
        say(f"registered {self.app_url}: {', '.join(services_of(deployment))}")

    def start_web(self) -> None:
        assert self.web is not None
        self.web.start()
        self.web.wait_ready()
        self.write_pid("web", self.web.pid)

    def restart_web(self, why: str) -> None:
        assert self.web is not None
        say(f"{why}: restarting the web process")
        self.web.stop()
        try:
            self.start_web()
            self.web_broken = False
        except StackError as e:
            # Most likely an error in the code under app/web/: wait for the next save.
            say(f"the web process did not come back: {e}")
            self.web_broken = True

    def write_pid(self, name: str, pid: int) -> None:
        (self.state_dir / f"{name}.pid").write_text(f"{pid}\n")

    # --- supervision -----------------------------------------------------------------------
    def app_files_snapshot(self) -> dict[Path, float]:
        snapshot = {}
        for path in (REPO / "app").rglob("*.py"):
            with contextlib.suppress(OSError):  # a file deleted while we look
                snapshot[path] = path.stat().st_mtime
        return snapshot

    def supervise(self) -> None:
        assert self.endpoint is not None
        files = self.app_files_snapshot()
        while not self.stopping:
            time.sleep(0.3)
            if self.stopping:
                break
            if self.cluster is not None:
                self.supervise_cluster()
            if self.phoenix is not None and not self.phoenix.alive():
                self.restart_phoenix()
            if self.server is not None and not self.server.alive():
                say("restate-server exited; restarting it (its data is kept in .restate/data)")
                self.start_server()
                self.restart_endpoint("restate-server restarted")
            current = self.app_files_snapshot()
            if current != files:
                files = current
                self.restart_endpoint("a file under app/ changed")
                if self.web is not None:
                    self.restart_web("a file under app/ changed")
            elif not self.endpoint.alive() and not self.endpoint_broken:
                code = self.endpoint.popen.returncode if self.endpoint.popen else None
                self.restart_endpoint(f"the endpoint exited (code {code})")
            if (
                self.web is not None
                and self.web.popen is not None
                and not self.web.alive()
                and not self.web_broken
            ):
                self.restart_web(f"the web process exited (code {self.web.popen.returncode})")

    def supervise_cluster(self) -> None:
        """A node that died is started again after NODE_RESTART_DELAY; the others carry on meanwhile."""
        assert self.cluster is not None
        for node in self.cluster.nodes:
            name = node.node_name
            if node.alive():
                continue
            died_at = self.node_died_at.get(name)
            if died_at is None:
                self.node_died_at[name] = time.monotonic()
                code = node.popen.returncode if node.popen else None
                others = [n for n in self.cluster.nodes if n.alive()]
                say(
                    f"node {name} exited (code {code}); the cluster carries on with "
                    + ", ".join(f"{n.node_name} (ingress :{n.ports.ingress})" for n in others)
                    + f". {name} starts again in {NODE_RESTART_DELAY:.0f} s."
                )
            elif time.monotonic() - died_at >= NODE_RESTART_DELAY:
                del self.node_died_at[name]
                try:
                    self.cluster.start_node(name)
                except StackError as e:
                    say(f"node {name} did not come back: {e}")
                    self.node_died_at[name] = time.monotonic()
                    continue
                self.write_pid(f"cluster/{name}", node.pid)
                say(f"node {name} is back and rejoins the cluster")

    def restart_phoenix(self) -> None:
        assert self.phoenix is not None
        code = self.phoenix.popen.returncode if self.phoenix.popen else None
        say(f"Phoenix exited (code {code}); restarting it (its traces are kept in .restate/phoenix)")
        self.phoenix.stop()
        try:
            self.start_phoenix()
        except StackError as e:
            say(f"Phoenix did not come back, the tour goes on without traces: {e}")
            self.phoenix = None

    def restart_endpoint(self, why: str) -> None:
        assert self.endpoint is not None
        say(f"{why}: restarting the endpoint")
        self.endpoint.stop()
        try:
            self.start_endpoint()
            self.endpoint_broken = False
        except StackError as e:
            # Most likely an error in the code under app/: wait for the next save, do not loop.
            say(f"the endpoint did not come back: {e}")
            say("fix the error, save the file, and the endpoint starts again")
            self.endpoint_broken = True

    # --- shutdown --------------------------------------------------------------------------
    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def stop(self) -> None:
        for proc in (
            self.web,
            self.endpoint,
            self.llm,
            self.local_model,
            self.server,
            self.cluster,
            self.phoenix,
        ):
            if proc is not None:
                proc.stop()
        names = ["endpoint.pid", "web.pid", "restate-server.pid", "phoenix.pid", "offline-llm.url"]
        names += [f"cluster/{name}.pid" for name in NODE_NAMES]
        for name in names:
            (self.state_dir / name).unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m dev", description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", action="store_true", help="three Restate nodes instead of one")
    parser.add_argument(
        "--local-model", action="store_true", help="a real small model instead of the stand-in"
    )
    parser.add_argument(
        "--traced", action="store_true", help="plus Phoenix, a local trace viewer, on http://localhost:6006"
    )
    args = parser.parse_args()
    launcher = Launcher(cluster=args.cluster, local_model=args.local_model, traced=args.traced)
    signal.signal(signal.SIGINT, launcher.request_stop)
    signal.signal(signal.SIGTERM, launcher.request_stop)
    try:
        launcher.start()
        launcher.supervise()
        say("stopping...")
        return 0
    except StackError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        launcher.stop()


if __name__ == "__main__":
    sys.exit(main())
