"""Resilient multi-agent coordination: remote agents as tools.

Service `RemoteMultiAgentClaimApproval`: a coordinator whose tools call the `EligibilityAgent` and
`FraudAgent` services (app/utils/sub_agents.py) with durable service calls. They can be deployed
and scaled apart, each is its own invocation in the UI, and a crash of the coordinator neither
loses nor repeats them: the calls and their answers are journaled.

    curl localhost:8080/RemoteMultiAgentClaimApproval/run --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'

The remote agents are services, not handlers of the caller's Virtual Object: a handler of an
object that called another handler of the same object key would wait for itself (only one
exclusive handler runs per key at a time), a deadlock.
"""

import restate
from agents import Agent, RunContextWrapper
from restate.ext.openai import DurableRunner, durable_function_tool

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import InsuranceClaim
from app.utils.sub_agents import run_eligibility_agent, run_fraud_agent


@durable_function_tool
async def check_eligibility(wrapper: RunContextWrapper[restate.Context], claim: InsuranceClaim) -> str:
    """Analyze whether the claim is eligible for reimbursement."""
    return await wrapper.context.service_call(run_eligibility_agent, arg=claim)


@durable_function_tool
async def check_fraud(wrapper: RunContextWrapper[restate.Context], claim: InsuranceClaim) -> str:
    """Analyze the probability that the claim is fraudulent."""
    return await wrapper.context.service_call(run_fraud_agent, arg=claim)


claim_approval_coordinator = Agent[restate.Context](
    name="ClaimApprovalCoordinator",
    instructions="You are a claim approval engine. Analyze the claim and use your tools to decide "
    "whether to approve it.",
    tools=[check_eligibility, check_fraud],
    model=MODEL,
)

remote_agent_service = restate.Service("RemoteMultiAgentClaimApproval")


@remote_agent_service.handler()
async def run(restate_context: restate.Context, claim: InsuranceClaim) -> str:
    result = await DurableRunner.run(
        claim_approval_coordinator,
        f"Claim: {claim.model_dump_json(by_alias=True)}",
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return str(result.final_output)
