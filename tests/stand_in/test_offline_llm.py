"""Unit tests of the offline stand-in: its policy, both OpenAI wire formats, faults and counters."""

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from dev.offline_llm.claims import parse_claim
from dev.offline_llm.conversation import (
    fill_arguments as fill,
    from_chat_request,
    from_responses_request,
    parse_output,
)
from dev.offline_llm.policy import extract_cities, respond
from dev.offline_llm.server import OfflineLLM

# The schema the Agents SDK sends for `get_weather(wrapper, req: WeatherRequest)`.
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a given city.",
    "parameters": {
        "type": "object",
        "properties": {"req": {"$ref": "#/$defs/WeatherRequest"}},
        "required": ["req"],
        "additionalProperties": False,
        "$defs": {
            "WeatherRequest": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            }
        },
    },
    "strict": True,
}


def responses_body(*items: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "model": "gpt-4.1",
        "instructions": "You are a helpful agent that provides weather updates.",
        "input": list(items),
        "tools": tools if tools is not None else [WEATHER_TOOL],
    }


ROCKET_TOOL = {
    "type": "function",
    "name": "launch_rocket",
    "parameters": {"type": "object", "properties": {"target": {"type": "string"}}},
}


ASSISTANT = "You are a helpful assistant."


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# --- prompt reading ------------------------------------------------------------------------------


def test_cities_are_found_in_order_of_mention() -> None:
    assert extract_cities("What is the weather like in New York and San Francisco?") == [
        "New York",
        "San Francisco",
    ]
    assert extract_cities("weather in tokyo?") == ["Tokyo"]


def test_an_unknown_place_is_still_passed_on() -> None:
    # The tool gets called and the weather API decides; the stand-in does not guess.
    assert extract_cities("What is the weather like in Atlantis?") == ["Atlantis"]
    assert extract_cities("hello there") == []


def test_arguments_follow_nested_schemas() -> None:
    assert fill(WEATHER_TOOL["parameters"], {"city": "Denver"}) == {"req": {"city": "Denver"}}
    flat = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 3}},
    }
    assert fill(flat, {"city": "Oslo"}) == {"city": "Oslo", "days": 3}


def test_pydantic_reprs_and_json_outputs_are_read() -> None:
    assert parse_output("temperature=16.0 description='Partly cloudy'") == {
        "temperature": 16.0,
        "description": "Partly cloudy",
    }
    assert parse_output('{"temperature": 7, "description": "Clear"}') == {
        "temperature": 7,
        "description": "Clear",
    }
    assert parse_output("plain words") is None


# --- the weather skill ---------------------------------------------------------------------------


def test_weather_question_calls_the_tool_then_answers_from_its_output() -> None:
    first = respond(
        from_responses_request(responses_body(user("What is the weather like in San Francisco?")))
    )
    assert first.text is None
    assert first.calls == [("get_weather", {"req": {"city": "San Francisco"}})]

    second = respond(
        from_responses_request(
            responses_body(
                user("What is the weather like in San Francisco?"),
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"req": {"city": "San Francisco"}}',
                },
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": "temperature=16.0 description='Partly cloudy'",
                },
            )
        )
    )
    assert second.calls == []
    assert second.text == "The weather in San Francisco is currently partly cloudy, 16 degrees Celsius."


def test_two_cities_are_two_calls_in_one_turn() -> None:
    reply = respond(from_responses_request(responses_body(user("Weather in New York and San Francisco?"))))
    assert [args["req"]["city"] for _, args in reply.calls] == ["New York", "San Francisco"]


def test_a_tool_error_is_reported_not_invented() -> None:
    reply = respond(
        from_responses_request(
            responses_body(
                user("Weather in Atlantis?"),
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"req": {"city": "Atlantis"}}',
                },
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": "An error occurred: Unknown location",
                },
            )
        )
    )
    assert reply.text is not None
    assert "Atlantis" in reply.text and "could not" in reply.text


def test_a_new_question_starts_a_new_round() -> None:
    # Tool results from an earlier question must not answer the next one.
    conv = from_responses_request(
        responses_body(
            user("Weather in Paris?"),
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"req": {"city": "Paris"}}',
            },
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": "temperature=14.0 description='Cloudy'",
            },
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Cloudy."}]},
            user("And in Rome?"),
        )
    )
    assert respond(conv).calls == [("get_weather", {"req": {"city": "Rome"}})]


def test_chat_completions_requests_are_understood() -> None:
    body = {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are a helpful weather assistant."},
            {"role": "user", "content": "What is the weather like in Tokyo?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
    }
    assert respond(from_chat_request(body)).calls == [("get_weather", {"city": "Tokyo"})]


def test_without_a_matching_skill_there_is_no_reply() -> None:
    reply = respond(from_responses_request(responses_body(user("Tell me a joke"), tools=[ROCKET_TOOL])))
    assert reply is None
    # Small talk is for the tour's assistants only, not for any agent without tools.
    poet = from_responses_request({"instructions": "You write sonnets.", "input": "Tell me a joke"})
    assert respond(poet) is None


def test_replies_are_deterministic() -> None:
    body = responses_body(user("What is the weather like in Denver?"))
    assert respond(from_responses_request(body)) == respond(
        from_responses_request(json.loads(json.dumps(body)))
    )


# --- over HTTP: wire formats, faults, counters -----------------------------------------------------


def run_against_stub(script: Any) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=OfflineLLM())
        async with httpx.AsyncClient(transport=transport, base_url="http://stub") as client:
            return await script(client)

    return asyncio.run(main())


def test_responses_endpoint_speaks_the_openai_sdk_format() -> None:
    from openai.types.responses import Response

    async def script(client: httpx.AsyncClient) -> Any:
        return await client.post("/v1/responses", json=responses_body(user("Weather in Denver?")))

    resp = run_against_stub(script)
    assert resp.status_code == 200
    parsed = Response.model_validate(resp.json())
    call = parsed.output[0]
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"req": {"city": "Denver"}}
    assert parsed.usage is not None and parsed.usage.total_tokens > 0


def test_chat_endpoint_speaks_the_openai_sdk_format() -> None:
    from openai.types.chat import ChatCompletion

    async def script(client: httpx.AsyncClient) -> Any:
        body = {
            "model": "m",
            "messages": [{"role": "system", "content": ASSISTANT}, {"role": "user", "content": "hi"}],
        }
        return await client.post("/v1/chat/completions", json=body)

    parsed = ChatCompletion.model_validate(run_against_stub(script).json())
    assert parsed.choices[0].message.content is not None
    assert parsed.choices[0].finish_reason == "stop"


def test_faults_fail_the_next_calls_then_clear() -> None:
    async def script(client: httpx.AsyncClient) -> Any:
        await client.post(
            "/_stub/faults", json={"target": "llm", "count": 2, "status": 429, "retry_after": 1.5}
        )
        codes = []
        for _ in range(3):
            r = await client.post("/v1/responses", json=responses_body(user("Weather in Rome?")))
            codes.append((r.status_code, r.headers.get("retry-after"), r.headers.get("retry-after-ms")))
        return codes, (await client.get("/_stub/stats")).json()

    codes, stats = run_against_stub(script)
    # OpenAI's pair of headers: whole seconds rounded up (at least 1), and the exact milliseconds.
    assert codes == [(429, "2", "1500"), (429, "2", "1500"), (200, None, None)]
    assert stats["llm_calls"] == 3 and stats["llm_completed"] == 1 and stats["faults_injected"] == 2


def test_after_lets_calls_through_before_the_fault() -> None:
    async def script(client: httpx.AsyncClient) -> Any:
        await client.post("/_stub/faults", json={"target": "weather", "count": 1, "after": 1, "status": 500})
        return [(await client.get("/wttr/Oslo?format=j1")).status_code for _ in range(3)]

    assert run_against_stub(script) == [200, 500, 200]


def test_weather_lookalike_matches_wttr_in() -> None:
    async def script(client: httpx.AsyncClient) -> Any:
        return await client.get("/wttr/San%20Francisco?format=j1"), await client.get(
            "/wttr/Atlantis?format=j1"
        )

    known, unknown = run_against_stub(script)
    current = known.json()["current_condition"][0]
    assert (current["temp_C"], current["weatherDesc"][0]["value"]) == ("16", "Partly cloudy")
    assert unknown.status_code == 404 and unknown.text.startswith("Unknown location")


@pytest.mark.parametrize(
    "spec",
    [
        {"target": "nowhere"},
        {"count": "many"},
        {"misbehave": "sing"},
        {"target": "weather", "misbehave": "empty"},
        {"misbehave": "long_answer", "length": -1},
    ],
)
def test_bad_fault_specs_are_refused(spec: dict[str, Any]) -> None:
    async def script(client: httpx.AsyncClient) -> Any:
        return await client.post("/_stub/faults", json=spec)

    assert run_against_stub(script).status_code == 400


def chat_body(
    text: str, tools: list[dict[str, Any]] | None = None, instructions: str | None = None, **extra: Any
) -> dict[str, Any]:
    chat_tools = [
        {"type": "function", "function": {k: v for k, v in t.items() if k not in ("type", "strict")}}
        for t in (tools if tools is not None else [WEATHER_TOOL])
    ]
    messages = [{"role": "user", "content": text}]
    if instructions is not None:
        messages.insert(0, {"role": "system", "content": instructions})
    body: dict[str, Any] = {"model": "gpt-4.1", "messages": messages, **extra}
    if chat_tools:
        body["tools"] = chat_tools
    return body


def ask(
    api: str, text: str, faults: Sequence[dict[str, Any]] = (), **kw: Any
) -> tuple[Any, Any, dict[str, Any]]:
    """One request to either API (after setting faults): the parsed answer, the response, the stats."""
    from openai.types.chat import ChatCompletion
    from openai.types.responses import Response

    async def script(client: httpx.AsyncClient) -> Any:
        for fault in faults:
            assert (await client.post("/_stub/faults", json=fault)).status_code == 200
        if api == "responses":
            tools = kw.pop("tools", None)
            resp = await client.post("/v1/responses", json={**responses_body(user(text), tools=tools), **kw})
        else:
            resp = await client.post("/v1/chat/completions", json=chat_body(text, **kw))
        return resp, (await client.get("/_stub/stats")).json()

    resp, stats = run_against_stub(script)
    parsed = None
    if resp.status_code == 200:
        parsed = (Response if api == "responses" else ChatCompletion).model_validate(resp.json())
    return parsed, resp, stats


def calls_of(api: str, parsed: Any) -> list[tuple[str, str]]:
    if api == "responses":
        return [(o.name, o.arguments) for o in parsed.output if o.type == "function_call"]
    return [(c.function.name, c.function.arguments) for c in parsed.choices[0].message.tool_calls or []]


def text_of(api: str, parsed: Any) -> str | None:
    if api == "responses":
        texts = [
            c.text for o in parsed.output if o.type == "message" for c in o.content if c.type == "output_text"
        ]
        return "".join(texts) if texts else None
    return parsed.choices[0].message.content


APIS = ["responses", "chat"]
DENVER = "What is the weather like in Denver?"


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_unknown_tool(api: str) -> None:
    parsed, _, stats = ask(api, DENVER, [{"misbehave": "unknown_tool"}])
    assert calls_of(api, parsed) == [("no_such_tool", "{}")]
    assert stats["misbehaviours_injected"] == 1 and stats["calls"][-1]["misbehave"] == "unknown_tool"
    named, _, _ = ask(api, DENVER, [{"misbehave": "unknown_tool", "tool": "send_money"}])
    assert calls_of(api, named) == [("send_money", "{}")]


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_bad_json(api: str) -> None:
    parsed, _, _ = ask(api, DENVER, [{"misbehave": "bad_json"}])
    [(name, args)] = calls_of(api, parsed)
    assert name == "get_weather"
    with pytest.raises(ValueError):
        json.loads(args)
    no_tools, _, _ = ask(api, "hello", [{"misbehave": "bad_json"}], tools=[])
    assert [n for n, _ in calls_of(api, no_tools)] == ["no_such_tool"]


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_bad_args(api: str) -> None:
    parsed, _, _ = ask(api, "Tell me a joke", [{"misbehave": "bad_args"}], tools=[ROCKET_TOOL])
    assert calls_of(api, parsed) == [("launch_rocket", '{"unexpected_field": 42}')]


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_endless_tools(api: str) -> None:
    fault = {"misbehave": "endless_tools", "count": 100}
    scripted, _, _ = ask(api, DENVER, [fault])
    assert [(n, json.loads(a)) for n, a in calls_of(api, scripted)] == [
        ("get_weather", {"req": {"city": "Denver"}})
    ]
    # Even after the tool answered, the model calls again instead of answering.
    first_offered, _, _ = ask(api, "Tell me a joke", [fault], tools=[ROCKET_TOOL])
    assert calls_of(api, first_offered) == [("launch_rocket", '{"target": ""}')]
    no_tools, _, _ = ask(api, "hello", [fault], tools=[])
    assert calls_of(api, no_tools) == [("no_such_tool", "{}")]


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_empty(api: str) -> None:
    parsed, resp, _ = ask(api, DENVER, [{"misbehave": "empty"}])
    assert calls_of(api, parsed) == [] and text_of(api, parsed) is None
    if api == "responses":
        assert resp.json()["output"] == [] and parsed.status == "completed"
    else:
        assert parsed.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_refusal(api: str) -> None:
    parsed, _, _ = ask(api, DENVER, [{"misbehave": "refusal"}])
    refusal = "I'm sorry, but I can't help with that."
    if api == "responses":
        [message] = parsed.output
        assert [(c.type, c.refusal) for c in message.content] == [("refusal", refusal)]
    else:
        message = parsed.choices[0].message
        assert (message.content, message.refusal, message.tool_calls) == (None, refusal, None)


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_long_answer(api: str) -> None:
    parsed, _, _ = ask(api, DENVER, [{"misbehave": "long_answer"}])
    assert len(text_of(api, parsed) or "") == 200_000 and calls_of(api, parsed) == []
    short, _, _ = ask(api, DENVER, [{"misbehave": "long_answer", "length": 1000}])
    assert len(text_of(api, short) or "") == 1000


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_incomplete(api: str) -> None:
    parsed, _, _ = ask(api, DENVER, [{"misbehave": "incomplete"}])
    assert text_of(api, parsed) and calls_of(api, parsed) == []
    if api == "responses":
        assert parsed.status == "incomplete" and parsed.incomplete_details.reason == "max_output_tokens"
    else:
        assert parsed.choices[0].finish_reason == "length"


@pytest.mark.parametrize("api", APIS)
def test_misbehaviour_failed(api: str) -> None:
    parsed, _, _ = ask(api, DENVER, [{"misbehave": "failed"}])
    assert calls_of(api, parsed) == [] and text_of(api, parsed) is None
    if api == "responses":
        assert parsed.status == "failed" and parsed.output == []
        assert (parsed.error.code, parsed.error.message) == (
            "server_error",
            "The model failed to generate a response.",
        )
    else:
        assert parsed.choices[0].finish_reason == "content_filter"


def test_misbehaviours_follow_count_after_and_target() -> None:
    async def script(client: httpx.AsyncClient) -> Any:
        fault = {"target": "chat", "misbehave": "empty", "count": 1, "after": 1, "status": 500}
        await client.post("/_stub/faults", json=fault)
        out = []
        for api in ("responses", "chat", "chat", "chat"):
            if api == "responses":
                r = await client.post("/v1/responses", json=responses_body(user(DENVER)))
            else:
                r = await client.post("/v1/chat/completions", json=chat_body(DENVER))
            out.append(
                (
                    r.status_code,
                    bool(r.json()["choices"][0]["message"].get("tool_calls")) if api == "chat" else None,
                )
            )
        return out, (await client.get("/_stub/stats")).json()

    out, stats = run_against_stub(script)
    # the Responses call is not a target; the first chat call is let through; `status` is ignored
    assert out == [(200, None), (200, True), (200, False), (200, True)]
    assert stats["misbehaviours_injected"] == 1 and stats["faults_injected"] == 0


@pytest.mark.parametrize("api", APIS)
def test_an_unscripted_request_fails_loudly(api: str) -> None:
    parsed, resp, stats = ask(api, "Tell me a joke about " + "rockets " * 60, tools=[ROCKET_TOOL])
    assert parsed is None and resp.status_code == 422
    error = resp.json()["error"]
    message = error["message"]
    assert error["code"] == "offline_stand_in_unscripted"
    assert "You are a helpful agent that provides weather updates." in message or api == "chat"
    assert "launch_rocket" in message and "Tell me a joke about rockets" in message and "..." in message
    assert stats["unscripted_requests"] == 1 and stats["llm_completed"] == 0


def test_the_projects_client_treats_the_loud_failure_as_terminal() -> None:
    import openai
    from restate import TerminalError

    from app.runtime.llm_client import classify

    _, resp, _ = ask("responses", "Tell me a joke", tools=[ROCKET_TOOL])
    request = httpx.Request("POST", "http://stub/v1/responses")
    error = openai.APIStatusError(
        resp.json()["error"]["message"],
        response=httpx.Response(resp.status_code, request=request),
        body=resp.json(),
    )
    assert isinstance(classify(error), TerminalError)


@pytest.mark.parametrize("api", APIS)
def test_tool_choice_is_honoured(api: str) -> None:
    def choose(choice: Any, text: str = DENVER, **kw: Any) -> Any:
        return ask(api, text, tool_choice=choice, **kw)[0]

    none = choose("none")
    assert calls_of(api, none) == [] and "get_weather" in (text_of(api, none) or "")
    # The script answers "which city?" in text; `required` makes it call the first tool anyway.
    required = choose("required", "hello", tools=[WEATHER_TOOL, ROCKET_TOOL])
    assert calls_of(api, required) == [("get_weather", '{"req": {"city": ""}}')]
    named = {"type": "function", "name": "launch_rocket"}
    if api == "chat":
        named = {"type": "function", "function": {"name": "launch_rocket"}}
    forced = choose(named, DENVER, tools=[WEATHER_TOOL, ROCKET_TOOL])
    assert [n for n, _ in calls_of(api, forced)] == ["launch_rocket"]


@pytest.mark.parametrize("api", APIS)
def test_parallel_tool_calls_false_gives_one_call(api: str) -> None:
    two_cities = "Weather in New York and San Francisco?"
    assert len(calls_of(api, ask(api, two_cities)[0])) == 2
    parsed, resp, _ = ask(api, two_cities, parallel_tool_calls=False)
    assert len(calls_of(api, parsed)) == 1
    if api == "responses":
        assert resp.json()["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("api", "cap"),
    [("responses", "max_output_tokens"), ("chat", "max_completion_tokens"), ("chat", "max_tokens")],
)
def test_a_small_token_cap_cuts_the_answer(api: str, cap: str) -> None:
    poem = "Make a poem about durable execution."
    full = text_of(api, ask(api, poem, tools=[], instructions=ASSISTANT)[0]) or ""
    parsed, _, _ = ask(api, poem, tools=[], instructions=ASSISTANT, **{cap: 16})
    cut = text_of(api, parsed) or ""
    assert len(cut) == 64 and full.startswith(cut) and len(full) > len(cut)
    if api == "responses":
        assert parsed.status == "incomplete" and parsed.incomplete_details.reason == "max_output_tokens"
    else:
        assert parsed.choices[0].finish_reason == "length"


@pytest.mark.parametrize("api", APIS)
def test_ids_are_unique_per_answer(api: str) -> None:
    first, second = ask(api, DENVER)[1].json(), ask(api, DENVER)[1].json()
    assert first["id"] != second["id"]
    if api == "responses":
        assert first["output"][0]["call_id"] != second["output"][0]["call_id"]
    else:
        assert (
            first["choices"][0]["message"]["tool_calls"][0]["id"]
            != second["choices"][0]["message"]["tool_calls"][0]["id"]
        )


# --- claims ------------------------------------------------------------------------------------------

CLAIM_TOOL = {
    "type": "function",
    "name": "human_approval",
    "parameters": {
        "type": "object",
        "properties": {
            "claim": {
                "type": "object",
                "properties": {
                    "date": {"type": "string"},
                    "amount": {"type": "number"},
                    "category": {"type": "string"},
                    "placeOfService": {"type": "string"},
                    "reason": {"type": "string"},
                },
            }
        },
    },
}
CLAIM_INSTRUCTIONS = "You are an insurance claim evaluation agent. Above 1000, ask for human approval."


def conversation(instructions: str, *items: dict[str, Any], tools: list[dict[str, Any]]) -> Any:
    return from_responses_request({"instructions": instructions, "input": list(items), "tools": tools})


@pytest.mark.parametrize(
    ("text", "amount", "currency", "kind", "reason"),
    [
        ("Process my hospital bill of 3000USD for a broken leg.", 3000, "USD", "medical", "broken leg"),
        ("Reimburse $500 for a sprained ankle at the clinic on 2024-10-01", 500, "USD", "medical", "sprained ankle"),
        ("My car was hit; the garage wants 2,500 euros", 2500, "EUR", "auto", None),
        ('Claim: {"date": "2024-10-01", "amount": 7000, "category": "orthopedic", '
         '"placeOfService": "General Hospital", "reason": "knee surgery"}', 7000, "USD", "medical", "knee surgery"),
    ],
)  # fmt: skip
def test_claims_are_read_from_words_and_from_json(
    text: str, amount: float, currency: str, kind: str, reason: str | None
) -> None:
    parsed = parse_claim(text)
    assert (parsed.amount, parsed.currency, parsed.kind()) == (amount, currency, kind)
    if reason is not None:
        assert parsed.reason == reason


def test_a_high_claim_asks_a_human_with_the_claim_fields() -> None:
    reply = respond(conversation(CLAIM_INSTRUCTIONS, user("Process my hospital bill of 3000USD for a broken leg."),
                                 tools=[CLAIM_TOOL]))  # fmt: skip
    assert reply.calls == [
        ("human_approval", {"claim": {"date": None, "amount": 3000.0, "category": "medical",
                                      "placeOfService": "hospital", "reason": "broken leg"}})
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        ("Approved", "was approved by a human reviewer"),
        ("Rejected", "was rejected by a human reviewer"),
        ("Approval timed out - evaluate the claim yourself", "timed out, so I evaluated it myself: approved"),
    ],
)
def test_the_answer_follows_the_human_decision(output: str, answer: str) -> None:
    conv = conversation(
        CLAIM_INSTRUCTIONS,
        user("Process my hospital bill of 3000USD for a broken leg."),
        {"type": "function_call", "call_id": "c1", "name": "human_approval", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": output},
        tools=[CLAIM_TOOL],
    )
    assert answer in (respond(conv).text or "")


def test_a_small_claim_is_decided_alone() -> None:
    reply = respond(
        conversation(CLAIM_INSTRUCTIONS, user("Reimburse 500USD for a sprained ankle."), tools=[CLAIM_TOOL])
    )
    assert reply.calls == [] and "without a human review" in (reply.text or "")


def test_the_intake_agent_hands_off_by_kind_of_claim() -> None:
    handoffs = [
        {"type": "function", "name": "transfer_to_medicalspecialist", "description": "Handles medical claims",
         "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "transfer_to_autospecialist", "description": "Handles auto claims",
         "parameters": {"type": "object", "properties": {}}},
    ]  # fmt: skip
    medical = conversation("Route insurance claims.", user('Claim: {"amount": 3000, "category": "orthopedic", '
                           '"reason": "broken leg"}'), tools=handoffs)  # fmt: skip
    auto = conversation("Route insurance claims.", user('Claim: {"amount": 900, "category": "auto", '
                        '"reason": "bumper"}'), tools=handoffs)  # fmt: skip
    assert respond(medical).calls == [("transfer_to_medicalspecialist", {})]
    assert respond(auto).calls == [("transfer_to_autospecialist", {})]


def test_specialists_decide_within_their_limit_and_competence() -> None:
    instructions = "Review medical claims for coverage and necessity. Approve or deny claims up to $50,000."

    def decide(body: str) -> str:
        return respond(conversation(instructions, user(f"Claim: {body}"), tools=[])).text or ""

    assert decide('{"amount": 3000, "category": "orthopedic", "reason": "broken leg"}').endswith(
        ": approved."
    )
    assert "above my approval limit" in decide(
        '{"amount": 90000, "category": "medical", "reason": "surgery"}'
    )
    assert "not a medical claim" in decide('{"amount": 900, "category": "auto", "reason": "bumper"}')


@pytest.mark.parametrize(
    ("instructions", "low", "high"),
    [
        ("Decide whether the following claim is eligible for reimbursement.", "eligible", "eligible"),
        ("Decide how likely the following claim is to be fraudulent.", "low risk", "high risk"),
        ("Decide whether the cost of the following claim is reasonable.", "reasonable", "not reasonable"),
    ],
)
def test_sub_agents_answer_their_one_question(instructions: str, low: str, high: str) -> None:
    def ask(amount: int) -> str:
        claim_json = f'{{"amount": {amount}, "category": "medical", "reason": "broken leg"}}'
        return respond(conversation(instructions, user(claim_json), tools=[])).text or ""

    assert ask(3000) == low
    assert ask(50000) == high


def test_a_coordinator_calls_each_claim_tool_once_then_decides() -> None:
    tools = [dict(CLAIM_TOOL, name="check_eligibility"), dict(CLAIM_TOOL, name="check_fraud")]
    prompt = user('Claim: {"amount": 3000, "category": "medical", "reason": "broken leg"}')
    first = respond(conversation("You are a claim approval engine.", prompt, tools=tools))
    assert [name for name, _ in first.calls] == ["check_eligibility", "check_fraud"]

    done = respond(
        conversation(
            "You are a claim approval engine.",
            prompt,
            {"type": "function_call", "call_id": "a", "name": "check_eligibility", "arguments": "{}"},
            {"type": "function_call", "call_id": "b", "name": "check_fraud", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "a", "output": "not eligible"},
            {"type": "function_call_output", "call_id": "b", "output": "low risk"},
            tools=tools,
        )
    )
    assert (
        done.calls == []
        and "is rejected" in (done.text or "")
        and "check_eligibility: not eligible" in (done.text or "")
    )


# --- chat memory -----------------------------------------------------------------------------------


def assistant(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def test_the_chat_answers_from_earlier_turns() -> None:
    def reply(*items: dict[str, Any]) -> str:
        return respond(conversation("You are a helpful assistant.", *items, tools=[])).text or ""

    assert reply(user("My name is Alice.")) == "Nice to meet you, Alice! I will remember your name."
    assert (
        reply(user("My name is Alice."), assistant("Hi"), user("What is my name?")) == "Your name is Alice."
    )
    assert reply(user("What is my name?")) == "You have not told me your name yet."
    assert reply(user("hello"), assistant("Hi"), user("what did I say?")) == "Before this, you said: 'hello'."
    assert reply(user("a"), assistant("b"), user("c")).endswith("This is message 2 of our conversation.")
    assert reply(user("Make a poem about durable execution.")).startswith("A poem about durable execution:")
