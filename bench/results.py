"""Where benchmark figures go: bench/results.json (merged, one section per benchmark)."""

import json
import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.failover import PHASES
from dev.stack import find_restate_server

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"


def use_scratch_results() -> Path:
    """Send figures to bench/.work/ instead (`--quick`: a first look must not replace the figures
    of a full run in bench/results.json and bench/RESULTS.md)."""
    global RESULTS
    RESULTS = HERE / ".work" / "results-quick.json"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.unlink(missing_ok=True)
    return RESULTS


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    out = {pkg: metadata.version(pkg) for pkg in ("restate-sdk", "openai-agents", "openai", "hypercorn")}
    server = subprocess.run([*find_restate_server(), "--version"], capture_output=True, text=True)
    out["restate-server"] = server.stdout.strip().split()[-1] if server.stdout.strip() else "unknown"
    return out


def record(section: str, figures: dict[str, Any]) -> None:
    """Merge one benchmark's figures into bench/results.json, with versions and machine."""
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = figures
    data["versions"] = versions()
    data["machine"] = machine()
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def annotate(section: str, key: str, value: Any) -> None:
    """Add one figure to a section already in bench/results.json (one measured by another section)."""
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if section in data:
        data[section][key] = value
        RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def record_duration(section: str, seconds: float) -> None:
    """How long a section of `make bench` took ("durations_s"), and the machine's load average over
    the last 5 minutes when it ended ("load_average"): above ~2 on 2 cores, something else ran too."""
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault("durations_s", {})[section] = round(seconds, 1)
    data.setdefault("load_average", {})[section] = round(os.getloadavg()[1], 1)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def forget(*sections: str) -> None:
    """Remove sections from bench/results.json (figures recorded under an older name)."""
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for section in sections:
        data.pop(section, None)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# The burst figures (all approvals sent at once), under their current names, and their labels.
BURSTS = [
    ("waiting_burst", "server as in make run"),
    ("waiting_burst_bounded", "endpoint concurrency bounded"),
]

TARGETS = """\
| target | figure | measured | met |
| --- | --- | --- | --- |
"""


def _row(name: str, figure: str, value: Any, met: bool | None) -> str:
    mark = "—" if met is None else ("yes" if met else "**no**")
    return f"| {name} | {figure} | {value} | {mark} |\n"


def _targets(data: dict[str, Any]) -> list[str]:
    out = ["## Targets\n\n" + TARGETS]
    if ov := data.get("overhead"):
        out.append(
            _row("overhead ≤ 1.5x plain", "durable / plain, median", f"{ov['ratio']}x", ov["ratio"] <= 1.5)
        )
    if (cpu := data.get("overhead", {}).get("cpu_ms_per_run")) is not None:
        server, endpoint = cpu["server"], cpu["endpoint"]
        out.append(
            _row(
                "server CPU per run ≤ 1.2 × its floor",
                "WeatherAgent run / no-op invocation + 3 journaled steps",
                f"{server['durable']} / {server['floor']} ms",
                server["durable"] <= 1.2 * server["floor"],
            )
        )
        bound = endpoint["plain"] + 1.2 * endpoint["floor"]
        out.append(
            _row(
                "endpoint CPU per run ≤ plain + 1.2 × the floor's share",
                "WeatherAgent run / plain agent + 1.2 × (no-op + 3 steps)",
                f"{endpoint['durable']} / {round(bound, 1)} ms",
                endpoint["durable"] <= bound,
            )
        )
    if (st := data.get("streaming")) and st.get("delivery") in ("pushed", "live"):
        delivery = st["delivery_ms"]["durable"]["median_ms"]
        out.append(
            _row(
                "streamed text delivery ≤ 20 ms",
                "model's first word → reader, median",
                f"{delivery} ms",
                delivery <= 20,
            )
        )
        gap = st["durable_minus_plain_ms"]
        out.append(_row("first token ≤ plain + 60 ms", "durable − plain, medians", f"+{gap} ms", gap <= 60))
    if (tp := data.get("throughput")) and "c64" in tp:
        c64 = tp["c64"]
        out.append(
            _row(
                "throughput at c64 ≥ plain",
                "durable / plain runs/s",
                f"{c64['durable_rps']} / {c64['plain_rps']}",
                c64["durable_rps"] >= c64["plain_rps"],
            )
        )
    if (rec := data.get("recovery_s")) is not None:
        out.append(_row("recovery < 1 s", "endpoint ready → invocation done, median", f"{rec} s", rec < 1.0))
    if ws := data.get("waiting_at_scale"):
        first, total = ws["marks"]
        per_1000_mb = round(ws["endpoint_kb_per_waiting"] * 1000 / 1024, 1)
        out.append(
            _row(
                "1000 waiting approvals add < 5 MB",
                f"endpoint RSS slope from {first:,} to {total:,} waiting, × 1000",
                f"{per_1000_mb} MB ({ws['endpoint_kb_per_waiting']} KB each)",
                per_1000_mb < 5,
            )
        )
        kb = ws["endpoint_kb_per_waiting"]
        out.append(
            _row(
                "the endpoint holds nothing per waiting approval (< 0.5 KB)",
                f"endpoint RSS slope from {first:,} to {total:,} waiting",
                f"{kb} KB",
                kb < 0.5,
            )
        )
    for key, label in BURSTS:
        if bt := data.get(key):
            out.append(
                _row(
                    f"— (no target) {bt['count']} approvals arriving at once",
                    f"endpoint RSS high-water mark of the burst, {label}",
                    f"+{bt['endpoint_rss_delta_mb']} MB",
                    None,
                )
            )
    if (mb := data.get("misbehaviour")) and "max_llm_calls" in mb:
        bound = mb.get("bound")
        out.append(
            _row(
                "a misbehaving model's invocation ends in bounded LLM calls",
                "LLM calls per invocation, max over the matrix" + (f" (bound {bound})" if bound else ""),
                mb["max_llm_calls"],
                mb["max_llm_calls"] <= bound if isinstance(bound, int | float) else None,
            )
        )
    fo = data.get("cluster", {}).get("failover", {})
    if (median := fo.get("all_in_flight_done_median_s")) is not None:
        rounds = len(fo.get("rounds", []))
        out.append(
            _row(
                "node loss: in-flight invocations done < 1 s",
                f"leader SIGKILLed → every invocation in flight done, median of {rounds} rounds",
                f"{median} s",
                median < 1.0,
            )
        )
    if (p90 := fo.get("all_in_flight_done_p90_s")) is not None:
        out.append(_row("… and p90 < 1.5 s", "the same, 90th percentile", f"{p90} s", p90 < 1.5))
    if control := fo.get("control_node_loss"):
        worst = control["all_in_flight_done_max_s"]
        out.append(
            _row(
                "… also when the controller's node dies",
                f"control node SIGKILLed → every invocation in flight done, slowest of "
                f"{len(control['rounds'])} rounds",
                f"{worst} s",
                worst < 1.0,
            )
        )
    if stable := data.get("cluster", {}).get("stability"):
        changes = stable["load"]["leader_changes"] + stable["idle"]["leader_changes"]
        out.append(
            _row(
                "a healthy cluster keeps its leaders",
                f"leader changes under load ({stable['load']['seconds']:g} s) and idle "
                f"({stable['idle']['seconds']:g} s)",
                f"{stable['load']['leader_changes']} / {stable['idle']['leader_changes']}",
                changes == 0,
            )
        )
    return out


def _latency_table(latency: dict[str, dict[str, Any]], names: list[str]) -> str:
    rows = "".join(
        f"| {name} | {s['median_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['runs']} |\n"
        for name in names
        if (s := latency.get(name))
    )
    return "| run | median ms | p95 ms | p99 ms | runs |\n| --- | --- | --- | --- | --- |\n" + rows


def _overhead(ov: dict[str, Any]) -> str:
    return (
        "\n## 1. Overhead (LLM latency 0 ms, one request at a time)\n\n"
        + _latency_table(ov["latency"], ["plain", "durable", "noop"])
        + f"\nDurable / plain: **{ov['ratio']}x**; overhead {ov['overhead_ms']} ms per run, "
        f"{ov['per_step_ms']} ms per journaled step beyond the no-op invocation "
        "((durable − plain − noop) / 3 steps).\n" + _cpu_per_run(ov)
    )


def _cpu_per_run(ov: dict[str, Any]) -> str:
    if not (cpu := ov.get("endpoint_cpu_ms_per_run")):
        return ""
    return (
        f"\nCPU per run: the plain agent {cpu['plain']} ms; the durable run {cpu['durable']} ms of the "
        f"endpoint (its LLM calls, tool step and journal, and the cost ledger's invocation) and "
        f"{ov['server_cpu_ms_per_run']} ms of the Restate Server.\n"
    )


def _floor(fl: dict[str, Any]) -> str:
    steps = fl["steps"]
    out = [
        "\n## 2. The per-step floor (LLM latency 0 ms, one request at a time, same run)\n\n",
        "`BenchNoop/steps` does N journaled steps that do nothing (`ctx.run_typed` of an empty "
        "function): each step still proposes its result to the server and waits for the "
        "acknowledgement, as every LLM call and tool step of an agent does. All kinds of call take "
        "turns, so the machine's load weighs on all alike.\n\n",
        _latency_table(
            fl["latency"], [*(f"steps_{n}" for n in steps), "noop", "shaped", "held", "plain", "durable"]
        ),
        "\n| per journaled step | ms | endpoint CPU ms | server CPU ms | from |\n"
        "| --- | --- | --- | --- | --- |\n",
        f"| no-op step (the floor) | {fl['noop_ms_per_step']} | {fl['endpoint_cpu_ms_per_step']} | "
        f"{fl['server_cpu_ms_per_step']} | slope of the median over N = {', '.join(map(str, steps))}; "
        "CPU: the slope of the mean, read from /proc around the same calls |\n",
        f"| agent step (WeatherAgent) | {fl['agent_ms_per_step']} | {fl['agent_endpoint_cpu_ms_per_step']} | "
        f"{fl['agent_server_cpu_ms_per_step']} | (durable − plain − noop) / 3 steps; endpoint CPU: tour "
        "endpoint per run − plain agent per run − no-op endpoint per invocation; server CPU: per run − "
        "per no-op invocation |\n",
    ]
    gap = [
        round(fl[a] - fl[b], 3)
        for a, b in (
            ("agent_ms_per_step", "noop_ms_per_step"),
            ("agent_endpoint_cpu_ms_per_step", "endpoint_cpu_ms_per_step"),
            ("agent_server_cpu_ms_per_step", "server_cpu_ms_per_step"),
        )
    ]
    out.append(
        f"| gap (agent − floor) | {gap[0]} | {gap[1]} | {gap[2]} | what an agent's step costs beyond "
        "journaling itself: the SDKs' work around each step, and what each invocation costs once, spread "
        "over its 3 steps (see the notes) |\n"
    )
    if cpu := fl.get("cpu_ms_per_run"):
        out.append(_cpu_beside_floor(cpu))
    if note := fl.get("note"):
        out.append(f"\nNote: {note}.\n")
    if before := fl.get("before"):
        out.append(
            f"\nBefore the change described in the notes (same machine, another run): agent step "
            f"{before.get('agent_ms_per_step')} ms, endpoint CPU {before.get('agent_endpoint_cpu_ms_per_step')} "
            f"ms, server CPU {before.get('agent_server_cpu_ms_per_step')} ms.\n"
        )
    return "".join(out)


def _cpu_beside_floor(cpu: dict[str, Any]) -> str:
    endpoint, server, shaped = cpu["endpoint"], cpu["server"], cpu.get("shaped")
    rows = [
        "\n| CPU ms per run | endpoint | server |\n| --- | --- | --- |\n",
        f"| floor: no-op invocation + 3 × the no-op step | {endpoint['floor']} | {server['floor']} |\n",
    ]
    if shaped:
        rows.append(
            f"| `BenchNoop/shaped`: the run's journal with nothing in it, the one-way call to a "
            f"ledger object and its invocation included | {shaped['endpoint']} | {shaped['server']} |\n"
        )
    if held := cpu.get("held"):
        rows.append(
            f"| `BenchNoop/held`: the same, each step asleep {cpu['held_step_ms']} ms, so that it stays "
            f"open as long as the run | {held['endpoint']} | {held['server']} |\n"
        )
    rows.append(f"| plain agent (in the bench's process) | {endpoint['plain']} | — |\n")
    rows.append(
        f"| WeatherAgent run (the ledger's invocation included) | {endpoint['durable']} | {server['durable']} |\n"
    )
    return "".join(rows)


def _throughput(tp: dict[str, Any]) -> str:
    out = [
        "\n## 3. Throughput (closed loop: each worker sends its next request when one completes)\n\n",
        "| concurrency | LLM latency | plain runs/s | durable runs/s | durable / plain | ceiling | "
        "CPU % durable (endpoint / server / stand-in) | RSS MB (endpoint / server) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    ]
    for row in sorted(tp.values(), key=lambda r: (r["llm_latency_ms"], r["concurrency"])):
        cpu = row["cpu_percent_durable"]
        endpoint_cpu = round(sum(v for k, v in cpu.items() if k.startswith("endpoint")), 1)
        out.append(
            f"| {row['concurrency']} | {row['llm_latency_ms']} ms | {row['plain_rps']} | {row['durable_rps']} | "
            f"{row['ratio']} | {row['ideal_rps'] or '—'} | {endpoint_cpu} / {cpu.get('server')} / "
            f"{cpu.get('llm')} | {row['rss_mb']['endpoint']} / {row['rss_mb']['server']} |\n"
        )
    return "".join(out)


def _recovery(rec_all: dict[str, Any]) -> str:
    out = [
        "\n## 4. Recovery (SIGKILL mid-run, endpoint down 2 s, then back)\n\n",
        "| how the endpoint comes back | median s | all runs s |\n| --- | --- | --- |\n",
    ]
    labels = {
        "announced": "the endpoint tells Restate it is back (RESTATE_ADMIN_URL, set by `make run`)",
        "server_backoff": "it does not: the next retry comes when the server's backoff says",
    }
    for mode, figures in rec_all.items():
        out.append(f"| {labels.get(mode, mode)} | {figures['median_s']} | {figures['seconds']} |\n")
    return "".join(out)


def _waiting_at_scale(ws: dict[str, Any]) -> str:
    first, total = ws["marks"]
    at = ws["at"]
    out = [
        f"\n## 5. Waiting at scale (claims arriving at most {ws['arrival_rate_per_s']:g}/s; {first:,}, then "
        f"{total:,} approvals waiting, suspended)\n\n",
        "| | endpoint RSS MB | server RSS MB | server data dir MB |\n| --- | --- | --- | --- |\n",
    ]
    labels = {"idle": "after warm-up, none waiting", str(first): f"{first:,} waiting",
              str(total): f"{total:,} waiting", "after_drain": "all resolved and done"}  # fmt: skip
    for key, label in labels.items():
        if m := at.get(key):
            out.append(
                f"| {label} | {m['endpoint_rss_mb']} | {m['server_rss_mb']} | {m['server_disk_mb']} |\n"
            )
    out.append(
        f"| **per waiting approval** ({first:,} → {total:,}) | **{ws['endpoint_kb_per_waiting']} KB** | "
        f"**{ws['server_rss_kb_per_waiting']} KB** | **{ws['server_disk_kb_per_waiting']} KB** |\n"
    )
    window = (
        f", and never more than {ws['arrival_window']} turns before their review request"
        if "arrival_window" in ws
        else ""
    )
    out.append(
        f"\nArrivals: at most {ws['arrival_rate_per_s']:g}/s{window}; achieved "
        f"{' and '.join(f'{r}/s' for r in ws['achieved_rate_per_s'])}; at most "
        f"{ws['max_running_seen']} invocations running at once (sampled every 2 s). All {total:,} approved "
        f"(at most {ws['resolve_window']} between an approval and its claim's answer) and done in "
        f"**{ws['resolve_all_s']} s** ({ws['resolve_per_s']}/s); completed {ws['completed']}, failed "
        f"{ws['failed']}. Settings: {ws['settings']}.\n"
    )
    if note := ws.get("note"):
        out.append(f"\nNote: {note}.\n")
    if trouble := ws.get("trouble"):
        out.append(
            f"\nOn the way (all retried by Restate; failures are counted above): "
            f"{trouble['endpoint_connection_crashes']} endpoint HTTP/2 connections crashed (hypercorn's "
            f"KeyError on a closed stream), {trouble['llm_connection_errors']} LLM connection errors, "
            f"{trouble['server_retries']} invocation retries by the server.\n"
        )
    return "".join(out)


def _burst(bt: dict[str, Any], label: str, number: str) -> str:
    rss = bt["rss_mb"]
    out = [
        f"\n## {number}. Burst: {bt['count']} approvals sent at once ({label})\n\n",
        f"The high-water mark of {bt['count']} agent turns running at the same moment, not the cost of "
        "waiting (that is section 5).\n\n",
        "| phase | endpoint RSS MB | server RSS MB |\n| --- | --- | --- |\n",
    ]
    for phase in ("idle", "all_suspended", "after_drain"):
        out.append(f"| {phase} | {rss[phase]['endpoint_rss_mb']} | {rss[phase]['server_rss_mb']} |\n")
    out.append(
        f"\nAll suspended after {bt['time_to_all_suspended_s']} s; resolved and drained in {bt['drain_s']} s "
        f"({bt['drain_per_s']}/s); completed {bt['completed']}, failed {bt['failed']}. Settings: {bt['settings']}.\n"
    )
    return "".join(out)


def _cluster(cl: dict[str, Any]) -> str:
    out = [
        f"\n## 7. Cluster: three nodes vs one ({cl['partitions']} partitions, "
        f"{cl['endpoint_workers']} endpoint processes, concurrency 64, same run)\n\n",
        "| LLM latency | single node runs/s | cluster runs/s | cluster / single | "
        "median ms (single / cluster) | CPU % endpoint / servers (single; cluster) |\n"
        "| --- | --- | --- | --- | --- | --- |\n",
    ]
    for label, latency in (("c64", "0 ms"), ("c64_l200", "200 ms")):
        one, three = cl["single"][label], cl["cluster"][label]
        out.append(
            f"| {latency} | {one['rps']} | {three['rps']} | {cl[f'{label}_ratio']} | "
            f"{one['latency'].get('median_ms')} / {three['latency'].get('median_ms')} | "
            f"{one['cpu_percent']['endpoint']} / {one['cpu_percent']['servers']}; "
            f"{three['cpu_percent']['endpoint']} / {three['cpu_percent']['servers']} |\n"
        )
    if stable := cl.get("stability"):
        out.append(
            "\nStability (what a healthy cluster should never do, counted in the nodes' logs): "
            + "; ".join(
                f"{phase} ({stable[phase]['seconds']:g} s): {stable[phase]['leader_changes']} leader "
                f"changes, {stable[phase]['nodes_declared_dead']} nodes declared dead, "
                f"{stable[phase]['metadata_elections']} metadata elections"
                for phase in ("load", "idle")
            )
            + (
                f"; the three servers used {stable['idle']['servers_cpu_percent']} % of a core while idle"
                if "servers_cpu_percent" in stable["idle"]
                else ""
            )
            + ".\n"
        )
    if fo := cl.get("failover"):
        out.append(_failover(fo))
    return "".join(out)


def _failover(fo: dict[str, Any]) -> str:
    """The failover rounds: the headline, the median of each phase, and every round."""
    rounds = fo["rounds"]
    out = [
        "\nFailover (one partition; its leader SIGKILLed under a load of 16 through another node): "
        f"every invocation in flight at the kill done after **{fo['all_in_flight_done_median_s']} s** "
        f"(median of {len(rounds)} rounds; p90 {fo.get('all_in_flight_done_p90_s')} s), the first "
        f"invocation sent after the kill done after {fo['first_completion_median_s']} s"
        + (
            f"; a run took {fo['run_before_kill_median_s']} s under the same load before the kills "
            "(a run that had just started at the kill needs about that long once the cluster has recovered)"
            if "run_before_kill_median_s" in fo
            else ""
        )
        + ".\n"
    ]
    if phases := fo.get("phases"):
        out.append(
            f"\nPhases, medians over the {fo.get('phased_rounds')} rounds where each was seen (see the "
            "notes for what marks each): "
            + ", ".join(f"{name} {phases[name]} s" for name in PHASES if name in phases)
            + ".\n"
        )
    if "rounds_with_a_second_leader_change" in fo:
        out.append(
            f"Rounds with a second leader change before all were done: "
            f"{fo['rounds_with_a_second_leader_change']}; with the metadata leader lost too: "
            f"{fo['rounds_with_metadata_leader_lost']}; leader changes during the steady load before "
            f"the kills: {fo.get('steady_flaps', {}).get('leader_changes')}.\n"
        )
    if control := fo.get("control_node_loss"):
        out.append(
            f"\nThe control node (cluster controller, no partition) SIGKILLed alike, "
            f"{len(control['rounds'])} rounds: every invocation in flight done after "
            f"{control['all_in_flight_done_median_s']} s (median; slowest "
            f"{control['all_in_flight_done_max_s']} s), with {control['leader_changes']} leader changes.\n"
        )
    names = list(PHASES)
    out.append(
        "\n| round | killed | in flight | all done s | first new done s | "
        + " | ".join(names)
        + " | noticed by | metadata leader after s | leader changes |\n"
        + "| --- " * (len(names) + 8)
        + "|\n"
    )
    for i, r in enumerate(rounds, 1):
        phases_of = r.get("phases", {})
        out.append(
            f"| {i} | {r['killed']} | {r['in_flight_at_kill']} | {r['all_in_flight_done_s']} | "
            f"{r['first_completion_s']} | "
            + " | ".join(str(phases_of.get(name, "—")) for name in names)
            + f" | {r.get('noticed_by') or '—'} | {r.get('metadata_leader_after_s') or '—'} | "
            f"{r.get('leader_changes', '—')} |\n"
        )
    return "".join(out)


def _streaming(st: dict[str, Any]) -> str:
    """Time to first token: the durable stream (through the web process) vs plain SDK streaming."""
    polls = st.get("web_poll_seconds", {})
    how = {
        "pushed": "pushed: the topic answers its waiting reader",
        "live": "the text live from the endpoint, the topic's copy behind it",
    }.get(st.get("delivery", ""))
    labels = {
        "plain": "plain Agents SDK, `Runner.run_streamed` in-process",
        "durable": f"StreamingAgent, ingress → SSE of the web process ({how or 'polls every ' + str(polls.get('durable', 0.25)) + ' s'})",
        "durable_poll_20ms": "the same, the web process polling every "
        f"{polls.get('durable_poll_20ms', 0.02)} s",
    }
    model, delivery = st.get("model_first_word_ms", {}), st.get("delivery_ms", {})

    def median(table: dict[str, Any], name: str) -> Any:
        return table.get(name, {}).get("median_ms", "—")

    rows = "".join(
        f"| {labels.get(name, name)} | {s['median_ms']} | {s['p95_ms']} | {median(model, name)} | "
        f"{median(delivery, name)} | {s['runs']} |\n"
        for name in ("plain", "durable", "durable_poll_20ms")
        if (s := st["first_token_ms"].get(name))
    )
    return (
        "\n## 9. Streaming: time to first token\n\n"
        f"The same question, the stand-in writing a word every {st['token_ms']} ms; from the start of the "
        "run (the POST to the ingress, for the durable one) to the reader's first text delta. Both include "
        "the tool-calling LLM call and the weather lookup before the answer's first word. Split at the "
        "moment the stand-in sent the answer's first word (its log, on the same clock to within `stand_in_clock_uncertainty_ms`): before it, "
        "the run; after it, the way to the reader.\n\n"
        "| stream | first token, median ms | p95 ms | model's first word, median ms | then to the reader, "
        "median ms | runs |\n| --- | --- | --- | --- | --- | --- |\n" + rows
    )


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True).replace("|", "\\|")
    return str(value).replace("|", "\\|")


def generic_section(title: str, figures: dict[str, Any]) -> str:
    """Any section without its own layout: its plain figures as a two-column table, and each
    mapping of mappings (e.g. a matrix: misbehaviour x service) as a table of its own."""
    out = [f"\n## {title}\n\n"]
    plain = {k: v for k, v in figures.items() if not (isinstance(v, dict) and v and all(
        isinstance(row, dict) for row in v.values()))}  # fmt: skip
    if plain:
        out.append("| figure | value |\n| --- | --- |\n")
        out.extend(f"| {key} | {_cell(value)} |\n" for key, value in plain.items())
    for key, table in figures.items():
        if key in plain:
            continue
        columns = list(dict.fromkeys(col for row in table.values() for col in row))
        out.append(f"\n{key}:\n\n| | " + " | ".join(map(_cell, columns)) + " |\n")
        out.append("| --- " * (len(columns) + 1) + "|\n")
        for name, row in table.items():
            out.append(
                f"| {_cell(name)} | " + " | ".join(_cell(row.get(col, "")) for col in columns) + " |\n"
            )
    return "".join(out)


def _local_model(lm: dict[str, Any]) -> str:
    rows = "".join(
        f"| {kind} | {statistics.median(s['ms'] for s in runs):.0f} | "
        f"{', '.join(str(s['llm_calls']) for s in runs)} | {len(runs)} |\n"
        for kind, runs in lm["runs"].items()
    )
    return (
        f"\n## 10. A real small model ({lm['model']} on llama.cpp's server, one request at a time)\n\n"
        "The WeatherAgent, durable through Restate and plain with the Agents SDK, on the same server; the "
        "model is unscripted, so each run's LLM calls are shown beside the time.\n\n"
        "| run | median ms | LLM calls per run | runs |\n| --- | --- | --- | --- |\n"
        + rows
        + f"\nDurable / plain: **{lm['ratio']}x** (medians); per LLM call, {lm['ms_per_llm_call']['durable']} ms "
        f"durable, {lm['ms_per_llm_call']['plain']} ms plain.\n"
    )


def write_report() -> str:
    """Rewrite bench/RESULTS.md from bench/results.json (beside RESULTS); returns the text."""
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    out = [
        "# Benchmark results\n\n",
        "Written by `make bench` (`python -m bench`) from `bench/results.json`.\n\n",
    ]
    machine, versions_ = data.get("machine", {}), data.get("versions", {})
    out.append(
        f"Machine: {machine.get('cores')} cores, {machine.get('memory_gb')} GB, {machine.get('platform')}, "
        f"Python {machine.get('python')}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions_.items()))
        + ".\n\n"
    )
    if durations := data.get("durations_s"):
        loads = data.get("load_average", {})
        out.append(
            "Time each section took when last run (and the machine's 5-minute load average when it ended; "
            f"{machine.get('cores')} cores): "
            + ", ".join(
                f"{k} {v:g} s" + (f" (load {loads[k]})" if k in loads else "") for k, v in durations.items()
            )
            + ".\n\n"
        )
    out.extend(_targets(data))
    if ov := data.get("overhead"):
        out.append(_overhead(ov))
    if fl := data.get("floor"):
        out.append(_floor(fl))
    if tp := data.get("throughput"):
        out.append(_throughput(tp))
    if rec_all := data.get("recovery"):
        out.append(_recovery(rec_all))
    if ws := data.get("waiting_at_scale"):
        out.append(_waiting_at_scale(ws))
    for (key, label), number in zip(BURSTS, ("6", "6b"), strict=True):
        if bt := data.get(key):
            out.append(_burst(bt, label, number))
    if cl := data.get("cluster"):
        out.append(_cluster(cl))
    if mb := data.get("misbehaviour"):
        out.append(
            generic_section("8. Misbehaviour (each model misbehaviour × each model-calling service)", mb)
        )
    if st := data.get("streaming"):
        out.append(_streaming(st))
    if lm := data.get("local_model"):
        out.append(_local_model(lm))
    if tr := data.get("tracing"):
        out.append(
            generic_section(
                "11. Tracing (WeatherAgent runs with traces exported to a local Phoenix, and without)", tr
            )
        )
    if co := data.get("control"):
        out.append(
            generic_section("12. Kept journals (WeatherAgent runs, journals kept 7 days or not at all)", co)
        )
    if bu := data.get("budget"):
        floor = data.get("overhead", {}).get("cpu_ms_per_run")
        out.append(
            generic_section(
                "13. Budgets (WeatherAgent runs of a tenant with a budget and without; 64 racing for its last tokens)",
                {**bu, **({"floor (overhead.cpu_ms_per_run)": floor} if floor else {})},
            )
        )
    notes = HERE / "NOTES.md"
    if notes.exists():
        out.append("\n" + notes.read_text())
    text = "".join(out)
    RESULTS.with_name("RESULTS.md").write_text(text)
    return text
