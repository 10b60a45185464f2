"""Human-in-the-loop: an agent that waits for a person's approval, durably.

Claims above 1000 need a human. The `human_approval` tool creates an awakeable (a durable promise
that anyone can complete over HTTP), asks for a review, and waits. While it waits, Restate
suspends the invocation: the endpoint can crash, be redeployed or scale to zero, and nothing is
lost; the approval resumes it.

    curl localhost:8080/HumanClaimApprovalAgent/run/send --json '{"message": "Process my hospital bill of 3000USD for a broken leg."}'

The service log prints the command that approves (`'true'`) or rejects (`'false'`) the claim:

    curl localhost:8080/restate/awakeables/<id>/resolve --json 'true'

Then the agent answers, and the UI shows the invocation going from suspended to completed.
"""

import restate
from agents import Agent, RunContextWrapper
from restate.ext.openai import DurableRunner, durable_function_tool
from restate.serde import BytesSerde

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import ClaimPrompt, InsuranceClaim
from app.utils.review_inbox import parse_decision, pending_review


@durable_function_tool
async def human_approval(wrapper: RunContextWrapper[restate.Context], claim: InsuranceClaim) -> str:
    """Ask a human to approve or reject a high-value claim; returns the decision."""
    restate_context = wrapper.context
    while True:
        # The awakeable's id is journaled: after a crash the tool waits on the same promise, and the
        # command printed before the crash still works.
        approval_id, approval = restate_context.awakeable(serde=BytesSerde())
        # The "Request review" step, and the review in the reviewers' inbox while it is pending.
        async with pending_review(restate_context, "HumanClaimApprovalAgent", claim, approval_id):
            decision = parse_decision(await approval)
        if decision is not None:
            return "Approved" if decision else "Rejected"
        # Not true or false (e.g. --json 'maybe'): the claim stays pending; ask again.


claim_approval_agent = Agent[restate.Context](
    name="HumanClaimApprovalAgent",
    instructions="You are an insurance claim evaluation agent. Use these rules: "
    "if the amount is more than 1000, ask for human approval; "
    "if the amount is less than 1000, decide by yourself.",
    tools=[human_approval],
    model=MODEL,
)

agent_service = restate.Service("HumanClaimApprovalAgent")


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
