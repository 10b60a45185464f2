"""Agentic workflows: the prompt chain, ClaimReimbursement/process (parse, analyse, convert, pay)."""

import re

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


def payments(stack: Tour, amount: str) -> list[str]:
    log = (stack.workdir / "endpoint.log").read_text(errors="replace")
    return re.findall(rf"💸 Reimbursed {re.escape(amount)} USD for claim \S+", log)


def test_a_claim_in_euros_is_parsed_analysed_converted_and_paid(stack: Tour) -> None:
    resp = stack.call(
        "ClaimReimbursement/process",
        {"message": "Process my hospital bill of 3000EUR for a broken leg (rb1)."},
    )

    assert resp.status_code == 200, resp.text
    answer = resp.json()
    claim_id = answer["confirmation"].removeprefix("Payment processed for claim ").split(":")[0]
    assert answer == {
        "analysis": "The claim of 3,000 EUR for broken leg (rb1) is valid (medical claim). Approved amount: 3,000 EUR.",
        "amount_usd": 3240.0,
        "confirmation": f"Payment processed for claim {claim_id}: $3,240.00",
    }
    assert stack.run_steps(resp.headers["x-restate-id"]) == [
        "call LLM",
        "call LLM",
        "Convert currency",
        "Process payment",
    ]


def test_the_default_claim_is_the_tours(stack: Tour) -> None:
    resp = stack.call("ClaimReimbursement/process", {})

    assert resp.status_code == 200, resp.text
    assert resp.json()["analysis"].startswith("The claim of 3,000 USD for broken leg is valid")
    assert resp.json()["amount_usd"] == 3000.0


def test_a_currency_the_exchange_does_not_know_ends_the_run_without_paying(stack: Tour) -> None:
    resp = stack.call(
        "ClaimReimbursement/process",
        {"message": "Process my hospital bill of 300000 JPY for a broken leg (rb2)."},
    )

    assert resp.status_code == 422, resp.text
    assert resp.json()["message"] == "Cannot convert 'JPY': known currencies are USD, EUR, GBP, CHF"
    assert "Process payment" not in stack.run_steps(resp.headers["x-restate-id"])


def test_bad_input_is_a_400_naming_the_field(stack: Tour) -> None:
    resp = stack.call("ClaimReimbursement/process", {"msg": "Process my bill."})

    assert resp.status_code == 400
    assert resp.json()["message"] == "Invalid request: msg: unknown field"


@pytest.mark.crash
def test_a_crash_mid_chain_repeats_no_llm_call_and_pays_once(stack: Tour) -> None:
    prompt = "Process my hospital bill of 2000GBP for a broken arm (rb3)."
    # The analyst's LLM call (the second of the chain) hangs: the endpoint dies after the parse.
    stack.llm.fault("llm", count=1, after=1, hang=300, status=200, containing="broken arm (rb3)")
    since = stack.llm_seq()
    invocation = stack.send("ClaimReimbursement/process", {"message": prompt})
    wait_until(lambda: stack.llm_calls_of("Assess whether this claim is valid", since), what="the analysis")

    stack.kill_endpoint()
    stack.restart_endpoint()

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert resp.json()["amount_usd"] == 2540.0
    assert len([c for c in stack.llm_calls(prompt) if c.get("status") == 200]) == 1  # parsed once
    assert len(payments(stack, "2,540.00")) == 1
