"""Streaming intermediate results: an agent that publishes its progress while it works, and its
answer's text as the model writes it.

`StreamingAgent/run` publishes an event before and after each LLM call and each tool step to the
run's topic (`AgentEvents`, keyed by the invocation id, app/advanced/streaming/topic.py), with
journaled one-way sends: after a crash and a replay none is published twice, none is lost. The
model streams inside the journaled `call LLM` step (`StreamedModel`, app/advanced/streaming/text.py):
its text goes to the topic as it comes, the complete answer is journaled once.

    id=$(curl -s localhost:8080/StreamingAgent/run/send --json '{"message": "What is the weather like in Tokyo?"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["invocationId"])')
    curl -N localhost:8000/streams/$id        # server-sent events, until `done`

The web process (app/web/) serves the stream; the UI shows the run's `call LLM` and `Get weather`
steps between the one-way calls to `AgentEvents/<id>/publish`.
"""

from typing import Any

import restate
from agents import Agent, ModelResponse, RunContextWrapper, RunHooks, TResponseInputItem
from restate.ext.openai import DurableRunner, durable_function_tool
from restate.server_context import get_extension_data, set_extension_data

from app.advanced.streaming.text import StreamedModel, TextStream, new_token
from app.advanced.streaming.topic import allow_text, publish, token_digest
from app.runtime.agent_runs import latest_answer_made_here
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.weather import WeatherPrompt, WeatherRequest, WeatherResponse, fetch_weather


def emit(restate_context: restate.Context, event: dict[str, Any]) -> None:
    """Publish to this run's topic: a journaled send, made once even if the run is replayed."""
    # The topic of the run's text stream, if it opened one (`open_text_stream`), else its own.
    stream: TextStream | None = get_extension_data(restate_context, "text_stream")
    key = stream.run_id if stream is not None else restate_context.request().id
    restate_context.object_send(publish, key=key, arg=event)


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


def answer_text(response: ModelResponse) -> str:
    """The text of a model response (its messages' output_text parts, in order)."""
    parts = []
    for item in response.output:
        if getattr(item, "type", None) == "message":
            for part in getattr(item, "content", []):
                if getattr(part, "type", None) == "output_text":
                    parts.append(part.text)
    return "".join(parts)


class ProgressHooks(RunHooks[restate.Context]):
    """Publishes an event before and after every LLM call (they happen one at a time), numbered
    like the text the call streams, if it streams: the count runs again on a replay, to the same
    numbers."""

    def __init__(self, text: TextStream | None = None) -> None:
        self.text = text
        self.calls = 0

    async def on_llm_start(
        self,
        context: RunContextWrapper[restate.Context],
        agent: Agent[restate.Context],
        system_prompt: str | None,
        input_items: list[TResponseInputItem],
    ) -> None:
        self.calls += 1
        if self.text is not None:
            self.text.calls = self.calls  # the number its streamed text carries
        emit(context.context, {"type": "llm_start", "call": self.calls, "agent": agent.name})

    async def on_llm_end(
        self,
        context: RunContextWrapper[restate.Context],
        agent: Agent[restate.Context],
        response: ModelResponse,
    ) -> None:
        run_id = context.context.request().id
        if self.text is not None and self.text.run_id != run_id and latest_answer_made_here():
            # A restarted run's first answer of its own: from here on its events and its text go
            # to its own topic (every command after an answer it made is its own, never a copy).
            await context.context.object_call(allow_text, key=run_id, arg=token_digest(self.text.token))
            self.text.run_id = run_id
        calls = [item.name for item in response.output if item.type == "function_call"]
        # `text`, the journaled answer's: the topic checks the streamed text against it.
        event = {"type": "llm_end", "call": self.calls, "agent": agent.name, "tool_calls": calls}
        emit(context.context, {**event, "text": answer_text(response)})


streaming_weather_agent = Agent[restate.Context](
    name="StreamingAgent",
    instructions="You are a helpful agent that provides weather updates.",
    tools=[get_weather],
    model=MODEL,
)

agent_service = restate.Service("StreamingAgent")


async def open_text_stream(restate_context: restate.Context) -> TextStream:
    """The run's stream token, made once (a journaled step) and registered with its topic before
    any text is sent (a call, not a send: the text must not reach the topic before the token).

    The topic is named by the step's result: the invocation that opened the stream. A run
    restarted from a copy of this journal (docs/control.md) replays the same sends to the same
    topic, until its first answer of its own moves the stream to its own topic (`ProgressHooks`)."""
    opened = await restate_context.run_typed(
        "stream token", new_stream, invocation_id=restate_context.request().id
    )
    if isinstance(opened, str):  # journaled before streams named their run: the token alone
        opened = {"token": opened, "run": restate_context.request().id}
    await restate_context.object_call(allow_text, key=opened["run"], arg=token_digest(opened["token"]))
    stream = TextStream(opened["run"], opened["token"])
    set_extension_data(restate_context, "text_stream", stream)
    return stream


def new_stream(invocation_id: str) -> dict[str, str]:
    return {"token": new_token(), "run": invocation_id}


@agent_service.handler()
async def run(restate_context: restate.Context, prompt: WeatherPrompt) -> str:
    text = await open_text_stream(restate_context)
    # The same agent, with a model that streams its text to the topic as it writes it.
    agent = streaming_weather_agent.clone(model=StreamedModel(MODEL, text))
    try:
        result = await DurableRunner.run(
            agent,
            prompt.message,
            context=restate_context,
            hooks=ProgressHooks(text),
            run_options=LLM_RETRY,
            max_turns=MAX_TURNS,
        )
    except restate.TerminalError as e:
        emit(restate_context, {"type": "error", "message": e.message})
        raise
    emit(restate_context, {"type": "done", "output": str(result.final_output)})
    return str(result.final_output)
