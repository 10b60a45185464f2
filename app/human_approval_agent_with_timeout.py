"""Timeouts and escalation: the approval races a durable timer.

The same claim agent as in human_approval_agent.py, but a human has at most 3 hours (our SLA) to
answer. `restate.select` waits for whichever comes first: the approval or the timer. Both are
durable: the timer lives in the Restate Server, so a crash or restart of the endpoint neither
resets it nor loses it, and the wait resumes with the time that is left.

    curl localhost:8080/HumanClaimApprovalWithTimeoutsAgent/run/send --json '{"message": "Process my hospital bill of 3000USD for a broken leg."}'

Resolve it with the command from the service log, or let the timer expire: the agent then decides
by itself. APPROVAL_TIMEOUT_SECONDS (default 10800) shortens the timeout, to watch that path.
"""

import os
from datetime import timedelta

import restate
from agents import Agent, RunContextWrapper
from restate.ext.openai import DurableRunner, durable_function_tool
from restate.serde import BytesSerde

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import ClaimPrompt, InsuranceClaim
from app.utils.review_inbox import parse_decision, pending_review, seconds_from_now

APPROVAL_TIMEOUT = timedelta(seconds=float(os.environ.get("APPROVAL_TIMEOUT_SECONDS", 3 * 60 * 60)))


@durable_function_tool
async def human_approval(wrapper: RunContextWrapper[restate.Context], claim: InsuranceClaim) -> str:
    """Ask a human to approve or reject a high-value claim; returns the decision or a timeout."""
    restate_context = wrapper.context
    # The timer's deadline is journaled when it is created: a restarted endpoint waits for what
    # is left of it, not for a new full timeout.
    timeout = restate_context.sleep(APPROVAL_TIMEOUT)
    # The same deadline as a journaled value, for the reviewers' inbox.
    deadline = await restate_context.run_typed(
        "Deadline", seconds_from_now, seconds=APPROVAL_TIMEOUT.total_seconds()
    )
    while True:
        approval_id, approval = restate_context.awakeable(serde=BytesSerde())
        agent = "HumanClaimApprovalWithTimeoutsAgent"
        async with pending_review(restate_context, agent, claim, approval_id, times_out_at=deadline):
            match await restate.select(approval=approval, timeout=timeout):
                case ["approval", answer]:
                    decision = parse_decision(answer)
                    if decision is not None:
                        return "Approved" if decision else "Rejected"
                    # Not true or false: ask again, within the same deadline.
                case _:
                    return "Approval timed out - evaluate the claim yourself"


claim_approval_agent = Agent[restate.Context](
    name="HumanClaimApprovalWithTimeoutsAgent",
    instructions="You are an insurance claim evaluation agent. Use these rules: "
    "if the amount is more than 1000, ask for human approval; "
    "if the amount is less than 1000, decide by yourself.",
    tools=[human_approval],
    model=MODEL,
)

agent_service = restate.Service("HumanClaimApprovalWithTimeoutsAgent")


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: ClaimPrompt) -> str:
    result = await DurableRunner.run(
        claim_approval_agent,
        prompt.message,
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return str(result.final_output)
