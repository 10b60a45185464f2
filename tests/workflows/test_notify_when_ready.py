"""Agentic workflows: notify when ready, the AsyncNotificationsAgent workflow and its durable promise."""

import itertools

import httpx
import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

_tasks = itertools.count(1)
POEM = "A poem about durable execution (nw):\nEach step is written down before it counts,"


def task_key() -> str:
    return f"task-{next(_tasks)}"


def test_run_returns_at_once_and_the_answer_comes_to_whoever_asks(stack: Tour) -> None:
    key = task_key()
    stack.llm.latency(1500)  # the agent takes a while
    invocation = stack.send(
        f"AsyncNotificationsAgent/{key}/run", {"message": "Write a poem about durable execution (nw)."}
    )
    assert stack.invocation(invocation)["status"] != "completed"  # /send did not wait

    # get_result waits for the durable promise, and answers once it is resolved.
    result = stack.http.get(f"/AsyncNotificationsAgent/{key}/get_result", timeout=30)
    assert result.status_code == 200, result.text
    assert result.json().startswith(POEM)
    attached = httpx.get(f"{stack.ingress}/restate/workflow/AsyncNotificationsAgent/{key}/attach", timeout=30)
    assert attached.json() == result.json()

    notified = stack.call(f"AsyncNotificationsAgent/{key}/on_notify", {"email": "me@example.com"})
    assert notified.status_code == 200, notified.text
    log = (stack.workdir / "endpoint.log").read_text(errors="replace")
    assert log.count("📧 To me@example.com: A poem about durable execution (nw)") == 1

    # The run view's stream (the web process) shows the run and its answer (its text too: the
    # topic puts the journaled answer on the stream when nothing was streamed).
    page = stack.http.get(
        f"{stack.web_url}/streams/{invocation}/events", params={"offset": 0, "wait": 5}
    ).json()
    assert [e["type"] for e in page["events"]] == ["llm_start", "text_start", "text_delta", "llm_end", "done"]
    assert page["events"][2]["delta"] == page["events"][-1]["output"] == result.json()


def test_an_agent_that_fails_for_good_fails_the_waiting_callers_too(stack: Tour) -> None:
    key = task_key()
    stack.llm.fault("llm", count=1, status=401)
    stack.send(f"AsyncNotificationsAgent/{key}/run", {"message": "Write a poem about keys."})

    result = stack.http.get(f"/AsyncNotificationsAgent/{key}/get_result", timeout=30)
    assert result.status_code == 401, result.text
    assert result.json()["message"].startswith("The LLM API refused the request (HTTP 401)")


def test_a_bad_address_is_a_400_naming_the_field(stack: Tour) -> None:
    resp = stack.call(f"AsyncNotificationsAgent/{task_key()}/on_notify", {"email": "not an address"})

    assert resp.status_code == 400
    assert resp.json()["message"].startswith("Invalid request: email: ")


@pytest.mark.crash
def test_a_crash_while_the_agent_works_keeps_the_promise(stack: Tour) -> None:
    key = task_key()
    stack.llm.fault("llm", count=1, hang=300, status=200)
    invocation = stack.send(
        f"AsyncNotificationsAgent/{key}/run", {"message": "Write a poem about crashes (nw2)."}
    )
    wait_until(lambda: stack.llm_calls("(nw2)"), what="the agent's LLM call")

    stack.kill_endpoint()
    stack.restart_endpoint()

    result = stack.http.get(f"/AsyncNotificationsAgent/{key}/get_result", timeout=60)
    assert result.status_code == 200, result.text
    assert result.json().startswith("A poem about crashes (nw2):")
    assert stack.output(invocation).json() == result.json()
    assert len([c for c in stack.llm_calls("(nw2)") if c.get("status") == 200]) == 1
