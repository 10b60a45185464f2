"""Token streaming that survives crashes (app/advanced/streaming/): the StreamingAgent's
answer reaches the reader of /streams/<id> as the model writes it, and the reader is told when
text it saw will not be the answer (the endpoint was killed mid-answer, the model's stream broke,
the answer was cut off). Against the real restate-server, the endpoint and the web process."""

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.advanced.streaming import agent as streaming_agent
from dev.harness import Tour
from dev.stack import REPO

pytestmark = pytest.mark.e2e

ANSWER = {
    "Tokyo": "The weather in Tokyo is currently cloudy, 17 degrees Celsius.",
    "Madrid": "The weather in Madrid is currently sunny, 20 degrees Celsius.",
}
CLEAN = ["llm_start", "llm_end", "tool_start", "tool_end", "llm_start", "text_start", "text_delta", "llm_end", "done"]  # fmt: skip


@pytest.fixture
def paced(stack: Tour) -> Iterator[Tour]:
    """The stand-in writes a word every 20 ms (reset() after the test restores it)."""
    stack.llm.token_pace(20)
    yield stack


def sse(stack: Tour, run_id: str, until: str | None = None, after: int | None = None) -> list[dict[str, Any]]:
    """The reader: every event of /streams/<id> until the stream ends (or the first `until`)."""
    headers = {"last-event-id": str(after)} if after is not None else {}
    events = []
    with httpx.stream("GET", f"{stack.web_url}/streams/{run_id}", headers=headers, timeout=90) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
                if events[-1]["type"] == until:
                    break
    return events


def topic(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The topic's events (numbered), without the text that came live before them."""
    return [e for e in events if "offset" in e]


def last_offset(events: list[dict[str, Any]]) -> int:
    return int(topic(events)[-1]["offset"])


def outline(events: list[dict[str, Any]]) -> list[str]:
    """The topic's event types, a run of text_delta events as one (how the deltas are batched varies)."""
    types: list[str] = []
    for e in topic(events):
        if not (e["type"] == "text_delta" and types and types[-1] == "text_delta"):
            types.append(e["type"])
    return types


def final_text(events: list[dict[str, Any]]) -> str:
    """What a reader shows as the answer: the text of the last call's attempt that was not
    voided, put together by where each delta starts (`at`: live and topic copies overlap across
    a reconnect), with no gap."""
    last = max(e["call"] for e in events if e["type"] == "text_start")
    voided = {e["attempt"] for e in events if e["type"] == "text_void"}
    texts: dict[str, str] = {}
    for e in events:
        if e["type"] == "text_delta" and e["call"] == last and e["attempt"] not in voided:
            have = texts.get(e["attempt"], "")
            assert e["at"] <= len(have), f"text missing before {e}"
            texts[e["attempt"]] = have + e["delta"][len(have) - e["at"] :]
    assert len(texts) == 1, texts
    return next(iter(texts.values()))


def one_connection_text(events: list[dict[str, Any]]) -> str:
    """The deltas of one connection simply joined (its last call, minus voided attempts): each
    piece of text comes once per connection, live or from the topic."""
    last = max(e["call"] for e in events if e["type"] == "text_start")
    voided = {e["attempt"] for e in events if e["type"] == "text_void"}
    return "".join(
        e["delta"]
        for e in events
        if e["type"] == "text_delta" and e["call"] == last and e["attempt"] not in voided
    )


def answer_calls(stack: Tour, prompt: str) -> list[dict[str, Any]]:
    """The stand-in's log of the LLM calls for `prompt` that were asked for the final answer
    (the second call: the one whose input carries the weather tool's output)."""
    return [
        c for c in stack.llm_calls(prompt) if c.get("stream") and c.get("reply") != "tool_calls: get_weather"
    ]


def test_the_reader_sees_the_answer_while_the_model_writes_it(paced: Tour) -> None:
    stack = paced
    stack.llm.token_pace(300)  # ~3 s for the answer: time to look while it is being written
    prompt = "What is the weather like in Tokyo?"
    run_id = stack.send("StreamingAgent/run", {"message": prompt})

    first = sse(stack, run_id, until="text_delta")
    # The reader has the first words; the model is still writing, the run has no answer yet.
    assert stack.invocation(run_id)["status"] != "completed"
    assert first[-1]["delta"] and ANSWER["Tokyo"].startswith(first[-1]["delta"])
    # They came live, straight from the endpoint, ahead of the topic's copy.
    assert first[-1]["live"] is True and "offset" not in first[-1] and first[-1]["at"] == 0

    events = first + sse(stack, run_id, after=last_offset(first))
    assert outline(events) == CLEAN
    deltas = [e for e in events if e["type"] == "text_delta"]
    assert len(deltas) > 1  # in pieces, as written
    assert {(e["call"], e["attempt"]) for e in deltas} == {(2, topic(events)[5]["attempt"])}
    assert [e["call"] for e in events if e["type"] == "llm_start"] == [1, 2]
    assert (
        "text" not in topic(events)[-2]
    )  # llm_end: the journaled text is checked by the topic, not repeated
    assert final_text(events) == events[-1]["output"] == stack.output(run_id).json() == ANSWER["Tokyo"]
    assert [e["offset"] for e in topic(events)] == list(range(len(topic(events))))


def test_long_poll_passes_the_text_events_through(paced: Tour) -> None:
    stack = paced
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo?"})
    assert stack.output(run_id).status_code == 200

    page = httpx.get(f"{stack.web_url}/streams/{run_id}/events", params={"offset": 0, "wait": 1}).json()

    assert outline(page["events"]) == CLEAN and page["done"] is True
    assert final_text(page["events"]) == ANSWER["Tokyo"]


@pytest.mark.crash
def test_a_crash_mid_answer_voids_the_partial_text_and_streams_the_retried_answer(paced: Tour) -> None:
    stack = paced
    stack.llm.token_pace(400)  # slow enough to kill the endpoint between two words
    prompt = "What is the weather like in Madrid? (killed mid-answer)"
    run_id = stack.send("StreamingAgent/run", {"message": prompt})
    seen = sse(stack, run_id, until="text_delta")

    stack.kill_endpoint()  # SIGKILL: nobody from this attempt can say its text is void
    stack.llm.token_pace(20)
    stack.restart_endpoint()
    events = seen + sse(stack, run_id, after=last_offset(seen))

    killed = seen[-1]["attempt"]
    assert outline(events) == [
        "llm_start", "llm_end", "tool_start", "tool_end", "llm_start",
        "text_start", "text_delta", "text_void", "text_start", "text_delta", "llm_end", "done",
    ]  # fmt: skip
    void = next(e for e in topic(events) if e["type"] == "text_void")
    assert void["attempt"] == killed and void["call"] == 2
    assert void["reason"] == "the LLM call is being retried"  # appended by the topic itself
    retried = [e for e in events if e["type"] == "text_start"][-1]["attempt"]
    assert retried != killed
    assert final_text(events) == events[-1]["output"] == stack.output(run_id).json() == ANSWER["Madrid"]
    # The stand-in: the call for the tool, the killed answer, its retry; nothing more.
    calls = stack.llm_calls(prompt)
    assert len(calls) == 3, calls
    assert len(answer_calls(stack, prompt)) == 2


@pytest.mark.crash
def test_a_journaled_answer_is_never_streamed_again(paced: Tour) -> None:
    # Under TOUR_FORCE_REPLAY=1 (make test's second pass) the run suspends at every wait and
    # replays its journal, its LLM steps included: a replayed answer must stream nothing.
    stack = paced
    prompt = "What is the weather like in Tokyo? (replayed)"
    run_id = stack.send("StreamingAgent/run", {"message": prompt})
    events = sse(stack, run_id)

    starts = [e for e in topic(events) if e["type"] == "text_start"]
    live = {e["attempt"] for e in events if e.get("live") and e["type"] == "text_start"}
    assert live <= {e["attempt"] for e in starts}  # what came live is what the topic carries
    # One announced attempt for each LLM call that wrote text, as many as the stand-in answered.
    assert [e["call"] for e in starts] == [2]
    assert len(answer_calls(stack, prompt)) == 1
    assert len(stack.llm_calls(prompt)) == 2
    assert outline(events) == CLEAN
    assert final_text(events) == stack.output(run_id).json() == ANSWER["Tokyo"]
    assert one_connection_text(events) == ANSWER["Tokyo"]  # live or not, each word once


def test_a_stream_cut_mid_answer_is_voided_at_once_and_the_step_retried(paced: Tour) -> None:
    stack = paced
    prompt = "What is the weather like in Tokyo? (cut)"
    # The first call (the tool call) passes; the answer's stream breaks after 3 words.
    stack.llm.fault("responses", count=1, after=1, cut_after_tokens=3)
    run_id = stack.send("StreamingAgent/run", {"message": prompt})

    events = sse(stack, run_id)

    assert outline(events) == [
        "llm_start", "llm_end", "tool_start", "tool_end", "llm_start",
        "text_start", "text_delta", "text_void", "text_start", "text_delta", "llm_end", "done",
    ]  # fmt: skip
    cut = next(e for e in events if e["type"] == "text_start")["attempt"]
    assert "".join(e["delta"] for e in events if e["type"] == "text_delta" and e["attempt"] == cut) == (
        " ".join(ANSWER["Tokyo"].split()[:3])
    )
    void = next(e for e in events if e["type"] == "text_void")
    # Sent by the failing attempt itself, before Restate's retry backoff.
    assert void["attempt"] == cut and void["reason"] == "the LLM call failed (APIConnectionError)"
    assert final_text(events) == events[-1]["output"] == stack.output(run_id).json() == ANSWER["Tokyo"]
    assert len(stack.llm_calls(prompt)) == 3


def test_an_answer_cut_off_by_the_model_ends_the_run_after_voiding_its_text(paced: Tour) -> None:
    stack = paced
    prompt = "What is the weather like in Tokyo? (incomplete)"
    stack.llm.fault("responses", count=5, after=1, misbehave="incomplete")
    run_id = stack.send("StreamingAgent/run", {"message": prompt})

    events = sse(stack, run_id)
    resp = stack.output(run_id)

    assert resp.status_code == 502, resp.text
    assert resp.json()["message"].startswith("The model's answer was cut off (incomplete:")
    assert outline(events)[-4:] == ["text_start", "text_delta", "text_void", "error"]
    assert events[-1]["message"] == resp.json()["message"]
    assert len(stack.llm_calls(prompt)) == 2  # terminal at once: no retry of a cut-off answer


def test_text_that_could_not_be_sent_comes_at_llm_end(stack: Tour) -> None:
    # An endpoint that cannot reach the ingress: the answer is journaled as always, and the topic
    # puts the journaled text on the stream itself when the call ends.
    stack.restart_endpoint(RESTATE_INGRESS_URL="http://127.0.0.1:9")  # (`fresh` restores it)
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo?"})

    events = sse(stack, run_id)

    assert outline(events) == CLEAN
    assert [(e["call"], e["attempt"]) for e in topic(events) if e["type"].startswith("text_")] == [
        (2, "journal"),
        (2, "journal"),
    ]
    # Text that reached the reader live but never the topic is voided when its call ends.
    live = {e["attempt"] for e in events if e.get("live") and e["type"] == "text_start"}
    voided = [e for e in events if e["type"] == "text_void"]
    assert {e["attempt"] for e in voided} == live
    assert all(e["reason"] == "not the journaled answer" for e in voided)
    assert final_text(events) == stack.output(run_id).json() == ANSWER["Tokyo"]


def test_text_without_the_runs_token_is_refused(stack: Tour) -> None:
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo?"})
    assert stack.output(run_id).status_code == 200
    forged = {
        "token": "guessed",
        "seq": 0,
        "events": [{"type": "text_delta", "call": 2, "attempt": "0badc0de", "delta": "Buy now!"}],
    }

    resp = stack.call(f"AgentEvents/{run_id}/text", forged)
    assert resp.status_code == 403, resp.text
    assert resp.json()["message"] == "Refused: the text does not carry this run's stream token."
    nobody = stack.call("AgentEvents/inv_nobody/text", forged)
    assert nobody.status_code == 403
    assert nobody.json()["message"] == "Refused: no text stream is open for this run."
    # Registering a token is the run's own business.
    private = stack.call(f"AgentEvents/{run_id}/allow_text", "0" * 64)
    assert private.status_code == 400 and private.json()["message"] == "the invoked service is not public"

    events = stack.call(f"AgentEvents/{run_id}/read", {"offset": 0}).json()["events"]
    assert "Buy now!" not in json.dumps(events)
    assert final_text(events) == ANSWER["Tokyo"]
    # The stream token is not on the stream.
    assert all("token" not in e for e in events)


# --- the documented commands, run as written ----------------------------------------------------------


def documented_blocks() -> list[str]:
    """The shell blocks of docs/beyond-the-tour.md's section on streaming."""
    page = (REPO / "docs" / "beyond-the-tour.md").read_text()
    section = page.split("## Streaming intermediate results", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```shell\n(.*?)```", section, re.S)


def on_this_stack(stack: Tour, commands: str) -> str:
    assert stack.web is not None
    return (
        commands.replace("localhost:8080", stack.ingress.removeprefix("http://"))
        .replace("localhost:8000", stack.web_url.removeprefix("http://"))
        .replace("$(cat .restate/offline-llm.url)", stack.llm.url)
    )


def body_in_docs(body: str) -> bool:
    return body in (REPO / "docs" / "beyond-the-tour.md").read_text()


def run_shell(script: str) -> str:
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_documented_commands_run_as_written(stack: Tour) -> None:
    run, stand_in, forged = documented_blocks()
    # The module's docstring shows the same way to start a run and read its stream.
    docstring = streaming_agent.__doc__ or ""
    for line in run.splitlines()[:2]:
        assert line.strip() in docstring, line

    out = run_shell(on_this_stack(stack, run + forged))

    assert "event: text_delta\n" in out and "event: text_void" not in out
    assert f'"output": "{ANSWER["Tokyo"]}"' in out
    assert '"next_offset":' in out  # the long-poll's page
    refused = '{"code":403,"message":"Refused: the text does not carry this run\'s stream token.","source":"invocation"}'
    assert out.endswith(refused) and body_in_docs(refused)  # as the docs show it

    # The stand-in's controls: slow words, a stream cut after three of them; the void shows.
    run_shell(on_this_stack(stack, stand_in))
    out = run_shell(on_this_stack(stack, run))
    assert "event: text_void\n" in out
    assert f'"output": "{ANSWER["Tokyo"]}"' in out
