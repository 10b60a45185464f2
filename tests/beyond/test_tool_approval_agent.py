"""Beyond the tour: the Agents SDK's tool approvals (`needs_approval`, RunState), made durable.

ToolApprovalClaimAgent pays claims; above 1,000 USD a person approves each payout through the
reviewers' inbox. The payouts are counted in the endpoint's log (one line per payment made), the
LLM calls in the stand-in's log: across crashes and restarts neither is ever repeated.
"""

import itertools
import re

import pytest

from dev.harness import Tour, run_curl, wait_until

pytestmark = pytest.mark.e2e

_marks = itertools.count(1)
CLAIM = {"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital"}


def marked() -> str:
    return f"ta{next(_marks)}"


def payouts(stack: Tour, marker: str) -> list[str]:
    """The payments made for claims whose reason carries `marker`: lines of the endpoint's log."""
    log = (stack.workdir / "endpoint.log").read_text(errors="replace")
    return re.findall(rf"💸 Paid [\d,]+ USD for '[^']*\({re.escape(marker)}\)' \[[^\]]+\]", log)


def inbox(stack: Tour, marker: str) -> list[dict[str, object]]:
    reviews = stack.http.get("/ReviewInbox/reviewers/list").json()["reviews"]
    return [r for r in reviews if f"({marker})" in r["claim"]["reason"]]


def decide(stack: Tour, marker: str, answer: str, count: int = 1) -> None:
    """Resolve the `count`-th review request of `marker` with the JSON `answer`, as a reviewer would."""
    approve, _ = stack.wait_review(f"({marker})", count=count)
    resolve = approve.removesuffix("'true'") + f"'{answer}'"
    assert run_curl(resolve, timeout=30).returncode == 0


def llm_calls(stack: Tour, marker: str) -> int:
    return len([c for c in stack.llm_calls(f"({marker})") if c.get("status") == 200])


def test_a_payout_above_1000_waits_for_a_person_and_is_paid_once_approved(stack: Tour) -> None:
    marker = marked()
    invocation = stack.send(
        "ToolApprovalClaimAgent/run",
        {"message": f"Process my hospital bill of 3000USD for a broken leg ({marker})."},
    )
    review = wait_until(lambda: inbox(stack, marker), what="the review in the inbox")[0]
    assert review["agent"] == "ToolApprovalClaimAgent" and review["invocationId"] == invocation
    assert review["claim"]["amount"] == 3000 and payouts(stack, marker) == []

    decide(stack, marker, "true")

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    [paid] = payouts(stack, marker)
    payment = paid.rsplit("[", 1)[1].rstrip("]")
    assert resp.json() == (
        f"The claim of 3,000 USD for broken leg ({marker}) was paid (Paid 3,000 USD, payment {payment})."
    )
    assert inbox(stack, marker) == []
    assert stack.run_steps(invocation) == ["call LLM", "Request review", "Pay claim", "call LLM"]


def test_a_payout_of_300_is_made_without_a_review(stack: Tour) -> None:
    marker = marked()
    resp = stack.call(
        "ToolApprovalClaimAgent/run",
        {"message": f"Process my clinic bill of 300USD for a sprain ({marker})."},
    )

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith(
        f"The claim of 300 USD for sprain ({marker}) was paid (Paid 300 USD, payment "
    )
    assert len(payouts(stack, marker)) == 1 and stack.review_requests(f"({marker})") == []


def test_a_rejection_and_its_reason_reach_the_model_and_nothing_is_paid(stack: Tour) -> None:
    marker = marked()
    invocation = stack.send(
        "ToolApprovalClaimAgent/run",
        {"message": f"Process my hospital bill of 3000USD for a broken leg ({marker})."},
    )
    decide(stack, marker, '{"approved": false, "reason": "The hospital is not in our network."}')

    resp = stack.output(invocation)
    assert resp.json() == (
        f"The claim of 3,000 USD for broken leg ({marker}) was not paid: Tool execution was not approved. "
        "Reason: The hospital is not in our network."
    )
    assert payouts(stack, marker) == []


def test_two_payouts_in_one_turn_get_a_review_each_and_are_decided_apart(stack: Tour) -> None:
    marker = marked()
    invocation = stack.send(
        "ToolApprovalClaimAgent/run",
        {
            "message": f"Pay my hospital bill of 3000USD for a cast ({marker}) and my dentist bill of 1500USD for a crown ({marker})."
        },
    )
    # Both calls of the one LLM answer wait at once, each with its own review.
    reviews = wait_until(lambda: len(r := inbox(stack, marker)) == 2 and r, what="two reviews")
    assert sorted(r["claim"]["amount"] for r in reviews) == [1500, 3000]

    first, second = stack.review_requests(f"({marker})")  # in the order of the calls: cast, then crown
    assert (
        run_curl(
            first[1].removesuffix("'false'") + '\'{"approved": false, "reason": "Casts are not covered."}\''
        ).returncode
        == 0
    )
    assert run_curl(second[0]).returncode == 0

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert (
        f"The claim of 3,000 USD for cast ({marker}) was not paid: Tool execution was not approved. Reason: Casts are not covered."
        in resp.json()
    )
    assert f"The claim of 1,500 USD for crown ({marker}) was paid" in resp.json()
    assert len(payouts(stack, marker)) == 1 and "crown" in payouts(stack, marker)[0]
    assert llm_calls(stack, marker) == 2


def test_approved_payouts_of_one_turn_run_one_after_another_as_restate_orders_tool_calls(stack: Tour) -> None:
    marker = marked()
    invocation = stack.send(
        "ToolApprovalClaimAgent/run",
        {
            "message": f"Pay my hospital bill of 3000USD for a cast ({marker}) and my dentist bill of 1500USD for a crown ({marker})."
        },
    )
    decide(stack, marker, "true", count=1)
    decide(stack, marker, "true", count=2)

    assert stack.output(invocation).status_code == 200
    steps = [(start, end) for name, start, end in stack.step_times(invocation) if name == "Pay claim"]
    assert len(steps) == 2 and steps[0][1] is not None
    assert steps[0][1] <= steps[1][0]  # the second payment started once the first was done


def test_a_payout_needing_no_review_is_made_while_the_other_waits(stack: Tour) -> None:
    marker = marked()
    invocation = stack.send(
        "ToolApprovalClaimAgent/run",
        {
            "message": f"Pay my hospital bill of 3000USD for a cast ({marker}) and my clinic bill of 300USD for a bandage ({marker})."
        },
    )
    wait_until(lambda: len(payouts(stack, marker)) == 1, what="the 300 USD payout")
    assert len(inbox(stack, marker)) == 1  # the 3,000 USD one waits, the call after it did not

    decide(stack, marker, "true")

    assert stack.output(invocation).status_code == 200
    assert len(payouts(stack, marker)) == 2


def test_a_malformed_decision_is_asked_again(stack: Tour) -> None:
    marker = marked()
    invocation = stack.send(
        "ToolApprovalClaimAgent/run",
        {"message": f"Process my hospital bill of 3000USD for a broken leg ({marker})."},
    )
    decide(stack, marker, '{"approved": "maybe"}')
    decide(stack, marker, "true", count=2)  # a new review request

    assert stack.output(invocation).status_code == 200
    assert len(payouts(stack, marker)) == 1


def test_the_tool_guardrail_refuses_a_payout_above_the_limit_and_tells_the_model(stack: Tour) -> None:
    marker = marked()
    resp = stack.call(
        "ToolApprovalClaimAgent/run",
        {"message": f"Process my hospital bill of 50000USD for a broken leg ({marker})."},
    )

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        f"The claim of 50,000 USD for broken leg ({marker}) was not paid: Not paid: 50,000 USD is above the "
        "policy limit of 10,000 USD."
    )
    # The guardrail ran before anyone was asked: no review, no payment.
    assert stack.review_requests(f"({marker})") == [] and payouts(stack, marker) == []


def test_a_tripped_tool_guardrail_ends_the_invocation_without_retrying(stack: Tour) -> None:
    marker = marked()
    resp = stack.call(
        "ToolApprovalClaimAgent/run",
        {"message": f"Process my hospital bill of 500000USD for a broken leg ({marker})."},
    )

    assert resp.status_code == 422, resp.text
    assert resp.json()["message"] == (
        "Tool input guardrail 'payout_within_limit' tripped: 500,000 USD is more than ten times the policy "
        "limit of 10,000 USD"
    )
    assert llm_calls(stack, marker) == 1 and payouts(stack, marker) == []


# --- durable in every gap ----------------------------------------------------------------------------


@pytest.mark.crash
def test_crashes_and_a_restart_while_the_review_waits_and_after_the_decision_repeat_nothing(
    stack: Tour,
) -> None:
    marker = marked()
    invocation = stack.send(
        "ToolApprovalClaimAgent/run",
        {"message": f"Process my hospital bill of 3000USD for a broken leg ({marker})."},
    )
    wait_until(lambda: inbox(stack, marker), what="the review in the inbox")

    stack.kill_endpoint()  # SIGKILL while the review waits
    stack.restart_endpoint()
    stack.restart_server(kill=True)  # and the Restate Server too
    # The answer's LLM call hangs: the endpoint dies after the payout, before the answer.
    stack.llm.fault("llm", count=1, hang=300, status=200)
    decide(stack, marker, "true")
    wait_until(lambda: payouts(stack, marker), what="the payout")
    wait_until(lambda: len(stack.llm_calls(f"({marker})")) == 2, what="the answer's LLM call in flight")
    stack.kill_endpoint()
    stack.restart_endpoint()

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert "was paid" in resp.json()
    assert len(payouts(stack, marker)) == 1  # paid once
    assert llm_calls(stack, marker) == 2  # the first answer (once), the answer after the payout
    assert len(stack.review_requests(f"({marker})")) == 1


# --- MCP tools, approved the same way ---------------------------------------------------------------


def test_an_mcp_payout_waits_for_a_person_in_the_same_inbox(stack: Tour) -> None:
    marker = marked()
    invocation = stack.send(
        "McpClaimAgent/pay", {**CLAIM, "reason": f"hospital bill for a broken leg ({marker})"}
    )
    review = wait_until(lambda: inbox(stack, marker), what="the MCP payout's review")[0]
    assert review["agent"] == "McpClaimAgent"

    decide(stack, marker, "true")

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert "pay_claim: Paid 3,000 USD, payment mcp-" in resp.json() and " is approved." in resp.json()
    assert stack.run_steps(invocation)[-3:] == ["Request review", "MCP pay_claim", "call LLM"]
    log = (stack.workdir / "endpoint.log").read_text(errors="replace")
    assert log.count(f"[claim checks MCP] pay_claim of 'hospital bill for a broken leg ({marker})'") == 1


def test_a_rejected_mcp_payout_is_not_made(stack: Tour) -> None:
    marker = marked()
    invocation = stack.send(
        "McpClaimAgent/pay", {**CLAIM, "reason": f"hospital bill for a broken leg ({marker})"}
    )
    decide(stack, marker, "false")

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert "pay_claim: Tool execution was not approved." in resp.json() and " is rejected." in resp.json()
    assert "MCP pay_claim" not in stack.run_steps(invocation)
