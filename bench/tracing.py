"""What tracing costs: CPU per WeatherAgent run with traces on (exported to a local Phoenix) and off.

Two stacks side by side, the same in all but tracing: the plain Tour, and the TracedTour of
`make run-traced` (dev/harness.py). They take turns, a block of runs each, one run at a time;
each block's CPU is read from /proc around the block plus a settling pause (spans are exported in
batches, a second later), minus what the processes spend idle over as long. Per run, in ms:

- `cpu_ms_per_run.{on,off}`: restate-server + the endpoint, the processes a user runs anyway;
- `phoenix_cpu_ms_per_run`: the trace viewer's own share, with traces on;
- `latency_ms.{on,off}`: the run's median latency at the ingress.
"""

import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import cpu_seconds_precise, summary
from dev.harness import Tour, TracedTour

QUESTION = {"message": "What is the weather like in San Francisco?"}
SETTLE_S = 1.5  # the endpoint exports its spans every second (app/runtime/tracing.py)


def _pids(stack: Tour) -> dict[str, int]:
    assert stack.endpoint is not None
    return {"server": stack.server.pid, "endpoint": stack.endpoint.pid}


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds_precise(pid) for name, pid in pids.items()}


def _idle_rate(pids: dict[str, int], seconds: float = 3.0) -> dict[str, float]:
    """CPU seconds per second each process spends with nothing to do (timers, heartbeats)."""
    before = _cpu(pids)
    time.sleep(seconds)
    after = _cpu(pids)
    return {name: (after[name] - before[name]) / seconds for name in pids}


def _block(
    stack: Tour, pids: dict[str, int], idle: dict[str, float], runs: int
) -> tuple[dict[str, float], list[float]]:
    """CPU ms per run of each process over a block of `runs` runs, and the runs' latencies (s)."""
    before, started = _cpu(pids), time.monotonic()
    latencies = []
    with httpx.Client(base_url=stack.ingress, timeout=60) as client:
        for _ in range(runs):
            t0 = time.perf_counter()
            resp = client.post("/WeatherAgent/run", json=QUESTION)
            latencies.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise RuntimeError(f"WeatherAgent/run answered {resp.status_code}: {resp.text[:200]}")
    time.sleep(SETTLE_S)
    elapsed = time.monotonic() - started
    after = _cpu(pids)
    per_run = {
        name: 1000 * max(0.0, after[name] - before[name] - idle[name] * elapsed) / runs for name in pids
    }
    return per_run, latencies


def run(workdir: Path, quick: bool) -> dict[str, Any]:
    blocks, runs = (3, 20) if quick else (8, 40)
    off, on = Tour(workdir / "off"), TracedTour(workdir / "on")
    try:
        off.start()
        on.start()
        pids = {"off": _pids(off), "on": {**_pids(on), "phoenix": on.phoenix.pid}}
        stacks = {"off": off, "on": on}
        for name, stack in stacks.items():  # warm-up: imports, connections, Phoenix's first trace
            _block(stack, pids[name], dict.fromkeys(pids[name], 0.0), 10)
        idle = {name: _idle_rate(pids[name]) for name in stacks}
        per_block: dict[str, list[dict[str, float]]] = {"off": [], "on": []}  # CPU ms per run, by process
        latencies: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(blocks):
            for name, stack in stacks.items():
                block_cpu, lat = _block(stack, pids[name], idle[name], runs)
                per_block[name].append(block_cpu)
                latencies[name] += lat
    finally:
        on.stop()
        off.stop()

    def median(name: str, process: str) -> float:
        return round(statistics.median(b[process] for b in per_block[name]), 2)

    cpu: dict[str, dict[str, float]] = {n: {p: median(n, p) for p in ("server", "endpoint")} for n in stacks}
    return {
        "cpu_ms_per_run": {name: round(cpu[name]["server"] + cpu[name]["endpoint"], 2) for name in stacks},
        "cpu_ms_per_run_by_process": cpu,
        "phoenix_cpu_ms_per_run": median("on", "phoenix"),
        "latency_ms": {name: summary(latencies[name])["median_ms"] for name in stacks},
        "runs": blocks * runs,
        "blocks": blocks,
    }


def report(figures: dict[str, Any]) -> None:
    cpu = figures["cpu_ms_per_run"]
    print(
        f"  CPU per run (server + endpoint): off {cpu['off']} ms, on {cpu['on']} ms "
        f"(+{round(cpu['on'] - cpu['off'], 2)}); Phoenix {figures['phoenix_cpu_ms_per_run']} ms; "
        f"latency {figures['latency_ms']['off']} -> {figures['latency_ms']['on']} ms",
        flush=True,
    )
