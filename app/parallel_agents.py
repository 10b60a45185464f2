"""Parallel agents: sub-agents at the same time, as durable service calls.

`run` asks three specialised agents (app/utils/sub_agents.py) about a claim at once and waits for
all of them (`restate.gather`); a decision agent then combines their analyses. Each sub-agent is
its own invocation: the calls are journaled, so after a crash none is sent twice, and the
handler suspends while they work.

    curl localhost:8080/ParallelAgentClaimApproval/run --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'

`race` sends the same question to two fraud agents (in practice: two models or two providers)
and takes the first answer; the slower invocation is cancelled, which the UI shows.

    curl localhost:8080/ParallelAgentClaimApproval/race --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'
"""

import restate
from agents import Agent

from app.utils.agent_runs import run_agent
from app.utils.llm import MODEL
from app.utils.models import InsuranceClaim
from app.utils.sub_agents import run_eligibility_agent, run_fraud_agent, run_rate_comparison_agent

decision_agent = Agent[restate.Context](
    name="ClaimDecisionAgent",
    instructions="You are a claim decision engine. Decide whether to approve the claim, "
    "based on the analyses you are given.",
    model=MODEL,
)

agent_service = restate.Service("ParallelAgentClaimApproval")


@agent_service.handler()
async def run(ctx: restate.Context, claim: InsuranceClaim) -> str:
    # Start all three sub-agents before waiting for any of them.
    eligibility = ctx.service_call(run_eligibility_agent, arg=claim)
    cost = ctx.service_call(run_rate_comparison_agent, arg=claim)
    fraud = ctx.service_call(run_fraud_agent, arg=claim)
    await restate.gather(eligibility, cost, fraud)

    result = await run_agent(
        decision_agent,
        f"Decide about the claim {claim.model_dump_json(by_alias=True)}. Analyses: "
        f"eligibility: {await eligibility}; cost: {await cost}; fraud: {await fraud}",
        context=ctx,
    )
    return str(result.final_output)


@agent_service.handler()
async def race(ctx: restate.Context, claim: InsuranceClaim) -> str:
    contenders = {
        "first": ctx.service_call(run_fraud_agent, arg=claim),
        "second": ctx.service_call(run_fraud_agent, arg=claim),
    }
    # select returns as soon as one call completes; which one won is journaled too.
    winner, answer = await restate.select(**contenders)
    for name, call in contenders.items():
        if name != winner:
            await call.cancel_invocation()  # the losers stop; the UI shows them cancelled
    return f"Fraud risk: {answer} (first answer, from the {winner} agent)"
