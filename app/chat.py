"""Durable sessions: a chat agent whose conversation lives in a Virtual Object.

Each chat is a `Chat` object, identified by its key. `message` runs the assistant with a Restate
session (`BoundedSession`: restate's `RestateSession`, kept to the newest MAX_SESSION_ITEMS
items): the conversation is read from the object's state and the new items are written back with
the run, so a crash never leaves half a turn. One `message` runs per key at a time (exclusive),
so concurrent messages queue; `get_history` is shared and answers meanwhile.

    curl localhost:8080/Chat/alice/message --json '{"message": "My name is Alice."}'
    curl localhost:8080/Chat/alice/message --json '{"message": "What is my name?"}'
    curl localhost:8080/Chat/alice/get_history

The second answer knows the name; the UI's State tab shows `Chat` / `alice` / `items`, all four
messages. `curl -X POST localhost:8080/Chat/alice/clear` starts over.
"""

from typing import Any, ClassVar

import restate
from agents import Agent
from restate.ext.openai import DurableRunner
from restate.ext.openai.session import RestateSession

from app.runtime.request_models import RequestModel, message_field
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.session import BoundedSession


class ChatMessage(RequestModel):
    """One message to the chat assistant."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"message": "My name is Alice."}]

    message: str = message_field("Make a poem about durable execution.", "What you say to the assistant.")


assistant = Agent[restate.ObjectContext](
    name="Assistant",
    instructions="You are a helpful assistant.",
    model=MODEL,
)

chat = restate.VirtualObject("Chat")


@chat.handler()
async def message(restate_context: restate.ObjectContext, req: ChatMessage) -> str:
    result = await DurableRunner.run(
        assistant,
        req.message,
        context=restate_context,
        session=BoundedSession(),
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return str(result.final_output)


@chat.handler(kind="shared")
async def get_history(restate_context: restate.ObjectSharedContext) -> list[dict[str, Any]]:
    # The session's state key: exactly what the agent sees as its history on the next message.
    items: list[dict[str, Any]] = await restate_context.get("items", type_hint=list) or []
    return items


@chat.handler()
async def clear(restate_context: restate.ObjectContext) -> None:
    await RestateSession().clear_session()
