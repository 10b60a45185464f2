"""`make eval`: run an evaluation data set against the tour and print the report.

    python -m dev.eval                                   # evals/claim_agents.json
    python -m dev.eval evals/claim_agents.json --ingress http://localhost:8080

With a tour running (`make run`, with or without OPENAI_API_KEY) it evaluates that one, through
its ingress; otherwise it starts a private stack on free ports with the offline stand-in, and
stops it afterwards. The run is the workflow `Evaluation/<run id>` (app/workflows/evaluation.py):
its report stays in Restate, and http://localhost:8000/evals/<run id> shows it under `make run`.
"""

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from dev.stack import REPO

DATASET = REPO / "evals" / "claim_agents.json"


@contextlib.contextmanager
def an_ingress(url: str | None) -> Iterator[str]:
    """`url` if a Restate ingress answers there (default: make run's), else a private stack's."""
    candidate = url or "http://localhost:8080"
    try:
        httpx.get(f"{candidate}/restate/health", timeout=2).raise_for_status()
        yield candidate
        return
    except httpx.HTTPError:
        if url:
            sys.exit(f"error: no Restate ingress answers at {url}")
    from dev.harness import Tour

    print("No tour running at http://localhost:8080: starting a private one with the offline stand-in ...")
    with tempfile.TemporaryDirectory() as workdir:
        stack = Tour(Path(workdir))
        try:
            stack.start()
            yield stack.ingress
        finally:
            stack.stop()


def run(ingress: str, dataset: dict[str, Any], run_id: str, timeout: float = 600) -> dict[str, Any]:
    with httpx.Client(base_url=ingress, timeout=30) as client:
        sent = client.post(f"/Evaluation/{run_id}/run/send", json=dataset)
        if sent.status_code >= 400:
            sys.exit(f"error: the evaluation was refused (HTTP {sent.status_code}): {sent.text}")
        deadline = time.monotonic() + timeout
        shown = -1
        while time.monotonic() < deadline:
            resp = client.get(f"/Evaluation/{run_id}/report")
            if resp.status_code == 200:
                report: dict[str, Any] = resp.json()
                if report["done"] != shown:
                    shown = report["done"]
                    print(f"  {report['done']} of {report['cases']} cases graded", flush=True)
                if report["done"] == report["cases"]:
                    return report
            time.sleep(0.5)
    sys.exit(f"error: the evaluation did not finish within {timeout:.0f} s")


def table(report: dict[str, Any]) -> str:
    rows = [
        f"{report['service']}: {report['passed']} of {report['cases']} passed ({report['pass_rate']:.0%})",
        "",
    ]
    width = max(len(r["name"]) for r in report["results"])
    for r in report["results"]:
        verdict = "pass" if r["passed"] else "FAIL"
        rows.append(f"  {r['name']:<{width}}  {verdict}  {r['score']:.2f}  {r['reason']}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dev.eval", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=DATASET)
    parser.add_argument(
        "--ingress", help="a running tour's ingress (default: make run's, else a private stack)"
    )
    parser.add_argument(
        "--run-id", help="the Evaluation workflow's key (default: the data set's name and the time)"
    )
    args = parser.parse_args()
    dataset = json.loads(args.dataset.read_text())
    run_id = args.run_id or f"{args.dataset.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    with an_ingress(args.ingress) as ingress:
        print(f"Evaluation/{run_id}: {len(dataset['cases'])} cases against {dataset['service']}")
        report = run(ingress, dataset, run_id)
    print()
    print(table(report))


if __name__ == "__main__":
    main()
