"""`make bench`: the tour against the real restate-server and the offline LLM, in figures.

    python -m bench                      # everything (about 17 minutes on 2 cores, most of it
                                         #   for 10,000 waiting approvals and the cluster)
    python -m bench --only overhead      # one section: overhead, floor, throughput, recovery,
                                         #   waiting, burst, cluster, misbehaviour, streaming,
                                         #   local_model (a real small model; built on first use),
                                         #   tracing (Phoenix; installed on first use),
                                         #   control (disk per kept journal), budget
    python -m bench --quick              # a first look in 2-3 minutes: fewer runs, shorter
                                         #   windows, 300 waiting approvals; no burst, no cluster
                                         #   (unless asked for with --only)

Prints a table per section, merges the figures into bench/results.json and rewrites
bench/RESULTS.md. Figures are medians (p95, p99) over many runs; every comparison is a ratio of
two figures measured in the same run, on the same machine.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

import bench.results
from bench.common import (
    CpuMeter,
    closed_loop,
    ingress_client,
    interleaved_with_cpu,
    rss_mb,
    stack_pids,
    summary,
)
from bench.results import annotate, forget, record, record_duration, use_scratch_results, write_report
from dev.harness import Tour, wait_until
from dev.stack import Proc, free_port, python_env

WEATHER = "WeatherAgent/run"
QUESTION = {"message": "What is the weather like in San Francisco?"}
JOURNALED_STEPS = 3  # two LLM calls and the "Get weather" step
FLOOR_STEPS = (0, 10, 50)  # journaled no-op steps per invocation, for the floor
# BenchNoop/held: 3 steps of 7 ms keep the shaped journal open about as long as a WeatherAgent run
# at 0 ms LLM latency (39.2 and 38.6 ms, medians in the last full run; BenchNoop/shaped 14.3 ms).
HELD_STEP_MS = 7


@contextmanager
def timed(section: str) -> Iterator[None]:
    """Print and record how long a section took (the whole of `make bench` should stay ~15 min)."""
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    record_duration(section, elapsed)
    print(f"  ({section}: {elapsed:.0f} s)", flush=True)


def slope(xs: tuple[int, ...], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )


class Bench:
    def __init__(self, workdir: Path, quick: bool, workers: int) -> None:
        self.quick = quick
        self.workers = workers
        self.stack = Tour(workdir, endpoint_env={"APP_WORKERS": str(workers)})
        self.noop = Proc(
            "noop endpoint",
            [sys.executable, "-m", "bench.noop_endpoint", "--port", str(free_port())],
            python_env(),
            workdir / "noop.log",
        )

    def __enter__(self) -> "Bench":
        self.stack.start()
        noop_port = int(self.noop.argv[-1])
        self.noop.start()
        self.noop.wait_http(f"http://127.0.0.1:{noop_port}/health", 30)
        self.stack.admin.register(f"http://127.0.0.1:{noop_port}")
        # The plain agent runs in this process against the same stand-in (LLM and weather).
        os.environ.update({"WEATHER_API_URL": f"{self.stack.llm.url}/wttr"})
        from bench import plain_agent

        plain_agent.configure(self.stack.llm.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.noop.stop()
        self.stack.stop()

    def pids(self) -> dict[str, int]:
        return stack_pids(self.stack)

    # --- calls -------------------------------------------------------------------------------
    def client(self, concurrency: int) -> httpx.AsyncClient:
        return ingress_client(self.stack, concurrency)

    @staticmethod
    async def durable(client: httpx.AsyncClient, path: str = WEATHER, body: Any = QUESTION) -> None:
        resp = await client.post(f"/{path}", json=body)
        if resp.status_code != 200:
            raise RuntimeError(f"{path} answered {resp.status_code}: {resp.text[:200]}")

    @staticmethod
    async def plain() -> None:
        from bench.plain_agent import run_plain

        await run_plain()

    # --- 1. overhead -------------------------------------------------------------------------
    async def overhead(self) -> dict[str, Any]:
        runs, warmup = (40, 5) if self.quick else (200, 20)
        self.stack.llm.latency(0)

        tour_endpoint = {name: pid for name, pid in self.pids().items() if name.startswith("endpoint")}
        async with self.client(1) as client:
            calls = {
                "plain": self.plain,
                "durable": lambda: self.durable(client),
                "noop": lambda: self.durable(client, "BenchNoop/run", None),
            }
            # CPU per run: the plain agent's is this process's; a durable run's is the tour
            # endpoint's (every worker), including the cost ledger's invocation that the run sends,
            # which lands after the answer: hence the longer settle.
            pids_of = {
                "plain": {"plain": os.getpid()},
                "durable": {**tour_endpoint, "server": self.stack.server.pid},
            }
            samples, cpu = await interleaved_with_cpu(calls, pids_of, runs, warmup, settle_s=0.05)
        stats = {name: summary(values) for name, values in samples.items()}
        plain, durable, noop = (stats[k]["median_ms"] for k in ("plain", "durable", "noop"))
        endpoint_cpu = sum(ms for name, ms in cpu["durable"].items() if name.startswith("endpoint"))
        return {
            "plain_ms": plain,
            "durable_ms": durable,
            "noop_ms": noop,
            "ratio": round(durable / plain, 2),
            "overhead_ms": round(durable - plain, 2),
            "per_step_ms": round((durable - plain - noop) / JOURNALED_STEPS, 2),
            "endpoint_cpu_ms_per_run": {
                "plain": round(cpu["plain"]["plain"], 2),
                "durable": round(endpoint_cpu, 2),
            },
            "server_cpu_ms_per_run": round(cpu["durable"]["server"], 2),
            "latency": stats,
            "llm_latency_ms": 0,
        }

    # --- 1b. the per-step floor ---------------------------------------------------------------
    async def floor(self) -> dict[str, Any]:
        """What one journaled step costs when the step itself does nothing (BenchNoop/steps), in
        time and in CPU of the endpoint and the server, beside what a step of the agent costs."""
        runs, warmup = (15, 3) if self.quick else (60, 10)
        self.stack.llm.latency(0)
        server = {"server": self.stack.server.pid}
        noop_endpoint = {"endpoint": self.noop.pid}
        tour_endpoint = {name: pid for name, pid in self.pids().items() if name.startswith("endpoint")}
        async with self.client(1) as client:

            def steps(n: int) -> Any:
                return lambda: self.durable(client, "BenchNoop/steps", n)

            def durable() -> Any:
                return self.durable(client)

            def noop() -> Any:
                return self.durable(client, "BenchNoop/run", None)

            def shaped() -> Any:
                return self.durable(client, "BenchNoop/shaped", None)

            def held() -> Any:
                return self.durable(client, "BenchNoop/held", HELD_STEP_MS)

            calls = {"plain": self.plain, "durable": durable, "noop": noop, "shaped": shaped, "held": held}
            calls.update({f"steps_{n}": steps(n) for n in FLOOR_STEPS})
            # CPU time per call of the processes that serve it (each process's own clock), read
            # around the same interleaved calls as the latencies.
            pids_of = {
                "plain": {"bench (plain agent)": os.getpid()},
                "durable": {**tour_endpoint, **server},
                **{name: {**noop_endpoint, **server} for name in calls if name not in ("plain", "durable")},
            }
            # settle 50 ms: the ledger's invocation (and the shaped run's) lands after the answer
            samples, cpu = await interleaved_with_cpu(calls, pids_of, runs, warmup, settle_s=0.05)
        stats = {name: summary(values) for name, values in samples.items()}
        medians = [stats[f"steps_{n}"]["median_ms"] for n in FLOOR_STEPS]
        plain, durable_ms, noop_ms = (stats[k]["median_ms"] for k in ("plain", "durable", "noop"))
        durable_endpoint_cpu = sum(v for k, v in cpu["durable"].items() if k.startswith("endpoint"))

        def per_step(total: float) -> float:
            return round(total / JOURNALED_STEPS, 3)

        def cpu_slope(process: str) -> float:
            return slope(FLOOR_STEPS, [cpu[f"steps_{n}"][process] for n in FLOOR_STEPS])

        floor_endpoint = cpu["noop"]["endpoint"] + JOURNALED_STEPS * cpu_slope("endpoint")
        floor_server = cpu["noop"]["server"] + JOURNALED_STEPS * cpu_slope("server")
        return {
            "steps": list(FLOOR_STEPS),
            "latency": stats,
            "llm_latency_ms": 0,
            # A WeatherAgent run's CPU beside what its journal alone would cost: a no-op invocation
            # plus its 3 journaled steps at the floor's per-step cost (the endpoint's also does the
            # plain agent's work: its target is plain + the floor's share).
            "cpu_ms_per_run": {
                "endpoint": {
                    "durable": round(durable_endpoint_cpu, 2),
                    "floor": round(floor_endpoint, 2),
                    "plain": round(cpu["plain"]["bench (plain agent)"], 2),
                },
                "server": {"durable": round(cpu["durable"]["server"], 2), "floor": round(floor_server, 2)},
                # the same journal with nothing in it, the ledger's one-way call included
                # (BenchNoop/shaped): what the run's shape costs, apart from its contents
                "shaped": {p: round(cpu["shaped"][p], 2) for p in ("endpoint", "server")},
                # and held open as long as the run (BenchNoop/held): what the open time costs
                "held": {p: round(cpu["held"][p], 2) for p in ("endpoint", "server")},
                "held_step_ms": HELD_STEP_MS,
            },
            # The floor: least-squares slopes over N of the median latency and of the mean CPU.
            "noop_ms_per_step": round(slope(FLOOR_STEPS, medians), 3),
            "server_cpu_ms_per_step": round(cpu_slope("server"), 3),
            "endpoint_cpu_ms_per_step": round(cpu_slope("endpoint"), 3),
            # The agent: (durable - plain - noop) / 3 journaled steps, as in the overhead section;
            # CPU: the tour endpoint per durable run minus the plain agent's CPU per run (this
            # process) minus the no-op invocation on the no-op endpoint; the server's per durable
            # run minus its per no-op invocation.
            "agent_ms_per_step": per_step(durable_ms - plain - noop_ms),
            "agent_endpoint_cpu_ms_per_step": per_step(
                durable_endpoint_cpu - cpu["plain"]["bench (plain agent)"] - cpu["noop"]["endpoint"]
            ),
            "agent_server_cpu_ms_per_step": per_step(cpu["durable"]["server"] - cpu["noop"]["server"]),
            "cpu_ms_per_call": {k: {p: round(v, 2) for p, v in per.items()} for k, per in cpu.items()},
            "cpu_runs": runs,
        }

    # --- 2. throughput -----------------------------------------------------------------------
    async def throughput(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        # A 200 ms LLM at concurrency 64: many runs waiting at once (at 0 ms, the CPU is the bound).
        levels = {0: (1, 64)} if self.quick else {0: (1, 16, 64, 256), 200: (64,)}
        for latency_ms, concurrencies in levels.items():
            self.stack.llm.latency(latency_ms)
            for concurrency in concurrencies:
                label = f"c{concurrency}" if latency_ms == 0 else f"c{concurrency}_l{latency_ms}"
                # Long enough for a few rounds of every worker, also at the highest concurrency.
                seconds = max(3.0 if self.quick else 5.0, concurrency / 40)
                warmup = max(1.5, concurrency / 60)

                async def load(
                    kind: str,
                    concurrency: int = concurrency,
                    seconds: float = seconds,
                    warmup: float = warmup,
                ) -> dict[str, Any]:
                    if kind == "plain":
                        return await closed_loop(self.plain, concurrency, seconds, warmup)
                    async with self.client(concurrency) as client:
                        return await closed_loop(lambda: self.durable(client), concurrency, seconds, warmup)

                meter = CpuMeter({**self.pids(), "bench (plain agent, client)": os.getpid()})
                plain = await load("plain")
                plain_cpu = meter.percent()
                meter = CpuMeter({**self.pids(), "bench (plain agent, client)": os.getpid()})
                durable = await load("durable")
                durable_cpu = meter.percent()
                assert self.stack.endpoint is not None
                out[label] = {
                    "concurrency": concurrency,
                    "llm_latency_ms": latency_ms,
                    "plain_rps": plain["rps"],
                    "durable_rps": durable["rps"],
                    "ratio": round(durable["rps"] / plain["rps"], 2) if plain["rps"] else None,
                    # With a slow LLM a run takes at least 2 x latency: this is the ceiling.
                    "ideal_rps": round(concurrency / (2 * latency_ms / 1000), 1) if latency_ms else None,
                    "plain_latency": plain["latency"],
                    "durable_latency": durable["latency"],
                    "cpu_percent_plain": plain_cpu,
                    "cpu_percent_durable": durable_cpu,
                    "rss_mb": {
                        "endpoint": round(rss_mb(self.stack.endpoint.pid, with_children=True), 1),
                        "server": round(rss_mb(self.stack.server.pid), 1),
                    },
                }
                print(
                    f"  {label:>10}: plain {plain['rps']:>7} /s   durable {durable['rps']:>7} /s", flush=True
                )
        self.stack.llm.latency(0)
        return out

    # --- 3. recovery -------------------------------------------------------------------------
    async def recovery(self) -> dict[str, Any]:
        rounds = 1 if self.quick else 3
        out: dict[str, Any] = {}
        for mode in ("announced",) if self.quick else ("announced", "server_backoff"):
            samples = []
            for i in range(rounds):
                self.stack.llm.reset()
                self.stack.llm.fault("weather", count=1, hang=120, status=200)  # stuck mid-run
                invocation = self.stack.send(
                    WEATHER, {"message": f"What is the weather like in Vienna? ({mode} {i})"}
                )
                wait_until(lambda: self.stack.weather_calls("Vienna"), what="the weather step")
                self.stack.kill_endpoint()
                await asyncio.sleep(2.0)  # down for a while, as a crashed process would be
                # "announced": the endpoint tells Restate it is back (RESTATE_ADMIN_URL, as under
                # make run); "server_backoff": it does not, and the next retry comes when it is due.
                self.stack.start_endpoint(**({} if mode == "announced" else {"RESTATE_ADMIN_URL": ""}))
                ready = time.monotonic()
                resp = self.stack.output(invocation, timeout=120)
                samples.append(time.monotonic() - ready)
                assert resp.status_code == 200, resp.text
            out[mode] = {
                "seconds": [round(s, 3) for s in samples],
                "median_s": round(sorted(samples)[len(samples) // 2], 3),
            }
        self.stack.llm.reset()
        return out


async def run_sections(bench: Bench, sections: list[str]) -> None:
    with bench:
        if "overhead" in sections:
            print("overhead ...", flush=True)
            with timed("overhead"):
                record("overhead", await bench.overhead())
        if "floor" in sections:
            print("floor ...", flush=True)
            with timed("floor"):
                floor = await bench.floor()
            record("floor", floor)
            # Where the targets look for it: beside the overhead's CPU figures.
            annotate("overhead", "cpu_ms_per_run", floor["cpu_ms_per_run"])
        if "throughput" in sections:
            print("throughput ...", flush=True)
            with timed("throughput"):
                record("throughput", await bench.throughput())
        if "recovery" in sections:
            print("recovery ...", flush=True)
            with timed("recovery"):
                figures = await bench.recovery()
            record("recovery", figures)
            record("recovery_s", figures["announced"]["median_s"])


SECTIONS = [
    "overhead", "floor", "throughput", "recovery", "waiting", "burst", "cluster", "misbehaviour", "streaming",
    "local_model", "tracing", "control", "budget",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--scale",
        type=int,
        nargs=2,
        metavar=("FIRST", "TOTAL"),
        help="waiting: approvals waiting at the two measurements (default 1000 10000; --quick 100 300)",
    )
    parser.add_argument(
        "--rate", type=float, default=80.0, help="waiting: claims arriving per second (at most)"
    )
    parser.add_argument("--approvals", type=int, help="burst: approvals sent at once (default 500)")
    parser.add_argument("--workers", type=int, default=2, help="endpoint processes (APP_WORKERS)")
    args = parser.parse_args()
    # The burst and the cluster take minutes whatever their size: --quick leaves them out.
    sections = args.only or [s for s in SECTIONS if not (args.quick and s in ("burst", "cluster"))]
    first, total = args.scale or ((100, 300) if args.quick else (1000, 10000))
    burst = args.approvals or (200 if args.quick else 500)

    if args.quick:
        print(f"--quick: figures go to {use_scratch_results()}, not bench/results.json", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if set(sections) & {"overhead", "floor", "throughput", "recovery"}:
            # One event loop for these sections: the clients' connections belong to it.
            asyncio.run(run_sections(Bench(Path(tmp) / "main", args.quick, args.workers), sections))
        if "waiting" in sections:
            from bench.approvals import run_at_scale

            print(
                f"waiting: claims arriving at {args.rate:g}/s until {first}, then {total} approvals wait; "
                "all resolved ...",
                flush=True,
            )
            with timed("waiting"):
                figures = run_at_scale((first, total), Path(tmp) / "waiting", args.workers, args.rate)
            record("waiting_at_scale", figures)
        if "burst" in sections:
            from bench.approvals import run_burst

            for settings in ("default", "bounded"):
                print(f"burst: {burst} approvals sent at once, {settings} settings ...", flush=True)
                with timed(f"burst {settings}"):
                    figures = run_burst(burst, Path(tmp) / f"burst-{settings}", settings)
                record("waiting_burst" if settings == "default" else "waiting_burst_bounded", figures)
            forget("waiting", "waiting_bounded")  # their names before the at-scale figures came
        if "cluster" in sections:
            from bench.cluster import run as run_cluster

            print(
                "cluster: WeatherAgent at concurrency 64, one node vs three; a leader killed ...", flush=True
            )
            with timed("cluster"):
                figures = asyncio.run(run_cluster(Path(tmp) / "cluster", args.quick, args.workers))
            record("cluster", figures)
        if "misbehaviour" in sections:
            from bench.misbehaviour import measure, report

            print(
                "misbehaviour: every model-calling service under each misbehaviour of the model ...",
                flush=True,
            )
            with timed("misbehaviour"):
                stack = Tour(Path(tmp) / "misbehaviour")
                stack.start()
                try:
                    figures = measure(stack, args.quick)
                finally:
                    stack.stop()
            report(figures)
            record("misbehaviour", figures)
        if "streaming" in sections:
            from bench import streaming

            print(
                "streaming: time to first token, durable stream vs plain Agents SDK streaming ...", flush=True
            )
            with timed("streaming"):
                figures = streaming.run(Path(tmp) / "streaming", args.quick)
            streaming.report(figures)
            record("streaming", figures)
        if "local_model" in sections:
            from bench import local_model

            print(
                "local_model: the durable WeatherAgent and the plain SDK on a real small model ...",
                flush=True,
            )
            with timed("local_model"):
                figures = local_model.run(Path(tmp) / "local-model", args.quick)
            local_model.report(figures)
            record("local_model", figures)
        if "tracing" in sections:
            from bench import tracing

            print(
                "tracing: CPU per WeatherAgent run with traces on (a local Phoenix) and off ...", flush=True
            )
            with timed("tracing"):
                figures = tracing.run(Path(tmp) / "tracing", args.quick)
            tracing.report(figures)
            record("tracing", figures)
        if "control" in sections:
            from bench import control

            print("control: the server's disk per WeatherAgent run, its journal kept or not ...", flush=True)
            with timed("control"):
                figures = control.run(Path(tmp) / "control", args.quick)
            control.report(figures)
            record("control", figures)
        if "budget" in sections:
            from bench import budget

            print(
                "budget: CPU per WeatherAgent run with a tenant's budget and without; 64 racing ...",
                flush=True,
            )
            with timed("budget"):
                figures = budget.run(Path(tmp) / "budget", args.quick, args.workers)
            budget.report(figures)
            record("budget", figures)
    text = write_report()
    print(text.split("\n## What the figures say", 1)[0])  # the tables; the notes are in the file
    print(f"written: {bench.results.RESULTS} and RESULTS.md beside it")
    print(f"make bench: {(time.monotonic() - started) / 60:.1f} min ({', '.join(sections)})")


if __name__ == "__main__":
    main()
