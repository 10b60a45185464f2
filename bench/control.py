"""What keeping finished runs' journals costs (docs/control.md): disk per WeatherAgent run.

A finished run can be rerun from a step for as long as Restate keeps its journal
(JOURNAL_RETENTION_DAYS, 7). Two stacks, one after the other, the same but for that setting
(7 days, and 0: nothing kept), each takes `runs` WeatherAgent runs one at a time; the server's data
directory is measured before and after (and again once the server has had time to flush):

- `journal_bytes_per_run`: what the journal of one finished run holds (sys_journal's raw bytes);
- `server_disk_kb_per_run.{kept,not_kept}`: the data directory's growth per run, with the
  journals kept and not (the rest is the log, the invocation's status, the ledger);
- `retained_journal_kb_per_run`: their difference.
"""

import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.approvals import disk_kb
from dev.harness import Tour

QUESTION = {"message": "What is the weather like in San Francisco?"}
FLUSH_WAIT_S = 10.0  # the server writes its tables out in the background


def _growth(workdir: Path, runs: int, keep_days: str) -> dict[str, Any]:
    stack = Tour(workdir, endpoint_env={"JOURNAL_RETENTION_DAYS": keep_days})
    try:
        stack.start()
        with httpx.Client(base_url=stack.ingress, timeout=60) as client:
            for _ in range(20):  # warm-up: the first runs create the tables' first files
                client.post("/WeatherAgent/run", json=QUESTION).raise_for_status()
            time.sleep(FLUSH_WAIT_S)
            before = disk_kb(stack.server.data_dir)
            ids = []
            for _ in range(runs):
                resp = client.post("/WeatherAgent/run", json=QUESTION)
                resp.raise_for_status()
                ids.append(resp.headers["x-restate-id"])
        time.sleep(FLUSH_WAIT_S)
        after = disk_kb(stack.server.data_dir)
        sample = ids[:: max(1, len(ids) // 20)]
        journal = "SELECT raw_length FROM sys_journal WHERE id = '{}'"
        sizes = [
            sum(int(r.get("raw_length", 0)) for r in stack.admin.query(journal.format(run))) for run in sample
        ]
    finally:
        stack.stop()
    return {"disk_kb_per_run": round((after - before) / runs, 2), "journal_bytes": statistics.median(sizes)}


def run(workdir: Path, quick: bool) -> dict[str, Any]:
    runs = 200 if quick else 1000
    kept = _growth(workdir / "kept", runs, "7")
    not_kept = _growth(workdir / "not-kept", runs, "0")
    return {
        "runs": runs,
        "journal_bytes_per_run": kept["journal_bytes"],
        "journal_bytes_per_run_not_kept": not_kept["journal_bytes"],
        "server_disk_kb_per_run": {"kept": kept["disk_kb_per_run"], "not_kept": not_kept["disk_kb_per_run"]},
        "retained_journal_kb_per_run": round(kept["disk_kb_per_run"] - not_kept["disk_kb_per_run"], 2),
    }


def report(figures: dict[str, Any]) -> None:
    disk = figures["server_disk_kb_per_run"]
    print(
        f"  a finished WeatherAgent run's journal: {figures['journal_bytes_per_run']} bytes; server disk per run "
        f"{disk['kept']} KB kept, {disk['not_kept']} KB not kept ({figures['retained_journal_kb_per_run']} KB "
        "for the journal)",
        flush=True,
    )
