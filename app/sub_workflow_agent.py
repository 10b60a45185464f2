"""Resilient workflows as tools: the approval as a separate durable service.

`HumanApprovalWorkflow` owns the awakeable and the review request; the agent's tool calls it with
a durable service call. Restate proxies the call, persists it and delivers the result, so the two
can be developed, deployed and scaled apart, and the agent suspends while the workflow waits.

    curl localhost:8080/SubWorkflowClaimApprovalAgent/run/send --json '{"message": "Process my hospital bill of 3000USD for a broken leg."}'

The UI shows the agent's invocation calling HumanApprovalWorkflow/requestApproval, which waits for
the command printed in the service log (`... --json 'true'`).
"""

import restate
from agents import Agent, RunContextWrapper
from restate.ext.openai import DurableRunner, durable_function_tool
from restate.serde import BytesSerde

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import ClaimPrompt, InsuranceClaim
from app.utils.review_inbox import parse_decision, pending_review

# The sub-workflow: a plain Restate service with its own journal, usable by any agent or service.
human_approval_workflow = restate.Service("HumanApprovalWorkflow")


@human_approval_workflow.handler("requestApproval")
async def request_approval(restate_context: restate.Context, claim: InsuranceClaim) -> bool:
    """Ask a human to review the claim and wait for the decision (true: approved)."""
    while True:
        approval_id, approval = restate_context.awakeable(serde=BytesSerde())
        async with pending_review(restate_context, "HumanApprovalWorkflow", claim, approval_id):
            decision = parse_decision(await approval)
        if decision is not None:
            return decision
        # Not true or false (e.g. --json 'maybe'): the claim stays pending; ask again.


@durable_function_tool
async def human_approval(wrapper: RunContextWrapper[restate.Context], claim: InsuranceClaim) -> str:
    """Ask a human to approve or reject a high-value claim; returns the decision."""
    # A durable call: sent once, answered once, even if this endpoint crashes while it waits.
    approved = await wrapper.context.service_call(request_approval, arg=claim)
    return "Approved" if approved else "Rejected"


sub_workflow_agent = Agent[restate.Context](
    name="SubWorkflowClaimApprovalAgent",
    instructions="You are an insurance claim evaluation agent. Use these rules: "
    "if the amount is more than 1000, ask for human approval; "
    "if the amount is less than 1000, decide by yourself.",
    tools=[human_approval],
    model=MODEL,
)

agent_service = restate.Service("SubWorkflowClaimApprovalAgent")


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: ClaimPrompt) -> str:
    result = await DurableRunner.run(
        sub_workflow_agent,
        prompt.message,
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return str(result.final_output)
