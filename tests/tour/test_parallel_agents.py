"""Tour step 9, parallel agents and a race: ParallelAgentClaimApproval."""

import re
from datetime import datetime
from typing import Any

import pytest

from dev.harness import Tour, wait_until
from tests.tour.helpers import claim_body, overlap

pytestmark = pytest.mark.e2e


def sub_invocations(stack: Tour, parent: str) -> list[dict[str, Any]]:
    """The sub-agents' invocations (not the record the run sends to the cost ledger)."""
    return stack.admin.query(
        "SELECT id, target, status, created_at, completed_at, completion_result, completion_failure "
        f"FROM sys_invocation WHERE invoked_by_id = '{parent}' AND target_service_name != 'LlmUsage' "
        "ORDER BY created_at"
    )


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_three_sub_agents_work_in_parallel_then_one_decides(stack: Tour) -> None:
    stack.llm.latency(400)  # every LLM call takes 0.4 s: sequential sub-agents could not overlap
    body, marker = claim_body()
    resp = stack.call("ParallelAgentClaimApproval/run", body)

    assert resp.status_code == 200, resp.text
    assert (
        resp.json()
        == f"I reviewed the claim of 3,000 USD for hospital bill for a broken leg ({marker}): approved."
    )
    children = sub_invocations(stack, resp.headers["x-restate-id"])
    assert sorted(c["target"] for c in children) == [
        "EligibilityAgent/run",
        "FraudAgent/run",
        "RateComparisonAgent/run",
    ]
    assert overlap([(when(c["created_at"]), when(c["completed_at"])) for c in children])
    decision = [
        c for c in stack.llm_calls(marker) if c["agent"].startswith("You are a claim decision engine")
    ]
    assert (
        len(decision) == 1
        and "eligibility: eligible; cost: reasonable; fraud: low risk" in decision[0]["input"]
    )


def test_a_race_takes_the_first_answer_and_cancels_the_rest(stack: Tour) -> None:
    # Whichever sub-agent asks first is stuck for 10 s. (Under forced replay the cancellation
    # reaches the loser only when its in-flight LLM step returns, hence the generous wait below.)
    stack.llm.fault("llm", count=1, hang=10, status=200)
    body, _ = claim_body()
    resp = stack.call("ParallelAgentClaimApproval/race", body)

    assert resp.status_code == 200, resp.text
    assert re.fullmatch(r"Fraud risk: low risk \(first answer, from the (first|second) agent\)", resp.json())
    children = wait_until(
        lambda: (
            (c := sub_invocations(stack, resp.headers["x-restate-id"]))
            and all(x["status"] == "completed" for x in c)
            and c
        ),
        timeout=60,
        what="both contenders to end",
    )
    assert sorted(c["completion_result"] for c in children) == ["failure", "success"]
    loser = next(c for c in children if c["completion_result"] == "failure")
    assert "cancel" in loser["completion_failure"].lower()


def test_a_race_whose_first_finisher_failed_takes_the_other_answer(stack: Tour) -> None:
    # One contender's LLM call answers after 3 s; the other is refused at once (HTTP 400, terminal).
    stack.llm.fault("llm", count=1, hang=3, status=200)
    stack.llm.fault("llm", count=1, status=400)
    body, marker = claim_body()
    resp = stack.call("ParallelAgentClaimApproval/race", body)

    assert resp.status_code == 200, resp.text
    assert re.fullmatch(r"Fraud risk: low risk \(first answer, from the (first|second) agent\)", resp.json())
    assert sorted(c["status"] for c in stack.llm_calls(marker)) == [200, 400]
    children = sub_invocations(stack, resp.headers["x-restate-id"])
    assert sorted((c["status"], c["completion_result"]) for c in children) == [
        ("completed", "failure"),
        ("completed", "success"),
    ]
    failed = next(c for c in children if c["completion_result"] == "failure")
    assert "The LLM API refused the request (HTTP 400)" in failed["completion_failure"]


def test_a_race_that_all_contenders_lost_fails_naming_each_failure(stack: Tour) -> None:
    stack.llm.fault("llm", count=2, status=400)
    body, marker = claim_body()
    resp = stack.call("ParallelAgentClaimApproval/race", body)

    assert resp.status_code == 500, resp.text
    refused = (
        "The LLM API refused the request (HTTP 400): Error code: 400 - [offline stand-in] injected HTTP 400"
    )
    assert resp.json()["message"] in (
        f"No fraud agent answered: first: {refused}; second: {refused}",
        f"No fraud agent answered: second: {refused}; first: {refused}",
    )
    assert [c["status"] for c in stack.llm_calls(marker)] == [400, 400]  # no retry of a refusal
    invocation = stack.invocation(resp.headers["x-restate-id"])
    assert invocation["status"] == "completed" and invocation["completion_result"] == "failure"
