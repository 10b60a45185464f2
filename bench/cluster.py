"""The cluster in figures: WeatherAgent throughput on three nodes vs one, and the time a node crash
costs (`python -m bench --only cluster`).

Throughput: the single-node stack and the three-node cluster are started one after the other in
the same run, with the same endpoint (APP_WORKERS processes), the same number of partitions and
the same offline LLM settings, and loaded alike at concurrency 64 through one node's ingress.

Failover: a cluster with one partition, so that every invocation depends on the node that leads
it; a steady load goes through another node's ingress; the leader is SIGKILLed. Measured from
the kill: the first completion of an invocation sent after it, and the moment every invocation
that was in flight at the kill has completed. The killed node is started again between rounds.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench.common import CpuMeter, closed_loop, ingress_client, stack_pids
from dev.cluster import NODE_NAMES
from dev.harness import ClusterTour, Tour

WEATHER = "WeatherAgent/run"
StackT = TypeVar("StackT", bound=Tour)
PARTITIONS = "4"  # the same for both; a leader or two per cluster node


async def weather(http: httpx.AsyncClient, city: str = "San Francisco") -> float:
    """One run; returns the time it completed (monotonic)."""
    resp = await http.post(f"/{WEATHER}", json={"message": f"What is the weather like in {city}?"})
    if resp.status_code != 200:
        raise RuntimeError(f"{WEATHER} answered {resp.status_code}: {resp.text[:200]}")
    return time.monotonic()


async def throughput_of(stack: Tour, quick: bool) -> dict[str, Any]:
    out = {}
    for latency_ms in (0, 200):
        stack.llm.latency(latency_ms)
        pids = stack_pids(stack)
        async with ingress_client(stack, 64) as http:
            meter = CpuMeter(pids)
            figures = await closed_loop(lambda: weather(http), 64, 5.0 if quick else 10.0, 3.0)
            cpu = meter.percent()
        figures["cpu_percent"] = {
            "endpoint": round(sum(v for k, v in cpu.items() if k.startswith("endpoint")), 1),
            "servers": round(sum(v for k, v in cpu.items() if k.startswith("server")), 1),
            "llm": cpu["llm"],
        }
        out["c64" if latency_ms == 0 else f"c64_l{latency_ms}"] = figures
    stack.llm.latency(0)
    return out


class Load:
    """Workers calling back to back, with the calls in flight visible at any moment."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.in_flight: set[asyncio.Task[float]] = set()
        self.runs: list[tuple[float, float]] = []  # (sent, completed)
        self.stopping = False

    async def loop(self) -> None:
        while not self.stopping:
            task = asyncio.ensure_future(weather(self.http))
            self.in_flight.add(task)
            sent = time.monotonic()
            try:
                self.runs.append((sent, await task))
            finally:
                self.in_flight.discard(task)


async def failover(stack: ClusterTour, rounds: int) -> dict[str, Any]:
    stack.llm.latency(100)  # each run spans a few hundred ms, so some are always in flight
    samples: list[dict[str, float]] = []
    for _ in range(rounds):
        leader = stack.cluster.wait_leaders(timeout=60, followers=1)[0]
        survivor = next(name for name in NODE_NAMES if name != leader)
        stack.use_node(survivor)
        async with ingress_client(stack, 16) as http:
            load = Load(http)
            loops = [asyncio.create_task(load.loop()) for _ in range(16)]
            await asyncio.sleep(3.0)  # steady state
            at_kill = set(load.in_flight)
            await asyncio.to_thread(stack.cluster.kill_node, leader)
            killed = time.monotonic()  # the process is gone
            finished_then = await asyncio.gather(*at_kill)
            load.stopping = True
            await asyncio.gather(*loops)
        # Service restored: the first invocation sent after the kill that completed.
        first = min(done for sent, done in load.runs if sent > killed)
        samples.append(
            {
                "first_completion_s": round(first - killed, 3),
                "in_flight_at_kill": len(at_kill),
                "all_in_flight_done_s": round(max(finished_then) - killed, 3),
            }
        )
        print(f"    killed {leader}: {samples[-1]}", flush=True)
        await asyncio.to_thread(stack.cluster.start_node, leader)
    stack.llm.latency(0)

    def median(key: str) -> float:
        return sorted(s[key] for s in samples)[len(samples) // 2]

    return {
        "rounds": samples,
        "first_completion_median_s": median("first_completion_s"),
        "all_in_flight_done_median_s": median("all_in_flight_done_s"),
    }


@contextlib.asynccontextmanager
async def started(stack: StackT, what: str) -> AsyncIterator[StackT]:
    """The stack started (off the event loop), and stopped whatever happens."""
    try:
        await asyncio.to_thread(stack.start)
        print(f"  {what} ...", flush=True)
        yield stack
    finally:
        stack.stop()


async def run(workdir: Path, quick: bool, workers: int) -> dict[str, Any]:
    env = {"RESTATE_DEFAULT_NUM_PARTITIONS": PARTITIONS}
    out: dict[str, Any] = {"partitions": int(PARTITIONS), "endpoint_workers": workers}

    async with started(Tour(workdir / "single", env, {"APP_WORKERS": str(workers)}), "single node") as single:
        out["single"] = await throughput_of(single, quick)
    async with started(
        ClusterTour(workdir / "cluster", env, workers=workers), "three-node cluster"
    ) as cluster:
        out["cluster"] = await throughput_of(cluster, quick)
    for label in out["single"]:
        single_rps, cluster_rps = out["single"][label]["rps"], out["cluster"][label]["rps"]
        out[f"{label}_ratio"] = round(cluster_rps / single_rps, 2) if single_rps else None
        print(f"  {label:>8}: single node {single_rps:>6} /s   cluster {cluster_rps:>6} /s", flush=True)

    one_partition = ClusterTour(
        workdir / "failover", {"RESTATE_DEFAULT_NUM_PARTITIONS": "1"}, workers=workers
    )
    async with started(one_partition, "failover (one partition, its leader killed)") as stack:
        out["failover"] = await failover(stack, 3 if quick else 5)
    return out
