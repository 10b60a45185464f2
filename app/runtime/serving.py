"""Serving the endpoint: hypercorn, one process or several, and the announcement of its return.

`python -m app` (app/__main__.py) lists the services and builds the Restate app; this module serves
it. With APP_WORKERS > 1 it runs several processes on one port and replaces one that crashes;
after a (re)start it tells the Restate Server that the endpoint is back, so invocations cut off
by a crash resume at once instead of at their next retry (app/runtime/recovery.py).
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
from types import ModuleType
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.asyncio.run import asyncio_worker
from hypercorn.config import Config
from restate.server import install_shutdown_hook

from app.runtime.http2 import fix_http2
from app.runtime.llm_client import configure_openai_client
from app.runtime.logs import setup_logging
from app.runtime.memory import TrimWhenIdle, freeze_startup_objects
from app.runtime.recovery import announce_return
from app.runtime.tracing import setup_tracing


def _endpoint() -> ModuleType:
    """app/__main__.py, for its `services` and `app`: the running main module when started as
    `python -m app` (also in worker processes, which re-import it), else imported."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main.__spec__, "name", None) == "app.__main__":
        return main
    import app.__main__ as endpoint

    return endpoint


def hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    # Restate retries whatever was in flight, so there is nothing worth waiting for on shutdown.
    config.graceful_timeout = 1.0
    # Restate keeps a few HTTP/2 connections to the endpoint open and sends every invocation over
    # them. hypercorn closes a connection after 1,000 requests by default, with the invocations on
    # it in flight: each thousandth invocation then waited ~35 s for Restate's retry.
    config.keep_alive_max_requests = 2**62
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
    fix_http2()
    if setup_tracing():
        logging.info("Exporting traces to %s", os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"])


def _app_to_serve() -> Any:
    """The endpoint's app as each serving process runs it: trimmed when idle; once it is built,
    everything the process holds so far is frozen for the garbage collector."""
    app = TrimWhenIdle(_endpoint().app)
    freeze_startup_objects()
    return app


def _announce_return(host: str, port: int) -> Coroutine[Any, Any, None] | None:
    if admin_url := os.environ.get("RESTATE_ADMIN_URL"):
        # Invocations that were cut off by a crash need not wait for their next retry.
        services = [service.name for service in _endpoint().services]
        return announce_return(admin_url, services, f"http://{host}:{port}")
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
    await serve(_app_to_serve(), config=hypercorn_config(host, port), shutdown_trigger=stop.wait)


def worker_app() -> Any:
    """The app of one worker process, when APP_WORKERS > 1 (loaded by hypercorn in each worker)."""
    if sys.platform == "linux":
        # A worker dies with its parent: `kill -9` of the endpoint takes all of it down, as a crash would.
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:
            os._exit(1)  # the parent died while this worker was still importing: nobody to serve
    _setup()
    return _app_to_serve()


def _serve_workers(host: str, port: int, workers: int) -> int:
    """Several processes on one port, to use several cores; a worker that crashes is replaced.

    Hypercorn's own multi-worker mode stops every worker when one dies. Here the others keep
    serving while a new one starts, like pods behind a Service: the invocations the dead worker
    had in flight are retried by Restate and land on a live worker.
    """
    config = hypercorn_config(host, port)
    config.workers = workers
    config.application_path = "app.runtime.serving:worker_app()"
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
    """`python -m app`: parse the command line, then serve in one process or several."""
    parser = argparse.ArgumentParser(prog="python -m app", description="The one endpoint of the tour.")
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
