"""Run the offline stand-in LLM: `python -m dev.offline_llm --port 8090`.

`--token-ms` (default: the environment variable OFFLINE_LLM_TOKEN_MS, else 0) paces streamed
answers: the milliseconds between two deltas. `/_stub/latency` changes it while running.
"""

import argparse
import asyncio
import os
import signal
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config

from dev.offline_llm.server import OfflineLLM

TOKEN_MS_ENV = "OFFLINE_LLM_TOKEN_MS"


async def _serve(host: str, port: int, latency_ms: int, token_ms: int) -> None:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    # Longer than the OpenAI client's 5 s keep-alive (httpx's default), as OpenAI's servers keep
    # connections: with equal timeouts the stand-in could close an idle connection just as the
    # client sends on it, and the call would fail for a reason the real API never gives.
    config.keep_alive_timeout = 60
    config.backlog = 1024  # the benchmark opens hundreds of connections at once
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"offline LLM listening on http://{host}:{port}/v1", flush=True)
    app = OfflineLLM(latency_ms=latency_ms, token_ms=token_ms)
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dev.offline_llm", description="Offline OpenAI stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=int, default=0, help="fixed latency added to every LLM call")
    parser.add_argument(
        "--token-ms",
        type=int,
        default=None,
        help=f"pace of streamed answers, ms between two deltas (default: ${TOKEN_MS_ENV}, else 0)",
    )
    args = parser.parse_args()
    token_ms = args.token_ms
    if token_ms is None:
        try:
            token_ms = int(os.environ.get(TOKEN_MS_ENV) or 0)
        except ValueError:
            sys.exit(
                f"error: {TOKEN_MS_ENV} must be an integer (milliseconds), not {os.environ[TOKEN_MS_ENV]!r}"
            )
    if token_ms < 0 or args.latency_ms < 0:
        sys.exit("error: --latency-ms and --token-ms must be >= 0")
    try:
        asyncio.run(_serve(args.host, args.port, args.latency_ms, token_ms))
    except OSError as e:
        sys.exit(f"error: offline LLM cannot listen on {args.host}:{args.port}: {e.strerror}")


if __name__ == "__main__":
    main()
