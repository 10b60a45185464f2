"""A durable evaluation run: a data set of cases against one of the tour's agents, graded by a judge.

`Evaluation/<run id>/run` is a Workflow: it calls the agent under test once per case, each call
its own invocation, at most `concurrency` at a time, and has a judge agent grade each answer
(structured output: score, passed, reason). Every result is kept in the run's state as it comes,
so a crash or restart mid-evaluation goes on where it was: no case runs or is judged twice.
`Evaluation/<run id>/report` shows the table at any time; http://localhost:8000/evals/<run id> too.

    curl localhost:8080/Evaluation/claims-1/run/send --json @evals/claim_agents.json
    curl localhost:8080/Evaluation/claims-1/report

`make eval` runs evals/claim_agents.json and prints the report (docs/beyond-the-tour.md).
"""

import json
from typing import Any, ClassVar

import restate
from agents import Agent
from pydantic import BaseModel, Field, JsonValue, field_validator
from restate.ext.openai import DurableRunner

from app.runtime.request_models import RequestModel, ShortText
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import TOUR_CLAIM

# The agents an evaluation may call: services that take one request and answer it.
EVALUATED = {
    "ClaimReimbursement/process",
    "EligibilityAgent/run",
    "ErrorHandlingAgent/run",
    "FraudAgent/run",
    "GuardedClaimAgent/run",
    "HumanClaimApprovalAgent/run",
    "ManualLoopAgent/run",
    "McpClaimAgent/run",
    "ParallelAgentClaimApproval/run",
    "ParallelToolClaimAgent/run",
    "RateComparisonAgent/run",
    "RemoteMultiAgentClaimApproval/run",
    "WeatherAgent/run",
}


class EvalCase(RequestModel):
    """One case: what to send the agent, and what a good answer must do."""

    name: ShortText = Field(description="A name for the case in the report.")
    input: dict[str, JsonValue] = Field(description="The request body for the agent.")
    expect: ShortText = Field(description="What a good answer must do or say, for the judge.")


class EvalRequest(RequestModel):
    """A data set to run against one agent."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "service": "ParallelAgentClaimApproval/run",
            "concurrency": 2,
            "cases": [{"name": "broken leg", "input": TOUR_CLAIM, "expect": "approves the claim"}],
        }
    ]

    service: str = Field(description=f"The agent under test, one of {', '.join(sorted(EVALUATED))}.")
    cases: list[EvalCase] = Field(min_length=1, max_length=100)
    concurrency: int = Field(default=2, ge=1, le=8, description="Cases in flight at once.")

    @field_validator("service")
    @classmethod
    def known_service(cls, value: str) -> str:
        if value not in EVALUATED:
            raise ValueError(f"must be one of {', '.join(sorted(EVALUATED))}")
        return value


class Grade(BaseModel):
    """The judge's verdict on one answer."""

    score: float = Field(description="From 0.0 (wrong) to 1.0 (all a good answer must be).")
    passed: bool = Field(description="Whether the answer does what a good answer must do.")
    reason: str = Field(description="One sentence: why.")


judge = Agent[restate.WorkflowContext](
    name="EvaluationJudge",
    instructions="You are the judge of an evaluation. Grade the agent's answer against what a good "
    "answer must do: a score from 0.0 to 1.0, whether it passes, and the reason in one sentence.",
    output_type=Grade,
    model=MODEL,
)

evaluation = restate.Workflow("Evaluation")


@evaluation.main()
async def run(restate_context: restate.WorkflowContext, req: EvalRequest) -> dict[str, Any]:
    restate_context.set("request", req.model_dump(mode="json"))
    service, handler = req.service.split("/")
    waiting = list(enumerate(req.cases))
    in_flight: dict[Any, int] = {}
    while waiting or in_flight:
        # Keep `concurrency` cases in flight; each is an invocation of its own (see the UI).
        while waiting and len(in_flight) < req.concurrency:
            i, case = waiting.pop(0)
            call = restate_context.generic_call(service, handler, json.dumps(case.input).encode())
            in_flight[call] = i
        done, _ = await restate.wait_completed(*in_flight)
        for finished in done:
            i = in_flight.pop(finished)
            restate_context.set(f"case-{i:03d}", await grade(restate_context, req.cases[i], finished))
    return await results_so_far(restate_context)


async def grade(restate_context: restate.WorkflowContext, case: EvalCase, call: Any) -> dict[str, Any]:
    """The case's answer and the judge's verdict (or why there is no answer to judge)."""
    try:
        answer = json.loads(await call)
    except restate.TerminalError as e:
        return {"name": case.name, "answer": None, "score": 0.0, "passed": False,
                "reason": f"the agent failed: HTTP {e.status_code}, {e.message}"}  # fmt: skip
    verdict = await DurableRunner.run(
        judge,
        f"Request: {json.dumps(case.input)}\nAnswer: {json.dumps(answer)}\nA good answer: {case.expect}",
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    grade: Grade = verdict.final_output
    score = min(max(grade.score, 0.0), 1.0)  # the judge's output is input too: kept in range
    return {
        "name": case.name,
        "answer": answer,
        "score": score,
        "passed": grade.passed,
        "reason": grade.reason,
    }


@evaluation.handler()
async def report(restate_context: restate.WorkflowSharedContext) -> dict[str, Any]:
    """The results so far: each finished case's score and reason, the pass rate."""
    return await results_so_far(restate_context)


async def results_so_far(
    restate_context: restate.WorkflowSharedContext | restate.WorkflowContext,
) -> dict[str, Any]:
    request = await restate_context.get("request", type_hint=dict)
    if request is None:
        raise restate.TerminalError(f"No evaluation run {restate_context.key()!r} has started.", 404)
    keys = sorted(k for k in await restate_context.state_keys() if k.startswith("case-"))
    results = [await restate_context.get(k, type_hint=dict) for k in keys]
    total = len(request.get("cases", []))
    passed = sum(1 for r in results if r and r["passed"])
    return {
        "service": request.get("service"),
        "cases": total,
        "done": len(results),
        "passed": passed,
        "pass_rate": round(passed / total, 3),
        "results": results,
    }
