"""Where benchmark figures go: bench/results.json (merged, one section per benchmark)."""

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from dev.stack import find_restate_server

RESULTS = Path(__file__).resolve().parent / "results.json"


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


WAITS = [("waiting", "server as in make run"), ("waiting_bounded", "endpoint concurrency bounded")]

TARGETS = """\
| target | figure | measured | met |
| --- | --- | --- | --- |
"""


def _row(name: str, figure: str, value: Any, met: bool | None) -> str:
    mark = "—" if met is None else ("yes" if met else "**no**")
    return f"| {name} | {figure} | {value} | {mark} |\n"


def write_report() -> str:
    """Rewrite bench/RESULTS.md from bench/results.json; returns the text."""
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

    out.append("## Targets\n\n" + TARGETS)
    if ov := data.get("overhead"):
        out.append(
            _row("overhead ≤ 1.5x plain", "durable / plain, median", f"{ov['ratio']}x", ov["ratio"] <= 1.5)
        )
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
    waits = [(label, data[key]) for key, label in WAITS if key in data]
    for label, wt in waits:
        delta = wt["endpoint_rss_delta_mb"]
        out.append(
            _row(
                f"{wt['count']} suspended approvals add < 5 MB",
                f"endpoint RSS delta, {label}",
                f"{delta} MB",
                delta < 5,
            )
        )

    if ov:
        out.append("\n## 1. Overhead (LLM latency 0 ms, one request at a time)\n\n")
        out.append("| run | median ms | p95 ms | p99 ms | runs |\n| --- | --- | --- | --- | --- |\n")
        for name in ("plain", "durable", "noop"):
            s = ov["latency"][name]
            out.append(f"| {name} | {s['median_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['runs']} |\n")
        out.append(
            f"\nDurable / plain: **{ov['ratio']}x**; overhead {ov['overhead_ms']} ms per run, "
            f"{ov['per_step_ms']} ms per journaled step beyond the no-op invocation "
            "((durable − plain − noop) / 3 steps).\n"
        )
    if tp:
        out.append(
            "\n## 2. Throughput (closed loop: each worker sends its next request when one completes)\n\n"
        )
        out.append(
            "| concurrency | LLM latency | plain runs/s | durable runs/s | durable / plain | ceiling | "
            "CPU % durable (endpoint / server / stand-in) | RSS MB (endpoint / server) |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        )
        for row in sorted(tp.values(), key=lambda r: (r["llm_latency_ms"], r["concurrency"])):
            cpu = row["cpu_percent_durable"]
            endpoint_cpu = round(sum(v for k, v in cpu.items() if k.startswith("endpoint")), 1)
            out.append(
                f"| {row['concurrency']} | {row['llm_latency_ms']} ms | {row['plain_rps']} | {row['durable_rps']} | "
                f"{row['ratio']} | {row['ideal_rps'] or '—'} | {endpoint_cpu} / {cpu.get('server')} / "
                f"{cpu.get('llm')} | {row['rss_mb']['endpoint']} / {row['rss_mb']['server']} |\n"
            )
    if rec_all := data.get("recovery"):
        out.append("\n## 3. Recovery (SIGKILL mid-run, endpoint down 2 s, then back)\n\n")
        out.append("| how the endpoint comes back | median s | all runs s |\n| --- | --- | --- |\n")
        labels = {
            "announced": "the endpoint tells Restate it is back (RESTATE_ADMIN_URL, set by `make run`)",
            "server_backoff": "it does not: the next retry comes when the server's backoff says",
        }
        for mode, figures in rec_all.items():
            out.append(f"| {labels.get(mode, mode)} | {figures['median_s']} | {figures['seconds']} |\n")
    for label, wt in waits:
        rss = wt["rss_mb"]
        out.append(f"\n## 4. Waiting cost ({wt['count']} approvals, all suspended; {label})\n\n")
        out.append("| phase | endpoint RSS MB | server RSS MB |\n| --- | --- | --- |\n")
        for phase in ("idle", "all_suspended", "after_drain"):
            out.append(f"| {phase} | {rss[phase]['endpoint_rss_mb']} | {rss[phase]['server_rss_mb']} |\n")
        out.append(
            f"\nAll suspended after {wt['time_to_all_suspended_s']} s; resolved and drained in {wt['drain_s']} s "
            f"({wt['drain_per_s']}/s); completed {wt['completed']}, failed {wt['failed']}. Settings: {wt['settings']}.\n"
        )
    if cl := data.get("cluster"):
        out.append(
            f"\n## 5. Cluster: three nodes vs one ({cl['partitions']} partitions, "
            f"{cl['endpoint_workers']} endpoint processes, concurrency 64, same run)\n\n"
        )
        out.append(
            "| LLM latency | single node runs/s | cluster runs/s | cluster / single | "
            "median ms (single / cluster) | CPU % endpoint / servers (single; cluster) |\n"
            "| --- | --- | --- | --- | --- | --- |\n"
        )
        for label, latency in (("c64", "0 ms"), ("c64_l200", "200 ms")):
            one, three = cl["single"][label], cl["cluster"][label]
            out.append(
                f"| {latency} | {one['rps']} | {three['rps']} | {cl[f'{label}_ratio']} | "
                f"{one['latency'].get('median_ms')} / {three['latency'].get('median_ms')} | "
                f"{one['cpu_percent']['endpoint']} / {one['cpu_percent']['servers']}; "
                f"{three['cpu_percent']['endpoint']} / {three['cpu_percent']['servers']} |\n"
            )
        fo = cl["failover"]
        out.append(
            "\nFailover (one partition; its leader SIGKILLed under a load of 16 through another node): "
            f"the first invocation sent after the kill completed **{fo['first_completion_median_s']} s** "
            "after it, every "
            f"invocation in flight at the kill done after {fo['all_in_flight_done_median_s']} s (medians of "
            f"{len(fo['rounds'])}; rounds: "
            + ", ".join(f"{r['first_completion_s']} / {r['all_in_flight_done_s']} s" for r in fo["rounds"])
            + ").\n"
        )
    notes = RESULTS.parent / "NOTES.md"
    if notes.exists():
        out.append("\n" + notes.read_text())
    text = "".join(out)
    (RESULTS.parent / "RESULTS.md").write_text(text)
    return text
