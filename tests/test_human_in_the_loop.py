"""Tour steps 2-4, human-in-the-loop: approvals, approvals with a timeout, approval as a sub-workflow.

The server of this module suspends a waiting invocation after 2 s (instead of 1 min), so every
pending approval here is a suspended one, as it would be after a minute in the tour.
"""

import itertools
import subprocess

import httpx
import pytest

from dev.harness import FORCE_REPLAY, Tour, run_curl, wait_until

pytestmark = pytest.mark.e2e

_claims = itertools.count(1)


def claim(amount: str = "3000USD") -> tuple[str, str]:
    """A claim prompt with a unique marker, so each test finds its own review request."""
    marker = f"claim {next(_claims)}"
    return f"Process my hospital bill of {amount} for a broken leg ({marker}).", marker


def decided(marker: str, verdict: str) -> str:
    """The agent's answer once a human decided the claim made by `claim()`."""
    return f"The claim of 3,000 USD for broken leg ({marker}) was {verdict} by a human reviewer."


def timed_out(marker: str) -> str:
    return (
        f"The human review of the claim of 3,000 USD for broken leg ({marker}) timed out, so I evaluated "
        "it myself: approved (medical claim)."
    )


def run_printed(command: str) -> subprocess.CompletedProcess[str]:
    """Run a command as the service log printed it (with `--fail`: an HTTP error fails it)."""
    return run_curl(command, timeout=30)


# --- HumanClaimApprovalAgent ---------------------------------------------------------------------


@pytest.mark.parametrize(("choice", "verdict"), [(0, "approved"), (1, "rejected")])
def test_a_human_decides_a_high_value_claim(waiting_stack: Tour, choice: int, verdict: str) -> None:
    stack = waiting_stack
    prompt, marker = claim()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})

    commands = stack.wait_review(marker)
    assert commands[0].endswith("--json 'true'") and commands[1].endswith("--json 'false'")
    assert run_printed(commands[choice]).returncode == 0
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert (
        resp.json() == f"The claim of 3,000 USD for broken leg ({marker}) was {verdict} by a human reviewer."
    )


def test_a_small_claim_is_decided_without_a_human(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim("500USD")

    resp = stack.call("HumanClaimApprovalAgent/run", {"message": prompt})

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        f"The claim of 500 USD for broken leg ({marker}) is approved. It is below 1000, so I decided "
        "without a human review."
    )
    assert stack.review_requests(marker) == []
    steps = [e.get("name") for e in stack.journal(resp.headers["x-restate-id"])]
    assert "Request review" not in steps and steps.count("call LLM") == 1


def test_a_pending_approval_is_suspended_and_needs_no_running_endpoint(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})
    approve, _ = stack.wait_review(marker)

    stack.wait_status(invocation, "suspended", timeout=30)
    # Nothing waits on the endpoint: it can be gone entirely while the human decides.
    stack.kill_endpoint()
    assert run_printed(approve).returncode == 0
    assert stack.invocation(invocation)["status"] in ("backing-off", "ready", "running", "pending")
    stack.start_endpoint()

    resp = stack.output(invocation)
    assert resp.status_code == 200 and resp.json() == decided(marker, "approved")


@pytest.mark.crash
def test_a_crash_while_waiting_repeats_no_llm_call(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})
    approve, _ = stack.wait_review(marker)
    assert len(stack.llm_calls(marker)) == 1  # the call that asked for the approval tool

    stack.kill_endpoint()  # SIGKILL while the approval is pending
    stack.restart_endpoint()
    assert run_printed(approve).returncode == 0  # the command printed before the crash still works
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == decided(marker, "approved")
    assert len(stack.llm_calls(marker)) == 2  # the first call was replayed from the journal
    assert len(stack.review_requests(marker)) == 1  # and the review was requested once


def test_the_approval_survives_a_restate_server_restart(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})
    approve, _ = stack.wait_review(marker)

    stack.restart_server()  # same data directory
    assert run_printed(approve).returncode == 0
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == decided(marker, "approved")


def test_an_unknown_awakeable_id_is_refused_with_a_message(waiting_stack: Tour) -> None:
    resp = waiting_stack.http.post("/restate/awakeables/sign_1notanid/resolve", json=True)

    assert resp.status_code == 400
    assert "bad awakeable id" in resp.json()["message"]


def test_a_malformed_answer_decides_nothing_and_the_claim_is_asked_again(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})
    approve, _ = stack.wait_review(marker)

    for bad in ("'maybe'", """'"yes"'"""):
        assert run_printed(approve.replace("'true'", bad)).returncode == 0
        # The claim is not decided and the invocation does not fail: a new review request comes.
        approve, _ = stack.wait_review(marker, count=2 if bad == "'maybe'" else 3)
    assert stack.invocation(invocation)["status"] not in ("completed", "backing-off")
    log = (stack.workdir / "endpoint.log").read_text()
    assert "Ignored the answer 'maybe' to a review request: send true or false" in log

    assert run_printed(approve).returncode == 0
    resp = stack.output(invocation)
    assert resp.status_code == 200 and resp.json() == decided(marker, "approved")
    assert len(stack.llm_calls(marker)) == 2


# --- HumanClaimApprovalWithTimeoutsAgent -----------------------------------------------------------


def test_an_unanswered_approval_times_out_and_the_agent_decides(waiting_stack: Tour) -> None:
    stack = waiting_stack
    stack.restart_endpoint(APPROVAL_TIMEOUT_SECONDS="2")
    prompt, marker = claim()

    resp = stack.call("HumanClaimApprovalWithTimeoutsAgent/run", {"message": prompt})

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        f"The human review of the claim of 3,000 USD for broken leg ({marker}) timed out, "
        "so I evaluated it myself: approved (medical claim)."
    )
    assert len(stack.review_requests(marker)) == 1


def test_an_approval_in_time_wins_the_race(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim()
    invocation = stack.send("HumanClaimApprovalWithTimeoutsAgent/run", {"message": prompt})
    _, reject = stack.wait_review(marker)

    assert run_printed(reject).returncode == 0
    resp = stack.output(invocation)

    assert resp.status_code == 200 and resp.json() == decided(marker, "rejected")


def test_a_malformed_answer_keeps_the_original_deadline(waiting_stack: Tour) -> None:
    stack = waiting_stack
    stack.restart_endpoint(APPROVAL_TIMEOUT_SECONDS="6")
    prompt, marker = claim()
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
    prompt, marker = claim()
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


# --- SubWorkflowClaimApprovalAgent + HumanApprovalWorkflow --------------------------------------------


def test_the_approval_runs_as_its_own_durable_service(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim()
    invocation = stack.send("SubWorkflowClaimApprovalAgent/run", {"message": prompt})
    approve, _ = stack.wait_review(marker)

    # The admin API shows the workflow as a separate invocation, called by the agent's.
    children = wait_until(
        lambda: stack.admin.query(
            "SELECT id, target, status FROM sys_invocation "
            f"WHERE invoked_by_id = '{invocation}' AND target_service_name = 'HumanApprovalWorkflow'"
        ),
        what="the sub-workflow invocation",
    )
    assert [c["target"] for c in children] == ["HumanApprovalWorkflow/requestApproval"]
    if not FORCE_REPLAY:
        stack.wait_status(invocation, "suspended")  # the agent waits without holding the endpoint

    assert run_printed(approve).returncode == 0
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == decided(marker, "approved")
    assert stack.invocation(children[0]["id"])["completion_result"] == "success"


def test_the_sub_workflow_can_be_called_on_its_own(waiting_stack: Tour) -> None:
    stack = waiting_stack
    body = {"date": "2024-10-01", "amount": 3000, "category": "medical", "placeOfService": "General Hospital",
            "reason": "broken leg (direct call)"}  # fmt: skip
    invocation = stack.send("HumanApprovalWorkflow/requestApproval", body)
    _, reject = stack.wait_review("direct call")

    assert run_printed(reject).returncode == 0
    resp = stack.output(invocation)
    assert resp.status_code == 200 and resp.json() is False


def test_a_claim_with_bad_fields_is_refused(waiting_stack: Tour) -> None:
    resp = waiting_stack.call("HumanApprovalWorkflow/requestApproval", {"amount": "lots", "reason": "x"})

    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == (
        "Invalid request: amount: must be a number; category: required; placeOfService: required"
    )


def test_ingress_resolution_requires_json(waiting_stack: Tour) -> None:
    # Not from the tour, but what a typo looks like from curl: no body at all.
    resp = httpx.post(f"{waiting_stack.ingress}/restate/awakeables/sign_1notanid/resolve")
    assert resp.status_code == 400
