"""Waiting cost: approvals pending, suspended, then all resolved. Two questions, two runs.

Burst (`run_burst`): N HumanClaimApprovalAgent claims sent at once, N agent turns running at the
same moment; waits until every one is suspended, records the endpoint's and the server's RSS,
resolves all awakeables, and records how long the backlog takes to drain. What it measures is
the high-water mark of the burst, not the cost of waiting.

At scale (`run_at_scale`): claims arrive paced (at most 80 per second), so that only a few turns run at
once, until 1,000 and then 10,000 approvals wait, suspended. RSS of the endpoint and the server
and the size of the server's data directory at both marks give the cost of one more waiting
approval (the slope); then all are resolved, a bounded number at a time, and drained.

    python -m bench.approvals [--count 500]               # burst
    python -m bench.approvals --scale 1000 10000          # at scale
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


def run_burst(count: int, workdir: Path, settings: str = "default") -> dict[str, Any]:
    stack = Tour(workdir, SETTINGS[settings])
    stack.start()
    assert stack.endpoint is not None
    try:
        # Warm up to a steady state (imports, caches, connections, allocator pools) with claims that
        # need no approval, as many at a time as the approvals will come, then take the baseline.
        small = [
            {"message": f"Process my hospital bill of 500USD for a sprained ankle (warm-up {i})."}
            for i in range(min(300, count // 2))
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


# --- at scale ----------------------------------------------------------------------------------

# A waiting invocation suspends after 1 s (Restate's default is 1 min): what is measured is the
# suspended state, not invocations held open on the endpoint. Nothing else differs from `make run`.
SCALE_SETTINGS = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "1s"}
REVIEW = re.compile(
    r"Human review requested for claim: .*?\(bench (\d+)\).*\n\s*approve: curl \S+/restate/awakeables/(\S+)/resolve"
)


def claim(i: int) -> dict[str, str]:
    return {"message": f"Process my hospital bill of 3000USD for a broken leg (bench {i})."}


def review_awakeables(log: Path) -> dict[int, str]:
    """Claim number -> awakeable id, from the review requests printed in the endpoint log."""
    return {int(n): awakeable for n, awakeable in REVIEW.findall(log.read_text(errors="replace"))}


def disk_kb(path: Path) -> float:
    """Bytes of all files under `path` (what the server keeps on disk), in KiB."""
    total = 0
    for f in path.rglob("*"):
        try:
            if f.is_file():
                total += f.stat().st_size
        except OSError:
            continue  # RocksDB removed it meanwhile (a compacted table, an old log)
    return total / 1024


class Pacer:
    """Sends claims at a fixed rate, but never more than `window` whose turn has not reached the
    review request yet (so a slower machine gets a lower rate, not a pile of running turns), and
    watches how many invocations run at once."""

    def __init__(self, stack: Tour, rate: float, window: int = 50) -> None:
        self.stack = stack
        self.rate = rate
        self.window = window
        self.ids: dict[int, str] = {}
        self.sent = 0
        self.max_running = 0
        self.client = httpx.AsyncClient(base_url=stack.ingress, timeout=60)
        self.limit = asyncio.Semaphore(32)
        self.log = (stack.workdir / "endpoint.log").open("rb")
        self.reviewed = 0

    def in_flight(self) -> int:
        """Claims sent whose turn has not yet asked for a review (read on from the endpoint log)."""
        self.reviewed += self.log.read().count(b"Human review requested")
        return self.sent - self.reviewed

    async def statuses(self) -> dict[str, int]:
        """Claims by status; a completed one is "completed" or "failed"."""
        rows = await asyncio.to_thread(
            self.stack.admin.query,
            "SELECT status, completion_result, count(*) AS n FROM sys_invocation "
            f"WHERE target_service_name = '{SERVICE}' GROUP BY status, completion_result",
        )
        out: dict[str, int] = {}
        for row in rows:
            status = "failed" if row.get("completion_result") == "failure" else row["status"]
            out[status] = out.get(status, 0) + row["n"]
        return out

    async def send(self, numbers: range) -> float:
        """Send claims `numbers`, paced; returns the rate achieved (claims per second)."""

        async def one(i: int) -> None:
            async with self.limit:
                resp = await self.client.post(f"/{SERVICE}/run/send", json=claim(i))
                resp.raise_for_status()
                self.ids[i] = resp.json()["invocationId"]

        async def watch() -> None:
            while True:
                running = (await self.statuses()).get("running", 0)
                self.max_running = max(self.max_running, running)
                await asyncio.sleep(2)

        watcher = asyncio.create_task(watch())
        started = time.monotonic()
        tasks = []
        next_at = started
        for i in numbers:
            while self.in_flight() >= self.window:  # noqa: ASYNC110 - polls a log file, no event to wait on
                await asyncio.sleep(0.02)
            if (delay := next_at - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            next_at = max(next_at + 1 / self.rate, time.monotonic())
            self.sent += 1
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        watcher.cancel()
        return len(numbers) / elapsed

    async def all_suspended(self, count: int, within: float = 600) -> dict[str, int]:
        """Wait until `count` claims wait, suspended (or failed: they are counted, not waited for)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            statuses = await self.statuses()
            if statuses.get("suspended", 0) + statuses.get("failed", 0) >= count:
                return statuses
            await asyncio.sleep(1)
        raise AssertionError(f"not all of {count} approvals suspended in {within}s: {statuses}")


async def resolve_bounded(
    ingress: str, awakeables: dict[int, str], ids: dict[int, str], window: int
) -> dict[str, int]:
    """Approve every claim, at most `window` at a time between the approval and the claim's answer
    (attach): the resumed turns run a bounded number at once, whatever the backlog."""
    limit = asyncio.Semaphore(window)
    outcome = {"completed": 0, "failed": 0}
    limits = httpx.Limits(max_connections=window + 8, max_keepalive_connections=window + 8)
    async with httpx.AsyncClient(base_url=ingress, timeout=600, limits=limits) as client:

        async def approve(i: int) -> None:
            async with limit:
                resp = await client.post(f"/restate/awakeables/{awakeables[i]}/resolve", json=True)
                resp.raise_for_status()
                answer = await client.get(f"/restate/invocation/{ids[i]}/attach")
                outcome["completed" if answer.status_code == 200 else "failed"] += 1
                if (done := sum(outcome.values())) % 1000 == 0:
                    print(f"  {done} approved and answered", flush=True)

        await asyncio.gather(*(approve(i) for i in sorted(awakeables)))
    return outcome


def run_at_scale(
    marks: tuple[int, int], workdir: Path, workers: int = 2, rate: float = 80.0
) -> dict[str, Any]:
    """`marks`: how many approvals wait at the first and at the second measurement (1,000 and 10,000)."""
    first, total = marks
    pacer_window = 50
    stack = Tour(workdir, SCALE_SETTINGS, endpoint_env={"APP_WORKERS": str(workers)})
    stack.start()
    assert stack.endpoint is not None
    endpoint_pid, data_dir = stack.endpoint.pid, stack.server.data_dir

    def measure() -> dict[str, float]:
        return {
            "endpoint_rss_mb": round(rss_mb(endpoint_pid, with_children=True), 1),
            "server_rss_mb": round(rss_mb(stack.server.pid), 1),
            "server_disk_mb": round(disk_kb(data_dir) / 1024, 1),
        }

    async def scenario() -> dict[str, Any]:
        pacer = Pacer(stack, rate, pacer_window)
        try:
            # Warm-up: claims that need no approval, a few at a time, then the baseline.
            small = [
                {"message": f"Process my hospital bill of 500USD for a sprained ankle (warm-up {i})."}
                for i in range(min(300, first))
            ]
            await send_all(stack.ingress, small, concurrency=4)
            await asyncio.to_thread(
                wait_until,
                lambda: count_by_status(stack).get("completed", 0) >= len(small),
                600,
                1,
                "warm-up",
            )
            await asyncio.sleep(2)
            at: dict[str, dict[str, float]] = {"idle": measure()}
            rates = []
            for mark, numbers in ((first, range(first)), (total, range(first, total))):
                rates.append(await pacer.send(numbers))
                statuses = await pacer.all_suspended(mark)
                failed_waiting = statuses.get("failed", 0)
                await asyncio.sleep(3)  # finished requests, GC
                at[str(mark)] = {**measure(), "suspended": statuses.get("suspended", 0)}
                print(f"  {mark} waiting: {at[str(mark)]}", flush=True)

            awakeables = review_awakeables(workdir / "endpoint.log")
            waiting = total - failed_waiting
            assert len(awakeables) >= waiting, f"{waiting} waiting, {len(awakeables)} review requests"
            started = time.monotonic()
            outcome = await resolve_bounded(stack.ingress, awakeables, pacer.ids, window=64)
            resolve_s = time.monotonic() - started
            await asyncio.sleep(2)
            at["after_drain"] = measure()
            statuses = await pacer.statuses()
        finally:
            await pacer.client.aclose()
            pacer.log.close()
        return {"at": at, "rates": rates, "max_running": pacer.max_running, "outcome": outcome,
                "resolve_s": resolve_s, "statuses": statuses, "failed_waiting": failed_waiting}  # fmt: skip

    try:
        result = asyncio.run(scenario())
    finally:
        stack.stop()

    at = result["at"]
    endpoint_log = (workdir / "endpoint.log").read_text(errors="replace")
    server_log = (workdir / "restate-server.log").read_text(errors="replace")

    def per_waiting(key: str) -> float:
        return round((at[str(total)][key] - at[str(first)][key]) * 1024 / between, 2)

    # Claims that failed on the way (see "trouble") do not wait: the slope is over those that do.
    between = at[str(total)]["suspended"] - at[str(first)]["suspended"]

    return {
        "marks": [first, total],
        "arrival_rate_per_s": rate,
        "arrival_window": pacer_window,
        "achieved_rate_per_s": [round(r, 1) for r in result["rates"]],
        "max_running_seen": result["max_running"],
        "at": at,
        # The slope between the two marks: what one more waiting approval costs.
        "endpoint_kb_per_waiting": per_waiting("endpoint_rss_mb"),
        "server_rss_kb_per_waiting": per_waiting("server_rss_mb"),
        "server_disk_kb_per_waiting": per_waiting("server_disk_mb"),
        "resolve_all_s": round(result["resolve_s"], 1),
        "resolve_per_s": round(sum(result["outcome"].values()) / result["resolve_s"], 1),
        "resolve_window": 64,
        "completed": result["outcome"]["completed"],
        "failed": result["outcome"]["failed"] + result["failed_waiting"],
        "failed_before_waiting": result["failed_waiting"],
        # What went wrong on the way, if anything (all retried by Restate unless counted as failed):
        "trouble": {
            # hypercorn's HTTP/2 KeyError on a closed stream: the connection, and every invocation on it, dies
            "endpoint_connection_crashes": endpoint_log.count("Unhandled exception in client_connected_cb"),
            "llm_connection_errors": endpoint_log.count("openai.APIConnectionError"),
            "server_retries": server_log.count("Invocation error, retrying"),
        },
        "settings": f"{SCALE_SETTINGS}; {workers} endpoint processes; offline LLM latency 0 ms",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.approvals", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="burst: approvals sent at once")
    parser.add_argument(
        "--scale", type=int, nargs=2, metavar=("FIRST", "TOTAL"), help="at scale: the two marks"
    )
    parser.add_argument("--rate", type=float, default=80.0, help="at scale: claims per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-approvals-") as tmp:
        if args.scale:
            scale = run_at_scale(tuple(args.scale), Path(tmp), rate=args.rate)
            record("waiting_at_scale", scale)
            print({k: v for k, v in scale.items() if k != "at"})
            return
        figures = run_burst(args.count, Path(tmp))
    record("waiting_burst", figures)
    rss = figures["rss_mb"]
    print(f"{args.count} pending approvals (suspended after {figures['time_to_all_suspended_s']} s)")
    print(f"{'':24}{'endpoint RSS MiB':>18}{'server RSS MiB':>16}")
    for phase in ("idle", "all_suspended", "after_drain"):
        print(f"{phase:24}{rss[phase]['endpoint_rss_mb']:>18}{rss[phase]['server_rss_mb']:>16}")
    print(f"resolved all in {figures['drain_s']} s ({figures['drain_per_s']}/s); "
          f"completed {figures['completed']}, failed {figures['failed']}")  # fmt: skip


if __name__ == "__main__":
    main()
