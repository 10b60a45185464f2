"""Guardrails: checks around an agent, each backed by its own small agent, all of it durable.

`GuardedClaimAgent` decides claims between an input guardrail (`is_insurance_claim`: is the
message a claim at all? run before the claim agent's first LLM call) and an output guardrail
(`within_policy_limit`: the answer never promises more than POLICY_LIMIT, default 10000; the
comparison is code, not the model's opinion). The guardrail agents run with `DurableRunner.run`
too, so their verdicts are journaled `call LLM` steps: a retry or a crash never asks again, and a
tripped guardrail ends the invocation with a terminal HTTP 422 naming it (docs/beyond-the-tour.md).

    curl localhost:8080/GuardedClaimAgent/run --json '{"message": "What is the capital of France?"}'
        -> 422 Input guardrail 'is_insurance_claim' tripped: The message describes no loss, damage or bill to reimburse.

The UI shows one `call LLM` step for each guardrail agent and one for the claim agent.
"""

import restate
from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    TResponseInputItem,
    input_guardrail,
    output_guardrail,
)
from pydantic import BaseModel, Field
from restate.ext.openai import DurableRunner

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import POLICY_LIMIT, ClaimPrompt


def guardrail_agent(guardrail: str, task: str, verdict: type[BaseModel]) -> Agent[restate.Context]:
    """The small agent behind a guardrail: it answers with its `verdict` model, as JSON."""
    return Agent[restate.Context](
        name=f"{verdict.__name__}Guardrail",
        instructions=f"Guardrail '{guardrail}': {task} Give the reason in one sentence.",
        output_type=verdict,
        model=MODEL,
    )


# --- the input guardrail -----------------------------------------------------------------------------


class ClaimCheck(BaseModel):
    """The input guardrail agent's verdict."""

    is_insurance_claim: bool = Field(description="True if the message is an insurance claim.")
    reason: str = Field(description="One sentence: why.")


claim_check_agent = guardrail_agent(
    "is_insurance_claim",
    "decide whether the user's message is an insurance claim, i.e. asks to be reimbursed an amount "
    "for a loss, a damage, a bill or an injury.",
    ClaimCheck,
)


@input_guardrail(name="is_insurance_claim", run_in_parallel=False)
async def is_insurance_claim(
    wrapper: RunContextWrapper[restate.Context],
    agent: Agent[restate.Context],
    input: str | list[TResponseInputItem],
) -> GuardrailFunctionOutput:
    # DurableRunner.run: the guardrail agent's LLM call is journaled too.
    result = await DurableRunner.run(
        claim_check_agent, input, context=wrapper.context, run_options=LLM_RETRY, max_turns=MAX_TURNS
    )
    check = result.final_output_as(ClaimCheck)
    return GuardrailFunctionOutput(output_info=check.reason, tripwire_triggered=not check.is_insurance_claim)


# --- the output guardrail ----------------------------------------------------------------------------


class PayoutCheck(BaseModel):
    """What the output guardrail agent read in the answer."""

    promised_amount: float | None = Field(
        description="The largest amount the answer promises to pay; null if it promises no payment."
    )
    reason: str = Field(description="One sentence: why.")


payout_check_agent = guardrail_agent(
    "within_policy_limit",
    "read an insurance agent's answer to a customer and report the largest amount it promises to "
    "pay (null if it promises no payment).",
    PayoutCheck,
)


@output_guardrail(name="within_policy_limit")
async def within_policy_limit(
    wrapper: RunContextWrapper[restate.Context], agent: Agent[restate.Context], output: str
) -> GuardrailFunctionOutput:
    result = await DurableRunner.run(
        payout_check_agent, str(output), context=wrapper.context, run_options=LLM_RETRY, max_turns=MAX_TURNS
    )
    check = result.final_output_as(PayoutCheck)
    promised = check.promised_amount
    if promised is not None and promised > POLICY_LIMIT:
        reason = f"the answer promises {promised:,.0f}, more than the policy limit of {POLICY_LIMIT:,.0f}."
        return GuardrailFunctionOutput(output_info=reason, tripwire_triggered=True)
    return GuardrailFunctionOutput(output_info=check.reason, tripwire_triggered=False)


# --- the guarded agent ----------------------------------------------------------------------------------

guarded_claim_agent = Agent[restate.Context](
    name="GuardedClaimAgent",
    instructions="You are an insurance claim evaluation agent. Decide whether the claim is covered "
    "and tell the customer what will be paid.",
    input_guardrails=[is_insurance_claim],
    output_guardrails=[within_policy_limit],
    model=MODEL,
)

agent_service = restate.Service("GuardedClaimAgent")


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: ClaimPrompt) -> str:
    result = await DurableRunner.run(
        guarded_claim_agent,
        prompt.message,
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return str(result.final_output)
