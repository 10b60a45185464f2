"""Resilient multi-agent coordination: agents as handoffs, the last agent kept in state.

Virtual Object `MultiAgentClaimApproval`: an intake agent hands the claim to the medical or the
auto specialist, in the same process. The conversation lives in the object's session, and the
name of the agent that answered last is kept in the object's state: the next claim for the same
key goes straight to that specialist, who hands a claim outside its competence back to intake.
Remote agents as tools, the other half of multi-agent coordination: app/remote_agents.py.

    curl localhost:8080/MultiAgentClaimApproval/customer-1/run --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'

answers "As the medical specialist, I reviewed the claim of 3,000 USD for hospital bill for a
broken leg: approved."; State -> `last_agent_name` is `MedicalSpecialist`.
"""

import restate
from agents import Agent, handoff
from restate.ext.openai import DurableRunner

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import InsuranceClaim
from app.utils.session import BoundedSession

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
async def run(restate_context: restate.ObjectContext, claim: InsuranceClaim) -> str:
    # Continue with whoever answered last for this key; a new key starts at intake.
    last_agent_name = await restate_context.get("last_agent_name", type_hint=str) or intake_agent.name
    result = await DurableRunner.run(
        agents_by_name.get(last_agent_name, intake_agent),
        f"Claim: {claim.model_dump_json(by_alias=True)}",
        context=restate_context,
        session=BoundedSession(),
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    restate_context.set("last_agent_name", result.last_agent.name)
    return str(result.final_output)
