"""Streamed text, live (app/web/live.py): the endpoint sends each batch of an answer's text to the
web process too, whose readers get it at once; the topic stays the record. Unit tests of the
merge of the two copies and of the sender, and end-to-end: only the run's own text is shown."""

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
from agents import Agent, RunConfig, Runner

from app.advanced.streaming.text import StreamedModel, TextStream
from app.web.live import Merge
from dev.harness import Tour
from tests.beyond.test_token_stream import ANSWER, FakeIngress, ScriptedModel


def ev(kind: str, call: int, attempt: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "call": call, "attempt": attempt, **fields}


def on_topic(offset: int, event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "offset": offset}


def shown(events: list[dict[str, Any]]) -> list[str]:
    """What a reader of one connection sees: `~` live, `#` from the topic; deltas as +text."""
    out = []
    for e in events:
        mark = "#" if "offset" in e else "~"
        out.append(f"{mark}+{e['delta']}" if e["type"] == "text_delta" else f"{mark}{e['type']}")
    return out


def test_text_shown_live_comes_once_and_the_topics_copy_keeps_its_offsets() -> None:
    merge = Merge()
    out = merge.live([ev("text_start", 2, "a1"), ev("text_delta", 2, "a1", at=0, delta="The wea")])
    out += merge.durable(on_topic(5, ev("llm_start", 2, "")))
    out += merge.live([ev("text_delta", 2, "a1", at=7, delta="ther.")])
    out += merge.durable(on_topic(6, ev("text_start", 2, "a1")))
    out += merge.durable(on_topic(7, ev("text_delta", 2, "a1", at=0, delta="The weather")))  # ahead by "ther"
    out += merge.durable(on_topic(8, ev("text_delta", 2, "a1", at=11, delta=".")))
    out += merge.durable(on_topic(9, {"type": "llm_end", "call": 2}))

    assert shown(out) == [
        "~text_start",
        "~+The wea",
        "#llm_start",
        "~+ther.",
        "#text_start",
        "#+",
        "#+",
        "#llm_end",
    ]
    assert "".join(e["delta"] for e in out if e["type"] == "text_delta") == "The weather."
    assert [e["at"] for e in out if e["type"] == "text_delta"] == [0, 7, 12, 12]


def test_the_topic_ahead_of_the_live_copy_sends_the_rest() -> None:
    merge = Merge()
    out = merge.live([ev("text_start", 1, "a1"), ev("text_delta", 1, "a1", at=0, delta="The")])
    out += merge.durable(on_topic(1, ev("text_start", 1, "a1")))
    out += merge.durable(on_topic(2, ev("text_delta", 1, "a1", at=0, delta="The weather")))
    out += merge.live([ev("text_delta", 1, "a1", at=3, delta=" weather.")])  # late: only "." is new

    assert shown(out) == ["~text_start", "~+The", "#text_start", "#+ weather", "~+."]


def test_a_live_batch_that_went_missing_leaves_the_rest_to_the_topic() -> None:
    merge = Merge()
    out = merge.live([ev("text_start", 1, "a1"), ev("text_delta", 1, "a1", at=0, delta="The")])
    out += merge.live([ev("text_delta", 1, "a1", at=11, delta=".")])  # " weather" never came
    out += merge.live([ev("text_delta", 1, "a1", at=12, delta=" Bye")])
    out += merge.durable(on_topic(1, ev("text_start", 1, "a1")))
    out += merge.durable(on_topic(2, ev("text_delta", 1, "a1", at=0, delta="The weather.")))

    assert shown(out) == ["~text_start", "~+The", "#text_start", "#+ weather."]


def test_text_shown_live_that_the_topic_never_carried_is_voided_when_its_call_ends() -> None:
    merge = Merge()
    out = merge.live([ev("text_start", 1, "a1"), ev("text_delta", 1, "a1", at=0, delta="The w")])
    out += merge.durable(on_topic(1, ev("text_start", 1, "journal")))
    out += merge.durable(on_topic(2, ev("text_delta", 1, "journal", at=0, delta="The weather.")))
    out += merge.durable(on_topic(3, {"type": "llm_end", "call": 1}))
    out += merge.live([ev("text_delta", 1, "a1", at=5, delta="eather.")])  # its call has ended

    assert shown(out) == ["~text_start", "~+The w", "#text_start", "#+The weather.", "~text_void", "#llm_end"]
    assert out[4] == ev("text_void", 1, "a1", reason="not the journaled answer", live=True)


def test_the_runs_end_voids_text_shown_live_only() -> None:
    merge = Merge()
    out = merge.live([ev("text_start", 2, "a1"), ev("text_delta", 2, "a1", at=0, delta="The ans")])
    out += merge.durable(on_topic(7, {"type": "error", "message": "cut off"}))
    assert shown(out) == ["~text_start", "~+The ans", "~text_void", "#error"]


def test_a_new_attempt_voids_the_one_before_at_once() -> None:
    merge = Merge()
    out = merge.durable(on_topic(5, ev("text_start", 2, "a1")))
    out += merge.durable(on_topic(6, ev("text_delta", 2, "a1", at=0, delta="The wea")))
    # The endpoint was killed; its retry writes live, ahead of the topic's void.
    out += merge.live([ev("text_start", 2, "b2"), ev("text_delta", 2, "b2", at=0, delta="The")])
    out += merge.durable(on_topic(7, ev("text_void", 2, "a1", reason="the LLM call is being retried")))
    out += merge.live([ev("text_delta", 2, "a1", at=7, delta="ther")])  # a straggler of the dead one

    assert shown(out) == ["#text_start", "#+The wea", "~text_void", "~text_start", "~+The", "#text_void"]
    assert out[2]["attempt"] == "a1" and out[2]["reason"] == "the LLM call is being retried"


def test_the_sender_sends_each_batch_live_too_and_stops_when_the_web_process_is_away() -> None:
    ingress, web = FakeIngress(delay=0.02), FakeIngress(status=202)
    live = httpx.AsyncClient(transport=httpx.MockTransport(web.handler), base_url="http://web")
    text = TextStream("inv_run1", "the-token", client=ingress.stream().client, live=live)
    text.calls = 1
    agent = Agent(name="StreamingAgent", instructions="Answer.")
    model = StreamedModel(ScriptedModel(ANSWER, pace=0.01), text)
    asyncio.run(Runner.run(agent, "Weather?", run_config=RunConfig(model=model)))

    assert web.batches == ingress.batches  # the same batches, token and numbers
    assert set(web.paths) == {"/streams/inv_run1/live"}
    deltas = [e for e in web.events() if e["type"] == "text_delta"]
    assert [e["at"] for e in deltas] == [sum(len(d["delta"]) for d in deltas[:i]) for i in range(len(deltas))]

    away = FakeIngress(status=503)
    live = httpx.AsyncClient(transport=httpx.MockTransport(away.handler), base_url="http://web")
    ingress = FakeIngress(delay=0.02)
    text = TextStream("inv_run2", "the-token", client=ingress.stream().client, live=live)
    model = StreamedModel(ScriptedModel(ANSWER, pace=0.01), text)
    result = asyncio.run(Runner.run(agent, "Weather?", run_config=RunConfig(model=model)))
    assert result.final_output == "".join(ANSWER)
    assert len(away.batches) == 1 and len(ingress.batches) >= 2  # one try live; the topic has it all


@pytest.mark.e2e
def test_text_without_the_runs_token_is_not_shown_live(stack: Tour) -> None:
    stack.llm.token_pace(300)  # the reader is there while the answer is written
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo?"})
    forged = {
        "token": "guessed",
        "seq": 0,
        "events": [
            {"type": "text_start", "call": 2, "attempt": "0badc0de"},
            {"type": "text_delta", "call": 2, "attempt": "0badc0de", "at": 0, "delta": "Buy now!"},
        ],
    }
    live_url = f"{stack.web_url}/streams/{run_id}/live"
    # Nobody reads the run here yet: the batch is not even looked at.
    assert httpx.post(live_url, json=forged).status_code == 204

    lines: list[str] = []
    reading = threading.Thread(target=lambda: lines.extend(read_all(stack, run_id)))
    reading.start()
    try:
        refused = None
        for _ in range(100):
            resp = httpx.post(live_url, json=forged)
            if resp.status_code != 204:  # the reader is there
                refused = resp
                break
            threading.Event().wait(0.05)
        assert refused is not None and refused.status_code == 403, refused
        assert refused.json()["message"] == "Refused: the text does not carry this run's stream token."
        assert httpx.post(live_url, content=b"{").status_code == 400
    finally:
        reading.join(timeout=60)
    events = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert events[-1]["type"] == "done"
    assert "Buy now!" not in json.dumps(events)
    assert any(e.get("live") for e in events)  # the run's own text came live


def read_all(stack: Tour, run_id: str) -> list[str]:
    with httpx.stream("GET", f"{stack.web_url}/streams/{run_id}", timeout=90) as resp:
        return list(resp.iter_lines())


def test_a_topic_read_that_fails_ends_the_stream_with_an_error() -> None:
    # Whatever goes wrong reading the topic, the reader is told and the stream ends: with the live
    # copy beside it, a silent end of the topic's reads would leave the reader waiting for ever.
    from app.web.settings import Settings
    from app.web.streams import _topic_pages

    async def scenario(body: bytes) -> tuple[str, Any]:
        ingress = httpx.AsyncClient(
            transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)),
            base_url="http://ingress",
        )
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        await _topic_pages(ingress, "inv_run1", 0, Settings(), queue)
        return queue.get_nowait()

    assert asyncio.run(scenario(b"not json")) == (
        "error",
        {"type": "error", "message": "the web process: JSONDecodeError"},
    )
    page = json.dumps({"events": [], "next_offset": 0, "done": True}).encode()
    assert asyncio.run(scenario(page)) == ("page", {"events": [], "next_offset": 0, "done": True})
