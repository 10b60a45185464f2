"""The stand-in's streaming: tokens, pace, the cut fault, counters, and its configuration.

The wire format against the published schema and the real SDKs is in test_openai_contract.py.
Pace and cuts need a real server (httpx's in-process ASGI transport hands over a response only
once it is complete, and cannot lose a connection): `served()` runs the stand-in on hypercorn in
a thread, on a free port, and the real `openai` client talks to it over TCP. The time checks are
lower bounds that a sleep guarantees, never upper bounds on how fast this machine is.
"""

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, set_tracing_disabled
from hypercorn.asyncio import serve
from hypercorn.config import Config

from dev.offline_llm.server import OfflineLLM
from dev.offline_llm.streaming import fragments, words
from dev.stack import REPO, OfflineLLM as StackLLM, free_port, python_env

INSTRUCTIONS = "You are a helpful agent that provides weather updates."
QUESTION = "What is the weather like in Denver and in Oslo?"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOL_OUTPUT = '{"temperature": 9, "description": "Rain and wind"}'


def responses_body(answered: bool = True, **extra: Any) -> dict[str, Any]:
    """A question about Denver; `answered`: with the tool's output, so the answer is text."""
    items: list[Any] = [{"role": "user", "content": "What is the weather like in Denver?"}]
    if answered:
        items += [
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"city": "Denver"}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": TOOL_OUTPUT},
        ]
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": False}]
    return {"model": "gpt-4.1", "instructions": INSTRUCTIONS, "input": items, "tools": tools, **extra}


def chat_body(answered: bool = True, **extra: Any) -> dict[str, Any]:
    messages: list[Any] = [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": "What is the weather like in Denver?"},
    ]
    if answered:
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Denver"}'},
        }
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": TOOL_OUTPUT},
        ]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    return {"model": "gpt-4.1", "messages": messages, "tools": tools, **extra}


def in_process(stub: OfflineLLM, *requests: tuple[str, str, Any]) -> list[httpx.Response]:
    """Send (method, path, JSON body) requests in order to `stub`, in-process."""

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=stub)
        async with httpx.AsyncClient(transport=transport, base_url="http://stub") as client:
            return [await client.request(m, path, json=body) for m, path, body in requests]

    return asyncio.run(main())


@contextmanager
def served(stub: OfflineLLM) -> Iterator[str]:
    """`stub` on hypercorn, in a thread, on a free port: its base URL."""
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    server = serve(stub, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    thread = threading.Thread(target=loop.run_until_complete, args=(server,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


# --- tokens -------------------------------------------------------------------------------------


def test_text_is_streamed_a_word_at_a_time_and_arguments_in_fragments() -> None:
    text = "Denver: Rain and wind, 9 degrees.\n- Oslo: clear  "
    assert words(text) == [
        "Denver:",
        " Rain",
        " and",
        " wind,",
        " 9",
        " degrees.",
        "\n-",
        " Oslo:",
        " clear",
        "  ",
    ]
    assert "".join(words(text)) == text
    args = '{"req": {"city": "San Francisco"}}'
    assert "".join(fragments(args)) == args and len(fragments(args)) >= 5
    assert words("") == [] and fragments("") == []


# --- counters and the log ------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_a_streamed_call_counts_once_like_a_plain_one_and_says_it_was_streamed(api: str) -> None:
    stub = OfflineLLM()
    path = "/v1/responses" if api == "responses" else "/v1/chat/completions"
    body = responses_body() if api == "responses" else chat_body()
    streamed = {**body, "stream": True}
    if api == "chat":
        streamed["stream_options"] = {"include_usage": True}
    plain, stream = in_process(stub, ("POST", path, body), ("POST", path, streamed))
    assert plain.status_code == stream.status_code == 200
    stats = stub.state.stats()
    assert (stats["llm_calls"], stats["llm_completed"], stats["streamed_calls"]) == (2, 2, 1)
    first, second = stats["calls"]
    assert "stream" not in first and second["stream"] is True
    assert second["usage"] == first["usage"]  # the same answer, billed the same
    assert stats["output_tokens"] == 2 * first["usage"]["output_tokens"]
    assert second["deltas"] >= 8 and second["first_delta"] <= second["end"]


# --- the pace API --------------------------------------------------------------------------------------


def test_latency_and_pace_are_set_alone_or_together_and_reset_to_their_start_values() -> None:
    stub = OfflineLLM(latency_ms=5, token_ms=7)
    answers = in_process(
        stub,
        ("POST", "/_stub/latency", {"token_ms": 40}),
        ("POST", "/_stub/latency", {"ms": 100}),
        ("POST", "/_stub/latency", {"ms": 0, "token_ms": 3}),
        ("GET", "/_stub/stats", None),
        ("POST", "/_stub/reset", None),
        ("GET", "/_stub/stats", None),
    )
    assert [a.json() for a in answers[:3]] == [
        {"latency_ms": 5, "token_ms": 40},
        {"latency_ms": 100, "token_ms": 40},
        {"latency_ms": 0, "token_ms": 3},
    ]
    assert (answers[3].json()["latency_ms"], answers[3].json()["token_ms"]) == (0, 3)
    assert (answers[5].json()["latency_ms"], answers[5].json()["token_ms"]) == (5, 7)


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        ({"token_ms": -1}, "token_ms"),
        ({"token_ms": "fast"}, "token_ms"),
        ({"ms": 1.5}, "ms"),
        ({"pace": 3}, "pace"),
    ],
)
def test_bad_pace_settings_are_refused_naming_the_key(spec: dict[str, Any], param: str) -> None:
    stub = OfflineLLM()
    (answer,) = in_process(stub, ("POST", "/_stub/latency", spec))
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    assert stub.state.token_ms == 0 and stub.state.latency_ms == 0


@pytest.mark.parametrize(
    "spec",
    [{"cut_after_tokens": -1}, {"target": "weather", "cut_after_tokens": 2}, {"cut_after_tokens": "x"}],
)
def test_bad_cut_faults_are_refused(spec: dict[str, Any]) -> None:
    (answer,) = in_process(OfflineLLM(), ("POST", "/_stub/faults", spec))
    assert answer.status_code == 400


def test_a_plain_call_lets_a_cut_fault_by() -> None:
    stub = OfflineLLM()
    fault, plain = in_process(
        stub,
        ("POST", "/_stub/faults", {"target": "llm", "count": 1, "cut_after_tokens": 2}),
        ("POST", "/v1/responses", responses_body()),
    )
    assert fault.status_code == plain.status_code == 200
    assert [f["cut_after_tokens"] for f in stub.state.stats()["pending_faults"]] == [2]


# --- on a real server: pace, latency, cuts, hang-ups ------------------------------------------------------


async def timed_text_deltas(client: openai.AsyncOpenAI, api: str) -> tuple[float, list[tuple[float, str]]]:
    """Send a streamed request; (when it was sent, [(when each text delta arrived, the delta)])."""
    start = time.monotonic()
    deltas: list[tuple[float, str]] = []
    if api == "responses":
        async for event in await client.responses.create(**responses_body(), stream=True):
            if event.type == "response.output_text.delta":
                deltas.append((time.monotonic(), event.delta))
    else:
        async for chunk in await client.chat.completions.create(**chat_body(), stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                deltas.append((time.monotonic(), chunk.choices[0].delta.content))
    return start, deltas


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_the_pace_spaces_the_deltas_and_the_first_one_comes_at_once(api: str) -> None:
    pace = 0.04
    with served(OfflineLLM()) as url:
        httpx.post(f"{url}/_stub/latency", json={"token_ms": round(pace * 1000)}).raise_for_status()

        async def main() -> tuple[float, list[tuple[float, str]]]:
            async with openai.AsyncOpenAI(api_key="offline", base_url=f"{url}/v1", max_retries=0) as client:
                # A first stream opens the connection and builds the client's models: on a busy
                # machine that took longer than the deltas' spacing, so only the second is timed.
                await timed_text_deltas(client, api)
                return await timed_text_deltas(client, api)

        start, deltas = asyncio.run(main())
    n = len(deltas)
    assert n >= 10
    first, last = deltas[0][0], deltas[-1][0]
    # The server sends a delta per `pace` after the first (a sleep never ends early). Measured
    # from the request, as the client may read the first events late (it builds its models then).
    assert last - start >= (n - 1) * pace * 0.95
    # Each delta is flushed as it is sent: the first arrives long before the stream ends.
    assert first - start < (last - start) / 2


def test_the_fixed_latency_passes_before_the_first_event() -> None:
    with served(OfflineLLM(latency_ms=300)) as url:

        async def main() -> tuple[float, list[tuple[float, str]]]:
            async with openai.AsyncOpenAI(api_key="offline", base_url=f"{url}/v1", max_retries=0) as client:
                return await timed_text_deltas(client, "responses")

        start, deltas = asyncio.run(main())
    assert deltas[0][0] - start >= 0.3


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_a_cut_stream_breaks_off_after_n_deltas_as_a_lost_connection(api: str) -> None:
    stub = OfflineLLM()
    with served(stub) as url:
        fault = {"target": api, "count": 1, "cut_after_tokens": 3}
        httpx.post(f"{url}/_stub/faults", json=fault).raise_for_status()

        async def main() -> tuple[list[str], BaseException | None]:
            got: list[str] = []
            async with openai.AsyncOpenAI(api_key="offline", base_url=f"{url}/v1", max_retries=0) as client:
                try:
                    await timed_deltas_into(client, api, got)
                except openai.APIConnectionError as e:
                    return got, e
            return got, None

        got, error = asyncio.run(main())
        stats = httpx.get(f"{url}/_stub/stats").json()
    assert isinstance(error, openai.APIConnectionError), f"the stream ended normally after {got}"
    assert len(got) == 3 and "".join(got) == "".join(words(got[0] + got[1] + got[2]))
    assert (stats["faults_injected"], stats["llm_calls"], stats["llm_completed"], stats["output_tokens"]) == (
        1,
        1,
        0,
        0,
    )
    assert stats["calls"][-1]["cut"] is True and stats["calls"][-1]["deltas"] == 3


async def timed_deltas_into(client: openai.AsyncOpenAI, api: str, into: list[str]) -> None:
    if api == "responses":
        async for event in await client.responses.create(**responses_body(), stream=True):
            if event.type == "response.output_text.delta":
                into.append(event.delta)
    else:
        async for chunk in await client.chat.completions.create(**chat_body(), stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                into.append(chunk.choices[0].delta.content)


@pytest.mark.parametrize("model_kind", ["responses", "chat"])
def test_the_agents_sdk_sees_a_cut_stream_fail_mid_answer(model_kind: str) -> None:
    set_tracing_disabled(True)
    stub = OfflineLLM()
    with served(stub) as url:
        # The first turn (tool calls) goes through; the answer is cut after five words.
        fault = {"count": 1, "after": 1, "cut_after_tokens": 5}
        httpx.post(f"{url}/_stub/faults", json=fault).raise_for_status()

        async def main() -> tuple[list[str], BaseException | None]:
            deltas: list[str] = []
            async with openai.AsyncOpenAI(api_key="offline", base_url=f"{url}/v1", max_retries=0) as client:
                model_cls = OpenAIResponsesModel if model_kind == "responses" else OpenAIChatCompletionsModel
                from agents import function_tool

                @function_tool
                def get_weather(city: str) -> str:
                    """Get the current weather for a given city."""
                    return TOOL_OUTPUT

                agent = Agent(
                    name="WeatherAgent",
                    instructions=INSTRUCTIONS,
                    tools=[get_weather],
                    model=model_cls(model="gpt-4.1", openai_client=client),
                )
                result = Runner.run_streamed(agent, QUESTION)
                try:
                    async for event in result.stream_events():
                        if (
                            event.type == "raw_response_event"
                            and event.data.type == "response.output_text.delta"
                        ):
                            deltas.append(event.data.delta)
                except openai.APIConnectionError as e:
                    return deltas, e
            return deltas, None

        deltas, error = asyncio.run(main())
        stats = httpx.get(f"{url}/_stub/stats").json()
    assert isinstance(error, openai.APIConnectionError)
    assert len(deltas) == 5
    assert (stats["llm_calls"], stats["llm_completed"], stats["faults_injected"]) == (2, 1, 1)


def test_a_client_that_hangs_up_ends_the_stream() -> None:
    stub = OfflineLLM(token_ms=50)
    with served(stub) as url:

        async def main() -> None:
            async with openai.AsyncOpenAI(api_key="offline", base_url=f"{url}/v1", max_retries=0) as client:
                stream = await client.responses.create(**responses_body(), stream=True)
                async for event in stream:
                    if event.type == "response.output_text.delta":
                        break
                await stream.close()

        asyncio.run(main())
        deadline = time.monotonic() + 5
        while "end" not in (entry := stub.state.stats()["calls"][-1]) or "deltas" not in entry:
            assert time.monotonic() < deadline, entry
            time.sleep(0.02)
    # Stopped at the hang-up (within a delta or two), not after the whole paced answer.
    assert entry["hung_up"] is True and entry["deltas"] <= 3


# --- configuration at start ----------------------------------------------------------------------------


def harness_llm(tmp_path: Path, token_ms: int | None = None) -> StackLLM:
    """The harness's stand-in process (what `stack.llm` is in the end-to-end tests), started."""
    llm = StackLLM(free_port(), tmp_path / "offline-llm.log", token_ms=token_ms)
    llm.start()
    try:
        llm.wait_ready(20)
    except Exception:
        llm.stop()
        raise
    return llm


def test_the_pace_at_start_comes_from_the_flag_else_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_LLM_TOKEN_MS", "25")
    for token_ms, expected in ((None, 25), (3, 3)):  # the environment variable, then --token-ms
        llm = harness_llm(tmp_path, token_ms)
        try:
            assert llm.stats()["token_ms"] == expected
            llm.token_pace(5)  # the harness's helper
            llm.latency(7)
            assert (llm.stats()["token_ms"], llm.stats()["latency_ms"]) == (5, 7)
            llm.reset()
            assert (llm.stats()["token_ms"], llm.stats()["latency_ms"]) == (expected, 0)
        finally:
            llm.stop()


def test_a_pace_that_is_not_a_number_stops_the_start() -> None:
    env = {**python_env(), "OFFLINE_LLM_TOKEN_MS": "fast"}
    args = [sys.executable, "-m", "dev.offline_llm", "--port", str(free_port())]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "OFFLINE_LLM_TOKEN_MS must be an integer" in done.stderr


def test_event_framing_on_the_wire() -> None:
    stub = OfflineLLM()
    with served(stub) as url:
        with httpx.stream("POST", f"{url}/v1/responses", json=responses_body(stream=True)) as resp:
            assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert "content-length" not in resp.headers  # chunked: each event is flushed on its own
            raw = resp.read().decode()
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=chat_body(stream=True)) as resp:
            chat_raw = resp.read().decode()
    blocks = raw.removesuffix("\n\n").split("\n\n")
    for i, block in enumerate(blocks):
        event_line, data_line = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}" and data["sequence_number"] == i
    assert chat_raw.endswith("data: [DONE]\n\n") and "event:" not in chat_raw
    assert all(b.startswith("data: ") for b in chat_raw.removesuffix("\n\n").split("\n\n"))


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_a_token_cap_ends_the_stream_as_incomplete(api: str) -> None:
    stub = OfflineLLM()
    if api == "responses":
        (resp,) = in_process(
            stub, ("POST", "/v1/responses", responses_body(stream=True, max_output_tokens=16))
        )
        last = json.loads(
            resp.text.removesuffix("\n\n").split("\n\n")[-1].split("\n")[1].removeprefix("data: ")
        )
        assert last["type"] == "response.incomplete"
        assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    else:
        (resp,) = in_process(
            stub, ("POST", "/v1/chat/completions", chat_body(stream=True, max_completion_tokens=5))
        )
        chunks = [json.loads(b.removeprefix("data: ")) for b in resp.text.split("\n\n")[:-2]]
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        assert len("".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)) == 5 * 4
