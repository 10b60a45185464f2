"""Steering runs (docs/control.md): pause, resume on a fix, rerun from a step, fork onto another
model, cancel, two versions side by side; each through Restate's admin API as the docs show it,
with the stand-in's LLM calls counted, and the run page's API in front of it.

The stack is this module's own: its tests register second versions of the endpoint, which
become the latest deployment; `undeploy` puts the first one back after each test.
"""

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from dev.harness import Tour, run_curl, wait_until
from tests.beyond.conftest import Watched
from tests.conftest import fresh, running_tour

pytestmark = pytest.mark.e2e

TOPIC = {"topic": "The impact of renewable energy on global economies"}


@pytest.fixture(scope="module")
def control_tour(tmp_path_factory: pytest.TempPathFactory, _no_real_openai: None) -> Iterator[Tour]:
    with running_tour(tmp_path_factory, "control") as stack:
        yield stack


@pytest.fixture
def stack(control_tour: Tour) -> Iterator[Tour]:
    try:
        yield from fresh(control_tour)
    finally:
        control_tour.undeploy()


def admin(stack: Tour, invocation: str, action: str, **params: Any) -> httpx.Response:
    """`curl -X PATCH localhost:9070/invocations/<id>/<action>?...`, as docs/control.md shows."""
    return httpx.patch(f"{stack.admin.url}/invocations/{invocation}/{action}", params=params, timeout=30)


def step_index(stack: Tour, invocation: str, name: str, nth: int = -1) -> int:
    """The journal index of the `nth` `ctx.run` step called `name`."""
    found = [
        e["index"]
        for e in stack.journal(invocation)
        if e["entry_type"] == "Command: Run" and e["name"] == name
    ]
    return int(found[nth])


def review_of(stack: Tour, invocation: str) -> dict[str, Any]:
    """The run's review, once it is in the reviewers' inbox."""

    def pending() -> dict[str, Any] | None:
        reviews = stack.http.get("/ReviewInbox/reviewers/list").json()["reviews"]
        return next((r for r in reviews if r["invocationId"] == invocation), None)

    found: dict[str, Any] = wait_until(pending, what=f"the review of {invocation} in the inbox")
    return found


def ledger(stack: Tour, service: str) -> dict[str, Any]:
    usage: dict[str, Any] = stack.http.get(f"/LlmUsage/{service}/get").json()
    return usage


def quiet(stack: Tour, service: str) -> dict[str, Any]:
    """The ledger of `service` once the entries of earlier runs have landed (one-way sends)."""

    def same_twice() -> dict[str, Any] | None:
        first = ledger(stack, service)
        time.sleep(0.3)
        return first if ledger(stack, service) == first else None

    found: dict[str, Any] = wait_until(same_twice, what=f"the ledger of {service} to settle")
    return found


def settled(stack: Tour, service: str, calls: int) -> dict[str, Any]:
    """The ledger of `service` once it has counted `calls` calls (its entries are one-way sends)."""
    found: dict[str, Any] = wait_until(
        lambda: (u := ledger(stack, service))["calls"] >= calls and u, what=f"{calls} calls in the ledger"
    )
    return found


def test_rewind_after_a_late_failure_pays_for_no_researcher_again(stack: Tour) -> None:
    # The writer's call fails for good (the API refuses it), after every researcher finished.
    stack.llm.fault("llm", count=1, status=400, containing="Research findings")
    resp = stack.call("ResearchReport/generate", TOPIC)
    assert resp.status_code == 400, resp.text
    assert "The LLM API refused the request (HTTP 400)" in resp.json()["message"]
    failed = resp.headers["x-restate-id"]
    before = quiet(stack, "ResearchReport")["calls"]
    planned, researched = (
        len(stack.llm_calls_of("You are a research planner")),
        len(stack.llm_calls_of("You are a research assistant")),
    )
    assert planned == 1 and researched == 3

    # The fix (here: the fault is used up), then a rerun from the writer's step: everything before
    # it comes from the failed run's journal.
    writer = step_index(stack, failed, "call LLM")
    rerun = admin(stack, failed, "restart-as-new", **{"from": writer - 1, "deployment": "latest"})
    assert rerun.status_code == 200, rerun.text
    new = rerun.json()["new_invocation_id"]
    report = stack.output(new)

    assert report.status_code == 200, report.text
    assert report.json()["task_count"] == 3 and report.json()["report"]
    # Not one researcher and not the planner asked again: one new LLM call, the writer's.
    assert len(stack.llm_calls_of("You are a research planner")) == planned
    assert len(stack.llm_calls_of("You are a research assistant")) == researched
    assert len([c for c in stack.llm_calls_of("You are a report writer") if c["status"] == 200]) == 1
    assert stack.invocation(new)["restarted_from"] == failed
    # The ledger counts that call once (the copied plan was counted by the failed run).
    assert settled(stack, "ResearchReport", before + 1)["calls"] == before + 1


def test_pause_while_a_dependency_is_down_then_resume_on_the_fix(stack: Tour) -> None:
    prompt = "What is the weather like in Denver? (paused)"
    invocation = stack.send("WeatherAgent/run", {"message": prompt})
    wait_until(lambda: stack.invocation(invocation).get("retry_count", 0) >= 2, what="Denver to be retried")

    assert admin(stack, invocation, "pause").status_code == 202
    stack.wait_status(invocation, "paused")
    attempts = stack.invocation(invocation)["retry_count"]
    # Paused: no attempt while the dependency is down (the retries were due every 0.5-2 s), not
    # even when the endpoint comes back and asks Restate to retry what waits (app/runtime/recovery.py).
    stack.restart_endpoint()
    time.sleep(4)
    row = stack.invocation(invocation)
    assert row["status"] == "paused" and row["retry_count"] == attempts
    assert len(stack.llm_calls(prompt)) == 1

    # The fix, as a second version beside the first; the run moves there and finishes.
    _, fixed = stack.deploy(FAIL_ON_DENVER="false")
    assert admin(stack, invocation, "resume", deployment=fixed).status_code == 200
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Denver is currently clear, 7 degrees Celsius."
    assert stack.invocation(invocation)["pinned_deployment_id"] == fixed
    # Its first LLM call came from the journal: one more call wrote the answer.
    assert len(stack.llm_calls(prompt)) == 2


def test_fork_onto_another_model_makes_only_the_last_call_again(stack: Tour) -> None:
    prompt = "What is the weather like in Tokyo? (fork)"
    base = quiet(stack, "WeatherAgent")
    original = stack.call("WeatherAgent/run", {"message": prompt})
    assert original.status_code == 200, original.text
    first = original.headers["x-restate-id"]
    before = settled(stack, "WeatherAgent", base["calls"] + 2)["models"]

    _, mini = stack.deploy(OPENAI_MODEL="gpt-4.1-mini")
    lookup = step_index(stack, first, "Get weather")
    fork = admin(stack, first, "restart-as-new", **{"from": lookup - 1, "deployment": mini})
    assert fork.status_code == 200, fork.text
    forked = fork.json()["new_invocation_id"]
    answer = stack.output(forked)

    assert answer.status_code == 200, answer.text
    assert answer.json() == "The weather in Tokyo is currently cloudy, 17 degrees Celsius."
    # One new LLM call, on the other model; the first came from the original's journal.
    calls = stack.llm_calls(prompt)
    assert [c["model"] for c in calls] == ["gpt-4.1", "gpt-4.1", "gpt-4.1-mini"]
    # The original is untouched, and both answers are there side by side.
    assert stack.output(first).json() == original.json()
    for run, model in ((first, "dp_"), (forked, mini)):
        page = httpx.get(f"{stack.web_url}/api/runs/{run}", timeout=10).json()
        assert page["answer"] == f'"{answer.json()}"' and page["deployment"].startswith(model)
    # The ledger counts the new call, on its model; the copied one is not counted again.
    after = settled(stack, "WeatherAgent", base["calls"] + 3)["models"]
    assert after["gpt-4.1"]["calls"] == before["gpt-4.1"]["calls"]
    assert after["gpt-4.1-mini"]["calls"] == before.get("gpt-4.1-mini", {"calls": 0})["calls"] + 1

    # A rerun from after the last LLM call makes none, and enters nothing again in the ledger.
    last = step_index(stack, first, "call LLM")
    again = admin(stack, first, "restart-as-new", **{"from": last + 1, "deployment": "latest"})
    assert stack.output(again.json()["new_invocation_id"]).json() == original.json()
    assert len(stack.llm_calls(prompt)) == 3
    assert ledger(stack, "WeatherAgent")["models"] == after


def test_cancel_a_waiting_approval_takes_it_out_of_the_inbox(stack: Tour) -> None:
    reason = "broken leg (cancelled)"
    invocation = stack.send(
        "HumanClaimApprovalAgent/run", {"message": f"Process my hospital bill of 3000USD for a {reason}."}
    )
    stack.wait_review(reason)
    inbox = lambda: [r for r in stack.http.get("/ReviewInbox/reviewers/list").json()["reviews"]]  # noqa: E731
    wait_until(lambda: any(r["invocationId"] == invocation for r in inbox()), what="the review in the inbox")

    assert admin(stack, invocation, "cancel").status_code == 202
    resp = stack.output(invocation)

    assert resp.status_code == 409
    assert resp.json()["message"].startswith("Cancelled while waiting for a review (claim: broken leg")
    wait_until(lambda: not any(r["invocationId"] == invocation for r in inbox()), what="the review to leave")


def test_approvals_waiting_on_v1_finish_on_v1_and_new_runs_take_v2(stack: Tour) -> None:
    v1 = stack.admin.register(stack.endpoint_url)["id"]
    claim = "Process my hospital bill of 3000USD for a broken leg ({})."
    waiting = stack.send("HumanClaimApprovalAgent/run", {"message": claim.format("v1")})
    review_of(stack, waiting)

    _, v2 = stack.deploy()
    newer = stack.send("HumanClaimApprovalAgent/run", {"message": claim.format("v2")})
    for run in (waiting, newer):
        approved = stack.http.post(f"/restate/awakeables/{review_of(stack, run)['id']}/resolve", json=True)
        assert approved.status_code == 202
        assert stack.output(run).status_code == 200

    assert stack.invocation(waiting)["pinned_deployment_id"] == v1
    assert stack.invocation(newer)["pinned_deployment_id"] == v2


def test_a_restarted_streaming_run_shows_its_own_events(stack: Tour) -> None:
    first = stack.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo? (restarted)"})
    assert stack.output(first).status_code == 200
    second_call = step_index(stack, first, "call LLM")
    rerun = admin(stack, first, "restart-as-new", **{"from": second_call - 1, "deployment": "latest"})
    assert rerun.status_code == 200, rerun.text
    new = rerun.json()["new_invocation_id"]

    assert stack.output(new).status_code == 200
    events = lambda run: httpx.get(f"{stack.web_url}/streams/{run}/events?offset=0&wait=0", timeout=10).json()  # noqa: E731
    mine = events(new)
    # Its own page: the answer it made, and its end, not the original's events.
    assert [e["type"] for e in mine["events"]][-2:] == ["llm_end", "done"]
    assert mine["events"][-1]["output"] == "The weather in Tokyo is currently cloudy, 17 degrees Celsius."
    # The original's topic is as it was: one `done`.
    assert [e["type"] for e in events(first)["events"]].count("done") == 1


def test_a_rerun_approval_asks_again_or_keeps_the_decision(stack: Tour) -> None:
    reason = "broken leg (rerun review)"
    first = stack.send(
        "HumanClaimApprovalAgent/run", {"message": f"Process my hospital bill of 3000USD for a {reason}."}
    )
    approve, _ = stack.wait_review(reason)
    assert run_curl(approve).returncode == 0
    assert stack.output(first).status_code == 200

    # From after the decision: the decision is the first run's, no new review.
    decided = step_index(stack, first, "call LLM")
    after = admin(stack, first, "restart-as-new", **{"from": decided - 1}).json()["new_invocation_id"]
    resp = stack.output(after)
    assert resp.status_code == 200 and "approved" in resp.json()

    # From the review request: a new review, for the new run, in the inbox.
    request = step_index(stack, first, "Request review")
    asking = admin(stack, first, "restart-as-new", **{"from": request - 1}).json()["new_invocation_id"]
    review = review_of(stack, asking)
    resolved = stack.http.post(f"/restate/awakeables/{review['id']}/resolve", json=False)
    assert resolved.status_code == 202
    assert "rejected" in stack.output(asking).json()


def test_the_run_api_refuses_in_plain_words(stack: Tour) -> None:
    done = stack.call("WeatherAgent/run", {"message": "What is the weather like in Berlin? (refusals)"})
    run = done.headers["x-restate-id"]
    api = f"{stack.web_url}/api/runs/{run}"

    paused = httpx.post(f"{api}/pause", json={}, timeout=10)
    assert paused.status_code == 409
    assert paused.json()["message"] == "Only a running or retrying run can be paused."
    _, removed = stack.deploy()
    stack.undeploy()  # stopped, and removed from Restate
    gone = httpx.post(f"{api}/rerun", json={"from": 2, "deployment": removed}, timeout=10)
    assert gone.status_code == 400
    assert gone.json()["message"].startswith("That deployment is gone")
    beyond = httpx.post(f"{api}/rerun", json={"from": 99}, timeout=10)
    assert beyond.status_code == 400
    assert beyond.json()["message"].startswith("A step before this one never finished")
    bad = httpx.post(f"{api}/rerun", json={"from": "two"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["message"].startswith("from:")

    waiting = stack.send("WeatherAgent/run", {"message": "What is the weather like in Denver? (refusals)"})
    wait_until(lambda: stack.invocation(waiting).get("retry_count", 0) >= 1, what="Denver to be retried")
    running = httpx.post(f"{stack.web_url}/api/runs/{waiting}/rerun", json={"from": 0}, timeout=10)
    assert running.status_code == 409
    assert running.json()["message"].startswith("This run has not finished")
    assert httpx.post(f"{stack.web_url}/api/runs/{waiting}/kill", json={}, timeout=10).status_code == 200
    assert stack.wait_status(waiting, "completed")["completion_failure"] == "[409] killed"


# --- the run page, in Chromium (dev/browser.py) ----------------------------------------------------


def test_the_run_page_pauses_resumes_on_a_fix_and_reruns_from_a_step(stack: Tour, page: Watched) -> None:
    prompt = "What is the weather like in Denver? (page)"
    invocation = stack.send("WeatherAgent/run", {"message": prompt})
    wait_until(lambda: stack.invocation(invocation).get("retry_count", 0) >= 1, what="Denver to be retried")
    browser = page.page
    browser.goto(f"{stack.web_url}/runs/{invocation}")
    expect(browser.locator("#run-status")).to_have_text("Backing-off.")
    expect(browser.locator("#resume")).to_be_disabled()

    browser.locator("#pause").click()
    expect(browser.locator("#run-status")).to_have_text("Paused.")
    expect(browser.locator("#pause")).to_be_disabled()
    _, fixed = stack.deploy(FAIL_ON_DENVER="false")
    # The page offers the new deployment as soon as it is registered.
    expect(browser.locator(f'#resume-on option[value="{fixed}"]')).to_have_count(1)
    browser.locator("#resume-on").select_option(fixed)
    browser.locator("#resume").click()
    expect(browser.locator("#run-status")).to_have_text("Completed.")
    expect(browser.locator("#answer")).to_have_text(
        "The weather in Denver is currently clear, 7 degrees Celsius."
    )
    assert len(stack.llm_calls(prompt)) == 2

    # Rerun from the weather step: a new run, its page, one LLM call more.
    browser.locator("#journal tr", has_text="Get weather").get_by_role(
        "button", name="Rerun from here"
    ).click()
    browser.wait_for_url(lambda url: "/runs/" in url and invocation not in url)
    expect(browser.locator("#run-status")).to_have_text("Completed.")
    expect(browser.locator("#facts")).to_contain_text(f"rerun of{invocation}")
    expect(browser.locator("#answer")).to_have_text(
        "The weather in Denver is currently clear, 7 degrees Celsius."
    )
    assert len(stack.llm_calls(prompt)) == 3

    # Its deployment gone, a rerun on it is refused, in plain words.
    stack.undeploy()
    browser.goto(f"{stack.web_url}/runs/{invocation}")
    browser.locator("#rerun-on").select_option(fixed)
    browser.locator("#journal tr", has_text="Get weather").get_by_role(
        "button", name="Rerun from here"
    ).click()
    expect(browser.locator("#refusal")).to_have_text(
        "That deployment is gone (removed from Restate): rerun on the latest deployment instead."
    )


def test_the_run_page_kills_after_a_confirmation(stack: Tour, page: Watched) -> None:
    invocation = stack.send(
        "HumanClaimApprovalAgent/run",
        {"message": "Process my hospital bill of 3000USD for a broken leg (kill)."},
    )
    review_of(stack, invocation)
    browser = page.page
    browser.goto(f"{stack.web_url}/runs/{invocation}")
    expect(browser.locator("#kill")).to_be_enabled()

    browser.locator("#kill").click()  # dismissed: nothing happens
    assert page.dialogs[-1].startswith("Kill this run?")
    page.confirm = True
    browser.locator("#kill").click()
    expect(browser.locator("#run-status")).to_have_text("Failed: [409] killed")
    expect(browser.locator("#kill")).to_be_disabled()


def test_the_controls_are_off_unless_the_setting_says_so(stack: Tour, page: Watched) -> None:
    done = stack.call("WeatherAgent/run", {"message": "What is the weather like in Berlin? (controls off)"})
    run = done.headers["x-restate-id"]
    stack.restart_web(RUN_CONTROLS="off")

    refused = httpx.post(f"{stack.web_url}/api/runs/{run}/rerun", json={"from": 2}, timeout=10)
    assert refused.status_code == 403 and "RUN_CONTROLS" in refused.json()["message"]
    page.page.goto(f"{stack.web_url}/runs/{run}")
    expect(page.page.locator("#controls-off")).to_be_visible()
    expect(page.page.locator("#journal tr", has_text="Get weather")).to_be_visible()
    expect(page.page.get_by_role("button", name="Rerun from here")).to_have_count(0)
