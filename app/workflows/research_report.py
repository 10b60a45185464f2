"""Orchestrator-workers: a planner splits a topic into tasks, each researched by its own invocation.

`ResearchReport/generate` asks the planner for 2 to 4 research tasks (structured output), sends
each to `Researcher/run_researcher` at once (separate invocations, in parallel, each with its own
journal), waits for all of them, and has a writer combine the findings. A crash of the report
resumes where it was: the plan and every finished finding come from the journal. A worker that
fails for good ends the report with an error that names its task.

    curl localhost:8080/ResearchReport/generate --json '{"topic": "The impact of renewable energy on global economies"}'

answers `{"report": "...", "task_count": 3}`. The UI shows the report's `call LLM` (the plan), the
`Researcher/run_researcher` invocations side by side, then the writer's `call LLM`.
"""

import json
from typing import Any, ClassVar

import restate
from agents import Agent
from pydantic import BaseModel, Field
from restate.ext.openai import DurableRunner

from app.runtime.request_models import RequestModel, message_field
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL

MAX_TASKS = 4


class ReportRequest(RequestModel):
    """A topic to research and report on."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"topic": "The impact of renewable energy on global economies"}
    ]

    topic: str = message_field("The impact of renewable energy on global economies", "What to research.")


class ResearchTask(RequestModel):
    """One research question."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"question": "How does solar power change energy prices?"}]

    question: str = message_field("How does solar power change energy prices?", "The question to answer.")


class TaskList(BaseModel):
    tasks: list[ResearchTask] = Field(description=f"2 to {MAX_TASKS} research sub-tasks.")


planner = Agent[restate.Context](
    name="ResearchPlanner",
    instructions=f"You are a research planner. Break the topic into 2-{MAX_TASKS} research sub-tasks.",
    output_type=TaskList,
    model=MODEL,
)

researcher = Agent[restate.Context](
    name="Researcher",
    instructions="You are a research assistant. Provide a concise, factual answer.",
    model=MODEL,
)

writer = Agent[restate.Context](
    name="ReportWriter",
    instructions="You are a report writer. Combine the research findings into a cohesive report.",
    model=MODEL,
)

report_service = restate.Service("ResearchReport")


@report_service.handler()
async def generate(restate_context: restate.Context, req: ReportRequest) -> dict[str, Any]:
    # Step 1: the orchestrator plans
    plan = await DurableRunner.run(
        planner, req.topic, context=restate_context, run_options=LLM_RETRY, max_turns=MAX_TURNS
    )
    tasks: list[ResearchTask] = plan.final_output.tasks
    if not 1 <= len(tasks) <= MAX_TASKS:  # the model's answer is input too: bounded
        raise restate.TerminalError(
            f"The planner split the topic into {len(tasks)} tasks (1 to {MAX_TASKS} expected).", 502
        )

    # Step 2: the workers, all at once, each its own invocation
    calls = [restate_context.service_call(run_researcher, task) for task in tasks]
    findings = []
    for task, call in zip(tasks, calls, strict=True):
        try:
            findings.append(await call)
        except restate.TerminalError as e:
            raise restate.TerminalError(
                f"Research task {task.question!r} failed: {e.message}", e.status_code
            ) from e

    # Step 3: the writer combines the findings
    report = await DurableRunner.run(
        writer,
        f"Topic: {req.topic}\n\nResearch findings:\n{json.dumps(findings, indent=2)}",
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return {"report": report.final_output, "task_count": len(tasks)}


researcher_service = restate.Service("Researcher")


@researcher_service.handler()
async def run_researcher(restate_context: restate.Context, task: ResearchTask) -> str:
    result = await DurableRunner.run(
        researcher, task.question, context=restate_context, run_options=LLM_RETRY, max_turns=MAX_TURNS
    )
    return str(result.final_output)
