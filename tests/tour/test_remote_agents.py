"""Tour step 7, remote agents as tools: RemoteMultiAgentClaimApproval."""

from typing import Any

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


def claim(reason: str) -> dict[str, Any]:
    return {"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital",
            "reason": reason}  # fmt: skip


def sub_invocations(stack: Tour, parent: str) -> list[str]:
    """The remote agents' invocations (not the record the run sends to the cost ledger)."""
    rows = stack.admin.query(
        f"SELECT target FROM sys_invocation WHERE invoked_by_id = '{parent}' "
        "AND target_service_name != 'LlmUsage' ORDER BY created_at"
    )
    return [r["target"] for r in rows]


def test_remote_agents_run_as_their_own_invocations(stack: Tour) -> None:
    resp = stack.call("RemoteMultiAgentClaimApproval/run", claim("hospital bill for a broken leg (r1)"))

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        "Decision: the claim of 3,000 USD for hospital bill for a broken leg (r1) is approved. "
        "Findings: check_eligibility: eligible; check_fraud: low risk."
    )
    assert sub_invocations(stack, resp.headers["x-restate-id"]) == ["EligibilityAgent/run", "FraudAgent/run"]


@pytest.mark.crash
def test_a_crash_during_the_remote_calls_repeats_neither(stack: Tour) -> None:
    # LLM calls: coordinator, eligibility (hangs: the crash comes here), fraud, coordinator.
    stack.llm.fault("llm", count=1, after=1, hang=60, status=200)
    invocation = stack.send("RemoteMultiAgentClaimApproval/run", claim("hospital bill for a broken leg (r2)"))
    wait_until(lambda: len(stack.llm_calls("(r2)")) == 2, what="the eligibility agent's LLM call")

    stack.kill_endpoint()
    stack.restart_endpoint()
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert "is approved" in resp.json()
    # One eligibility and one fraud invocation: the durable calls were not sent again.
    assert sub_invocations(stack, invocation) == ["EligibilityAgent/run", "FraudAgent/run"]
    calls = [c["agent"] for c in stack.llm_calls("(r2)")]
    assert sum(a.startswith("You are a claim approval engine") for a in calls) == 2  # first one replayed
    assert sum(a.startswith("Decide how likely") for a in calls) == 1  # fraud: once
    assert (
        sum(a.startswith("Decide whether the following claim is eligible") for a in calls) == 2
    )  # cut, redone
