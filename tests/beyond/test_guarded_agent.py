"""Beyond the tour: GuardedClaimAgent, input and output guardrails, journaled."""

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


INPUT_GUARDRAIL = "Guardrail 'is_insurance_claim'"
OUTPUT_GUARDRAIL = "Guardrail 'within_policy_limit'"
CLAIM_AGENT = "You are an insurance claim evaluation agent. Decide whether the claim is covered"


def test_a_claim_passes_both_guardrails_and_every_llm_call_is_journaled(stack: Tour) -> None:
    since = stack.llm_seq()
    invocation = stack.send(
        "GuardedClaimAgent/run", {"message": "Process my hospital bill of 3000USD for a broken leg."}
    )
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == "I reviewed the claim of 3,000 USD for broken leg: approved."
    # In this order: the input guardrail, the claim agent, the output guardrail; each once.
    agents = [c["agent"][:30] for c in stack.llm_calls_of("", since)]
    assert agents == [INPUT_GUARDRAIL[:30], CLAIM_AGENT[:30], OUTPUT_GUARDRAIL[:30]]
    # The guardrail agents' LLM calls are journaled steps of the invocation, like the agent's own.
    assert stack.run_steps(invocation) == ["call LLM", "call LLM", "call LLM"]


def test_a_message_that_is_not_a_claim_trips_the_input_guardrail_before_the_agent_runs(stack: Tour) -> None:
    since = stack.llm_seq()
    invocation = stack.send("GuardedClaimAgent/run", {"message": "What is the capital of France?"})
    resp = stack.output(invocation)

    assert resp.status_code == 422, resp.text
    assert resp.json()["message"] == (
        "Input guardrail 'is_insurance_claim' tripped: "
        "The message describes no loss, damage or bill to reimburse."
    )
    assert len(stack.llm_calls_of(INPUT_GUARDRAIL, since)) == 1
    assert stack.llm_calls_of(CLAIM_AGENT, since) == []  # the claim agent was never asked
    assert stack.llm_calls_of(OUTPUT_GUARDRAIL, since) == []
    # A terminal error: the invocation is over (a retryable one would keep it backing off).
    assert stack.wait_status(invocation, "completed")["completion_failure"] == (
        "[422] Input guardrail 'is_insurance_claim' tripped: "
        "The message describes no loss, damage or bill to reimburse."
    )
    assert stack.run_steps(invocation) == ["call LLM"]


def test_an_answer_promising_more_than_the_policy_limit_trips_the_output_guardrail(stack: Tour) -> None:
    since = stack.llm_seq()
    resp = stack.call(
        "GuardedClaimAgent/run", {"message": "Process my hospital bill of 50000USD for a broken leg."}
    )

    assert resp.status_code == 422, resp.text
    assert resp.json()["message"] == (
        "Output guardrail 'within_policy_limit' tripped: "
        "the answer promises 50,000, more than the policy limit of 10,000."
    )
    assert [len(stack.llm_calls_of(a, since)) for a in (INPUT_GUARDRAIL, CLAIM_AGENT, OUTPUT_GUARDRAIL)] == [
        1,
        1,
        1,
    ]
    # Not retried: no LLM call after the tripwire.
    assert len(stack.llm_calls_of("", since)) == 3


@pytest.mark.crash
def test_a_crash_after_the_input_guardrail_does_not_ask_it_again(stack: Tour) -> None:
    since = stack.llm_seq()
    # The input guardrail's call goes through; the claim agent's call hangs: the crash comes after
    # the guardrail's verdict was journaled.
    stack.llm.fault("llm", count=1, after=1, hang=30, status=200)
    invocation = stack.send(
        "GuardedClaimAgent/run", {"message": "Process my dental bill of 800USD for a root canal."}
    )
    wait_until(lambda: stack.llm_calls_of(CLAIM_AGENT, since), what="the claim agent's call to be in flight")

    stack.kill_endpoint()
    stack.restart_endpoint()
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == "I reviewed the claim of 800 USD for root canal: approved."
    assert len(stack.llm_calls_of(INPUT_GUARDRAIL, since)) == 1  # replayed from the journal
    assert len(stack.llm_calls_of(CLAIM_AGENT, since)) == 2  # the call that never answered, made again
    assert len(stack.llm_calls_of(OUTPUT_GUARDRAIL, since)) == 1
    assert stack.run_steps(invocation) == ["call LLM", "call LLM", "call LLM"]


def test_a_guardrail_verdict_that_is_not_json_ends_the_run_instead_of_retrying_forever(stack: Tour) -> None:
    since = stack.llm_seq()
    # The input guardrail's model answers prose where its output type wants JSON.
    stack.llm.fault("llm", count=1, misbehave="long_answer", length=28)
    resp = stack.call("GuardedClaimAgent/run", {"message": "Process my hospital bill of 300USD for a cast."})

    assert resp.status_code == 502, resp.text
    assert resp.json()["message"] == (
        "The model's answer does not fit the agent's output type (ClaimCheckGuardrail): "
        "Invalid JSON when parsing model output"
    )
    assert len(stack.llm_calls_of("", since)) == 1  # told once, the journaled answer is not asked again
