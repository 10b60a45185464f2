"""A Restate endpoint with handlers that do nothing: the engine's floor, for the overhead and floor
benchmarks. Served apart from the tour's endpoint so that the tour carries no benchmark code.

    BenchNoop/run        an invocation and nothing else
    BenchNoop/steps      N journaled no-op steps (`ctx.run_typed`), one after the other: each one
                         proposes its (empty) result and waits for the server to acknowledge it,
                         as every LLM call and tool step of an agent does
    BenchNoop/shaped     a WeatherAgent run's journal with nothing in it: 3 no-op steps, then a
                         one-way call to BenchLedger/record (a Virtual Object keyed by service, that
                         reads and writes its state), as the run sends its tally to LlmUsage
    BenchNoop/held       `shaped` with each step taking N ms (asleep): open as long as an agent
                         run is, with the same journal; what the time an invocation stays open costs

    python -m bench.noop_endpoint --port 9099
"""

import argparse
import asyncio

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config

noop = restate.Service("BenchNoop")
ledger = restate.VirtualObject("BenchLedger")


@noop.handler()
async def run(ctx: restate.Context) -> None:
    return None


async def nothing() -> None:
    return None


@noop.handler()
async def steps(ctx: restate.Context, n: int) -> int:
    for _ in range(n):
        await ctx.run_typed("step", nothing)
    return n


@ledger.handler()
async def record(ctx: restate.ObjectContext, calls: int) -> None:
    ctx.set("calls", (await ctx.get("calls", type_hint=int) or 0) + calls)


async def hold(ms: int) -> None:
    await asyncio.sleep(ms / 1000)


async def run_shaped(ctx: restate.Context, ms: int) -> None:
    """A WeatherAgent run's journal: 3 steps, each taking `ms` (0: nothing at all), then the send."""
    for _ in range(3):
        if ms:
            await ctx.run_typed("step", hold, ms=ms)
        else:
            await ctx.run_typed("step", nothing)
    ctx.object_send(record, key="BenchNoop", arg=2)


@noop.handler()
async def shaped(ctx: restate.Context) -> None:
    await run_shaped(ctx, 0)


@noop.handler()
async def held(ctx: restate.Context, ms: int) -> None:
    await run_shaped(ctx, ms)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    config = Config()
    config.bind = [f"127.0.0.1:{parser.parse_args().port}"]
    config.accesslog = None
    asyncio.run(serve(restate.app(services=[noop, ledger]), config))


if __name__ == "__main__":
    main()
