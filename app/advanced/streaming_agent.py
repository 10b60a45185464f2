"""Streaming intermediate results: an agent that publishes its progress while it works, and its
answer's text as the model writes it.

`StreamingAgent/run` publishes an event for each LLM call and each tool step to a topic for the
run: the Virtual Object `AgentEvents`, keyed by the run's invocation id. Publishing is a durable
one-way send, so the events are journaled like everything else: after a crash and a replay,
none is published twice, and none is lost. Events are numbered; a reader asks for everything
after its offset, so a reader that reconnects from its offset misses none and sees none twice.

The answer's text streams too (`text_start`, `text_delta`, `text_void` events), from inside the
journaled LLM step: the model is called with streaming, each piece of text is sent to the topic
as it comes, and the complete response is journaled once, as for every agent. A replay takes the
answer from the journal and streams nothing again. Text is not journaled piece by piece: when the
step fails or the endpoint dies mid-answer, the text already on the stream is not the answer,
and the reader is told so with a `text_void` for that attempt before the retried answer streams.
The topic writes that void itself when the next attempt starts (or the run ends), so it comes
even after a SIGKILL; an attempt that fails with an error sends it at once. At every `llm_end`
the topic checks the streamed text against the journaled answer, so the `done` output is always
the text of the last LLM call's attempts that were not voided. (How: app/utils/token_stream.py.)

    id=$(curl -s localhost:8080/StreamingAgent/run/send --json '{"message": "What is the weather like in Tokyo?"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["invocationId"])')
    curl -N localhost:8000/streams/$id                           # server-sent events, until done
    curl "localhost:8000/streams/$id/events?offset=2&wait=10"    # long-poll from offset 2

    id: 4
    event: llm_start
    data: {"type": "llm_start", "call": 2, "agent": "StreamingAgent", "offset": 4}

    id: 5
    event: text_start
    data: {"type": "text_start", "call": 2, "attempt": "5d0f9c1e", "offset": 5}

    id: 6
    event: text_delta
    data: {"type": "text_delta", "call": 2, "attempt": "5d0f9c1e", "delta": "The", "offset": 6}
    ...
    data: {"type": "done", "output": "The weather in Tokyo is currently cloudy, 17 degrees Celsius.", "offset": 16}

The two /streams routes are served by the public web process (app/web/, port 8000 under
`make run`), which reads the topic through the Restate ingress; the endpoint serves Restate
only. `curl localhost:8080/AgentEvents/$id/read --json '{"offset": 0}'` reads the topic
directly. Publishing is ingress-private: only the agent's own invocation writes to its topic
(a `publish` through the ingress is refused). The text comes through the ingress (the endpoint
cannot send from inside a journaled step), so `AgentEvents/text` is public, but it takes only
text that carries the run's stream token, a random value made in a journaled step of the run
and registered with the topic by the ingress-private `allow_text`; anything else is refused:

    curl localhost:8080/AgentEvents/$id/text --json '{"token": "guessed", "seq": 0, "events": [{"type": "text_delta", "call": 2, "attempt": "0badc0de", "delta": "Buy now!"}]}'
        -> {"code":403,"message":"Refused: the text does not carry this run's stream token.","source":"invocation"}
"""

from typing import Any, ClassVar

import restate
from agents import Agent, ModelResponse, RunContextWrapper, RunHooks, TResponseInputItem
from pydantic import Field
from restate.ext.openai import durable_function_tool

from app.utils.agent_runs import run_agent
from app.utils.contract import RequestModel
from app.utils.llm import MODEL
from app.utils.models import WeatherPrompt, WeatherRequest, WeatherResponse
from app.utils.token_stream import TextBatch, TextLedger, TextStream, answer_text, new_token, token_digest
from app.utils.utils import fetch_weather

# --- the topic -----------------------------------------------------------------------------------

agent_events = restate.VirtualObject("AgentEvents")


class ReadRequest(RequestModel):
    """Where to read from in a run's progress events."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"offset": 0}]

    offset: int = Field(default=0, ge=0, description="Number of events already seen.")


async def _topic(restate_context: restate.ObjectContext) -> tuple[list[dict[str, Any]], TextLedger]:
    events: list[dict[str, Any]] = await restate_context.get("events", type_hint=list) or []
    return events, TextLedger.from_state(await restate_context.get("text", type_hint=dict))


def _save(restate_context: restate.ObjectContext, events: list[dict[str, Any]], ledger: TextLedger) -> None:
    restate_context.set("events", events)
    restate_context.set("text", ledger.as_state())


# Only the agent publishes (a one-way call from its own invocation); the ingress refuses it.
@agent_events.handler(ingress_private=True)
async def publish(restate_context: restate.ObjectContext, event: dict[str, Any]) -> None:
    events, ledger = await _topic(restate_context)
    # Besides appending the event (see TextLedger): `llm_start` lets through text of its call that
    # came first, `llm_end` checks the call's streamed text against the journaled answer, and
    # `done` or `error` voids text that did not become an answer.
    ledger.published(events, event)
    _save(restate_context, events, ledger)


# The run registers its stream token (its digest) before its first LLM call. It waits for the
# answer (a call, not a send): its text must not reach the topic before the token does.
@agent_events.handler(ingress_private=True)
async def allow_text(restate_context: restate.ObjectContext, token_sha256: str) -> None:
    events, ledger = await _topic(restate_context)
    ledger.allow(token_sha256)
    _save(restate_context, events, ledger)


# The text, as the model writes it: sent by the endpoint through the ingress from inside the
# journaled LLM step (where the Restate context cannot send), so this handler is public. Text
# without the run's stream token is refused: TerminalError 403. A `text_start` of a new attempt
# first voids the partial text of the attempt before it (killed, or failed).
@agent_events.handler()
async def text(restate_context: restate.ObjectContext, batch: TextBatch) -> None:
    events, ledger = await _topic(restate_context)
    ledger.check(batch.token)
    ledger.text(events, [e.model_dump() for e in batch.events], batch.seq)
    _save(restate_context, events, ledger)


@agent_events.handler(kind="shared")
async def read(restate_context: restate.ObjectSharedContext, req: ReadRequest) -> dict[str, Any]:
    events: list[dict[str, Any]] = await restate_context.get("events", type_hint=list) or []
    return {
        "events": events[req.offset :],
        "next_offset": max(len(events), req.offset),
        "done": any(e["type"] in ("done", "error") for e in events),
    }


# --- the agent -----------------------------------------------------------------------------------


def emit(restate_context: restate.Context, event: dict[str, Any]) -> None:
    """Publish to this run's topic: a journaled send, made once even if the run is replayed."""
    restate_context.object_send(publish, key=restate_context.request().id, arg=event)


@durable_function_tool
async def get_weather(wrapper: RunContextWrapper[restate.Context], req: WeatherRequest) -> WeatherResponse:
    """Get the current weather for a given city."""
    restate_context = wrapper.context
    # Published from inside the tool, where Restate runs tool calls one at a time: with several
    # tool calls in a turn, the events keep one order on every replay.
    emit(restate_context, {"type": "tool_start", "tool": "get_weather", "city": req.city})
    weather = await restate_context.run_typed("Get weather", fetch_weather, req=req)
    emit(
        restate_context,
        {"type": "tool_end", "tool": "get_weather", "city": req.city, "result": weather.model_dump()},
    )
    return weather


class ProgressHooks(RunHooks[restate.Context]):
    """Publishes an event before and after every LLM call (they happen one at a time), numbered
    like the text the call streams."""

    def __init__(self) -> None:
        self.calls = 0  # counted again on a replay: the same numbers every time

    async def on_llm_start(
        self,
        context: RunContextWrapper[restate.Context],
        agent: Agent[restate.Context],
        system_prompt: str | None,
        input_items: list[TResponseInputItem],
    ) -> None:
        self.calls += 1
        emit(context.context, {"type": "llm_start", "call": self.calls, "agent": agent.name})

    async def on_llm_end(
        self,
        context: RunContextWrapper[restate.Context],
        agent: Agent[restate.Context],
        response: ModelResponse,
    ) -> None:
        calls = [item.name for item in response.output if item.type == "function_call"]
        # `text`, the journaled answer's, lets the topic check the streamed text against it; the
        # topic does not show it again.
        emit(
            context.context,
            {
                "type": "llm_end",
                "call": self.calls,
                "agent": agent.name,
                "tool_calls": calls,
                "text": answer_text(response),
            },
        )


streaming_weather_agent = Agent[restate.Context](
    name="StreamingAgent",
    instructions="You are a helpful agent that provides weather updates.",
    tools=[get_weather],
    model=MODEL,
)

agent_service = restate.Service("StreamingAgent")


async def open_text_stream(restate_context: restate.Context) -> TextStream:
    """The run's stream token, made once (a journaled step) and registered with its topic."""
    token = await restate_context.run_typed("stream token", new_token)
    run_id = restate_context.request().id
    await restate_context.object_call(allow_text, key=run_id, arg=token_digest(token))
    return TextStream(run_id, token)


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: WeatherPrompt) -> str:
    text_stream = await open_text_stream(restate_context)
    try:
        # on_text: the model is called with streaming inside the journaled step, its text sent on.
        result = await run_agent(
            streaming_weather_agent,
            prompt.message,
            context=restate_context,
            hooks=ProgressHooks(),
            on_text=text_stream,
        )
    except restate.TerminalError as e:
        emit(restate_context, {"type": "error", "message": e.message})
        raise
    emit(restate_context, {"type": "done", "output": str(result.final_output)})
    return str(result.final_output)
