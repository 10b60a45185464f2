"""Beyond the tour: InterruptibleAgent, new input cancels and restarts the task."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


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
