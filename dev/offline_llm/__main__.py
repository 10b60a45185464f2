"""Run the offline stand-in LLM: `python -m dev.offline_llm --port 8090`."""

import argparse
import asyncio
import signal
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config

from dev.offline_llm.server import OfflineLLM


async def _serve(host: str, port: int, latency_ms: int) -> None:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"offline LLM listening on http://{host}:{port}/v1", flush=True)
    await serve(OfflineLLM(latency_ms=latency_ms), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dev.offline_llm", description="Offline OpenAI stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=int, default=0, help="fixed latency added to every LLM call")
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.host, args.port, args.latency_ms))
    except OSError as e:
        sys.exit(f"error: offline LLM cannot listen on {args.host}:{args.port}: {e.strerror}")


if __name__ == "__main__":
    main()
