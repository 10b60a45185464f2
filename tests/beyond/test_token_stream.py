"""Unit tests of token streaming (app/advanced/streaming/), without Restate: the streamed model
under the Agents SDK with a scripted model, the coalescing sender against a fake ingress, and the
topic's bookkeeping (voids, held text, the token)."""

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from agents import Agent, Model, ModelResponse, RunConfig, Runner, Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseIncompleteEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseUsage,
)
from openai.types.responses.response import IncompleteDetails
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from pydantic import ValidationError
from restate import TerminalError

from app.advanced.streaming import text as token_stream
from app.advanced.streaming.agent import answer_text
from app.advanced.streaming.text import StreamedModel, TextStream
from app.advanced.streaming.topic import TextBatch, TextLedger, token_digest
from app.runtime.llm_client import ModelMisbehaved

ANSWER = ["The weather", " in Tokyo", " is cloudy,", " 17 degrees", " Celsius."]


def response(text: str, status: str = "completed") -> Response:
    return Response(
        id="resp_1",
        created_at=0,
        model="gpt-4.1",
        object="response",
        output=[
            ResponseOutputMessage(
                id="msg_1",
                role="assistant",
                status="completed",
                type="message",
                content=[ResponseOutputText(annotations=[], text=text, type="output_text")],
            )
        ],
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        status=status,  # type: ignore[arg-type]
        incomplete_details=IncompleteDetails(reason="max_output_tokens") if status == "incomplete" else None,
        usage=ResponseUsage(
            input_tokens=50,
            input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
            output_tokens=12,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
            total_tokens=62,
        ),
    )


def delta(i: int, text: str) -> ResponseTextDeltaEvent:
    return ResponseTextDeltaEvent(
        type="response.output_text.delta",
        delta=text,
        item_id="msg_1",
        output_index=0,
        content_index=0,
        sequence_number=i,
        logprobs=[],
    )


class ScriptedModel(Model):
    """Streams `parts` one by one (`pace` seconds apart), then ends as `ending` says."""

    def __init__(self, parts: list[str], ending: str = "completed", pace: float = 0.0) -> None:
        self.parts, self.ending, self.pace = parts, ending, pace
        self.streams = 0

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        raise AssertionError("the streamed model must stream, not ask for the whole answer")

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        self.streams += 1
        for i, part in enumerate(self.parts):
            yield delta(i, part)
            await asyncio.sleep(self.pace)
        text = "".join(self.parts)
        if self.ending == "completed":
            yield ResponseCompletedEvent(
                type="response.completed", response=response(text), sequence_number=len(self.parts)
            )
        elif self.ending == "incomplete":
            yield ResponseIncompleteEvent(
                type="response.incomplete",
                response=response(text, "incomplete"),
                sequence_number=len(self.parts),
            )
        elif self.ending == "cut":
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


class FakeIngress:
    """Records the batches sent to `/AgentEvents/<run>/text/send`; each takes `delay` seconds."""

    def __init__(self, delay: float = 0.0, status: int = 202) -> None:
        self.delay, self.status = delay, status
        self.batches: list[dict[str, Any]] = []
        self.paths: list[str] = []

    async def handler(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay)
        self.paths.append(request.url.path)
        self.batches.append(json.loads(request.content))
        return httpx.Response(self.status, json={"invocationId": "inv_x", "status": "Accepted"})

    def stream(self) -> TextStream:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handler), base_url="http://ingress")
        return TextStream("inv_run1", "the-token", client=client)

    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch["events"]]


def run_agent_streamed(model: ScriptedModel, ingress: FakeIngress) -> Any:
    text = ingress.stream()
    text.calls = 1  # as the StreamingAgent's ProgressHooks would have counted it
    agent = Agent(name="StreamingAgent", instructions="Answer.")
    return asyncio.run(
        Runner.run(agent, "Weather in Tokyo?", run_config=RunConfig(model=StreamedModel(model, text)))
    )


def test_the_answer_is_streamed_and_returned_whole_to_the_agents_sdk() -> None:
    ingress = FakeIngress(delay=0.05)
    model = ScriptedModel(ANSWER, pace=0.01)

    result = run_agent_streamed(model, ingress)

    assert result.final_output == "".join(ANSWER)
    assert result.context_wrapper.usage.output_tokens == 12  # the usage of response.completed
    events = ingress.events()
    assert events[0] == {"type": "text_start", "call": 1, "attempt": events[0]["attempt"]}
    assert "".join(e["delta"] for e in events if e["type"] == "text_delta") == "".join(ANSWER)
    # The first token goes out alone, at once; what comes while a send is in flight is batched.
    assert ingress.batches[0]["events"][1]["delta"] == ANSWER[0]
    assert 2 <= len(ingress.batches) < len(ANSWER)
    assert all(b["token"] == "the-token" for b in ingress.batches)
    assert set(ingress.paths) == {"/AgentEvents/inv_run1/text/send"}
    assert [b["seq"] for b in ingress.batches] == list(range(len(ingress.batches)))


def test_all_text_is_accepted_before_the_step_returns() -> None:
    ingress = FakeIngress(delay=0.2)  # slower than the model
    model = ScriptedModel(ANSWER)

    run_agent_streamed(model, ingress)

    assert "".join(e["delta"] for e in ingress.events() if e["type"] == "text_delta") == "".join(ANSWER)


def test_a_cut_off_answer_is_terminal_and_its_text_voided_at_once() -> None:
    ingress = FakeIngress()
    with pytest.raises(ModelMisbehaved) as failed:
        run_agent_streamed(ScriptedModel(ANSWER[:2], ending="incomplete"), ingress)

    assert failed.value.status_code == 502
    assert failed.value.message == "The model's answer was cut off (incomplete: max_output_tokens)."
    assert [e["type"] for e in ingress.events()][-1] == "text_void"
    assert ingress.events()[-1]["reason"] == "the LLM call failed (ModelMisbehaved)"


def test_a_stream_cut_mid_answer_fails_the_attempt_and_voids_its_text() -> None:
    ingress = FakeIngress()
    with pytest.raises(httpx.RemoteProtocolError):
        run_agent_streamed(ScriptedModel(ANSWER[:3], ending="cut"), ingress)

    kinds = [e["type"] for e in ingress.events()]
    assert kinds[0] == "text_start" and kinds[-1] == "text_void" and "text_delta" in kinds


def test_an_unreachable_ingress_does_not_fail_the_llm_call() -> None:
    ingress = FakeIngress(status=503)
    result = run_agent_streamed(ScriptedModel(ANSWER), ingress)

    assert result.final_output == "".join(ANSWER)
    assert len(ingress.batches) == 3  # the first batch, tried three times; then no more


def test_a_slow_ingress_does_not_hold_up_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_stream, "FINISH_TIMEOUT_SECONDS", 0.3)
    ingress = FakeIngress(delay=2.0)
    started = time.monotonic()

    result = run_agent_streamed(ScriptedModel(ANSWER), ingress)

    assert result.final_output == "".join(ANSWER)
    assert time.monotonic() - started < 1.5  # not the ingress's 2 s per batch


# --- the topic's bookkeeping ------------------------------------------------------------------------


def ev(kind: str, call: int, attempt: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "call": call, "attempt": attempt, **fields}


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] if e["type"] != "text_delta" else f"+{e['delta']}" for e in events]


def test_a_new_attempt_voids_the_partial_text_of_the_one_before() -> None:
    ledger, events = TextLedger(), []  # type: list[dict[str, Any]]
    ledger.published(events, {"type": "llm_start", "call": 1})
    ledger.text(
        events, [ev("text_start", 1, "aaaa0000"), ev("text_delta", 1, "aaaa0000", delta="The wea")], 0
    )
    # (the endpoint was killed; the retry starts)
    ledger.text(
        events, [ev("text_start", 1, "bbbb1111"), ev("text_delta", 1, "bbbb1111", delta="The weather.")], 0
    )
    ledger.text(events, [ev("text_delta", 1, "aaaa0000", delta="ther")], 1)  # a straggler of the dead one
    ledger.published(events, {"type": "llm_end", "call": 1, "text": "The weather."})
    ledger.published(events, {"type": "done", "output": "The weather."})

    assert kinds(events) == [
        "llm_start", "text_start", "+The wea", "text_void", "text_start", "+The weather.", "llm_end", "done"
    ]  # fmt: skip
    assert events[3] == {
        "type": "text_void", "call": 1, "attempt": "aaaa0000", "reason": "the LLM call is being retried", "offset": 3
    }  # fmt: skip
    assert "text" not in events[6]  # the journaled text is checked, not shown twice
    assert [e["offset"] for e in events] == list(range(len(events)))


def test_text_that_comes_before_its_llm_start_waits_for_it() -> None:
    ledger, events = TextLedger(), []  # type: list[dict[str, Any]]
    ledger.text(events, [ev("text_start", 1, "aaaa0000"), ev("text_delta", 1, "aaaa0000", delta="Hi")], 0)
    assert events == []
    ledger.published(events, {"type": "llm_start", "call": 1})
    assert kinds(events) == ["llm_start", "text_start", "+Hi"]


def test_the_run_ending_voids_text_that_never_became_an_answer() -> None:
    ledger, events = TextLedger(), []  # type: list[dict[str, Any]]
    ledger.published(events, {"type": "llm_start", "call": 1})
    ledger.text(
        events, [ev("text_start", 1, "aaaa0000"), ev("text_delta", 1, "aaaa0000", delta="The ans")], 0
    )
    ledger.published(events, {"type": "error", "message": "The model's answer was cut off"})
    assert kinds(events) == ["llm_start", "text_start", "+The ans", "text_void", "error"]


def test_an_attempt_that_voids_its_own_text_is_not_voided_twice() -> None:
    ledger, events = TextLedger(), []  # type: list[dict[str, Any]]
    ledger.published(events, {"type": "llm_start", "call": 1})
    ledger.text(events, [ev("text_start", 1, "aaaa0000"), ev("text_delta", 1, "aaaa0000", delta="Th")], 0)
    ledger.text(events, [ev("text_void", 1, "aaaa0000", reason="the LLM call failed (APIError)")], 1)
    ledger.text(events, [ev("text_start", 1, "bbbb1111"), ev("text_delta", 1, "bbbb1111", delta="Hi")], 0)
    ledger.published(events, {"type": "llm_end", "call": 1, "text": "Hi"})
    assert kinds(events) == ["llm_start", "text_start", "+Th", "text_void", "text_start", "+Hi", "llm_end"]


def test_at_llm_end_the_stream_is_put_right_when_it_differs_from_the_journal() -> None:
    # The journaled attempt's text never got through (the ingress was down), or only part of it.
    ledger, events = TextLedger(), []  # type: list[dict[str, Any]]
    ledger.published(events, {"type": "llm_start", "call": 1})
    ledger.text(events, [ev("text_start", 1, "aaaa0000"), ev("text_delta", 1, "aaaa0000", delta="The w")], 0)
    ledger.published(events, {"type": "llm_end", "call": 1, "text": "The weather."})
    assert kinds(events) == [
        "llm_start",
        "text_start",
        "+The w",
        "text_void",
        "text_start",
        "+The weather.",
        "llm_end",
    ]
    # A call that answered with a tool call and streamed nothing stays without text events.
    ledger.published(events, {"type": "llm_start", "call": 2})
    ledger.published(events, {"type": "llm_end", "call": 2, "text": ""})
    assert kinds(events)[-2:] == ["llm_start", "llm_end"]


def test_a_batch_sent_twice_counts_once() -> None:
    ledger, events = TextLedger(), []  # type: list[dict[str, Any]]
    ledger.published(events, {"type": "llm_start", "call": 1})
    first = [ev("text_start", 1, "aaaa0000"), ev("text_delta", 1, "aaaa0000", delta="The")]
    ledger.text(events, first, 0)
    ledger.text(events, [ev("text_delta", 1, "aaaa0000", delta=" weather")], 1)
    ledger.text(events, first, 0)  # its answer was lost: the sender sent it again
    ledger.published(events, {"type": "llm_end", "call": 1, "text": "The weather"})
    assert kinds(events) == ["llm_start", "text_start", "+The", "+ weather", "llm_end"]


def test_a_batch_is_the_text_of_one_attempt() -> None:
    with pytest.raises(ValidationError, match="the events of a batch belong to one attempt at one call"):
        TextBatch.model_validate(
            {
                "token": "t",
                "seq": 0,
                "events": [
                    ev("text_delta", 1, "aaaa0000", delta="a"),
                    ev("text_delta", 1, "bbbb1111", delta="b"),
                ],
            }
        )


def test_text_needs_the_runs_token() -> None:
    ledger = TextLedger()
    with pytest.raises(TerminalError) as refused:
        ledger.check("anything")
    assert refused.value.status_code == 403
    assert refused.value.message == "Refused: no text stream is open for this run."

    ledger.allow(token_digest("the-token"))
    ledger.allow(token_digest("a-second-registration"))  # ignored: the first one counts
    ledger.check("the-token")
    with pytest.raises(TerminalError) as refused:
        ledger.check("a-second-registration")
    assert refused.value.status_code == 403
    assert refused.value.message == "Refused: the text does not carry this run's stream token."
    assert ledger.token_sha256 == hashlib.sha256(b"the-token").hexdigest()


def test_the_ledger_round_trips_through_state() -> None:
    ledger, events = TextLedger(), []  # type: list[dict[str, Any]]
    ledger.allow(token_digest("t"))
    ledger.published(events, {"type": "llm_start", "call": 1})
    ledger.text(events, [ev("text_start", 1, "aaaa0000")], 0)
    again = TextLedger.from_state(json.loads(json.dumps(ledger.as_state())))
    assert again == ledger


def test_answer_text_is_the_messages_text() -> None:
    resp = response("The weather in Tokyo is cloudy.")
    model_response = ModelResponse(output=resp.output, usage=Usage(), response_id="r")
    assert answer_text(model_response) == "The weather in Tokyo is cloudy."
