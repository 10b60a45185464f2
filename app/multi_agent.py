"""Resilient multi-agent coordination: handoffs that remember, and remote agents as tools.

1. Agents as handoffs — Virtual Object `MultiAgentClaimApproval`. An intake agent hands the claim
   to the medical or the auto specialist, in the same process. The conversation lives in the
   object's session, and the name of the agent that answered last is kept in the object's state:
   the next claim for the same key goes straight to that specialist.

    curl localhost:8080/MultiAgentClaimApproval/customer-1/run --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'

2. Remote agents as tools — service `RemoteMultiAgentClaimApproval`. A coordinator whose tools call
   the `EligibilityAgent` and `FraudAgent` services (app/utils/sub_agents.py) with durable service
   calls: they can be deployed and scaled apart, each is its own invocation in the UI, and a crash
   of the coordinator neither loses nor repeats them.

    curl localhost:8080/RemoteMultiAgentClaimApproval/run --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'

The remote agents are services, not handlers of the caller's Virtual Object: a handler of an
object that called another handler of the same object key would wait for itself (only one
exclusive handler runs per key at a time), a deadlock.
"""

import restate
from agents import Agent, RunContextWrapper, handoff
from restate.ext.openai import durable_function_tool

from app.utils.agent_runs import run_agent
from app.utils.llm import MODEL
from app.utils.models import InsuranceClaim
from app.utils.session import BoundedSession
from app.utils.sub_agents import run_eligibility_agent, run_fraud_agent

# --- 1. Agents as handoffs, the last agent kept in state ---------------------------------------

medical_specialist = Agent[restate.ObjectContext](
    name="MedicalSpecialist",
    handoff_description="Handles medical insurance claims, from intake to final decision.",
    instructions="Review medical claims for coverage and necessity. Approve or deny claims up to $50,000. "
    "Hand any other claim back to the intake agent.",
    model=MODEL,
)

auto_specialist = Agent[restate.ObjectContext](
    name="AutoSpecialist",
    handoff_description="Handles auto insurance claims, from intake to final decision.",
    instructions="Assess auto claims for liability and damage. Approve or deny claims up to $25,000. "
    "Hand any other claim back to the intake agent.",
    model=MODEL,
)

intake_agent = Agent[restate.ObjectContext](
    name="IntakeAgent",
    instructions="Route insurance claims to the right specialist: medical claims to the medical "
    "specialist, auto claims to the auto specialist.",
    handoffs=[medical_specialist, auto_specialist],
    model=MODEL,
)

# A specialist hands a claim outside its competence back to intake, which routes it again: a
# customer whose last claim was medical is not stuck with the medical specialist for a car claim.
# (A `handoff(...)`, not the Agent itself: the agents refer to each other, and a handoff is only
# resolved when it is taken.)
for specialist in (medical_specialist, auto_specialist):
    specialist.handoffs.append(handoff(intake_agent))

agents_by_name = {agent.name: agent for agent in (intake_agent, medical_specialist, auto_specialist)}

agent_service = restate.VirtualObject("MultiAgentClaimApproval")


@agent_service.handler()
async def run(ctx: restate.ObjectContext, claim: InsuranceClaim) -> str:
    # Continue with whoever answered last for this key; a new key starts at intake.
    last_agent_name = await ctx.get("last_agent_name", type_hint=str) or intake_agent.name
    result = await run_agent(
        agents_by_name.get(last_agent_name, intake_agent),
        f"Claim: {claim.model_dump_json(by_alias=True)}",
        context=ctx,
        session=BoundedSession(),
    )
    ctx.set("last_agent_name", result.last_agent.name)
    return str(result.final_output)


# --- 2. Remote agents as tools -------------------------------------------------------------------


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


@remote_agent_service.handler("run")
async def run_remote(ctx: restate.Context, claim: InsuranceClaim) -> str:
    result = await run_agent(
        claim_approval_coordinator,
        f"Claim: {claim.model_dump_json(by_alias=True)}",
        context=ctx,
    )
    return str(result.final_output)
