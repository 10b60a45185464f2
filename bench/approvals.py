"""Waiting cost: many approvals pending at once, suspended, then all resolved.

Starts N HumanClaimApprovalAgent claims, waits until every one is suspended (nothing held open on
the endpoint), records the endpoint's and the server's RSS, resolves all awakeables, and records
how long the backlog takes to drain and that every claim completed.

    python -m bench.approvals [--count 500]
"""

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import rss_mb
from bench.results import record
from dev.harness import Tour, wait_until

AWAKEABLE = re.compile(r"/restate/awakeables/(\S+)/resolve")
SERVICE = "HumanClaimApprovalAgent"


def count_by_status(stack: Tour) -> dict[str, int]:
    rows = stack.admin.query(
        f"SELECT status, count(*) AS n FROM sys_invocation WHERE target_service_name = '{SERVICE}' GROUP BY status"
    )
    return {r["status"]: r["n"] for r in rows}


async def send_all(ingress: str, bodies: list[dict[str, Any]], concurrency: int = 32) -> list[str]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=ingress, timeout=60) as client:

        async def send(body: dict[str, Any]) -> str:
            async with limit:
                resp = await client.post(f"/{SERVICE}/run/send", json=body)
                resp.raise_for_status()
                invocation_id: str = resp.json()["invocationId"]
                return invocation_id

        return await asyncio.gather(*(send(b) for b in bodies))


async def resolve_all(ingress: str, awakeables: list[str], concurrency: int = 32) -> None:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=ingress, timeout=60) as client:

        async def resolve(awakeable: str) -> None:
            async with limit:
                resp = await client.post(f"/restate/awakeables/{awakeable}/resolve", json=True)
                resp.raise_for_status()

        await asyncio.gather(*(resolve(a) for a in awakeables))


# Two ways to run the server: as `make run` does (but suspending after 5 s instead of 1 min, so the
# bench does not wait a minute; the suspended state it measures is the same), and bounded: at most
# 64 invocations run on the endpoint at once and a waiting one suspends after 2 s.
SETTINGS = {
    "default": {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "5s"},
    "bounded": {
        "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "2s",
        "RESTATE_WORKER__INVOKER__CONCURRENT_INVOCATIONS_LIMIT": "64",
    },
}


def run(count: int, workdir: Path, settings: str = "default") -> dict[str, Any]:
    stack = Tour(workdir, SETTINGS[settings])
    stack.start()
    assert stack.endpoint is not None
    try:
        # Warm up to a steady state (imports, caches, connections, allocator pools) with claims that
        # need no approval, as many at a time as the approvals will come, then take the baseline.
        small = [
            {"message": f"Process my hospital bill of 500USD for a sprained ankle (warm-up {i})."}
            for i in range(300)
        ]
        asyncio.run(send_all(stack.ingress, small))
        wait_until(
            lambda: count_by_status(stack).get("completed", 0) >= len(small),
            timeout=600,
            interval=1,
            what="warm-up",
        )
        time.sleep(2)
        idle = {"endpoint_rss_mb": rss_mb(stack.endpoint.pid), "server_rss_mb": rss_mb(stack.server.pid)}

        started = time.monotonic()
        bodies = [
            {"message": f"Process my hospital bill of 3000USD for a broken leg (bench {i})."}
            for i in range(count)
        ]
        asyncio.run(send_all(stack.ingress, bodies))
        wait_until(
            lambda: count_by_status(stack).get("suspended", 0) >= count,
            timeout=600,
            interval=1,
            what="all suspended",
        )
        all_suspended_s = time.monotonic() - started
        time.sleep(2)  # let the endpoint settle (finished requests, GC)
        suspended = {"endpoint_rss_mb": rss_mb(stack.endpoint.pid), "server_rss_mb": rss_mb(stack.server.pid)}

        log = (workdir / "endpoint.log").read_text(errors="replace")
        awakeables = sorted(set(AWAKEABLE.findall(log)))
        assert len(awakeables) == count, f"expected {count} review requests, found {len(awakeables)}"
        drain_start = time.monotonic()
        asyncio.run(resolve_all(stack.ingress, awakeables))
        wait_until(
            lambda: count_by_status(stack).get("completed", 0) >= count + len(small),
            timeout=600,
            interval=0.5,
            what="drained",
        )
        drain_s = time.monotonic() - drain_start
        statuses = count_by_status(stack)
        failed = stack.admin.query(
            f"SELECT count(*) AS n FROM sys_invocation WHERE target_service_name = '{SERVICE}' "
            "AND completion_result = 'failure'"
        )[0]["n"]
        after = {"endpoint_rss_mb": rss_mb(stack.endpoint.pid), "server_rss_mb": rss_mb(stack.server.pid)}
    finally:
        stack.stop()

    return {
        "count": count,
        "time_to_all_suspended_s": round(all_suspended_s, 2),
        "drain_s": round(drain_s, 2),
        "drain_per_s": round(count / drain_s, 1),
        "completed": statuses.get("completed", 0) - len(small),
        "failed": failed,
        "rss_mb": {
            "idle": {k: round(v, 1) for k, v in idle.items()},
            "all_suspended": {k: round(v, 1) for k, v in suspended.items()},
            "after_drain": {k: round(v, 1) for k, v in after.items()},
        },
        "endpoint_rss_delta_mb": round(suspended["endpoint_rss_mb"] - idle["endpoint_rss_mb"], 1),
        "server_rss_delta_mb": round(suspended["server_rss_mb"] - idle["server_rss_mb"], 1),
        "settings": f"{settings}: {SETTINGS[settings]}; offline LLM latency 0 ms; one endpoint process",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.approvals", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-approvals-") as tmp:
        figures = run(args.count, Path(tmp))
    record("waiting", figures)
    rss = figures["rss_mb"]
    print(f"{args.count} pending approvals (suspended after {figures['time_to_all_suspended_s']} s)")
    print(f"{'':24}{'endpoint RSS MiB':>18}{'server RSS MiB':>16}")
    for phase in ("idle", "all_suspended", "after_drain"):
        print(f"{phase:24}{rss[phase]['endpoint_rss_mb']:>18}{rss[phase]['server_rss_mb']:>16}")
    print(f"resolved all in {figures['drain_s']} s ({figures['drain_per_s']}/s); "
          f"completed {figures['completed']}, failed {figures['failed']}")  # fmt: skip


if __name__ == "__main__":
    main()
