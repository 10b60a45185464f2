"""What a tenant's budget costs, and how well it holds (app/advanced/spend.py).

- `cpu_ms_per_run.{server,endpoint}.{with_budget,without}`: CPU of restate-server and of the
  endpoint per WeatherAgent run of a tenant with a budget (one that never runs out) and of a
  request that names no tenant (the tour's), the two kinds of run taking turns
  (bench.common.interleaved_with_cpu); the first reserves its allowance, both are settled;
- `latency_added_ms`: the median run with a budget minus the median without;
- `overspend_tokens_c64`: 64 runs of one tenant at once, racing for the last ~10 runs' worth of
  its budget: tokens used beyond the budget (0 when it held), beside the largest single call.
"""

import asyncio
import itertools
from pathlib import Path
from typing import Any

import httpx

from bench.common import ingress_client, interleaved_with_cpu, stack_pids, summary
from dev.harness import Tour, wait_until

QUESTION = {"message": "What is the weather like in San Francisco?"}
_tenants = itertools.count(1)


async def _run(client: httpx.AsyncClient, tenant: str | None) -> int:
    """A run of `tenant`'s (None: a request that names none, as the tour's commands)."""
    headers = {"x-tenant": tenant} if tenant else {}
    resp = await client.post("/WeatherAgent/run", json=QUESTION, headers=headers)
    if resp.status_code not in (200, 402):
        raise RuntimeError(f"WeatherAgent/run answered {resp.status_code}: {resp.text[:200]}")
    return resp.status_code


def _spend(stack: Tour, tenant: str) -> dict[str, Any]:
    answer: dict[str, Any] = stack.http.get(f"/Spend/{tenant}/get").json()
    return answer


def _settled(stack: Tour, tenant: str, runs: int) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (s := _spend(stack, tenant))["used"]["runs"] >= runs and not s["runs_in_flight"] and s,
        timeout=120,
        what=f"{runs} runs of {tenant} settled",
    )
    return found


async def _cpu(stack: Tour, quick: bool) -> dict[str, Any]:
    runs, warmup = (40, 5) if quick else (200, 20)
    budgeted = f"budgeted-{next(_tenants)}"
    stack.http.post(f"/Spend/{budgeted}/set_budget", json={"max_tokens": 10**12}).raise_for_status()
    pids = stack_pids(stack)
    measured = {"server": pids["server"], **{k: v for k, v in pids.items() if k.startswith("endpoint")}}
    async with ingress_client(stack, 1) as client:
        calls = {"with_budget": lambda: _run(client, budgeted), "without": lambda: _run(client, None)}
        samples, cpu = await interleaved_with_cpu(calls, dict.fromkeys(calls, measured), runs, warmup, 0.05)

    def endpoint(kind: str) -> float:
        return round(sum(ms for name, ms in cpu[kind].items() if name.startswith("endpoint")), 2)

    latency = {kind: summary(values) for kind, values in samples.items()}
    return {
        "cpu_ms_per_run": {
            "server": {kind: round(cpu[kind]["server"], 2) for kind in calls},
            "endpoint": {kind: endpoint(kind) for kind in calls},
        },
        "latency": latency,
        "latency_added_ms": round(latency["with_budget"]["median_ms"] - latency["without"]["median_ms"], 2),
        "cpu_runs": runs,
    }


async def _race(stack: Tour, concurrency: int) -> dict[str, Any]:
    tenant = f"race-{next(_tenants)}"
    async with ingress_client(stack, concurrency) as client:
        await _run(client, tenant)  # what one of its runs takes, and its largest call
        first = _settled(stack, tenant, 1)
        budget = first["used"]["tokens"] * 11  # ten runs more
        stack.http.post(f"/Spend/{tenant}/set_budget", json={"max_tokens": budget}).raise_for_status()
        statuses = await asyncio.gather(*(_run(client, tenant) for _ in range(concurrency)))
    answered = statuses.count(200)
    final = _settled(stack, tenant, 1 + answered)
    return {
        "budget_tokens": budget,
        "used_tokens": final["used"]["tokens"],
        "overspend_tokens": max(0, final["used"]["tokens"] - budget),
        "largest_call_tokens": final["call_max"],
        "answered": answered,
        "refused": statuses.count(402),
    }


def run(workdir: Path, quick: bool, workers: int) -> dict[str, Any]:
    stack = Tour(workdir, endpoint_env={"APP_WORKERS": str(workers)})
    try:
        stack.start()
        figures = asyncio.run(_cpu(stack, quick))
        race = asyncio.run(_race(stack, 64))
    finally:
        stack.stop()
    return {**figures, "overspend_tokens_c64": race["overspend_tokens"], "race_c64": race}


def report(figures: dict[str, Any]) -> None:
    cpu = figures["cpu_ms_per_run"]
    race = figures["race_c64"]
    print(
        f"  CPU per run, with a budget / without: server {cpu['server']['with_budget']} / "
        f"{cpu['server']['without']} ms, endpoint {cpu['endpoint']['with_budget']} / {cpu['endpoint']['without']} ms; "
        f"latency +{figures['latency_added_ms']} ms; 64 racing: {race['answered']} answered, {race['refused']} "
        f"refused, used {race['used_tokens']} of {race['budget_tokens']} tokens (overspend "
        f"{figures['overspend_tokens_c64']}, largest call {race['largest_call_tokens']})",
        flush=True,
    )
