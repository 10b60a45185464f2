"""Parallel work: three durable steps at the same time, inside one tool.

Tool calls of an agent run one after another under Restate, so that a replay repeats them in the
same order. To run work in parallel, one orchestrating tool starts several durable steps and
waits for all of them with `restate.gather`. Each step is journaled on its own: after a crash,
finished steps are not run again.

    curl localhost:8080/ParallelToolClaimAgent/run --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'

In the UI the steps `eligibility`, `cost` and `fraud` start together (each takes about a second),
then the agent decides from their results.
"""

import restate
from agents import Agent, RunContextWrapper
from restate.ext.openai import DurableRunner, durable_function_tool

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import InsuranceClaim, check_eligibility, check_fraud, compare_to_standard_rates


@durable_function_tool
async def calculate_metrics(wrapper: RunContextWrapper[restate.Context], claim: InsuranceClaim) -> list[str]:
    """Calculate the claim's metrics: eligibility, cost compared to standard rates, fraud risk."""
    restate_context = wrapper.context
    # Three durable steps, started together; gather waits for all of them.
    eligibility, cost, fraud = await restate.gather(
        restate_context.run_typed("eligibility", check_eligibility, claim=claim),
        restate_context.run_typed("cost", compare_to_standard_rates, claim=claim),
        restate_context.run_typed("fraud", check_fraud, claim=claim),
    )
    return [f"eligibility: {await eligibility}", f"cost: {await cost}", f"fraud: {await fraud}"]


parallel_tools_agent = Agent[restate.Context](
    name="ParallelToolClaimAgent",
    instructions="You are a claim analysis agent that analyzes insurance claims. "
    "Use your tools to calculate key metrics, then decide whether to approve the claim.",
    tools=[calculate_metrics],
    model=MODEL,
)

agent_service = restate.Service("ParallelToolClaimAgent")


@agent_service.handler()
async def run(restate_context: restate.Context, claim: InsuranceClaim) -> str:
    result = await DurableRunner.run(
        parallel_tools_agent,
        f"Analyze the claim {claim.model_dump_json(by_alias=True)}",
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return str(result.final_output)
