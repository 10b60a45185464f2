"""The one endpoint of the tour: every service and Virtual Object, served over HTTP by hypercorn.

    python -m app                 # binds 127.0.0.1:9080 (APP_HOST / APP_PORT, or --host / --port)
    APP_WORKERS=2 python -m app   # two processes on that one address; a crashed one is replaced

`make run` starts it for you and registers it with the Restate Server; the server then calls it
for every invocation. It holds no state of its own: kill it at any time, start it again, and
Restate resumes the invocations that were running.
"""

import argparse
import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import restate
from hypercorn.asyncio import serve
from hypercorn.asyncio.run import asyncio_worker
from hypercorn.config import Config
from restate.server import install_shutdown_hook

from app.advanced.guarded_agent import agent_service as guarded_claim_agent
from app.advanced.interruptible_agent import interruptible_agent
from app.advanced.llm_usage import llm_usage
from app.advanced.long_running_agent import scheduled_agent
from app.advanced.manual_loop_agent import manual_loop_agent
from app.advanced.mcp_agent import agent_service as mcp_claim_agent
from app.advanced.rollback_agent import agent_service as booking_with_rollback_agent
from app.advanced.streaming_agent import agent_events
from app.advanced.streaming_agent import agent_service as streaming_agent
from app.chat import chat
from app.durable_agent import agent_service as weather_agent
from app.error_handling import agent_service as error_handling_agent
from app.human_approval_agent import agent_service as human_claim_approval_agent
from app.human_approval_agent_with_timeout import agent_service as human_claim_approval_with_timeouts_agent
from app.multi_agent import agent_service as multi_agent_claim_approval
from app.multi_agent import remote_agent_service as remote_multi_agent_claim_approval
from app.parallel_agents import agent_service as parallel_agent_claim_approval
from app.parallel_tools_agent import agent_service as parallel_tool_claim_agent
from app.sub_workflow_agent import agent_service as sub_workflow_claim_approval_agent
from app.sub_workflow_agent import human_approval_workflow
from app.utils.contract import enforce_input_contract
from app.utils.llm import configure_openai_client
from app.utils.logs import setup_logging
from app.utils.recovery import announce_return
from app.utils.sub_agents import (
    eligibility_agent_service,
    fraud_agent_service,
    rate_comparison_agent_service,
)
from app.utils.tracing import setup_tracing

services: list[restate.Service | restate.VirtualObject | restate.Workflow] = [
    # Durable execution
    weather_agent,
    # Human-in-the-loop
    human_claim_approval_agent,
    human_claim_approval_with_timeouts_agent,
    sub_workflow_claim_approval_agent,
    human_approval_workflow,
    # Durable sessions
    chat,
    # Multi-agent coordination
    multi_agent_claim_approval,
    remote_multi_agent_claim_approval,
    # Parallel work
    parallel_tool_claim_agent,
    parallel_agent_claim_approval,
    # Error handling
    error_handling_agent,
    # Advanced patterns
    manual_loop_agent,
    booking_with_rollback_agent,
    # Beyond the tour
    scheduled_agent,
    streaming_agent,
    agent_events,
    interruptible_agent,
    guarded_claim_agent,
    llm_usage,
    mcp_claim_agent,
    # Sub-agents, called by other agents as remote tools
    eligibility_agent_service,
    fraud_agent_service,
    rate_comparison_agent_service,
]

# Every handler's input is checked here, in one place: a request that breaks its model's rules is
# an HTTP 400 naming the field (see app/utils/contract.py).
enforce_input_contract(services)

# Only Restate calls this endpoint (signed requests); the public web process is app/web/.
app = restate.app(
    services=services,
    # With keys set, only requests signed by our Restate Server are served (`make run` sets them).
    identity_keys=[key for key in os.environ.get("RESTATE_IDENTITY_KEYS", "").split(",") if key.strip()],
)


def _config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    # Restate retries whatever was in flight, so there is nothing worth waiting for on shutdown.
    config.graceful_timeout = 1.0
    config.accesslog = None
    # A Logger (not a stream): hypercorn's lines go through the logging set up in _setup(), once.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def _setup() -> None:
    """What each serving process needs before the first request."""
    setup_logging()
    # Restate apps do not implement the ASGI lifespan protocol; hypercorn's warning about it is noise.
    logging.getLogger("hypercorn.error").addFilter(lambda record: "Lifespan" not in record.getMessage())
    configure_openai_client()
    if setup_tracing():
        logging.info("Exporting traces to %s", os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"])


def _announce_return(host: str, port: int) -> Coroutine[Any, Any, None] | None:
    if admin_url := os.environ.get("RESTATE_ADMIN_URL"):
        # Invocations that were cut off by a crash need not wait for their next retry.
        return announce_return(admin_url, [service.name for service in services], f"http://{host}:{port}")
    return None


async def _serve(host: str, port: int) -> None:
    """One process: the app served in this event loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The Restate app hooks SIGTERM itself (to tell in-flight invocations to wind down) and asyncio
    # keeps one handler per signal: register through the SDK's hook list so both run. A plain
    # loop.add_signal_handler here would be silently replaced, and SIGTERM would be ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        install_shutdown_hook(loop, stop.set, sig)
    background = []  # referenced here: the loop keeps only weak references to tasks
    if announcement := _announce_return(host, port):
        background.append(loop.create_task(announcement))
    await serve(app, config=_config(host, port), shutdown_trigger=stop.wait)


def worker_app() -> Any:
    """The app of one worker process, when APP_WORKERS > 1 (loaded by hypercorn in each worker)."""
    if sys.platform == "linux":
        # A worker dies with its parent: `kill -9` of the endpoint takes all of it down, as a crash would.
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:
            os._exit(1)  # the parent died while this worker was still importing: nobody to serve
    _setup()
    return app


def _serve_workers(host: str, port: int, workers: int) -> int:
    """Several processes on one port, to use several cores; a worker that crashes is replaced.

    Hypercorn's own multi-worker mode stops every worker when one dies. Here the others keep
    serving while a new one starts, like pods behind a Service: the invocations the dead worker
    had in flight are retried by Restate and land on a live worker.
    """
    config = _config(host, port)
    config.workers = workers
    config.application_path = "app.__main__:worker_app()"
    sockets = config.create_sockets()  # bound once, here; every worker accepts on them
    spawn = multiprocessing.get_context("spawn")
    shutdown = spawn.Event()
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()
        shutdown.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)

    def start_worker() -> BaseProcess:
        worker = spawn.Process(
            target=asyncio_worker, kwargs={"config": config, "sockets": sockets, "shutdown_event": shutdown}
        )
        worker.start()
        return worker

    def announce() -> None:
        if announcement := _announce_return(host, port):
            threading.Thread(target=asyncio.run, args=(announcement,), daemon=True).start()

    running = [start_worker() for _ in range(workers)]
    announce()
    exit_code = 0
    while not stopping.is_set():
        wait([worker.sentinel for worker in running], timeout=1.0)
        for worker in [w for w in running if w.exitcode is not None]:
            running.remove(worker)
            if stopping.is_set():
                continue
            if worker.exitcode is not None and worker.exitcode < 0:
                # Killed by a signal (a crash, the OOM killer, kill -9): replace it.
                logging.warning(
                    "Worker %s was killed (signal %d); starting a new one", worker.pid, -worker.exitcode
                )
                running.append(start_worker())
                announce()
            else:
                # It failed on its own (e.g. an import error): a new one would fail the same way.
                logging.error(
                    "Worker %s exited with code %s; stopping the endpoint", worker.pid, worker.exitcode
                )
                exit_code = worker.exitcode or 1
                stopping.set()
                shutdown.set()
    for worker in running:
        worker.join(timeout=5)
        if worker.exitcode is None:
            worker.kill()
            worker.join()
    return exit_code


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("APP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("APP_PORT", "9080")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("APP_WORKERS", "1")))
    args = parser.parse_args()

    if not os.environ.get("OPENAI_API_KEY"):
        sys.exit(
            "error: OPENAI_API_KEY is not set. Run `make run` (it starts the offline stand-in LLM), "
            "or export your OpenAI key."
        )
    try:
        if args.workers > 1:
            setup_logging()
            sys.exit(_serve_workers(args.host, args.port, args.workers))
        _setup()
        asyncio.run(_serve(args.host, args.port))
    except OSError as e:
        sys.exit(
            f"error: cannot listen on {args.host}:{args.port} ({e.strerror}); stop what runs there or pass --port."
        )


if __name__ == "__main__":
    main()
