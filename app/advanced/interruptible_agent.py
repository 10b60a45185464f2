"""An interruptible agent: new input cancels the running task and restarts it, history kept.

`InterruptibleAgent` is a Virtual Object, one per task (the key). `run` works on the task with the
conversation in the object's session. `interrupt` is a shared handler, so it is not queued behind
the running `run`: it cancels that invocation (a Restate cancellation: the run stops at its next
step, and what it journaled stays), and starts a new `run` with the new instructions, which
sees the whole conversation so far.

    curl localhost:8080/InterruptibleAgent/report-1/run/send --json '{"message": "Write a short report about durable execution."}'
    curl localhost:8080/InterruptibleAgent/report-1/interrupt --json '{"message": "Make it about AI agents instead."}'
    curl localhost:8080/InterruptibleAgent/report-1/history

The UI shows the first `run` as cancelled and the second one completing.
"""

from typing import Any, ClassVar

import restate
from agents import Agent
from restate.ext.openai.session import RestateSession

from app.utils.agent_runs import run_agent
from app.utils.contract import RequestModel, message_field
from app.utils.llm import MODEL
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


@interruptible_agent.handler()
async def run(ctx: restate.ObjectContext, task: TaskInput) -> str:
    # Remember which invocation works on the task, so that `interrupt` can cancel it.
    ctx.set("current_run", ctx.request().id)
    result = await run_agent(task_agent, task.message, context=ctx, session=BoundedSession())
    ctx.clear("current_run")
    return str(result.final_output)


@interruptible_agent.handler(kind="shared")
async def interrupt(ctx: restate.ObjectSharedContext, task: TaskInput) -> dict[str, Any]:
    current = await ctx.get("current_run", type_hint=str)
    if current:
        # The running task ends with a cancellation; the new run is queued right behind it.
        ctx.cancel_invocation(current)
    handle = ctx.object_send(run, key=ctx.key(), arg=task)
    return {"cancelled": current, "restarted_as": await handle.invocation_id()}


@interruptible_agent.handler(kind="shared")
async def history(ctx: restate.ObjectSharedContext) -> list[dict[str, Any]]:
    items: list[Any] = await RestateSession().get_items()
    return items
