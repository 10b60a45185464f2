"""Notify when ready: start an agent's task, return at once, get the answer when it is done.

`AsyncNotificationsAgent` is a Restate Workflow, one per task (the key). `run` works on the task
and resolves the durable promise `agent_response` with the answer. Anyone can ask for the answer
meanwhile: `get_result` waits on the promise (and answers at once once it is resolved), and
`on_notify` waits for it to send an e-mail, a journaled step. The promise lives in Restate: the
endpoint can crash while the agent works and the waiting callers still get the answer, once.

    curl localhost:8080/AsyncNotificationsAgent/task-1/run/send --json '{"message": "Write a poem about durable execution."}'
    curl localhost:8080/AsyncNotificationsAgent/task-1/get_result
    curl localhost:8080/AsyncNotificationsAgent/task-1/on_notify --json '{"email": "me@example.com"}'

`run/send` returns the invocation id at once; http://localhost:8000/runs/<invocation id> shows the
run's progress and its answer, and `curl localhost:8080/restate/workflow/AsyncNotificationsAgent/task-1/attach`
waits for it too.
"""

from typing import Any, ClassVar

import restate
from agents import Agent
from pydantic import Field
from restate.ext.openai import DurableRunner

from app.advanced.streaming.agent import ProgressHooks, emit
from app.runtime.request_models import RequestModel, message_field
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL

ANSWER = "agent_response"  # the durable promise


class TaskPrompt(RequestModel):
    """A task for the assistant."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"message": "Write a poem about durable execution."}]

    message: str = message_field("Write a poem about durable execution.", "What the assistant should do.")


class NotifyRequest(RequestModel):
    """Where to send the answer."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"email": "me@example.com"}]

    email: str = Field(
        default="me@example.com", pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$", description="An e-mail address."
    )


assistant = Agent[restate.WorkflowContext](
    name="Assistant",
    instructions="You are a helpful assistant.",
    model=MODEL,
)

agent_service = restate.Workflow("AsyncNotificationsAgent")


@agent_service.main()
async def run(restate_context: restate.WorkflowContext, task: TaskPrompt) -> str:
    try:
        # Its progress goes to the run's topic, which the web process's run view shows.
        result = await DurableRunner.run(
            assistant,
            task.message,
            context=restate_context,
            hooks=ProgressHooks(),
            run_options=LLM_RETRY,
            max_turns=MAX_TURNS,
        )
    except restate.TerminalError as e:
        emit(restate_context, {"type": "error", "message": e.message})
        # Whoever waits for the answer learns that there will be none.
        await restate_context.promise(ANSWER, type_hint=str).reject(e.message, e.status_code)
        raise
    answer = str(result.final_output)
    await restate_context.promise(ANSWER, type_hint=str).resolve(answer)
    emit(restate_context, {"type": "done", "output": answer})
    return answer


@agent_service.handler()
async def get_result(restate_context: restate.WorkflowSharedContext) -> str:
    """The answer: at once when it is ready, else as soon as it is."""
    answer: str = await restate_context.promise(ANSWER, type_hint=str).value()
    return answer


@agent_service.handler()
async def on_notify(restate_context: restate.WorkflowSharedContext, req: NotifyRequest) -> None:
    """Send the answer by e-mail once it is ready (a journaled step: sent once)."""
    answer = await restate_context.promise(ANSWER, type_hint=str).value()
    await restate_context.run_typed("Email", send_email, email=req.email, body=answer)


def send_email(email: str, body: str) -> None:
    """The simulated mail server: the mail is a line in the log."""
    print(f"📧 To {email}: {body[:200]}", flush=True)
