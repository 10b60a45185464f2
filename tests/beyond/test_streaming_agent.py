"""Beyond the tour: StreamingAgent's progress events, over SSE and long-poll."""

import json
import time
from typing import Any

import httpx
import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


CLEAN_RUN = ["llm_start", "llm_end", "tool_start", "tool_end", "llm_start", "llm_end", "done"]


def progress(events: list[dict[str, Any]]) -> list[str]:
    """The run's progress events, without the streamed text (tests/test_streamed_text.py)."""
    return [e["type"] for e in events if not e["type"].startswith("text_")]


def sse_events(stack: Tour, run_id: str, last_event_id: int | None = None) -> list[dict[str, Any]]:
    """The topic's events on /streams/<id> (the text that also comes live, without an offset, is
    tests/beyond/test_streamed_text.py's)."""
    headers = {"last-event-id": str(last_event_id)} if last_event_id is not None else {}
    events = []
    with httpx.stream("GET", f"{stack.web_url}/streams/{run_id}", headers=headers, timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        for line in resp.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return [e for e in events if "offset" in e]


def test_progress_streams_as_server_sent_events(stack: Tour) -> None:
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo?"})

    events = sse_events(stack, run_id)

    assert progress(events) == CLEAN_RUN
    assert [e["offset"] for e in events] == list(range(len(events)))
    assert events[2]["city"] == "Tokyo" and events[3]["result"] == {
        "temperature": 17.0,
        "description": "Cloudy",
    }
    assert events[-1]["output"] == stack.output(run_id).json()


def test_long_poll_returns_what_comes_after_the_offset(stack: Tour) -> None:
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Paris?"})
    wait_until(lambda: stack.output(run_id).status_code == 200, what="the run")
    # The run's last publish (`done`) is a one-way send: it may land just after the run's answer.
    wait_until(
        lambda: stack.call(f"AgentEvents/{run_id}/read", {"offset": 0}).json()["done"], what="the done event"
    )

    page = httpx.get(f"{stack.web_url}/streams/{run_id}/events", params={"offset": 4, "wait": 1}).json()

    assert progress(page["events"]) == CLEAN_RUN[4:]
    assert page["events"][0]["offset"] == 4
    assert page["next_offset"] == page["events"][-1]["offset"] + 1 and page["done"] is True
    bad = httpx.get(f"{stack.web_url}/streams/{run_id}/events", params={"offset": "soon"})
    assert bad.status_code == 400


def test_a_waiting_reader_is_answered_when_the_next_event_lands_not_when_its_wait_ends(stack: Tour) -> None:
    stack.llm.fault("weather", count=1, hang=3, status=200)  # the run's weather step takes 3 s
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Vienna?"})
    first = wait_until(
        lambda: (
            (p := stack.call(f"AgentEvents/{run_id}/read", {"offset": 0}).json())["next_offset"] >= 3 and p
        ),
        what="the tool_start event",
    )
    after = first["next_offset"]  # nothing comes until the weather step ends, 3 s later

    started = time.monotonic()
    page = httpx.get(
        f"{stack.web_url}/streams/{run_id}/events", params={"offset": after, "wait": 30}, timeout=60
    ).json()

    # The topic answered the waiting reader as the step's end was published (a push): not after
    # 30 s of waiting, and with the event that came.
    assert time.monotonic() - started < 15
    assert page["events"] and page["events"][0]["offset"] == after
    assert page["events"][0]["type"] == "tool_end"


@pytest.mark.crash
def test_a_reader_that_reconnects_after_a_crash_misses_none_and_sees_none_twice(stack: Tour) -> None:
    stack.llm.fault("weather", count=1, hang=30, status=200)  # the run is stuck in its weather step
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Madrid?"})
    url = f"{stack.web_url}/streams/{run_id}/events"
    first = wait_until(
        lambda: (
            (p := httpx.get(url, params={"offset": 0, "wait": 1}, timeout=10).json())["next_offset"] >= 3
            and p
        ),
        what="the tool_start event",
    )
    seen = first["events"]
    assert [e["type"] for e in seen] == CLEAN_RUN[:3]

    stack.kill_endpoint()  # the run and the reader's connection both go down
    stack.restart_endpoint()
    rest = sse_events(stack, run_id, last_event_id=seen[-1]["offset"])

    everything = seen + rest
    assert progress(everything) == CLEAN_RUN  # the replayed steps published nothing again
    assert [e["offset"] for e in everything] == list(range(len(everything)))
