"""Tour step 2, human-in-the-loop: HumanClaimApprovalAgent waits for a person, durably.

The server of this module suspends a waiting invocation after 2 s (instead of 1 min), so every
pending approval here is a suspended one, as it would be after a minute in the tour.
"""

import pytest

from dev.harness import Tour
from tests.tour.helpers import claim_prompt, decided, run_printed

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("choice", "verdict"), [(0, "approved"), (1, "rejected")])
def test_a_human_decides_a_high_value_claim(waiting_stack: Tour, choice: int, verdict: str) -> None:
    stack = waiting_stack
    prompt, marker = claim_prompt()
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
    prompt, marker = claim_prompt("500USD")

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
    prompt, marker = claim_prompt()
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
    prompt, marker = claim_prompt()
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
    prompt, marker = claim_prompt()
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
    prompt, marker = claim_prompt()
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
