"""Agentic workflows: a durable evaluation run (Evaluation/<run id>), and `make eval`."""

import itertools
import json
import subprocess
import sys

import pytest

from dev.harness import Tour, wait_until
from dev.stack import REPO

pytestmark = pytest.mark.e2e

_runs = itertools.count(1)
DATASET = json.loads((REPO / "evals" / "claim_agents.json").read_text())
VERDICTS = {
    "broken leg": True,
    "dental filling": True,
    "car repair": False,
    "costly surgery": True,
    "wedding dress": True,
}


def run_id() -> str:
    return f"eval-{next(_runs)}"


def marked(dataset: dict, marker: str) -> dict:
    """The data set with each case's claim reason marked, to find its LLM calls."""
    cases = [
        {**c, "input": {**c["input"], "reason": f"{c['input']['reason']} ({marker})"}}
        for c in dataset["cases"]
    ]
    return {**dataset, "cases": cases}


def judged(stack: Tour, since: int) -> int:
    return len(
        [c for c in stack.llm_calls_of("You are the judge of an evaluation", since) if c.get("status") == 200]
    )


def test_the_claim_data_set_is_run_and_graded_case_by_case(stack: Tour) -> None:
    key = run_id()
    resp = stack.call(f"Evaluation/{key}/run", marked(DATASET, key))

    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["service"] == "ParallelAgentClaimApproval/run"
    assert (report["cases"], report["done"], report["passed"], report["pass_rate"]) == (5, 5, 4, 0.8)
    assert {r["name"]: r["passed"] for r in report["results"]} == VERDICTS
    car = next(r for r in report["results"] if r["name"] == "car repair")
    assert (
        car["score"] == 0.0
        and car["reason"] == "The answer misses the mark: the claim is not approved in it."
    )
    assert car["answer"].endswith(": rejected.")
    assert stack.http.get(f"/Evaluation/{key}/report").json() == report


def test_an_unknown_service_is_a_400_naming_the_field(stack: Tour) -> None:
    resp = stack.call(f"Evaluation/{run_id()}/run", {**DATASET, "service": "NoSuchAgent/run"})

    assert resp.status_code == 400
    assert resp.json()["message"].startswith(
        "Invalid request: service: must be one of ClaimReimbursement/process"
    )


def test_a_case_the_agent_refuses_is_graded_failed_without_a_judge(stack: Tour) -> None:
    dataset = {
        "service": "WeatherAgent/run",
        "cases": [{"name": "bad body", "input": {"city": "Oslo"}, "expect": "'Oslo'"}],
    }
    report = stack.call(f"Evaluation/{run_id()}/run", dataset).json()

    [result] = report["results"]
    assert result["passed"] is False and result["answer"] is None
    assert result["reason"] == "the agent failed: HTTP 400, Invalid request: city: unknown field"


@pytest.mark.crash
def test_a_crash_mid_evaluation_neither_runs_nor_judges_a_finished_case_again(stack: Tour) -> None:
    key = run_id()
    dataset = {**marked(DATASET, key), "concurrency": 1}
    since = stack.llm_seq()
    # The third case's decision hangs: two cases are done (run and judged) when the endpoint dies.
    stack.llm.fault(
        "llm", count=1, hang=300, status=200, containing=f"bumper repair after a collision ({key})"
    )
    invocation = stack.send(f"Evaluation/{key}/run", dataset)
    wait_until(
        lambda: stack.http.get(f"/Evaluation/{key}/report").json().get("done") == 2, what="two cases done"
    )
    wait_until(lambda: stack.llm_calls(f"bumper repair after a collision ({key})"), what="the third case")

    stack.kill_endpoint()
    stack.restart_endpoint()

    report = stack.output(invocation, timeout=120).json()
    assert report["done"] == 5 and report["passed"] == 4
    assert judged(stack, since) == 5  # each case judged once
    cases = stack.admin.query(
        f"SELECT count(*) AS n FROM sys_invocation WHERE invoked_by_id = '{invocation}' "
        "AND target = 'ParallelAgentClaimApproval/run'"
    )
    assert cases == [{"n": 5}]  # each case run once


def test_make_eval_prints_the_report(stack: Tour) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dev.eval", "--ingress", stack.ingress, "--run-id", run_id()],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "ParallelAgentClaimApproval/run: 4 of 5 passed (80%)" in done.stdout
    assert (
        "  car repair      FAIL  0.00  The answer misses the mark: the claim is not approved in it."
        in done.stdout
    )
