"""An interruptible agent: new input cancels the running task and restarts it, history kept.

`InterruptibleAgent` is a Virtual Object, one per task (the key). `run` works on the task with the
conversation in the object's session. `interrupt` is shared, so it is not queued behind the
running `run`: it cancels that invocation (it stops at its next step, keeping what it journaled)
and starts a new `run` that sees the whole conversation. Interrupts of one task take turns in
`InterruptibleAgentRuns`, which knows the one run that is wanted: the latest instructions win,
and two interrupts at once start one run, not two (docs/beyond-the-tour.md).

    curl localhost:8080/InterruptibleAgent/report-1/run/send --json '{"message": "Write a short report about durable execution."}'
    curl localhost:8080/InterruptibleAgent/report-1/interrupt --json '{"message": "Make it about AI agents instead."}'
    curl localhost:8080/InterruptibleAgent/report-1/history

The UI shows the first `run` as cancelled and the second one completing.
"""

from typing import Any, ClassVar

import restate
from agents import Agent
from restate.ext.openai import DurableRunner
from restate.ext.openai.session import RestateSession

from app.runtime.request_models import RequestModel, message_field
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.session import BoundedSession


class TaskInput(RequestModel):
    """A task for the agent, or new instructions for it."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"message": "Write a short report about durable execution."}]

    message: str = message_field(
        "Write a short report about durable execution.", "The task, or new instructions."
    )


task_agent = Agent[restate.ObjectContext](
    name="InterruptibleAgent",
    instructions="You are a helpful assistant working on a task for the user. "
    "When the user changes the instructions, follow the latest ones.",
    model=MODEL,
)

interruptible_agent = restate.VirtualObject("InterruptibleAgent")
# Which run is wanted must be decided by exclusive handlers, one at a time; those of
# InterruptibleAgent itself wait behind the running task, so the decision lives in an object of its own.
task_runs = restate.VirtualObject("InterruptibleAgentRuns", ingress_private=True)


@interruptible_agent.handler()
async def run(restate_context: restate.ObjectContext, task: TaskInput) -> str:
    run_id = restate_context.request().id
    # An interrupt may have replaced this run while it waited in the object's queue.
    if not await restate_context.object_call(begin_run, key=restate_context.key(), arg=run_id):
        raise restate.TerminalError("Superseded by a later interrupt before it started", status_code=409)
    try:
        result = await DurableRunner.run(
            task_agent,
            task.message,
            context=restate_context,
            session=BoundedSession(),
            run_options=LLM_RETRY,
            max_turns=MAX_TURNS,
        )
    except restate.TerminalError:
        restate_context.object_send(
            end_run, key=restate_context.key(), arg=run_id
        )  # cancelled or failed: not running any more
        raise
    restate_context.object_send(end_run, key=restate_context.key(), arg=run_id)
    return str(result.final_output)


@interruptible_agent.handler(kind="shared")
async def interrupt(restate_context: restate.ObjectSharedContext, task: TaskInput) -> dict[str, Any]:
    return await restate_context.object_call(restart, key=restate_context.key(), arg=task)


@interruptible_agent.handler(kind="shared")
async def history(restate_context: restate.ObjectSharedContext) -> list[dict[str, Any]]:
    items: list[Any] = await RestateSession().get_items()
    return items


@task_runs.handler()
async def restart(restate_context: restate.ObjectContext, task: TaskInput) -> dict[str, Any]:
    current = await restate_context.get("wanted_run", type_hint=str)
    if current:
        # Running: it stops at its next step. Still queued: it never starts.
        restate_context.cancel_invocation(current)
    new_run = await restate_context.object_send(run, key=restate_context.key(), arg=task).invocation_id()
    restate_context.set("wanted_run", new_run)
    return {"cancelled": current, "restarted_as": new_run}


@task_runs.handler()
async def begin_run(restate_context: restate.ObjectContext, run_id: str) -> bool:
    """May this run start? Yes if it is the wanted one, or if none is (a run sent directly)."""
    wanted = await restate_context.get("wanted_run", type_hint=str)
    if wanted is None:
        restate_context.set("wanted_run", run_id)
    return wanted in (None, run_id)


@task_runs.handler()
async def end_run(restate_context: restate.ObjectContext, run_id: str) -> None:
    if await restate_context.get("wanted_run", type_hint=str) == run_id:
        restate_context.clear("wanted_run")
