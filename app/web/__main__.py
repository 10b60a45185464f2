"""`python -m app.web`: the public web process on http://127.0.0.1:8000 (see app/web/__init__.py).

Settings (environment): WEB_HOST (127.0.0.1), WEB_PORT (8000), RESTATE_INGRESS_URL
(http://localhost:8080), RESTATE_ADMIN_URL (http://localhost:9070), RUN_CONTROLS (on when WEB_HOST
is this machine only; see docs/front-door.md), STREAM_IDLE_SECONDS (300), TRACES_URL (unset).
"""

import argparse
import asyncio
import logging
import os
import signal
import sys

from hypercorn.asyncio import serve

from app.runtime.serving import hypercorn_config
from app.web import create_app
from app.web.settings import Settings


async def _serve(host: str, port: int) -> None:
    config = hypercorn_config(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(Settings.from_env(host))
    logging.info(
        "Public web on http://%s:%d (streams read through %s)", host, port, app.state.settings.ingress_url
    )
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m app.web", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("WEB_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT", "8000")))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args.host, args.port))
    except OSError as e:
        sys.exit(
            f"error: cannot listen on {args.host}:{args.port} ({e.strerror}); stop what runs there or pass --port."
        )


if __name__ == "__main__":
    main()
