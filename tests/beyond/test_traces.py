"""Traces in a local Phoenix: one trace per run, read back through Phoenix's REST API.

The stack of `make run-traced` (dev/harness.py's TracedTour: the real Phoenix, installed on first
use into .venv-phoenix/), started once for this module: restate-server and the endpoint export to
it, and the tests read what Phoenix shows. Its server suspends a waiting invocation after 2 s.
"""

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from dev.browser import HOW_TO_GET_ONE, chromium, chromium_path
from dev.harness import TracedTour, run_curl, wait_until
from tests.conftest import fresh, running_tour

pytestmark = [pytest.mark.e2e, pytest.mark.phoenix]

CLAIM = {
    "date": "2024-10-01",
    "amount": 3000,
    "category": "orthopedic",
    "placeOfService": "General Hospital",
    "reason": "hospital bill for a broken leg (traced)",
}


@pytest.fixture(scope="module")
def traced_tour(tmp_path_factory: pytest.TempPathFactory, _no_real_openai: None) -> Iterator[TracedTour]:
    server_env = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "2s"}
    with running_tour(tmp_path_factory, "traced", server_env, kind=TracedTour) as stack:
        assert isinstance(stack, TracedTour)
        yield stack


@pytest.fixture
def stack(traced_tour: TracedTour) -> Iterator[TracedTour]:
    for clean in fresh(traced_tour):
        assert isinstance(clean, TracedTour)
        yield clean


def kind(spans: list[dict[str, Any]], span_kind: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["span_kind"] == span_kind]


def named(spans: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"].startswith(prefix)]


def steps(spans: list[dict[str, Any]]) -> list[str]:
    """The durable steps that ran, in order (the endpoint's CHAIN spans named as in the journal)."""
    return [s["name"] for s in spans if "restate.step.name" in s["attributes"]]


def ended(stack: TracedTour, invocation: str, llm_spans: int) -> list[dict[str, Any]]:
    """The run's whole trace, once Phoenix has its end and `llm_spans` LLM spans."""

    def whole() -> list[dict[str, Any]] | None:
        trace = stack.trace_of(invocation)
        done = any(
            s["name"].startswith("invocation-end")
            and s["attributes"].get("restate.invocation.id") == invocation
            for s in trace
        )
        return trace if done and len(kind(trace, "LLM")) >= llm_spans else None

    found: list[dict[str, Any]] = wait_until(
        whole, timeout=30, interval=0.5, what=f"the trace of {invocation}"
    )
    return found


def at(span: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(span[field])


def test_a_weather_run_is_one_trace_that_reads_like_its_journal(stack: TracedTour) -> None:
    resp = stack.call("WeatherAgent/run", {"message": "What is the weather like in Tokyo? (traced)"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Tokyo is currently cloudy, 17 degrees Celsius."
    invocation = resp.headers["x-restate-id"]

    trace = ended(stack, invocation, llm_spans=2)

    # restate-server's spans and the endpoint's, in one trace.
    assert {s["context"]["trace_id"] for s in trace} == {trace[0]["context"]["trace_id"]}
    for name in ("ingress", "invocation-start", "invocation-attempt", "invocation-end"):
        assert named(trace, f"{name} WeatherAgent/run"), f"no {name} span"
    (attempt,) = named(trace, "invocation-attempt WeatherAgent/run")
    own = [s for s in trace if "restate.invocation.id" not in s["attributes"]]
    assert own and all(s["parent_id"] == attempt["context"]["span_id"] for s in own)

    # Each LLM call once, with its model, prompt, answer and tokens.
    llm = kind(trace, "LLM")
    assert len(llm) == 2
    for span in llm:
        attributes = span["attributes"]
        assert attributes["llm.model_name"] == "gpt-4.1"
        assert attributes["llm.token_count.prompt"] > 0 and attributes["llm.token_count.completion"] > 0
        assert "Tokyo" in attributes["input.value"]
    assert resp.json() in llm[1]["attributes"]["output.value"]

    # The durable steps as in the journal, the weather lookup with its input and result.
    assert steps(trace) == ["call LLM", "Get weather", "call LLM"]
    (lookup,) = named(trace, "Get weather")
    assert lookup["span_kind"] == "CHAIN"
    assert '"city": "Tokyo"' in lookup["attributes"]["input.value"]
    assert '"temperature": 17' in lookup["attributes"]["output.value"]
    assert [s["name"] for s in kind(trace, "TOOL")] == ["get_weather"]


@pytest.mark.crash
def test_a_crash_and_replay_show_each_llm_call_and_tool_once(stack: TracedTour) -> None:
    prompt = "What is the weather like in Oslo? (traced crash)"
    # The first LLM call and the weather step go through; the second LLM call hangs: the crash
    # comes after the step was journaled.
    stack.llm.fault("llm", count=1, after=1, hang=60, status=200)
    invocation = stack.send("WeatherAgent/run", {"message": prompt})
    wait_until(lambda: len(stack.llm_calls(prompt)) == 2, what="the second LLM call to be in flight")
    # What ended before the crash reached Phoenix (spans are exported within a second; those
    # still open in a killed process are lost, like the hanging call's).
    wait_until(lambda: named(stack.trace_of(invocation), "Get weather"), timeout=15, what="the step's span")

    stack.kill_endpoint()  # SIGKILL
    stack.restart_endpoint()
    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Oslo is currently light snow, 1 degrees Celsius."

    trace = ended(stack, invocation, llm_spans=2)
    # The replay re-ran the agent up to the hanging call and recorded none of it: the first LLM
    # call, the tool and its step appear once. The stand-in saw three calls: the one cut off by
    # the crash left no span.
    assert len(stack.llm_calls(prompt)) == 3
    assert len(kind(trace, "LLM")) == 2
    assert [s["name"] for s in kind(trace, "TOOL")] == ["get_weather"]
    assert steps(trace) == ["call LLM", "Get weather", "call LLM"]
    # The crash shows as a second attempt of the invocation, which made the last call.
    attempts = sorted(named(trace, "invocation-attempt WeatherAgent/run"), key=lambda s: s["start_time"])
    assert len(attempts) >= 2
    last_call = max(kind(trace, "LLM"), key=lambda s: s["start_time"])
    assert last_call["parent_id"] == attempts[-1]["context"]["span_id"]


def test_a_remote_agents_run_is_one_trace_with_its_sub_agents_llm_calls(stack: TracedTour) -> None:
    resp = stack.call("RemoteMultiAgentClaimApproval/run", CLAIM)
    assert resp.status_code == 200, resp.text
    assert resp.json().startswith("Decision: the claim of 3,000 USD")
    invocation = resp.headers["x-restate-id"]

    trace = ended(stack, invocation, llm_spans=4)
    llm = kind(trace, "LLM")
    # The coordinator's two calls, and one of each sub-agent, each under its own invocation's
    # attempt, in the coordinator's trace.
    assert len(llm) == 4
    for agent in ("EligibilityAgent", "FraudAgent"):
        (attempt,) = named(trace, f"invocation-attempt {agent}/run")
        (call,) = [s for s in llm if s["parent_id"] == attempt["context"]["span_id"]]
        assert agent in [s["name"] for s in kind(trace, "AGENT")]
        assert call["attributes"]["llm.token_count.total"] > 0
    (coordinator,) = named(trace, "invocation-attempt RemoteMultiAgentClaimApproval/run")
    assert len([s for s in llm if s["parent_id"] == coordinator["context"]["span_id"]]) == 2


def test_a_run_waiting_for_a_review_is_one_trace_with_the_wait_in_it(stack: TracedTour) -> None:
    message = "Process my hospital bill of 3000USD for a broken leg (traced wait)."
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": message})
    approve, _ = stack.wait_review("broken leg (traced wait)")
    stack.wait_status(invocation, "suspended", timeout=30)  # the endpoint holds nothing meanwhile
    suspended_for = 4.0
    time.sleep(suspended_for)
    assert stack.invocation(invocation)["status"] == "suspended"
    assert run_curl(approve).returncode == 0
    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text

    trace = ended(stack, invocation, llm_spans=2)
    assert steps(trace) == ["call LLM", "Request review", "call LLM"]
    attempts = sorted(
        named(trace, "invocation-attempt HumanClaimApprovalAgent/run"), key=lambda s: s["start_time"]
    )
    assert len(attempts) >= 2
    # The wait: no attempt runs between the suspension and the approval.
    gap = (at(attempts[-1], "start_time") - at(attempts[-2], "end_time")).total_seconds()
    assert gap >= suspended_for
    first, second = sorted(kind(trace, "LLM"), key=lambda s: s["start_time"])
    assert first["parent_id"] == attempts[0]["context"]["span_id"]
    assert second["parent_id"] == attempts[-1]["context"]["span_id"]


def test_the_run_page_opens_the_runs_trace_in_phoenix_with_nothing_from_outside(stack: TracedTour) -> None:
    if chromium_path() is None:
        pytest.skip(HOW_TO_GET_ONE)
    resp = stack.call("WeatherAgent/run", {"message": "What is the weather like in Berlin? (traced page)"})
    assert resp.status_code == 200, resp.text
    invocation = resp.headers["x-restate-id"]
    trace = ended(stack, invocation, llm_spans=2)

    link = httpx.get(f"{stack.web_url}/api/runs/{invocation}/trace", timeout=10)
    assert link.status_code == 200, link.text
    assert link.json()["trace_id"] == trace[0]["context"]["trace_id"]

    hosts: set[str] = set()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname or ""))
        page.goto(f"{stack.web_url}/runs/{invocation}")
        expect(page.locator("#trace-link")).to_be_visible(timeout=30_000)
        page.locator("#trace-link").click()
        # Phoenix's page of that trace: its spans by name.
        expect(page.get_by_text("Get weather").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("invocation-attempt WeatherAgent/run").first).to_be_visible()
        assert trace[0]["context"]["trace_id"] in page.url
    # The run page and Phoenix's UI, and nothing else: no font, no telemetry, no update check.
    assert hosts <= {"127.0.0.1", "localhost"}, hosts


def test_the_trace_link_says_when_there_is_none(stack: TracedTour) -> None:
    unknown = httpx.get(f"{stack.web_url}/api/runs/inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/trace", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["message"].startswith("no trace of inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    bad = httpx.get(f"{stack.web_url}/api/runs/not-a-run/trace", timeout=10)
    assert bad.status_code == 400
    assert "not an invocation id" in bad.json()["message"]


def test_each_failed_attempt_of_a_step_is_a_failed_span(stack: TracedTour) -> None:
    invocation = stack.send("WeatherAgent/run", {"message": "What is the weather like in Denver? (traced)"})
    wait_until(lambda: stack.invocation(invocation).get("retry_count", 0) >= 3, what="Denver to be retried")
    try:
        failed = wait_until(
            lambda: (
                (f := [s for s in named(stack.trace_of(invocation), "Get weather")]) and len(f) >= 2 and f
            ),
            timeout=15,
            what="the failed attempts' spans",
        )
        # One journal entry (the step never completed), a span per attempt, each failed, each in
        # an attempt of its own.
        assert all(s["status_code"] == "ERROR" for s in failed)
        assert "SIMULATED" in failed[0]["status_message"]
        assert len({s["parent_id"] for s in failed}) == len(failed)
        assert stack.run_steps(invocation) == ["call LLM", "Get weather"]
    finally:
        resp = httpx.patch(f"{stack.admin.url}/invocations/{invocation}/kill", timeout=10)
        assert resp.status_code == 200, resp.text
