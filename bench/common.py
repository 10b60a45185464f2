"""Measuring tools shared by the benchmarks: latency statistics, CPU time, a load generator."""

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dev.harness import ClusterTour, Tour
from dev.stack import worker_pids

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def summary(samples_s: list[float]) -> dict[str, float]:
    """Median, p95 and p99 of latencies given in seconds, in milliseconds."""
    ordered = sorted(samples_s)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] * 1000

    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(pct(0.95), 2),
        "p99_ms": round(pct(0.99), 2),
        "runs": len(ordered),
    }


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc), e.g. an endpoint's worker processes."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def ingress_client(stack: Tour, concurrency: int) -> httpx.AsyncClient:
    """An HTTP client to the stack's ingress with a connection for each concurrent caller."""
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    return httpx.AsyncClient(base_url=stack.ingress, timeout=120, limits=limits)


def stack_pids(stack: Tour) -> dict[str, int]:
    """The processes of a running stack by name: endpoint (and its workers), offline LLM, server(s)."""
    assert stack.endpoint is not None
    pids = {"endpoint": stack.endpoint.pid, "llm": stack.llm.pid}
    pids.update({f"endpoint worker {i + 1}": pid for i, pid in enumerate(worker_pids(stack.endpoint.pid))})
    if isinstance(stack, ClusterTour):
        pids.update({f"server {node.node_name}": node.pid for node in stack.cluster.nodes})
    else:
        pids["server"] = stack.server.pid
    return pids


def rss_mb(pid: int, with_children: bool = False) -> float:
    """Resident memory in MiB of a process (and of its children: an endpoint's workers)."""
    total = 0
    for p in [pid, *(children(pid) if with_children else [])]:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds_precise(pid: int) -> float:
    """CPU time of all threads of a process so far, to the nanosecond (Linux schedstat; /proc/<pid>/stat
    counts in 10 ms ticks, too coarse around a single call of a few milliseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total / 1e9


@dataclass
class CpuMeter:
    """CPU % of some processes over a measured window (100% = one core busy)."""

    pids: dict[str, int]

    def __post_init__(self) -> None:
        self.start = time.monotonic()
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def seconds(self) -> dict[str, float]:
        """CPU seconds each process used since the meter was started."""
        return {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}

    def percent(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.start
        return {
            name: round(100 * (cpu_seconds(pid) - self.before[name]) / elapsed, 1)
            for name, pid in self.pids.items()
        }


async def interleaved_with_cpu(
    calls: Mapping[str, Callable[[], Awaitable[Any]]],
    pids_of: Mapping[str, dict[str, int]],
    runs: int,
    warmup: int,
    settle_s: float = 0.005,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Latency of each kind of call, one call at a time, the kinds taking turns (whatever else the
    machine does during the measurement weighs on all of them alike), and what each kind of call
    costs the processes named for it in `pids_of`:
    CPU milliseconds per call, read from /proc around each call (plus `settle_s` for the work a
    process finishes after answering). Measured around the same calls as the latencies, so a busy
    machine weighs on all kinds alike here too."""
    for _ in range(warmup):
        for call in calls.values():
            await call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    spent: dict[str, dict[str, float]] = {name: dict.fromkeys(pids_of.get(name, {}), 0.0) for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            pids = pids_of.get(name, {})
            before = {process: cpu_seconds_precise(pid) for process, pid in pids.items()}
            started = time.perf_counter()
            await call()
            samples[name].append(time.perf_counter() - started)
            await asyncio.sleep(settle_s)
            for process, pid in pids.items():
                spent[name][process] += cpu_seconds_precise(pid) - before[process]
    cpu_ms = {name: {process: 1000 * s / runs for process, s in per.items()} for name, per in spent.items()}
    return samples, cpu_ms


async def closed_loop(
    call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float, warmup_s: float = 2.0
) -> dict[str, Any]:
    """`concurrency` workers calling back to back; completions per second in the measured window."""
    done = 0
    latencies: list[float] = []
    measuring = False
    stop_at = time.monotonic() + warmup_s + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            await call()
            if measuring:
                done += 1
                latencies.append(time.perf_counter() - started)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup_s)
    measuring = True
    window_start = time.monotonic()
    await asyncio.sleep(seconds)
    measuring = False
    window = time.monotonic() - window_start
    await asyncio.gather(*workers)
    return {"rps": round(done / window, 1), "latency": summary(latencies) if latencies else {}}
