"""The cluster in figures: WeatherAgent throughput on three nodes vs one, whether a healthy
cluster keeps its leaders, and what a node crash costs, phase by phase
(`python -m bench --only cluster`).

Throughput: the single-node stack and the three-node cluster are started one after the other in
the same run, with the same endpoint (APP_WORKERS processes), the same number of partitions and
the same offline LLM settings, and loaded alike at concurrency 64 through one node's ingress.

Stability: leader changes, nodes declared dead and metadata elections counted in the nodes'
logs while the cluster is loaded (the machine's cores saturated: where fast failure detection
would misjudge a slow node) and then while it idles. A healthy cluster should show none.

Failover: a cluster with one partition, so that every invocation depends on the node that leads
it; a steady load of 16 goes through another node's ingress; the leader is SIGKILLed, each worker
node in turn (its leadership pinned to it first). Measured from the kill: the first completion of
an invocation sent after it, and the moment every invocation that was in flight at the kill has
completed, split into phases (bench/failover.py reads them from the survivors' logs, the admin
API gives the server's completion times; bench/NOTES.md says what marks each). Every third round
SIGKILLs the control node instead (the cluster controller, no partition): nothing should wait.
The killed node is started again between rounds, and the next round waits until the cluster has
taken it back and stopped moving leaders.
"""

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench.common import CpuMeter, closed_loop, ingress_client, stack_pids
from bench.failover import LOG_FILTER, PHASES, ClusterLogs, duration_s
from dev.cluster import CONTROL_NODE, NODE_NAMES
from dev.harness import ClusterTour, Tour
from dev.stack import StackError

WEATHER = "WeatherAgent/run"
StackT = TypeVar("StackT", bound=Tour)
PARTITIONS = "4"  # the same for both; a leader or two per cluster node
LOAD = 16  # callers during a failover round
QUIET_S = 1.5  # nothing moved for this long: the cluster has settled
STEADY_S = 1.5  # load before the kill: every caller has completed a few runs
WARMUP_S = 5.0  # load on the fresh failover cluster before its first round
PIN_WAIT_S = 15.0  # how long a round waits for the leadership to move to the node it will kill
# What the cluster logs while it takes a node back (see `settled`).
SETTLING = ("to Alive", "Partition configuration transitions", "caught up", "became Leader")
WORKER_NODES = tuple(name for name in NODE_NAMES if name != CONTROL_NODE)  # where partitions are led


async def weather(http: httpx.AsyncClient, city: str = "San Francisco") -> tuple[str, float]:
    """One run; returns its invocation id and the time it completed (wall clock, as the logs)."""
    resp = await http.post(f"/{WEATHER}", json={"message": f"What is the weather like in {city}?"})
    if resp.status_code != 200:
        raise RuntimeError(f"{WEATHER} answered {resp.status_code}: {resp.text[:200]}")
    return resp.headers.get("x-restate-id", ""), time.time()


async def throughput_of(stack: Tour, quick: bool) -> dict[str, Any]:
    out = {}
    for latency_ms in (0, 200):
        stack.llm.latency(latency_ms)
        pids = stack_pids(stack)
        async with ingress_client(stack, 64) as http:
            meter = CpuMeter(pids)
            figures = await closed_loop(lambda: weather(http), 64, 4.0 if quick else 5.0, 2.0)
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
    """Callers calling back to back, with the calls in flight visible at any moment."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.in_flight: set[asyncio.Task[tuple[str, float]]] = set()
        self.runs: list[tuple[float, float]] = []  # (sent, completed), wall clock
        self.stopping = False

    async def loop(self) -> None:
        while not self.stopping:
            task = asyncio.ensure_future(weather(self.http))
            self.in_flight.add(task)
            sent = time.time()
            try:
                self.runs.append((sent, (await task)[1]))
            finally:
                self.in_flight.discard(task)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, all cores (/proc/stat, in ticks): the
    other tenants of a shared machine included."""
    fields = [float(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def utc(text: str) -> float:
    """An admin API timestamp ("2026-11-27T13:16:27.666Z") as seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def completed_at(stack: ClusterTour, ids: list[str]) -> dict[str, float]:
    """When the server completed each invocation (sys_invocation, milliseconds)."""
    listed = ", ".join(f"'{i}'" for i in ids if i)
    rows = stack.admin.query(f"SELECT id, completed_at FROM sys_invocation WHERE id IN ({listed})")
    return {row["id"]: utc(row["completed_at"]) for row in rows if row.get("completed_at")}


async def settled(
    stack: ClusterTour, logs: ClusterLogs, restarted: str | None, since: float, pinned: str | None
) -> str:
    """Wait until the cluster has taken back the node restarted at `since` (the other two have
    declared it alive), partition 0 has a leader and a caught-up follower, the leadership has
    moved to the `pinned` node if any (given up after PIN_WAIT_S: then the round kills whichever
    node leads), and for QUIET_S nothing has moved: no node declared alive, no partition
    reconfigured or caught up, no leader changed. Returns the leader's name."""
    started = time.time()
    deadline = started + 90
    back_id = logs.node_id(restarted) if restarted else None
    while time.time() < deadline:
        await asyncio.to_thread(stack.cluster.wait_leaders, 60, 1)
        recent = logs.events(since)
        welcomed = {
            e.node
            for e in recent
            if e.node != restarted and e.message.startswith(f"{back_id}:") and "to Alive" in e.message
        }
        moves = [e.at for e in recent if any(mark in e.message for mark in SETTLING)]
        if (restarted is None or len(welcomed) == len(NODE_NAMES) - 1) and time.time() - max(
            moves, default=0.0
        ) >= QUIET_S:
            leader = logs.current_leader(0)
            moved = pinned in (None, leader) or time.time() - started > PIN_WAIT_S
            if leader is not None and stack.cluster.node(leader).alive() and moved:
                return leader
        await asyncio.sleep(0.25)
    raise RuntimeError(f"the cluster did not settle within 90 s after {restarted} was restarted")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def p90(values: list[float]) -> float:
    """The 90th percentile, nearest rank: with 10 rounds, the second-slowest."""
    ordered = sorted(values)
    return round(ordered[max(0, -(-9 * len(ordered) // 10) - 1)], 3)


def pin_leader(stack: ClusterTour, logs: ClusterLogs, name: str) -> None:
    """Ask the cluster controller to prefer `name` as the leader of partition 0 (while it is
    alive: when it dies, the controller elects another replica as it would without the pin)."""
    node_id = logs.node_id(name)
    if node_id is None:
        return
    deadline = time.time() + 30
    while True:
        try:
            stack.cluster.restatectl("partitions", "leadership", "pin", "--yes", "--node", node_id[1:], "0")
            return
        except StackError:
            # Answered only by the cluster controller, which moves while a node rejoins.
            if time.time() > deadline:
                raise
            time.sleep(0.5)


async def failover_round(
    stack: ClusterTour, logs: ClusterLogs, restarted: str | None, restarted_at: float, victim: str
) -> dict[str, Any]:
    """Kill `victim` under load: a worker node, made the partition's leader first, or the
    control node, which leads no partition (then nothing should wait for a new leader)."""
    leads = victim != CONTROL_NODE
    if leads:
        await asyncio.to_thread(pin_leader, stack, logs, victim)
    leader = await settled(stack, logs, restarted, restarted_at, pinned=victim if leads else None)
    if leads:
        victim = leader  # the same node, unless the pin did not take within PIN_WAIT_S
    # The load goes through a node that survives and, when the control node dies, does not lead.
    survivor = next(name for name in NODE_NAMES if name not in (victim, leader))
    stack.use_node(survivor)
    killed_id = logs.node_id(victim)
    async with ingress_client(stack, LOAD) as http:
        load = Load(http)
        loops = [asyncio.create_task(load.loop()) for _ in range(LOAD)]
        steady_from = time.time()
        await asyncio.sleep(STEADY_S)
        at_kill = set(load.in_flight)
        if logs.current_leader(0) != leader:  # not settled after all: try again
            load.stopping = True
            await asyncio.gather(*loops)
            return {"leader_moved_during_steady_load": logs.flaps(steady_from, time.time())}
        # What the processes that remain spend from the kill until all are done: whether the
        # resumption is bound by CPU (the endpoint replaying and finishing the runs).
        meter = CpuMeter({k: v for k, v in stack_pids(stack).items() if k != f"server {victim}"})
        busy_before, total_before = machine_busy()
        killed = time.time()
        await asyncio.to_thread(stack.cluster.kill_node, victim)
        finished = await asyncio.gather(*at_kill)
        cpu = meter.percent()
        busy_after, total_after = machine_busy()
        load.stopping = True
        await asyncio.gather(*loops)
    all_done = max(done for _, done in finished)
    # The server's view: when it completed each of them (through the surviving node's admin API).
    server_done = completed_at(stack, [invocation for invocation, _ in finished])
    await asyncio.sleep(0.2)  # the last log lines of the window reach the files
    detected = logs.deaths(killed, all_done, of=killed_id)
    window = [e for e in logs.leaderships(killed, all_done, partition=0) if e.node != leader]
    elected = window[-1] if window else None  # the leader that resumed them
    first = min(done for sent, done in load.runs if sent > killed)
    figures: dict[str, Any] = {
        "killed": victim,
        "killed_led_the_partition": leads,
        "in_flight_at_kill": len(at_kill),
        "first_completion_s": round(first - killed, 3),
        "all_in_flight_done_s": round(all_done - killed, 3),
        # How long a run took under the same load before the kill: a run sent just before the kill
        # needs about this long after the cluster has recovered, whatever the failover costs.
        "run_before_kill_median_s": median(before)
        if (before := [d - s for s, d in load.runs if d <= killed])
        else None,
        "steady_flaps": logs.flaps(steady_from, killed),
        "cpu_percent_until_done": {
            "endpoint": round(sum(v for k, v in cpu.items() if k.startswith("endpoint")), 1),
            # each worker's share: the new leader's connections may all land on one of them
            "endpoint_workers": [v for k, v in sorted(cpu.items()) if k.startswith("endpoint worker")],
            "servers": round(sum(v for k, v in cpu.items() if k.startswith("server")), 1),
            "llm": cpu["llm"],
            # all processes of the machine, as a share of all its cores
            "machine_busy_share": round((busy_after - busy_before) / max(1.0, total_after - total_before), 2),
        },
        # Leader changes between the kill and the last in-flight invocation done (1 = no detour).
        "leader_changes": len(window),
        "metadata_leader_lost": bool(logs.metadata_elections(killed, all_done)),
    }
    if not leads:
        return figures  # no failover: the runs in flight went on where they were
    # The controller's choice of a survivor to lead: the moment the cluster acted on the death.
    chosen = [e for e in logs.selections(killed, all_done) if logs.chosen_node(e) != killed_id]
    if elected and chosen and len(server_done) == len(finished):
        # The chosen replica first takes a new leader epoch in the metadata store (waiting for a
        # metadata leader if the dead node led the metadata store), then runs its campaign:
        # announcing itself in the log (which needs a new log segment when the dead node ran the
        # log's sequencer). campaign_duration is that announcement, from the new epoch on.
        selected = chosen[0].at
        campaign = duration_s(elected.fields.get("campaign_duration", ""))
        metadata_won = logs.metadata_elections(killed, elected.at)
        if metadata_won:
            figures["metadata_leader_after_s"] = round(metadata_won[0].at - killed, 3)
        last_server = max(server_done.values())
        marks = {
            "detection": selected - killed,
            "epoch": elected.at - campaign - selected,
            "campaign": campaign,
            "resumption": last_server - elected.at,
            "delivery": all_done - last_server,
        }
        figures["phases"] = {name: round(seconds, 3) for name, seconds in marks.items()}
        # The controller polls every node each admin heartbeat: a crashed process refuses the
        # connection, and the controller moves its leaderships before the detector's verdict.
        verdict_first = bool(detected) and detected[0].at <= selected
        figures["noticed_by"] = "failure detector" if verdict_first else "controller poll"
        figures["detector_verdict_s"] = round(detected[0].at - killed, 3) if detected else None
    else:  # say what was missing rather than invent a phase
        figures["phases_missing"] = {
            "leader_chosen": not chosen,
            "leader_elected": elected is None,
            "server_completions": f"{len(server_done)} of {len(finished)}",
        }
    return figures


async def failover(stack: ClusterTour, rounds: int, control_rounds: int) -> dict[str, Any]:
    stack.llm.latency(100)  # each run spans a few hundred ms, so some are always in flight
    logs = ClusterLogs.of(stack.cluster)
    # The first runs on a fresh stack are slow (connections, first imports and caches of the
    # endpoint's workers): warm it up so that the first round measures a failover, not a cold start.
    async with ingress_client(stack, LOAD) as http:
        await closed_loop(lambda: weather(http), LOAD, WARMUP_S, warmup_s=0.0)
    samples: list[dict[str, Any]] = []  # the partition's leader killed
    control: list[dict[str, Any]] = []  # the control node killed
    restarted: str | None = None
    restarted_at = 0.0
    unsettled: list[dict[str, int]] = []
    while len(samples) + len(control) < rounds + control_rounds:
        # Each node in turn (n2, n3, n1, n2, ...) until there are enough rounds of each kind. Losing
        # n1 moves the metadata store's leadership (at first on n1) to n2 or n3, so later rounds
        # that kill the partition's leader sometimes lose the metadata leader too.
        turn = len(samples) + len(control)
        if len(samples) >= rounds or (turn % 3 == 2 and len(control) < control_rounds):
            victim = CONTROL_NODE
        else:
            victim = WORKER_NODES[len(samples) % len(WORKER_NODES)]
        sample = await failover_round(stack, logs, restarted, restarted_at, victim)
        if "leader_moved_during_steady_load" in sample:
            unsettled.append(sample["leader_moved_during_steady_load"])
            print(f"    the leader moved before the kill, again: {unsettled[-1]}", flush=True)
            if len(unsettled) > rounds:
                raise RuntimeError("the partition's leader keeps moving without any node killed")
            continue
        (samples if sample["killed_led_the_partition"] else control).append(sample)
        shown = {k: v for k, v in sample.items() if k not in ("steady_flaps", "detector_verdict_s")}
        print(f"    {shown}", flush=True)
        restarted, restarted_at = sample["killed"], time.time()
        await asyncio.to_thread(stack.cluster.start_node, sample["killed"])
    stack.llm.latency(0)

    def of(key: str) -> list[float]:
        return [s[key] for s in samples]

    phased = [s["phases"] for s in samples if "phases" in s]
    done = of("all_in_flight_done_s")
    # None in a round where no run ended during the steady load (runs slower than STEADY_S)
    runs = [s for s in of("run_before_kill_median_s") if s is not None]
    return {
        "rounds": samples,
        "first_completion_median_s": median(of("first_completion_s")),
        **({"run_before_kill_median_s": median(runs)} if runs else {}),
        "all_in_flight_done_median_s": median(done),
        "all_in_flight_done_p90_s": p90(done),
        "all_in_flight_done_max_s": max(done),
        # Per-phase medians over the rounds where every phase was seen.
        "phases": {name: median([p[name] for p in phased]) for name in PHASES} if phased else {},
        "phased_rounds": len(phased),
        "steady_flaps": {
            key: sum(s["steady_flaps"][key] for s in samples) for key in samples[0]["steady_flaps"]
        },
        # Rounds started again because the leader moved during the steady load (not settled).
        "rounds_restarted": unsettled,
        "rounds_with_a_second_leader_change": sum(1 for s in samples if s["leader_changes"] > 1),
        "rounds_with_metadata_leader_lost": sum(1 for s in samples if s["metadata_leader_lost"]),
        # The node that runs the cluster controller and leads no partition: the runs in flight
        # should not wait for anything.
        "control_node_loss": {
            "rounds": control,
            "all_in_flight_done_median_s": median([s["all_in_flight_done_s"] for s in control]),
            "all_in_flight_done_max_s": max(s["all_in_flight_done_s"] for s in control),
            "leader_changes": sum(s["leader_changes"] for s in control),
        }
        if control
        else {},
    }


async def stability(stack: ClusterTour, quick: bool, under_load: Callable[[], Any]) -> dict[str, Any]:
    """Flaps while `under_load` runs, then while the cluster idles."""
    logs = ClusterLogs.of(stack.cluster)
    started = time.time()
    figures = await under_load()
    loaded = time.time()
    idle_s = 20.0 if quick else 120.0
    print(f"  idle for {idle_s:.0f} s, counting leader changes ...", flush=True)
    # What the faster detection costs while nothing happens: gossip, status polls and Raft
    # heartbeats are all the three servers do then.
    meter = CpuMeter({k: v for k, v in stack_pids(stack).items() if k.startswith("server")})
    await asyncio.sleep(idle_s)
    idle_cpu = round(sum(meter.percent().values()), 1)
    await asyncio.sleep(0.3)  # the last log lines reach the files
    return {
        "throughput": figures,
        "load": {"seconds": round(loaded - started, 1), **logs.flaps(started, loaded)},
        "idle": {"seconds": idle_s, **logs.flaps(loaded, loaded + idle_s), "servers_cpu_percent": idle_cpu},
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
        checked = await stability(cluster, quick, lambda: throughput_of(cluster, quick))
    out["cluster"] = checked.pop("throughput")
    out["stability"] = checked
    for label in out["single"]:
        single_rps, cluster_rps = out["single"][label]["rps"], out["cluster"][label]["rps"]
        out[f"{label}_ratio"] = round(cluster_rps / single_rps, 2) if single_rps else None
        print(f"  {label:>8}: single node {single_rps:>6} /s   cluster {cluster_rps:>6} /s", flush=True)
    print(f"  stability: {checked}", flush=True)

    one_partition = ClusterTour(
        workdir / "failover",
        {"RESTATE_DEFAULT_NUM_PARTITIONS": "1", "RESTATE_LOG_FILTER": LOG_FILTER},
        workers=workers,
    )
    async with started(one_partition, "failover (one partition, its leader killed)") as stack:
        out["failover"] = await failover(stack, 3 if quick else 10, 1 if quick else 3)
    return out
