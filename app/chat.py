"""Durable sessions: a chat agent whose conversation lives in a Virtual Object.

Each chat is a `Chat` object, identified by its key (`Chat/<key>/...`). `message` runs the
assistant with a Restate session (`session=BoundedSession()`, restate's `RestateSession` kept to
the newest MAX_SESSION_ITEMS items, see app/utils/session.py): the Agents SDK reads the
conversation from the object's state and the new items are written back, journaled with the run,
so the history survives crashes and restarts and is never half-written. Restate runs one `message` per key at a
time (an exclusive handler), so concurrent messages queue instead of overwriting each other;
`get_history` is a shared handler and answers even while a message is being processed.

    curl localhost:8080/Chat/alice/message --json '{"message": "My name is Alice."}'
    curl localhost:8080/Chat/alice/message --json '{"message": "What is my name?"}'
    curl localhost:8080/Chat/alice/get_history

The second answer knows the name; the history holds all four messages (two user, two assistant).
`curl localhost:8080/Chat/alice/clear -X POST` starts the conversation over.
"""

from typing import Any

import restate
from agents import Agent
from restate.ext.openai.session import RestateSession

from app.utils.agent_runs import run_agent
from app.utils.llm import MODEL
from app.utils.models import ChatMessage
from app.utils.session import BoundedSession

assistant = Agent[restate.ObjectContext](
    name="Assistant",
    instructions="You are a helpful assistant.",
    model=MODEL,
)

chat = restate.VirtualObject("Chat")


@chat.handler()
async def message(restate_context: restate.ObjectContext, req: ChatMessage) -> str:
    result = await run_agent(assistant, req.message, context=restate_context, session=BoundedSession())
    return str(result.final_output)


@chat.handler(kind="shared")
async def get_history(restate_context: restate.ObjectSharedContext) -> list[dict[str, Any]]:
    # The session's state key: exactly what the agent sees as its history on the next message.
    items: list[dict[str, Any]] = await restate_context.get("items", type_hint=list) or []
    return items


@chat.handler()
async def clear(restate_context: restate.ObjectContext) -> None:
    await RestateSession().clear_session()
