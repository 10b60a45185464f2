"""Tour step 4, workflows as tools: the approval as its own durable service, HumanApprovalWorkflow.

The server of this module suspends a waiting invocation after 2 s (instead of 1 min).
"""

import httpx
import pytest

from dev.harness import FORCE_REPLAY, Tour, wait_until
from tests.tour.helpers import claim_prompt, decided, run_printed

pytestmark = pytest.mark.e2e


def test_the_approval_runs_as_its_own_durable_service(waiting_stack: Tour) -> None:
    stack = waiting_stack
    prompt, marker = claim_prompt()
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
