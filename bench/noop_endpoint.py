"""A Restate endpoint with one handler that does nothing: the engine's floor, for the overhead
benchmark. Served apart from the tour's endpoint so that the tour carries no benchmark code.

    python -m bench.noop_endpoint --port 9099
"""

import argparse
import asyncio

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config

noop = restate.Service("BenchNoop")


@noop.handler()
async def run(ctx: restate.Context) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    config = Config()
    config.bind = [f"127.0.0.1:{parser.parse_args().port}"]
    config.accesslog = None
    asyncio.run(serve(restate.app(services=[noop]), config))


if __name__ == "__main__":
    main()
