"""Parallel agents: sub-agents at the same time, as durable service calls.

`run` asks three specialised agents (app/utils/sub_agents.py) about a claim at once and waits for
all of them (`restate.gather`); a decision agent then combines their analyses. Each sub-agent is
its own invocation: the calls are journaled, so after a crash none is sent twice, and the
handler suspends while they work.

    curl localhost:8080/ParallelAgentClaimApproval/run --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'

`race` sends the same question to two fraud agents (in practice: two models or two providers)
and takes the first answer; the slower invocation is cancelled, which the UI shows. A contender
that fails does not decide the race: the other one's answer is taken, and only when both failed
does the race fail, with a terminal error naming each failure.

    curl localhost:8080/ParallelAgentClaimApproval/race --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'
"""

import restate
from agents import Agent
from restate.ext.openai import DurableRunner

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import InsuranceClaim
from app.utils.sub_agents import run_eligibility_agent, run_fraud_agent, run_rate_comparison_agent

decision_agent = Agent[restate.Context](
    name="ClaimDecisionAgent",
    instructions="You are a claim decision engine. Decide whether to approve the claim, "
    "based on the analyses you are given.",
    model=MODEL,
)

agent_service = restate.Service("ParallelAgentClaimApproval")


@agent_service.handler()
async def run(restate_context: restate.Context, claim: InsuranceClaim) -> str:
    # Start all three sub-agents before waiting for any of them.
    eligibility = restate_context.service_call(run_eligibility_agent, arg=claim)
    cost = restate_context.service_call(run_rate_comparison_agent, arg=claim)
    fraud = restate_context.service_call(run_fraud_agent, arg=claim)
    await restate.gather(eligibility, cost, fraud)

    result = await DurableRunner.run(
        decision_agent,
        f"Decide about the claim {claim.model_dump_json(by_alias=True)}. Analyses: "
        f"eligibility: {await eligibility}; cost: {await cost}; fraud: {await fraud}",
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return str(result.final_output)


@agent_service.handler()
async def race(restate_context: restate.Context, claim: InsuranceClaim) -> str:
    contenders = {
        "first": restate_context.service_call(run_fraud_agent, arg=claim),
        "second": restate_context.service_call(run_fraud_agent, arg=claim),
    }
    names = {call: name for name, call in contenders.items()}
    failures: dict[str, str] = {}
    # The calls in the order they finish (journaled, so a replay sees the same order). A failed
    # contender does not decide the race: the next one to finish may still answer.
    async for call in restate.as_completed(*contenders.values()):
        try:
            answer = await call
        except restate.TerminalError as e:
            failures[names[call]] = e.message
            continue
        winner = names[call]
        for name, other in contenders.items():
            if name != winner and name not in failures:
                await other.cancel_invocation()  # the losers stop; the UI shows them cancelled
        return f"Fraud risk: {answer} (first answer, from the {winner} agent)"
    raise restate.TerminalError(
        "No fraud agent answered: " + "; ".join(f"{name}: {error}" for name, error in failures.items())
    )
