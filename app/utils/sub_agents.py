"""Specialised claim agents, each served as its own Restate service (handler `run`).

Other agents call them with durable service calls (multi_agent.py, parallel_agents.py): Restate
delivers each call once, keeps its result, and the caller suspends while they work. Each one is a
separate invocation with its own journal in the UI.
"""

from collections.abc import Awaitable, Callable

import restate
from agents import Agent
from restate.ext.openai import DurableRunner

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import InsuranceClaim

ClaimAgentHandler = Callable[[restate.Context, InsuranceClaim], Awaitable[str]]


def claim_agent_service(agent: Agent[restate.Context]) -> tuple[restate.Service, ClaimAgentHandler]:
    """A service named like the agent, whose `run` handler runs it on a claim."""
    service = restate.Service(agent.name)

    @service.handler("run")
    async def run(restate_context: restate.Context, claim: InsuranceClaim) -> str:
        result = await DurableRunner.run(
            agent,
            claim.model_dump_json(by_alias=True),
            context=restate_context,
            run_options=LLM_RETRY,
            max_turns=MAX_TURNS,
        )
        return str(result.final_output)

    return service, run


eligibility_agent_service, run_eligibility_agent = claim_agent_service(
    Agent(
        name="EligibilityAgent",
        instructions="Decide whether the following claim is eligible for reimbursement. "
        "Respond with eligible if it is a medical claim, and with not eligible otherwise.",
        model=MODEL,
    )
)

fraud_agent_service, run_fraud_agent = claim_agent_service(
    Agent(
        name="FraudAgent",
        instructions="Decide how likely the following claim is to be fraudulent. "
        "Always respond with low risk, medium risk, or high risk.",
        model=MODEL,
    )
)

rate_comparison_agent_service, run_rate_comparison_agent = claim_agent_service(
    Agent(
        name="RateComparisonAgent",
        instructions="Decide whether the cost of the following claim is reasonable for the treatment, "
        "compared to standard rates. Respond with reasonable or not reasonable.",
        model=MODEL,
    )
)
