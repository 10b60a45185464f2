"""Beyond the tour: a scheduled agent, streamed progress, an interruptible agent."""

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


# --- ScheduledAgent ------------------------------------------------------------------------------


def status(stack: Tour, key: str) -> dict[str, Any]:
    resp = stack.http.get(f"/ScheduledAgent/{key}/status")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def wait_checks(stack: Tour, key: str, at_least: int) -> dict[str, Any]:
    return wait_until(
        lambda: (s := status(stack, key))["checks"] >= at_least and s, timeout=60, what=f"{at_least} checks"
    )


@pytest.mark.crash
def test_the_schedule_survives_restarts_without_drifting_or_doubling(stack: Tour) -> None:
    key = "watch-oslo"
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Oslo", "interval_seconds": 1})
    assert started.status_code == 200 and started.json()["active"] is True
    wait_checks(stack, key, 2)

    # Starting again does not start a second chain of checks.
    assert stack.call(f"ScheduledAgent/{key}/start", {"city": "Oslo", "interval_seconds": 1}).json()["active"]
    stack.kill_endpoint()
    stack.restart_endpoint()
    stack.restart_server()
    before_stop = wait_checks(stack, key, status(stack, key)["checks"] + 3)

    stopped = stack.http.post(f"/ScheduledAgent/{key}/stop").json()
    assert stopped["active"] is False
    # The check that was already scheduled runs once more, sees the stop, and ends the chain:
    # after more than two intervals, still no new check.
    time.sleep(2.5)
    final = status(stack, key)
    assert final["checks"] == stopped["checks"]
    log = final["log"]
    seqs = [entry["seq"] for entry in log]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no check twice, none skipped
    # Each check was planned a whole number of intervals after the previous one, across the
    # restarts: on the original plan (a check missed during a restart is skipped, not shifted).
    gaps = [b["planned_at"] - a["planned_at"] for a, b in itertools.pairwise(log)]
    assert all(gap >= 1 and abs(gap - round(gap)) < 1e-6 for gap in gaps), gaps
    assert all(
        entry["report"] == "The weather in Oslo is currently light snow, 1 degrees Celsius." for entry in log
    )
    assert final["checks"] >= before_stop["checks"]


def test_a_scheduled_agent_can_be_stopped_before_its_first_check(stack: Tour) -> None:
    key = "watch-brief"
    stack.call(f"ScheduledAgent/{key}/start", {"city": "Rome", "interval_seconds": 3600})
    wait_checks(stack, key, 1)
    assert stack.http.post(f"/ScheduledAgent/{key}/stop").json()["active"] is False
    assert status(stack, key)["checks"] == 1  # the next check is an hour away, and will end the chain


def checks_of(stack: Tour, key: str) -> list[dict[str, Any]]:
    return stack.admin.query(
        "SELECT id, status, completion_result, completion_failure FROM sys_invocation "
        f"WHERE target = 'ScheduledAgent/{key}/check' ORDER BY created_at"
    )


def test_stop_cancels_a_check_that_is_stuck(stack: Tour) -> None:
    key = "watch-denver"  # the tour's weather outage: every check's weather step keeps failing
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Denver", "interval_seconds": 1})
    assert started.status_code == 200, started.text
    wait_until(
        lambda: (c := checks_of(stack, key)) and c[0]["status"] in ("backing-off", "paused"),
        what="the first check to be stuck retrying",
    )

    stopped = stack.http.post(f"/ScheduledAgent/{key}/stop", timeout=20)

    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["active"] is False and stopped.json()["checks"] == 0
    [stuck] = checks_of(stack, key)
    assert (stuck["status"], stuck["completion_failure"]) == ("completed", "[409] cancelled")
    time.sleep(3)  # three intervals: no check is scheduled any more
    assert len(checks_of(stack, key)) == 1 and status(stack, key)["checks"] == 0


def test_a_check_that_fails_for_good_is_logged_and_the_watch_goes_on(stack: Tour) -> None:
    key = "watch-atlantis"
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Atlantis", "interval_seconds": 1})
    assert started.status_code == 200, started.text

    checked = wait_checks(stack, key, 2)

    assert checked["active"] is True
    failure = "Check failed: Unknown location: Atlantis. Please provide a valid city name."
    assert [(e["seq"], e["report"]) for e in checked["log"][:2]] == [(1, failure), (2, failure)]
    assert stack.http.post(f"/ScheduledAgent/{key}/stop").status_code == 200


def test_after_downtime_missed_checks_are_skipped_with_one_catch_up(stack: Tour) -> None:
    key = "watch-lisbon"
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Lisbon", "interval_seconds": 2})
    assert started.status_code == 200, started.text
    wait_checks(stack, key, 2)
    assert stack.endpoint is not None
    stopped_at = time.time()
    stack.endpoint.stop()
    time.sleep(10)  # five intervals without the endpoint
    restarted_at = time.time()
    stack.start_endpoint()
    wait_checks(stack, key, status(stack, key)["checks"] + 3)

    stopped = stack.http.post(f"/ScheduledAgent/{key}/stop")
    assert stopped.status_code == 200, stopped.text
    log = status(stack, key)["log"]
    # Exactly one check that was due during the downtime ran after it; the others were skipped.
    late = [e for e in log if e["done_at"] > stopped_at and e["planned_at"] < restarted_at]
    assert len(late) == 1, log
    after = log[log.index(late[0]) + 1 :]
    assert len(after) >= 2 and all(e["planned_at"] > restarted_at for e in after)
    gaps = [b["planned_at"] - a["planned_at"] for a, b in itertools.pairwise(log)]
    assert all(gap >= 2 and abs(gap / 2 - round(gap / 2)) < 1e-6 for gap in gaps), gaps
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert len(stack.weather_calls("Lisbon")) == len(log)  # no check made twice


def test_the_scheduler_tick_is_refused_through_the_ingress(stack: Tour) -> None:
    key = "watch-private"
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Rome", "interval_seconds": 3600})
    assert started.status_code == 200, started.text
    wait_checks(stack, key, 1)

    resp = stack.call(f"ScheduledAgent/{key}/check", {"seq": 2, "planned_at": time.time()})

    assert resp.status_code == 400, resp.text
    # No check was added: there are the first one and the next one, an hour away, as before.
    wait_until(lambda: len(checks_of(stack, key)) == 2, what="the next check to be scheduled")
    assert [c["status"] for c in checks_of(stack, key)] == ["completed", "scheduled"]
    assert status(stack, key)["checks"] == 1
    assert stack.call(f"ScheduledAgent/{key}/end_watch").status_code == 400


# --- StreamingAgent --------------------------------------------------------------------------------

CLEAN_RUN = ["llm_start", "llm_end", "tool_start", "tool_end", "llm_start", "llm_end", "done"]


def progress(events: list[dict[str, Any]]) -> list[str]:
    """The run's progress events, without the streamed text (tests/test_streamed_text.py)."""
    return [e["type"] for e in events if not e["type"].startswith("text_")]


def sse_events(stack: Tour, run_id: str, last_event_id: int | None = None) -> list[dict[str, Any]]:
    headers = {"last-event-id": str(last_event_id)} if last_event_id is not None else {}
    events = []
    with httpx.stream("GET", f"{stack.web_url}/streams/{run_id}", headers=headers, timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        for line in resp.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return events


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

    page = httpx.get(f"{stack.web_url}/streams/{run_id}/events", params={"offset": 4, "wait": 1}).json()

    assert progress(page["events"]) == CLEAN_RUN[4:]
    assert page["events"][0]["offset"] == 4
    assert page["next_offset"] == page["events"][-1]["offset"] + 1 and page["done"] is True
    bad = httpx.get(f"{stack.web_url}/streams/{run_id}/events", params={"offset": "soon"})
    assert bad.status_code == 400


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


# --- InterruptibleAgent ----------------------------------------------------------------------------


def test_new_input_cancels_the_running_task_and_keeps_the_conversation(stack: Tour) -> None:
    key = "report-1"
    stack.llm.fault("llm", count=1, hang=20, status=200)  # the first attempt at the task is slow
    first = stack.send(
        f"InterruptibleAgent/{key}/run", {"message": "Write a short report about durable execution."}
    )
    wait_until(lambda: stack.llm_calls("report about durable execution"), what="the task to be in progress")

    resp = stack.call(f"InterruptibleAgent/{key}/interrupt", {"message": "Make it about AI agents instead."})

    assert resp.status_code == 200, resp.text
    assert resp.json()["cancelled"] == first
    second = resp.json()["restarted_as"]
    assert stack.wait_status(first, "completed")["completion_failure"] == "[409] cancelled"
    assert stack.output(second).json() == (
        "You said: 'Make it about AI agents instead.'. This is message 2 of our conversation."
    )
    history = stack.http.get(f"/InterruptibleAgent/{key}/history").json()
    assert [(i["role"], i["content"] if isinstance(i["content"], str) else "answer") for i in history] == [
        ("user", "Write a short report about durable execution."),
        ("user", "Make it about AI agents instead."),
        ("assistant", "answer"),
    ]


def test_interrupt_without_a_running_task_just_starts_one(stack: Tour) -> None:
    resp = stack.call("InterruptibleAgent/report-2/interrupt", {"message": "Summarize durable execution."})

    assert resp.status_code == 200 and resp.json()["cancelled"] is None
    answer = stack.output(resp.json()["restarted_as"]).json()
    assert answer == "You said: 'Summarize durable execution.'. This is message 1 of our conversation."
    # Finished, it is no longer the task's run: the next interrupt has nothing to cancel.
    again = stack.call("InterruptibleAgent/report-2/interrupt", {"message": "Shorter, please."})
    assert again.status_code == 200 and again.json()["cancelled"] is None
    assert stack.output(again.json()["restarted_as"]).status_code == 200  # nothing left running


def test_a_run_that_failed_leaves_the_task_free_for_the_next(stack: Tour) -> None:
    key = "report-5"
    stack.llm.fault("llm", count=1, status=400)
    failed = stack.call(f"InterruptibleAgent/{key}/run", {"message": "Write a report about failures."})
    assert failed.status_code == 400, failed.text

    resp = stack.call(f"InterruptibleAgent/{key}/run", {"message": "Try again."})

    assert resp.status_code == 200, resp.text
    assert resp.json() == "You said: 'Try again.'. This is message 2 of our conversation."


def runs_of(stack: Tour, key: str) -> list[dict[str, Any]]:
    return stack.admin.query(
        "SELECT id, status, completion_result, completion_failure FROM sys_invocation "
        f"WHERE target = 'InterruptibleAgent/{key}/run' ORDER BY created_at"
    )


def test_two_interrupts_at_the_same_moment_start_one_run(stack: Tour) -> None:
    key = "report-3"
    stack.llm.fault("llm", count=1, hang=20, status=200)  # the first run is stuck in its LLM call
    first = stack.send(f"InterruptibleAgent/{key}/run", {"message": "Write a report about Restate."})
    wait_until(lambda: stack.llm_calls("report about Restate"), what="the task to be in progress")
    stack.llm.fault("llm", count=1, hang=5, status=200)  # and so is the run that replaces it, a while

    messages = ("Make it shorter.", "Make it longer.")
    with ThreadPoolExecutor(2) as pool:
        calls = [
            pool.submit(stack.call, f"InterruptibleAgent/{key}/interrupt", {"message": message})
            for message in messages
        ]
        responses = [call.result() for call in calls]

    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    # They took turns: one cancelled the running task, the other the run the first one queued.
    (one, _), (two, latest) = sorted(
        ((r.json(), m) for r, m in zip(responses, messages, strict=True)),
        key=lambda x: x[0]["cancelled"] != first,
    )
    assert one["cancelled"] == first and two["cancelled"] == one["restarted_as"]
    queued, winner = one["restarted_as"], two["restarted_as"]
    assert stack.wait_status(first, "completed")["completion_failure"] == "[409] cancelled"
    # Of the runs, only the last one is left working on the task (once Restate has created it:
    # the interrupt answers as soon as the send is journaled).
    wait_until(
        lambda: [r["id"] for r in runs_of(stack, key) if r["status"] != "completed"] == [winner],
        what="the last run to be the only one not completed",
    )
    assert stack.output(winner).json() == f"You said: '{latest}'. This is message 2 of our conversation."
    assert [(r["id"], r["completion_result"]) for r in runs_of(stack, key) if r["id"] != queued] == [
        (first, "failure"),
        (winner, "success"),
    ]
    # The run the first interrupt queued never did any work: it was cancelled in the queue (Restate
    # keeps no record of those), or right as it began, before its first step.
    assert [(r["status"], r.get("completion_failure")) for r in runs_of(stack, key) if r["id"] == queued] in (
        [],
        [("completed", "[409] cancelled")],
    )
    assert [m for m in messages if stack.llm_calls(m)] == [latest]
    history = stack.http.get(f"/InterruptibleAgent/{key}/history").json()
    assert [i["content"] for i in history if i["role"] == "user"] == ["Write a report about Restate.", latest]


def test_a_run_waiting_in_the_queue_when_an_interrupt_came_does_no_work(stack: Tour) -> None:
    key = "report-4"
    stack.llm.fault("llm", count=1, hang=20, status=200)
    first = stack.send(f"InterruptibleAgent/{key}/run", {"message": "Write a report about queues."})
    wait_until(lambda: stack.llm_calls("report about queues"), what="the task to be in progress")
    waiting = stack.send(f"InterruptibleAgent/{key}/run", {"message": "Add a summary."})  # queued behind

    resp = stack.call(f"InterruptibleAgent/{key}/interrupt", {"message": "Make it about stacks instead."})

    assert resp.status_code == 200, resp.text
    assert resp.json()["cancelled"] == first
    assert stack.wait_status(waiting, "completed")["completion_failure"] == (
        "[409] Superseded by a later interrupt before it started"
    )
    answer = stack.output(resp.json()["restarted_as"]).json()
    assert answer == "You said: 'Make it about stacks instead.'. This is message 2 of our conversation."
    assert stack.llm_calls("Add a summary.") == []
    history = stack.http.get(f"/InterruptibleAgent/{key}/history").json()
    assert [i["content"] for i in history if i["role"] == "user"] == [
        "Write a report about queues.",
        "Make it about stacks instead.",
    ]
