"""The Agents SDK's own tool approvals, made durable: `needs_approval`, interruptions, RunState.

`ToolApprovalClaimAgent` pays claims with `pay_claim`, which needs a person's approval above 1,000
USD (`needs_approval`, a callable) and refuses payouts above the policy limit (a tool input
guardrail). When the run stops on interruptions, each pending call becomes an awakeable and a
review in the reviewers' inbox (:8000/reviews), and the invocation suspends; on the decisions the
run resumes from its RunState: approved, the payout runs once; rejected, the model reads why.
Nothing is kept beside the journal: a replay runs the same runs to the same decisions.

    curl localhost:8080/ToolApprovalClaimAgent/run/send --json '{"message": "Process my hospital bill of 3000USD for a broken leg."}'

Approve it at http://localhost:8000/reviews (or with the printed command): the answer says it was
paid. The UI shows `call LLM`, `Request review`, the awakeable, `Pay claim`, `call LLM`.
"""

import contextlib
import dataclasses
import json
from typing import Any

import restate
from agents import (
    Agent,
    RunConfig,
    RunContextWrapper,
    RunResult,
    ToolApprovalItem,
    ToolExecutionConfig,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrailData,
    tool_input_guardrail,
)
from agents.tool import DEFAULT_APPROVAL_REJECTION_MESSAGE
from pydantic import ValidationError
from restate.ext.openai import DurableRunner, durable_function_tool
from restate.serde import BytesSerde

from app.runtime.front_door import describe
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import POLICY_LIMIT, ClaimPrompt, InsuranceClaim, pay_out
from app.utils.review_inbox import Decision, parse_review, pending_review

APPROVAL_THRESHOLD = 1000  # USD: a payout above it waits for a person


def amount_of(arguments: str | None) -> Any:
    """The `amount` the model asked to pay; None if its arguments are not JSON (the tool tells it)."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return None
    return parsed.get("amount") if isinstance(parsed, dict) else None


async def above_threshold(wrapper: RunContextWrapper[Any], arguments: dict[str, Any], call_id: str) -> bool:
    amount = arguments.get("amount")
    # Arguments the model got wrong go to a person too (and if approved, to the tool's validation).
    return not isinstance(amount, int | float) or amount > APPROVAL_THRESHOLD


@tool_input_guardrail
def payout_within_limit(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    """No payout above the policy limit: the model is told, and nobody is asked to approve it;
    ten times the limit looks like fraud: the run stops (HTTP 422). Code, not a model: it decides
    the same on every replay, from the journaled call."""
    amount = amount_of(data.context.tool_arguments)
    if isinstance(amount, int | float) and amount > 10 * POLICY_LIMIT:
        return ToolGuardrailFunctionOutput.raise_exception(
            f"{amount:,.0f} USD is more than ten times the policy limit of {POLICY_LIMIT:,.0f} USD"
        )
    if isinstance(amount, int | float) and amount > POLICY_LIMIT:
        return ToolGuardrailFunctionOutput.reject_content(
            f"Not paid: {amount:,.0f} USD is above the policy limit of {POLICY_LIMIT:,.0f} USD."
        )
    return ToolGuardrailFunctionOutput.allow()


@durable_function_tool
async def pay_claim(
    wrapper: RunContextWrapper[restate.Context],
    amount: int | float,
    category: str,
    place_of_service: str,
    reason: str,
) -> str:
    """Pay out an insurance claim: the amount in USD, the kind of claim (e.g. medical), where the
    service was provided, what it was for. Returns the payment's confirmation."""
    try:
        claim = InsuranceClaim(
            amount=amount, category=category, place_of_service=place_of_service, reason=reason
        )
    except ValidationError as e:  # the model's arguments: it is told, and may try again
        return f"Error: not a valid claim ({describe(e)})"
    restate_context = wrapper.context
    # Journaled: a payment made is never made again, whatever crashes after it.
    return await restate_context.run_typed(
        "Pay claim", pay_out, claim=claim, payment_id=str(restate_context.uuid())
    )


# restate-sdk 1.3's durable_function_tool takes neither: set on the tool it returns. (Plain
# parameters: the Agents SDK hands a policy the arguments only when it need not convert them.)
pay_claim = dataclasses.replace(
    pay_claim, needs_approval=above_threshold, tool_input_guardrails=[payout_within_limit]
)

payout_agent = Agent[restate.Context](
    name="ToolApprovalClaimAgent",
    instructions="You are an insurance claim agent. Pay out each claim the user describes with "
    "pay_claim, one call per claim, then tell the user what was paid and what was not, and why.",
    tools=[pay_claim],
    model=MODEL,
)

agent_service = restate.Service("ToolApprovalClaimAgent")


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: ClaimPrompt) -> str:
    result = await run_with_approvals(restate_context, payout_agent, prompt.message)
    return str(result.final_output)


async def run_with_approvals(restate_context: restate.Context, agent: Agent[Any], message: str) -> RunResult:
    """Run `agent`, and every time it stops on tool approvals, ask people and go on from there."""
    # The guardrail runs before a person is asked: nobody approves what the policy refuses anyway.
    settings = RunConfig(tool_execution=ToolExecutionConfig(pre_approval_tool_input_guardrails=True))
    result = await DurableRunner.run(
        agent,
        message,
        context=restate_context,
        run_config=settings,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    while result.interruptions:
        state = result.to_state()
        pending = state.get_interruptions()
        for item, decision in zip(pending, await decide(restate_context, agent.name, pending), strict=True):
            if decision.approved:
                state.approve(item)
            else:
                state.reject(item, rejection_message=rejection(decision))
        # The run goes on from where it stopped: the approved calls run, the rejected ones are told.
        # (restate-sdk 1.3 types `input` without RunState; Runner.run takes it as it is.)
        result = await DurableRunner.run(
            agent,
            state,  # type: ignore[arg-type]
            context=restate_context,
            run_config=settings,
            run_options=LLM_RETRY,
            max_turns=MAX_TURNS,
        )
    return result


async def decide(
    restate_context: restate.Context, agent: str, pending: list[ToolApprovalItem]
) -> list[Decision]:
    """A person's decision on each interrupted call, all asked at once: one awakeable and one
    review each, in the order of the interruptions (so a replay asks in the same order)."""
    decisions: dict[int, Decision] = {}
    while len(decisions) < len(pending):
        async with contextlib.AsyncExitStack() as reviews:
            waiting = {}
            for i, item in enumerate(pending):
                if i in decisions:
                    continue
                claim = claim_of(item)
                if claim is None:  # not a claim: nothing a person could approve
                    decisions[i] = Decision(False, INVALID_ARGUMENTS)
                    continue
                approval_id, approval = restate_context.awakeable(serde=BytesSerde())
                await reviews.enter_async_context(pending_review(restate_context, agent, claim, approval_id))
                waiting[i] = approval
            if waiting:
                await restate.gather(*waiting.values())
            for i, approval in waiting.items():
                if (decision := parse_review(await approval)) is not None:
                    decisions[i] = decision
                # Not true, false or a decision with a reason: asked again, in a new review.
    return [decisions[i] for i in range(len(pending))]


def claim_of(item: ToolApprovalItem) -> InsuranceClaim | None:
    """The claim a payout call is about (its arguments, or their `claim`), or None if not one."""
    try:
        arguments = json.loads(item.arguments or "")
        return InsuranceClaim.model_validate(arguments.get("claim", arguments))
    except (ValueError, TypeError, AttributeError):  # not JSON, not an object, not a claim
        return None


# What the model reads for a call whose arguments are no claim: the words it gets for any invalid call.
INVALID_ARGUMENTS = "An error occurred while calling the tool: its arguments are not a valid claim."


def rejection(decision: Decision) -> str | None:
    """What the model reads for a rejected call: the SDK's message, with the reviewer's reason."""
    if decision.reason == INVALID_ARGUMENTS:
        return INVALID_ARGUMENTS
    return f"{DEFAULT_APPROVAL_REJECTION_MESSAGE} Reason: {decision.reason}" if decision.reason else None
