"""Tour step 6, agents as handoffs: MultiAgentClaimApproval keeps the last agent in state."""

import itertools
from typing import Any

import pytest

from dev.harness import Tour

pytestmark = pytest.mark.e2e

_keys = itertools.count(1)


def new_key(prefix: str) -> str:
    return f"{prefix}-{next(_keys)}"


def claim(reason: str, category: str = "orthopedic", amount: float = 3000) -> dict[str, Any]:
    return {"date": "2024-10-01", "amount": amount, "category": category, "placeOfService": "General Hospital",
            "reason": reason}  # fmt: skip


def object_state(stack: Tour, service: str, key: str) -> dict[str, str]:
    rows = stack.admin.query(
        f"SELECT key, value_utf8 FROM state WHERE service_name = '{service}' AND service_key = '{key}'"
    )
    return {r["key"]: r["value_utf8"] for r in rows}


def test_a_medical_claim_lands_with_the_medical_specialist_who_keeps_the_customer(stack: Tour) -> None:
    key = new_key("customer")
    resp = stack.call(f"MultiAgentClaimApproval/{key}/run", claim("hospital bill for a broken leg (c1)"))

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith("As the medical specialist, I reviewed the claim of 3,000 USD")
    assert object_state(stack, "MultiAgentClaimApproval", key)["last_agent_name"] == '"MedicalSpecialist"'
    agents = [c["agent"] for c in stack.llm_calls("(c1)")]
    assert len(agents) == 2
    assert agents[0].startswith("Route insurance claims to the right specialist")
    assert agents[1].startswith("Review medical claims for coverage and necessity")

    # The next claim of this customer goes straight to the specialist, with the conversation so far.
    follow_up = stack.call(
        f"MultiAgentClaimApproval/{key}/run", claim("follow-up physiotherapy (c2)", amount=800)
    )

    assert follow_up.status_code == 200, follow_up.text
    calls = stack.llm_calls("(c2)")
    assert len(calls) == 1 and calls[0]["agent"].startswith("Review medical claims")
    items = object_state(stack, "MultiAgentClaimApproval", key)["items"]
    assert "(c1)" in items and "(c2)" in items and "transfer_to_medicalspecialist" in items


def test_an_auto_claim_lands_with_the_auto_specialist(stack: Tour) -> None:
    key = new_key("driver")
    resp = stack.call(
        f"MultiAgentClaimApproval/{key}/run", claim("rear bumper after a collision", "auto", 1800)
    )

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith("As the auto specialist, I reviewed the claim of 1,800 USD")
    assert object_state(stack, "MultiAgentClaimApproval", key)["last_agent_name"] == '"AutoSpecialist"'


def test_a_specialist_hands_a_claim_outside_its_competence_back_to_intake(stack: Tour) -> None:
    key = new_key("customer")
    first = stack.call(f"MultiAgentClaimApproval/{key}/run", claim("hospital bill for a broken leg (h1)"))
    assert first.status_code == 200, first.text
    assert object_state(stack, "MultiAgentClaimApproval", key)["last_agent_name"] == '"MedicalSpecialist"'

    # The same customer's car claim starts with the medical specialist, who hands it back.
    resp = stack.call(
        f"MultiAgentClaimApproval/{key}/run", claim("rear bumper after a collision (h2)", "auto", 1800)
    )

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        "As the auto specialist, I reviewed the claim of 1,800 USD for rear bumper after a collision (h2): "
        "approved."
    )
    assert [c["agent"][:30] for c in stack.llm_calls("(h2)")] == [
        "Review medical claims for cove",
        "Route insurance claims to the ",
        "Assess auto claims for liabili",
    ]
    assert object_state(stack, "MultiAgentClaimApproval", key)["last_agent_name"] == '"AutoSpecialist"'


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (
            {k: v for k, v in claim("x").items() if k != "placeOfService"},
            "Invalid request: placeOfService: required",
        ),
        ({**claim("x"), "amount": "three thousand"}, "Invalid request: amount: must be a number"),
    ],
)
def test_a_malformed_claim_is_refused_with_a_message(
    stack: Tour, body: dict[str, Any], complaint: str
) -> None:
    for path in (f"MultiAgentClaimApproval/{new_key('bad')}/run", "RemoteMultiAgentClaimApproval/run"):
        resp = stack.call(path, body)

        assert resp.status_code == 400, resp.text
        assert resp.json()["message"] == complaint
        row = stack.invocation(resp.headers["x-restate-id"])
        assert row["status"] == "completed" and row["completion_result"] == "failure"
