"""Tour steps 5-7: the Chat Virtual Object, handoffs that remember, remote agents as tools."""

import concurrent.futures
import itertools
import re
from typing import Any

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

_keys = itertools.count(1)


def new_key(prefix: str) -> str:
    return f"{prefix}-{next(_keys)}"


def history(stack: Tour, key: str) -> list[dict[str, Any]]:
    resp = stack.http.get(f"/Chat/{key}/get_history")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()
    return items


def text_of(item: dict[str, Any]) -> str:
    content = item["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


# --- Chat ------------------------------------------------------------------------------------------


def test_the_chat_remembers_and_the_history_holds_every_message(stack: Tour) -> None:
    key = new_key("alice")

    first = stack.call(f"Chat/{key}/message", {"message": "My name is Alice."})
    second = stack.call(f"Chat/{key}/message", {"message": "What is my name?"})

    assert first.json() == "Nice to meet you, Alice! I will remember your name."
    assert second.json() == "Your name is Alice."
    items = history(stack, key)
    assert [(i["role"], text_of(i)) for i in items] == [
        ("user", "My name is Alice."),
        ("assistant", "Nice to meet you, Alice! I will remember your name."),
        ("user", "What is my name?"),
        ("assistant", "Your name is Alice."),
    ]


def test_each_key_is_its_own_conversation(stack: Tour) -> None:
    alice, bob = new_key("alice"), new_key("bob")
    stack.call(f"Chat/{alice}/message", {"message": "My name is Alice."})

    answer = stack.call(f"Chat/{bob}/message", {"message": "What is my name?"})

    assert answer.json() == "You have not told me your name yet."
    assert len(history(stack, alice)) == 2 and len(history(stack, bob)) == 2


def test_the_default_message_is_the_tours_poem(stack: Tour) -> None:
    resp = stack.call(f"Chat/{new_key('poet')}/message", {})

    assert resp.status_code == 200
    assert resp.json().startswith("A poem about durable execution:")


def test_concurrent_messages_to_one_chat_queue_up_and_none_is_lost(stack: Tour) -> None:
    key = new_key("busy")

    def send(i: int) -> str:
        resp = stack.call(f"Chat/{key}/message", {"message": f"note {i}"})
        assert resp.status_code == 200, resp.text
        answer: str = resp.json()
        return answer

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, range(20)))

    # Each message saw all the ones before it (one at a time per key): positions 1..20, no repeats.
    positions = sorted(int(re.search(r"message (\d+) of", a).group(1)) for a in answers)
    assert positions == list(range(1, 21))
    items = history(stack, key)
    assert len(items) == 40
    for user_item, answer_item in zip(items[::2], items[1::2], strict=True):
        assert user_item["role"] == "user" and answer_item["role"] == "assistant"
        assert f"You said: {text_of(user_item)!r}." in text_of(answer_item)  # never interleaved


def test_get_history_answers_while_a_message_is_in_flight(stack: Tour) -> None:
    key = new_key("slow")
    stack.call(f"Chat/{key}/message", {"message": "first message"})
    stack.llm.fault("llm", count=1, hang=4, status=200)  # the next LLM call takes 4 s
    invocation = stack.send(f"Chat/{key}/message", {"message": "second message"})
    wait_until(lambda: stack.llm_calls("second message"), what="the slow LLM call to start")

    items = history(stack, key)  # a shared handler: not queued behind the running `message`

    assert stack.invocation(invocation)["status"] != "completed"
    assert [text_of(i) for i in items if i["role"] == "user"] == ["first message"]
    assert stack.output(invocation).status_code == 200
    assert len(history(stack, key)) == 4


@pytest.mark.crash
def test_the_history_survives_an_endpoint_crash_and_a_server_restart(stack: Tour) -> None:
    key = new_key("survivor")
    stack.call(f"Chat/{key}/message", {"message": "My name is Mona."})
    before = history(stack, key)

    stack.kill_endpoint()
    stack.restart_endpoint()
    stack.restart_server()

    assert history(stack, key) == before
    assert stack.call(f"Chat/{key}/message", {"message": "What is my name?"}).json() == "Your name is Mona."


def test_clear_starts_the_conversation_over(stack: Tour) -> None:
    key = new_key("forgetful")
    stack.call(f"Chat/{key}/message", {"message": "My name is Nora."})

    assert stack.http.post(f"/Chat/{key}/clear").status_code == 200

    assert history(stack, key) == []
    assert stack.call(f"Chat/{key}/message", {"message": "What is my name?"}).json() == (
        "You have not told me your name yet."
    )


# --- MultiAgentClaimApproval: handoffs, the last agent kept in state -------------------------------------


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


# --- RemoteMultiAgentClaimApproval: remote agents as tools ----------------------------------------------


def sub_invocations(stack: Tour, parent: str) -> list[str]:
    """The remote agents' invocations (not the cost ledger's records, one per LLM call)."""
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
