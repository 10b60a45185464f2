"""The stand-in against OpenAI's published contract.

The real Agents SDK (Responses and Chat Completions models) and a manual chat-completions loop on
the real `openai` client talk to the stand-in in-process; every answer they get is validated
against the published OpenAPI schema (dev/offline_llm/openai_spec_subset.json, cut from
openai/openai-openapi), which also checks that every required key is present. A table of invalid
requests gets the API's 400, naming the parameter.

Streamed answers (`stream: true`) too: every event against its schema, parsed by the real client
and its stream accumulators, and by the Agents SDK's `Runner.run_streamed` with both models; the
streamed answer must be the non-streamed one (modulo ids and timestamps).
"""

import asyncio
import json
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
)
from pydantic import BaseModel

from dev.offline_llm.answers import MISBEHAVIOURS
from dev.offline_llm.contract import SPEC_SUBSET
from dev.offline_llm.server import EventStream, OfflineLLM, Result
from dev.offline_llm.streaming import Event

# --- the published schema ------------------------------------------------------------------------


@cache
def validator(schema: str) -> jsonschema.Draft202012Validator:
    spec = json.loads(SPEC_SUBSET.read_text())
    return jsonschema.Draft202012Validator({**spec, "$ref": f"#/components/schemas/{schema}"})


def assert_valid(payload: Any, schema: str) -> None:
    errors = sorted(validator(schema).iter_errors(payload), key=lambda e: list(e.absolute_path))
    assert not errors, f"{schema}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors
    )


def test_the_schema_rejects_an_answer_missing_a_required_key() -> None:
    # The validator is only worth something if it catches what the pydantic types let through.
    payload = {"object": "list", "data": [{"id": "m", "object": "model", "created": 1}]}
    with pytest.raises(AssertionError, match="owned_by"):
        assert_valid(payload, "ListModelsResponse")


# --- a stand-in that records what went over the wire --------------------------------------------------


class RecordingLLM(OfflineLLM):
    """Keeps every exchange: the answer, or for a streamed one the list of events as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[str, dict[str, Any], int, Any]] = []

    async def llm(self, api: str, raw: bytes) -> Result:
        status, payload, headers = await super().llm(api, raw)
        recorded = payload
        if isinstance(payload, EventStream):
            recorded = []
            payload.events = _recording(payload.events, recorded)
        self.exchanges.append((api, json.loads(raw), status, recorded))
        return status, payload, headers


def _recording(events: Iterator[Event], into: list[Event]) -> Iterator[Event]:
    for event in events:
        into.append(event)
        yield event


def assert_all_valid(stub: RecordingLLM) -> None:
    assert stub.exchanges
    for api, body, status, payload in stub.exchanges:
        assert status == 200, f"{api} refused {json.dumps(body)[:2000]}: {payload}"
        if body.get("stream"):
            assert_valid_stream(api, payload)
        else:
            assert_valid(payload, "Response" if api == "responses" else "CreateChatCompletionResponse")


@cache
def response_event_schemas() -> dict[str, str]:
    """Event `type` -> the schema of that event, from the spec's `ResponseStreamEvent` union."""
    schemas = json.loads(SPEC_SUBSET.read_text())["components"]["schemas"]
    out = {}
    for option in schemas["ResponseStreamEvent"]["anyOf"]:
        name = option["$ref"].rsplit("/", 1)[1]
        out[schemas[name]["properties"]["type"]["enum"][0]] = name
    return out


def assert_valid_stream(api: str, events: Sequence[Event]) -> None:
    """Each event against its schema, and the stream's shape: sequence numbers, `event:` lines,
    the terminal event last (Responses), `[DONE]` last (chat)."""
    assert events, "nothing was streamed"
    if api == "responses":
        assert [e.data["sequence_number"] for e in events if isinstance(e.data, dict)] == list(
            range(len(events))
        )
        for e in events:
            assert isinstance(e.data, dict) and e.name == e.data["type"]
            data = e.data
            if data["type"] in ("response.created", "response.in_progress"):
                # Before the answer there is no usage: the API sends `"usage": null`, as the spec's
                # own examples of these events show, though its Response schema does not allow null.
                assert data["response"]["usage"] is None
                data = {**data, "response": without(data["response"], "usage")}
            assert_valid(data, response_event_schemas()[data["type"]])
        assert events[-1].name in ("response.completed", "response.incomplete", "response.failed")
    else:
        assert events[-1].data == "[DONE]" and events[-1].encode() == b"data: [DONE]\n\n"
        for e in events[:-1]:
            assert e.name is None
            assert_valid(e.data, "CreateChatCompletionStreamResponse")


def test_the_stream_schemas_reject_an_event_missing_a_required_key() -> None:
    delta = {"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "content_index": 0}
    with pytest.raises(AssertionError, match="logprobs"):
        assert_valid({**delta, "delta": "Hi", "sequence_number": 3}, "ResponseTextDeltaEvent")
    with pytest.raises(AssertionError, match="sequence_number"):
        assert_valid({**delta, "delta": "Hi", "logprobs": []}, "ResponseTextDeltaEvent")


def client_for(stub: OfflineLLM) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=stub), base_url="http://stub/v1")
    return openai.AsyncOpenAI(api_key="offline", base_url="http://stub/v1", http_client=http, max_retries=0)


class WeatherRequest(BaseModel):
    city: str


@function_tool
async def get_weather(req: WeatherRequest) -> str:
    """Get the current weather for a given city."""
    return f"temperature=16.0 description='Sunny in {req.city}'"


SETTINGS = [
    ModelSettings(),
    ModelSettings(
        temperature=0.2,
        top_p=0.9,
        tool_choice="auto",
        parallel_tool_calls=False,
        truncation="auto",
        max_tokens=500,
        metadata={"tour": "contract"},
        store=False,
        top_logprobs=2,
        response_include=["message.output_text.logprobs"],
        include_usage=True,
        prompt_cache_retention="24h",
    ),
]


@pytest.mark.parametrize("model_kind", ["responses", "chat"])
@pytest.mark.parametrize("settings", SETTINGS, ids=["defaults", "every-setting"])
def test_what_the_agents_sdk_sends_is_accepted_and_answered_per_the_schema(
    model_kind: str, settings: ModelSettings
) -> None:
    stub = RecordingLLM()

    async def main() -> Any:
        client = client_for(stub)
        model_cls = OpenAIResponsesModel if model_kind == "responses" else OpenAIChatCompletionsModel
        agent = Agent(
            name="WeatherAgent",
            instructions="You are a helpful agent that provides weather updates.",
            tools=[get_weather],
            model=model_cls(model="gpt-4.1", openai_client=client),
            model_settings=settings,
        )
        return await Runner.run(agent, "What is the weather like in Denver and in Oslo?")

    from agents import set_tracing_disabled

    set_tracing_disabled(True)
    result = asyncio.run(main())
    assert "Denver" in result.final_output and "Oslo" in result.final_output
    assert_all_valid(stub)
    # Each run is a tool turn and an answer (two turns with one call each, without parallel calls).
    assert len(stub.exchanges) == (3 if settings.parallel_tool_calls is False else 2)


def test_a_manual_chat_completions_loop_is_accepted_and_answered_per_the_schema() -> None:
    stub = RecordingLLM()
    tools: list[Any] = [openai.pydantic_function_tool(WeatherRequest, name="get_weather")]

    async def main() -> str:
        client = client_for(stub)
        messages: list[Any] = [
            {"role": "system", "content": "You are a helpful weather assistant."},
            {"role": "user", "content": "What is the weather like in Tokyo and Paris?"},
        ]
        for _ in range(4):
            reply = await client.chat.completions.create(model="gpt-4.1", messages=messages, tools=tools)
            message = reply.choices[0].message
            if not message.tool_calls:
                return message.content or ""
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                assert call.type == "function"
                city = json.loads(call.function.arguments)["city"]
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "content": f'{{"temperature": 9, "description": "Rain in {city}"}}',
                    }
                )
        raise AssertionError("no answer after four turns")

    answer = asyncio.run(main())
    assert "Tokyo" in answer and "Paris" in answer
    assert_all_valid(stub)


# --- streamed answers ------------------------------------------------------------------------------

# What differs between two answers to the same request: ids and clocks.
_VOLATILE = {"id", "call_id", "response_id", "created", "created_at", "completed_at"}


# What the client's stream helpers add to what they accumulate.
_PARSED = {"parsed", "parsed_arguments"}


def comparable(value: Any) -> Any:
    """`value` without ids and timestamps, so a streamed answer compares with a non-streamed one."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in _VOLATILE | _PARSED}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


QUESTION = "What is the weather like in Denver and in Oslo?"


@pytest.mark.parametrize("model_kind", ["responses", "chat"])
@pytest.mark.parametrize("settings", SETTINGS, ids=["defaults", "every-setting"])
def test_the_agents_sdk_streams_the_same_run_as_without_streaming(
    model_kind: str, settings: ModelSettings
) -> None:
    plain_stub, streamed_stub = RecordingLLM(), RecordingLLM()
    model_cls = OpenAIResponsesModel if model_kind == "responses" else OpenAIChatCompletionsModel

    def agent(stub: OfflineLLM) -> Agent[Any]:
        return Agent(
            name="WeatherAgent",
            instructions="You are a helpful agent that provides weather updates.",
            tools=[get_weather],
            model=model_cls(model="gpt-4.1", openai_client=client_for(stub)),
            model_settings=settings,
        )

    async def main() -> tuple[Any, Any, list[str]]:
        plain = await Runner.run(agent(plain_stub), QUESTION)
        streamed = Runner.run_streamed(agent(streamed_stub), QUESTION)
        deltas = []
        async for event in streamed.stream_events():
            if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
                deltas.append(event.data.delta)
        return plain, streamed, deltas

    from agents import set_tracing_disabled

    set_tracing_disabled(True)
    plain, streamed, deltas = asyncio.run(main())
    assert all(body.get("stream") is True for _, body, _, _ in streamed_stub.exchanges)
    assert_all_valid(streamed_stub)
    assert len(deltas) > 10  # a word at a time
    assert "".join(deltas) == streamed.final_output == plain.final_output
    assert [comparable([i.model_dump() for i in r.output]) for r in streamed.raw_responses] == [
        comparable([i.model_dump() for i in r.output]) for r in plain.raw_responses
    ]
    if model_kind == "responses" or settings.include_usage:  # chat streams usage only when asked
        tokens = [(r.usage.input_tokens, r.usage.output_tokens) for r in streamed.raw_responses]
        assert tokens == [(r.usage.input_tokens, r.usage.output_tokens) for r in plain.raw_responses]
        assert streamed_stub.state.stats()["output_tokens"] == plain_stub.state.stats()["output_tokens"]


def weather_turn(api: str, answered: bool) -> dict[str, Any]:
    """A first turn (the model calls get_weather for two cities) or, `answered`, the second (text)."""
    if api == "responses":
        items: list[Any] = [{"role": "user", "content": QUESTION}]
        if answered:
            for i, city in enumerate(("Denver", "Oslo")):
                items.append({**call(f"c{i}"), "arguments": json.dumps({"city": city})})
                items.append(
                    {**output(f"c{i}"), "output": f'{{"temperature": 9, "description": "Rain in {city}"}}'}
                )
        return {**RESPONSES, "input": items}
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    if answered:
        messages.append(assistant_calls("c0", "c1"))
        for i, city in enumerate(("Denver", "Oslo")):
            messages[-1]["tool_calls"][i]["function"]["arguments"] = json.dumps({"city": city})
        messages += [
            {
                "role": "tool",
                "tool_call_id": f"c{i}",
                "content": f'{{"temperature": 9, "description": "Rain in {c}"}}',
            }
            for i, c in enumerate(("Denver", "Oslo"))
        ]
    return {**CHAT, "messages": messages}


@pytest.mark.parametrize("answered", [False, True], ids=["tool-calls", "text"])
def test_the_openai_client_reads_a_streamed_response(answered: bool) -> None:
    from openai.types.responses import (
        ResponseCompletedEvent,
        ResponseFunctionCallArgumentsDeltaEvent,
        ResponseTextDeltaEvent,
    )

    stub = RecordingLLM()
    body = without(weather_turn("responses", answered), "model")

    async def main() -> tuple[Any, list[Any], Any]:
        client = client_for(stub)
        events = [
            event async for event in await client.responses.create(model="gpt-4.1", **body, stream=True)
        ]
        # The SDK's own accumulator checks that items, indexes and ids agree from event to event.
        async with client.responses.stream(model="gpt-4.1", **body) as stream:
            accumulated = await stream.get_final_response()
        return await client.responses.create(model="gpt-4.1", **body), events, accumulated

    plain, events, accumulated = asyncio.run(main())
    assert_all_valid(stub)
    # Every event parsed into its own class (an unknown type would fall back to a loose model).
    assert all(
        type(e).__name__ != "BaseModel" and type(e).__module__.startswith("openai.types") for e in events
    )
    final = events[-1]
    assert isinstance(final, ResponseCompletedEvent)
    assert comparable(final.response.model_dump()) == comparable(plain.model_dump())
    assert comparable(accumulated.model_dump()) == comparable(plain.model_dump())
    assert final.response.usage == plain.usage
    text = "".join(e.delta for e in events if isinstance(e, ResponseTextDeltaEvent))
    arguments = "".join(e.delta for e in events if isinstance(e, ResponseFunctionCallArgumentsDeltaEvent))
    if answered:
        assert text == plain.output_text and text.count(" ") >= 5 and not arguments
    else:
        assert not text
        assert arguments == "".join(i.arguments for i in plain.output if i.type == "function_call")


@pytest.mark.parametrize("answered", [False, True], ids=["tool-calls", "text"])
def test_the_openai_client_reads_a_streamed_chat_completion(answered: bool) -> None:
    from openai.types.chat import ChatCompletionChunk

    stub = RecordingLLM()
    body = without(weather_turn("chat", answered), "model")

    async def main() -> tuple[Any, list[ChatCompletionChunk], Any]:
        client = client_for(stub)
        chunks = [
            chunk
            async for chunk in await client.chat.completions.create(
                model="gpt-4.1", **body, stream=True, stream_options={"include_usage": True}
            )
        ]
        async with client.chat.completions.stream(model="gpt-4.1", **body) as stream:
            accumulated = await stream.get_final_completion()
        return await client.chat.completions.create(model="gpt-4.1", **body), chunks, accumulated

    plain, chunks, accumulated = asyncio.run(main())
    assert_all_valid(stub)
    message = plain.choices[0].message
    # The role first, the finish reason last among the chunks with a choice, then usage alone.
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 2) + [
        plain.choices[0].finish_reason
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert all(c.usage is None for c in chunks[:-1])
    content = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert content == (message.content or "")
    arguments: dict[int, str] = {}
    for c in chunks[:-1]:
        for d in c.choices[0].delta.tool_calls or []:
            arguments[d.index] = arguments.get(d.index, "") + (
                d.function.arguments or "" if d.function else ""
            )
    assert list(arguments.values()) == [t.function.arguments for t in message.tool_calls or []]
    assert len(chunks) > (8 if answered else 6)  # words and fragments, not the whole answer at once
    got = accumulated.choices[0]
    assert (got.finish_reason, got.message.content) == (plain.choices[0].finish_reason, message.content)
    assert [(t.function.name, t.function.arguments) for t in got.message.tool_calls or []] == [
        (t.function.name, t.function.arguments) for t in message.tool_calls or []
    ]


# --- misbehaviours are what a real model can send --------------------------------------------------


def post(stub: OfflineLLM, path: str, body: Any, faults: Sequence[dict[str, Any]] = ()) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=stub)
        async with httpx.AsyncClient(transport=transport, base_url="http://stub") as client:
            for fault in faults:
                assert (await client.post("/_stub/faults", json=fault)).status_code == 200
            if isinstance(body, bytes):
                return await client.post(path, content=body, headers={"content-type": "application/json"})
            return await client.post(path, json=body)

    return asyncio.run(main())


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
RESPONSES = {
    "model": "gpt-4.1",
    "instructions": "You are a helpful agent that provides weather updates.",
    "input": [{"role": "user", "content": "What is the weather like in Denver?"}],
    "tools": [WEATHER_TOOL],
}
CHAT = {
    "model": "gpt-4.1",
    "messages": [{"role": "user", "content": "What is the weather like in Denver?"}],
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL["parameters"]}}
    ],
}


@pytest.mark.parametrize("kind", MISBEHAVIOURS)
def test_misbehaving_answers_fit_the_schema(kind: str) -> None:
    stub = OfflineLLM()
    fault = {"misbehave": kind, "count": 2, "length": 5000}
    responses = post(stub, "/v1/responses", RESPONSES, [fault])
    chat = post(stub, "/v1/chat/completions", CHAT)
    assert (responses.status_code, chat.status_code) == (200, 200)
    assert_valid(responses.json(), "Response")
    assert_valid(chat.json(), "CreateChatCompletionResponse")


def read_sse(text: str) -> list[tuple[str | None, Any]]:
    """Server-sent events as (the `event:` line or None, the `data:` JSON or "[DONE]")."""
    assert text.endswith("\n\n"), text[-200:]
    events = []
    for block in text[:-2].split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) <= {"event", "data"}, block
        data = fields["data"]
        events.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return events


@pytest.mark.parametrize("kind", MISBEHAVIOURS)
def test_misbehaving_answers_stream_per_the_schema(kind: str) -> None:
    stub = RecordingLLM()
    fault = {"misbehave": kind, "count": 4, "length": 5000}
    plain = post(stub, "/v1/responses", RESPONSES, [fault]).json()
    streamed = post(stub, "/v1/responses", {**RESPONSES, "stream": True})
    plain_chat = post(stub, "/v1/chat/completions", CHAT).json()
    include_usage = {"stream": True, "stream_options": {"include_usage": True}}
    streamed_chat = post(stub, "/v1/chat/completions", {**CHAT, **include_usage})
    assert stub.state.stats()["misbehaviours_injected"] == 4
    assert_all_valid(stub)
    for resp in (streamed, streamed_chat):
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"

    events = read_sse(streamed.text)
    assert all(name == data["type"] for name, data in events)
    terminal = events[-1][1]
    assert terminal["type"] == {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
        plain["status"], "response.failed"
    )
    assert comparable(terminal["response"]) == comparable(plain)

    chunks = [data for _, data in read_sse(streamed_chat.text)]
    assert (
        chunks[-1] == "[DONE]" and chunks[-2]["choices"] == [] and chunks[-2]["usage"] == plain_chat["usage"]
    )
    deltas = [c["choices"][0]["delta"] for c in chunks[:-2]]
    message = plain_chat["choices"][0]["message"]
    assert ("".join(d.get("content") or "" for d in deltas) or None) == message["content"]
    assert ("".join(d.get("refusal") or "" for d in deltas) or None) == message["refusal"]
    calls = [t for d in deltas for t in d.get("tool_calls", [])]
    assert [t["function"]["name"] for t in calls if "id" in t] == [
        t["function"]["name"] for t in message.get("tool_calls", [])
    ]
    arguments = [
        "".join(t["function"]["arguments"] for t in calls if t["index"] == i) for i in range(len(calls))
    ]
    assert arguments[: len(message.get("tool_calls", []))] == [
        t["function"]["arguments"] for t in message.get("tool_calls", [])
    ]
    assert chunks[-3]["choices"][0]["finish_reason"] == plain_chat["choices"][0]["finish_reason"]


def test_models_and_errors_fit_the_schema() -> None:
    stub = OfflineLLM()
    assert_valid(_get(stub, "/v1/models"), "ListModelsResponse")
    for resp in (
        post(stub, "/v1/responses", {"model": "m"}),
        post(
            stub,
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "x"}]},
            [{"status": 500}],
        ),
        post(
            stub,
            "/v1/responses",
            {**RESPONSES, "tools": [{"type": "function", "name": "rocket", "parameters": {}}]},
        ),
    ):
        assert resp.status_code >= 400
        assert_valid(resp.json(), "ErrorResponse")


def _get(stub: OfflineLLM, path: str) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=stub)
        async with httpx.AsyncClient(transport=transport, base_url="http://stub") as client:
            return (await client.get(path)).json()

    return asyncio.run(main())


# --- what the real API refuses ------------------------------------------------------------------------


def call(call_id: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "call_id": call_id,
        "name": "get_weather",
        "arguments": '{"city": "Denver"}',
    }


def output(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "sunny"}


USER = {"role": "user", "content": "What is the weather like in Denver?"}


def assistant_calls(*ids: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}} for i in ids
        ],
    }


def tool_message(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "sunny"}


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


INVALID: list[tuple[str, str, Any, str | None, str]] = [
    # (id, path, body, param, a part of the message)
    ("responses-orphan-output", "/v1/responses", {**RESPONSES, "input": [USER, output("call_1")]}, "input",
     "No tool call found for function call output with call_id call_1"),
    ("responses-call-without-output", "/v1/responses", {**RESPONSES, "input": [USER, call("call_1")]}, "input",
     "No tool output found for function call call_1"),
    ("responses-output-for-another-call", "/v1/responses",
     {**RESPONSES, "input": [USER, call("call_1"), output("call_2")]}, "input", "call_id call_2"),
    ("responses-no-model", "/v1/responses", without(RESPONSES, "model"), "model", "Missing required parameter: 'model'"),
    ("responses-no-input", "/v1/responses", without(RESPONSES, "input"), "input", "Missing required parameter: 'input'"),
    ("responses-unknown-parameter", "/v1/responses", {**RESPONSES, "temprature": 1}, "temprature",
     "Unknown parameter: 'temprature'"),
    ("responses-chat-parameter", "/v1/responses", {**RESPONSES, "messages": []}, "messages", "Unknown parameter"),
    ("responses-wrong-type", "/v1/responses", {**RESPONSES, "temperature": "hot"}, "temperature",
     "Invalid type for 'temperature'"),
    ("responses-stream-not-a-boolean", "/v1/responses", {**RESPONSES, "stream": "yes"}, "stream",
     "Invalid type for 'stream'"),
    ("responses-stream-options-without-stream", "/v1/responses",
     {**RESPONSES, "stream_options": {"include_obfuscation": False}}, "stream_options",
     "The 'stream_options' parameter is only allowed when 'stream' is enabled."),
    ("responses-stream-options-include-usage", "/v1/responses",
     {**RESPONSES, "stream": True, "stream_options": {"include_usage": True}}, "stream_options.include_usage",
     "Unknown parameter: 'stream_options.include_usage'"),
    ("responses-call-without-name", "/v1/responses",
     {**RESPONSES, "input": [USER, without(call("c"), "name"), output("c")]}, "input[1].name",
     "Missing required parameter: 'input[1].name'"),
    ("responses-arguments-not-a-string", "/v1/responses",
     {**RESPONSES, "input": [USER, {**call("c"), "arguments": {"city": "Denver"}}, output("c")]},
     "input[1].arguments", "Invalid type for 'input[1].arguments'"),
    ("responses-optional-field-of-wrong-type", "/v1/responses",
     {**RESPONSES, "input": [USER, {**call("c"), "namespace": 5}, output("c")]}, "input[1].namespace",
     "Invalid type for 'input[1].namespace'"),
    ("responses-bad-tool-name", "/v1/responses", {**RESPONSES, "tools": [{**WEATHER_TOOL, "name": "get weather"}]},
     "tools[0].name", "does not match pattern"),
    ("responses-tool-choice-not-offered", "/v1/responses",
     {**RESPONSES, "tool_choice": {"type": "function", "name": "launch_rocket"}}, "tool_choice", "launch_rocket"),
    ("responses-previous-response", "/v1/responses", {**RESPONSES, "previous_response_id": "resp_1"},
     "previous_response_id", "previous_response_id"),
    ("responses-token-cap-below-minimum", "/v1/responses", {**RESPONSES, "max_output_tokens": 5},
     "max_output_tokens", "Expected a value >= 16"),
    ("chat-orphan-tool-message", "/v1/chat/completions", {**CHAT, "messages": [USER, tool_message("call_1")]},
     "messages.[1].role", "must be a response to a preceeding message with 'tool_calls'"),
    ("chat-unanswered-tool-calls", "/v1/chat/completions",
     {**CHAT, "messages": [USER, assistant_calls("call_1", "call_2"), tool_message("call_1")]},
     "messages.[1].role", "did not have response messages: call_2"),
    ("chat-tool-answer-after-user", "/v1/chat/completions",
     {**CHAT, "messages": [USER, assistant_calls("call_1"), USER, tool_message("call_1")]},
     "messages.[1].role", "call_1"),
    ("chat-no-model", "/v1/chat/completions", without(CHAT, "model"), "model", "Missing required parameter: 'model'"),
    ("chat-no-messages", "/v1/chat/completions", without(CHAT, "messages"), "messages",
     "Missing required parameter: 'messages'"),
    ("chat-empty-messages", "/v1/chat/completions", {**CHAT, "messages": []}, "messages", "empty array"),
    ("chat-unknown-parameter", "/v1/chat/completions", {**CHAT, "input": "hi"}, "input", "Unknown parameter: 'input'"),
    ("chat-wrong-type", "/v1/chat/completions", {**CHAT, "max_tokens": "ten"}, "max_tokens",
     "Invalid type for 'max_tokens'"),
    ("chat-stream-options-without-stream", "/v1/chat/completions",
     {**CHAT, "stream_options": {"include_usage": True}}, "stream_options",
     "The 'stream_options' parameter is only allowed when 'stream' is enabled."),
    ("chat-stream-options-with-stream-false", "/v1/chat/completions",
     {**CHAT, "stream": False, "stream_options": {"include_usage": True}}, "stream_options",
     "only allowed when 'stream' is enabled"),
    ("chat-stream-options-unknown-key", "/v1/chat/completions",
     {**CHAT, "stream": True, "stream_options": {"include_usage": True, "chunk_size": 3}},
     "stream_options.chunk_size", "Unknown parameter: 'stream_options.chunk_size'"),
    ("chat-include-usage-not-a-boolean", "/v1/chat/completions",
     {**CHAT, "stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage",
     "Invalid type for 'stream_options.include_usage'"),
    ("chat-stream-options-not-an-object", "/v1/chat/completions",
     {**CHAT, "stream": True, "stream_options": "usage"}, "stream_options", "Invalid type for 'stream_options'"),
    ("chat-bad-role", "/v1/chat/completions", {**CHAT, "messages": [{"role": "robot", "content": "x"}]},
     "messages.[0].role", "Invalid value: 'robot'"),
    ("chat-tool-message-without-id", "/v1/chat/completions",
     {**CHAT, "messages": [USER, assistant_calls("c"), without(tool_message("c"), "tool_call_id")]},
     "messages.[2].tool_call_id", "Missing required parameter"),
    ("chat-tool-without-function", "/v1/chat/completions", {**CHAT, "tools": [{"type": "function"}]},
     "tools[0].function.name", "Missing required parameter"),
    ("chat-tool-choice-not-offered", "/v1/chat/completions",
     {**CHAT, "tool_choice": {"type": "function", "function": {"name": "launch_rocket"}}}, "tool_choice",
     "launch_rocket"),
    ("chat-content-of-wrong-type", "/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": 5}]},
     "messages.[0].content", "Invalid type for 'messages.[0].content'"),
    ("responses-message-without-content", "/v1/responses", {**RESPONSES, "input": [{"role": "user"}]},
     "input[0].content", "Missing required parameter: 'input[0].content'"),
    ("chat-not-json", "/v1/chat/completions", b"{model: ", None, "invalid JSON body"),
    ("chat-not-an-object", "/v1/chat/completions", [CHAT], None, "must be a JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "param", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_requests_get_the_apis_400(path: str, body: Any, param: str | None, message: str) -> None:
    stub = OfflineLLM()
    resp = post(stub, path, body)
    assert resp.status_code == 400, resp.text
    assert_valid(resp.json(), "ErrorResponse")
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]
    assert stub.state.stats()["invalid_requests"] == 1 and stub.state.stats()["llm_completed"] == 0


def test_a_valid_history_with_tool_calls_is_accepted_in_both_apis() -> None:
    stub = OfflineLLM()
    # As the Restate integration sends journaled items back: every optional field, null if unset.
    journaled = {**call("c1"), "id": "fc_1", "namespace": None, "status": "completed"}
    ok_responses = {**RESPONSES, "input": [USER, journaled, call("c2"), output("c2"), output("c1")]}
    ok_chat = {
        **CHAT,
        "messages": [USER, assistant_calls("c1", "c2"), tool_message("c2"), tool_message("c1")],
    }
    assert post(stub, "/v1/responses", ok_responses).status_code == 200
    assert post(stub, "/v1/chat/completions", ok_chat).status_code == 200
