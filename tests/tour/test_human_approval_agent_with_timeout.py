"""Tour step 3, timeouts and escalation: the approval races a durable timer.

The server of this module suspends a waiting invocation after 2 s (instead of 1 min).
"""

import pytest

from dev.harness import Tour
from tests.tour.helpers import claim_prompt, decided, run_printed

pytestmark = pytest.mark.e2e


def timed_out(marker: str) -> str:
    return (
        f"The human review of the claim of 3,000 USD for broken leg ({marker}) timed out, so I evaluated "
        "it myself: approved (medical claim)."
    )


def test_an_unanswered_approval_times_out_and_the_agent_decides(waiting_stack: Tour) -> None:
    stack = waiting_stack
    stack.restart_endpoint(APPROVAL_TIMEOUT_SECONDS="2")
    prompt, marker = claim_prompt()

    resp = stack.call("HumanClaimApprovalWithTimeoutsAgent/run", {"message": prompt})

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        f"The human review of the claim of 3,000 USD for broken leg ({marker}) timed out, "
        "so I evaluated it myself: approved (medical claim)."
    )
    assert len(stack.review_requests(marker)) == 1


def test_an_approval_in_time_wins_the_race(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim_prompt()
    invocation = stack.send("HumanClaimApprovalWithTimeoutsAgent/run", {"message": prompt})
    _, reject = stack.wait_review(marker)

    assert run_printed(reject).returncode == 0
    resp = stack.output(invocation)

    assert resp.status_code == 200 and resp.json() == decided(marker, "rejected")


def test_a_malformed_answer_keeps_the_original_deadline(waiting_stack: Tour) -> None:
    stack = waiting_stack
    stack.restart_endpoint(APPROVAL_TIMEOUT_SECONDS="6")
    prompt, marker = claim_prompt()
    invocation = stack.send("HumanClaimApprovalWithTimeoutsAgent/run", {"message": prompt})
    approve, _ = stack.wait_review(marker)

    assert run_printed(approve.replace("'true'", "'perhaps'")).returncode == 0
    stack.wait_review(marker, count=2)  # asked again, with the same timer running
    resp = stack.output(invocation, timeout=60)

    assert resp.status_code == 200, resp.text
    assert resp.json() == timed_out(marker)
    # One timer for both review requests: asking again did not extend the deadline.
    assert [e["entry_type"] for e in stack.journal(invocation)].count("Command: Sleep") == 1


@pytest.mark.crash
def test_the_timer_keeps_its_deadline_across_an_endpoint_restart(waiting_stack: Tour) -> None:
    stack = waiting_stack
    stack.restart_endpoint(APPROVAL_TIMEOUT_SECONDS="4")
    prompt, marker = claim_prompt()
    invocation = stack.send("HumanClaimApprovalWithTimeoutsAgent/run", {"message": prompt})
    stack.wait_review(marker)

    # The restarted endpoint would set a one-hour timer if the wait started over. It does not:
    # the deadline set by the first process is in the journal, and the timeout path is taken.
    stack.kill_endpoint()
    stack.restart_endpoint(APPROVAL_TIMEOUT_SECONDS="3600")
    resp = stack.output(invocation, timeout=60)

    assert resp.status_code == 200, resp.text
    assert resp.json() == timed_out(marker)
    assert len(stack.llm_calls(marker)) == 2
