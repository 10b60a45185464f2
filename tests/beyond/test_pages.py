"""The pages for the people in the loop, in a real browser: the reviewers' inbox, the run view, the chat.

Playwright drives the system's Chromium (dev/browser.py; never a downloaded one) against the real
stack: the public web process reads and writes through the Restate ingress only. Without a
Chromium these tests skip, saying how to get one.
"""

import itertools
import subprocess
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from dev.harness import Tour, wait_until
from tests.beyond.conftest import Watched

pytestmark = pytest.mark.e2e

_claims = itertools.count(1)
ANSWER = "The weather in Tokyo is currently cloudy, 17 degrees Celsius."


def claim_prompt() -> tuple[str, str]:
    """A claim whose reason is unique to the test: (prompt, reason)."""
    reason = f"broken leg (pages {next(_claims)})"
    return f"Process my hospital bill of 3000USD for a {reason}.", reason


def pending(stack: Tour) -> list[dict[str, Any]]:
    """The inbox, read through the ingress as anyone could."""
    reviews: list[dict[str, Any]] = stack.http.get("/ReviewInbox/reviewers/list").json()["reviews"]
    return reviews


def review_of(stack: Tour, reason: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: next((r for r in pending(stack) if r["claim"]["reason"] == reason), None),
        what=f"the review of {reason!r} in the inbox",
    )
    return found


def utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def card(page: Page, reason: str) -> Locator:
    return page.locator("li.review").filter(has=page.locator("h2", has_text=reason))


def details(card: Locator) -> list[tuple[str, str]]:
    names = card.locator("dt").all_inner_texts()
    values = card.locator("dd").all_inner_texts()
    return list(zip(names, values, strict=True))


# --- the reviewers' inbox ----------------------------------------------------------------------


def test_a_claim_above_1000_is_approved_in_the_inbox_and_leaves_it(stack: Tour, page: Watched) -> None:
    prompt, reason = claim_prompt()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})
    review = review_of(stack, reason)

    page.page.goto(f"{stack.web_url}/reviews")
    item = card(page.page, reason)
    expect(item).to_be_visible()
    assert details(item) == [
        ("Amount", "3,000"),
        ("Category", "medical"),
        ("Place of service", "hospital"),
        ("Date", "not given"),
        ("Asked by", "HumanClaimApprovalAgent"),
        ("Invocation", invocation),
        ("Requested", utc(review["requestedAt"])),
    ]
    item.get_by_role("button", name="Approve").click()

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert resp.json() == f"The claim of 3,000 USD for {reason} was approved by a human reviewer."
    expect(item).to_have_count(0)  # the agent took it out of the inbox; the page followed
    assert all(r["id"] != review["id"] for r in pending(stack))


def test_a_payout_the_sdk_interrupted_is_approved_in_the_same_inbox(stack: Tour, page: Watched) -> None:
    prompt, reason = claim_prompt()
    invocation = stack.send("ToolApprovalClaimAgent/run", {"message": prompt})
    review_of(stack, reason)

    page.page.goto(f"{stack.web_url}/reviews")
    item = card(page.page, reason)
    expect(item).to_be_visible()
    assert ("Asked by", "ToolApprovalClaimAgent") in details(item)
    item.get_by_role("button", name="Approve").click()

    resp = stack.output(invocation)
    assert resp.status_code == 200, resp.text
    assert resp.json().startswith(f"The claim of 3,000 USD for {reason} was paid (Paid 3,000 USD, payment ")
    expect(item).to_have_count(0)


def test_a_review_decided_by_curl_leaves_an_open_page(stack: Tour, page: Watched) -> None:
    page.page.goto(f"{stack.web_url}/reviews")
    expect(page.page.locator("#status")).to_contain_text("review")  # the list has arrived
    prompt, reason = claim_prompt()
    invocation = stack.send("HumanClaimApprovalWithTimeoutsAgent/run", {"message": prompt})
    review = review_of(stack, reason)

    item = card(page.page, reason)
    expect(item).to_be_visible()  # arrived without a reload
    assert details(item)[-2:] == [
        ("Requested", utc(review["requestedAt"])),
        ("Times out", utc(review["timesOutAt"])),
    ]
    assert 3 * 3600 - 5 < review["timesOutAt"] - review["requestedAt"] <= 3 * 3600
    _, reject = stack.wait_review(reason)
    assert subprocess.run(reject, shell=True, capture_output=True, timeout=30).returncode == 0

    expect(item).to_have_count(0)
    resp = stack.output(invocation)
    assert resp.json() == f"The claim of 3,000 USD for {reason} was rejected by a human reviewer."


def test_a_claim_reason_with_markup_is_shown_as_text(stack: Tour, page: Watched) -> None:
    reason = '<script>window.pwned = 1; alert("pwned")</script><img src=x onerror="alert(2)">'
    claim = {"amount": 1500, "category": "medical", "placeOfService": "<b>clinic</b>", "reason": reason}
    invocation = stack.send("HumanApprovalWorkflow/requestApproval", claim)
    review_of(stack, reason)

    page.page.goto(f"{stack.web_url}/reviews")
    item = page.page.locator("li.review").filter(has_text="pwned")
    expect(item.locator("h2")).to_have_text(reason)  # the markup, as text
    expect(item.locator("dd").nth(2)).to_have_text("<b>clinic</b>")
    assert item.locator("script, img, b").count() == 0
    assert page.page.evaluate("window.pwned") is None and page.dialogs == []

    item.get_by_role("button", name="Reject").click()
    assert stack.output(invocation).json() is False
    expect(item).to_have_count(0)
    assert page.dialogs == []


def test_the_web_process_decides_only_pending_reviews_and_only_for_its_own_pages(stack: Tour) -> None:
    web = stack.web_url
    resp = httpx.get(f"{web}/reviews", timeout=10)
    assert resp.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")

    unknown = httpx.post(
        f"{web}/api/reviews/sign_1nosuchreview/decision", json={"approved": True}, timeout=10
    )
    assert (unknown.status_code, unknown.json()["message"]) == (
        404,
        "no pending review sign_1nosuchreview (decided already, or timed out)",
    )
    form = httpx.post(f"{web}/api/reviews/x/decision", data={"approved": "true"}, timeout=10)
    assert form.status_code == 415
    forged = httpx.post(
        f"{web}/api/reviews/x/decision",
        json={"approved": True},
        headers={"origin": "http://evil.example"},
        timeout=10,
    )
    assert (forged.status_code, forged.json()["message"]) == (
        403,
        "cross-origin request refused (origin http://evil.example)",
    )


# --- the inbox itself, through the ingress --------------------------------------------------------


def test_only_the_agents_write_to_the_inbox(stack: Tour) -> None:
    review = {"id": "sign_1forged", "agent": "x", "invocationId": "inv_x", "requestedAt": 0,
              "claim": {"amount": 5000, "category": "medical", "placeOfService": "x", "reason": "forged"}}  # fmt: skip
    for handler, body in (("add", review), ("remove", "sign_1forged")):
        resp = stack.call(f"ReviewInbox/reviewers/{handler}", body)
        assert (resp.status_code, resp.json()["message"]) == (400, "the invoked service is not public")
    assert all(r["id"] != "sign_1forged" for r in pending(stack))


def test_adding_or_removing_a_review_is_not_sent_the_whole_inbox(stack: Tour) -> None:
    # Each pending review is a state entry of the one inbox object: preloaded, every add would
    # carry all of them to the endpoint, a cost that grows with the number waiting.
    handlers = httpx.get(f"{stack.admin.url}/services/ReviewInbox", timeout=10).json()["handlers"]
    lazy = {h["name"]: h.get("enable_lazy_state", False) for h in handlers}
    assert lazy == {"add": True, "remove": True, "list": False}


def test_a_cancelled_approval_leaves_the_inbox(stack: Tour) -> None:
    prompt, reason = claim_prompt()
    invocation = stack.send("SubWorkflowClaimApprovalAgent/run", {"message": prompt})
    review = review_of(stack, reason)
    assert review["agent"] == "HumanApprovalWorkflow"

    assert httpx.patch(f"{stack.admin.url}/invocations/{invocation}/cancel", timeout=10).status_code == 202
    assert stack.output(invocation).status_code == 409  # cancelled, and the sub-workflow with it
    wait_until(lambda: all(r["id"] != review["id"] for r in pending(stack)), what="the review to leave")


def test_the_review_of_a_killed_invocation_is_no_longer_offered(stack: Tour) -> None:
    prompt, reason = claim_prompt()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})
    review = review_of(stack, reason)

    # A kill runs no more code of the invocation: the agent cannot take its review out.
    assert httpx.patch(f"{stack.admin.url}/invocations/{invocation}/kill", timeout=10).status_code == 200
    assert review in pending(stack)

    def offered() -> list[str]:
        return [r["id"] for r in httpx.get(f"{stack.web_url}/api/reviews", timeout=10).json()["reviews"]]

    wait_until(lambda: review["id"] not in offered(), what="the web process to leave the review out")
    resp = httpx.post(
        f"{stack.web_url}/api/reviews/{review['id']}/decision", json={"approved": True}, timeout=10
    )
    assert resp.status_code == 404


def test_the_inbox_survives_a_restart_of_restate(stack: Tour) -> None:
    prompt, reason = claim_prompt()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})
    review = review_of(stack, reason)

    stack.restart_server()
    assert review in pending(stack)
    resp = httpx.post(
        f"{stack.web_url}/api/reviews/{review['id']}/decision", json={"approved": False}, timeout=10
    )
    assert resp.status_code == 202, resp.text
    assert (
        stack.output(invocation).json()
        == f"The claim of 3,000 USD for {reason} was rejected by a human reviewer."
    )
    wait_until(lambda: review not in pending(stack), what="the review to leave")


# --- the chat ----------------------------------------------------------------------------------


def test_a_chat_of_two_messages_shows_both_answers(stack: Tour, page: Watched) -> None:
    key = f"pages-{next(_claims)}"
    page.page.goto(f"{stack.web_url}/chat/{key}")
    expect(page.page.locator("#status")).to_have_text("No messages yet: say something.")

    for text, count in (("My name is Alice.", 2), ("What is my name?", 4)):
        page.page.locator("#message").fill(text)
        page.page.get_by_role("button", name="Send").click()
        expect(page.page.locator("#messages li:not(.pending)")).to_have_count(count)

    messages = page.page.locator("#messages li")
    assert [(m.locator(".role").inner_text(), m.locator(".text").inner_text()) for m in messages.all()] == [
        ("You", "My name is Alice."),
        ("Assistant", "Nice to meet you, Alice! I will remember your name."),
        ("You", "What is my name?"),
        ("Assistant", "Your name is Alice."),
    ]
    assert len(stack.http.get(f"/Chat/{key}/get_history").json()) == 4  # the object's state


# --- the run view --------------------------------------------------------------------------------


def test_a_run_view_shows_the_events_in_order_across_a_restart_of_the_web_process(
    stack: Tour, page: Watched
) -> None:
    stack.llm.fault("weather", count=1, hang=6, status=200)  # the run waits in its weather step
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo?"})
    page.page.goto(f"{stack.web_url}/runs/{run_id}")
    events = page.page.locator("#events li")
    expect(events).to_have_count(3)  # up to the tool's start

    stack.restart_web()  # the page's stream breaks; it reconnects from its last event
    expect(page.page.locator("#status")).to_have_text("Done.", timeout=60_000)

    rows = [tuple(e.locator("span").all_inner_texts()) for e in events.all()]
    end = len(stack.call(f"AgentEvents/{run_id}/read", {"offset": 0}).json()["events"])
    assert rows == [
        ("#0", "llm_start", "StreamingAgent calls the model"),
        ("#1", "llm_end", "the model asks for get_weather"),
        ("#2", "tool_start", "get_weather for Tokyo"),
        ("#3", "tool_end", "get_weather for Tokyo: 17 °C, Cloudy"),
        ("#4", "llm_start", "StreamingAgent calls the model"),
        ("#5", "text", ANSWER),  # one row, whatever the number of deltas
        (f"#{end - 2}", "llm_end", "the model answers"),
        (f"#{end - 1}", "done", ANSWER),
    ]
    assert page.page.locator("#run-id").inner_text() == run_id


def test_a_run_view_strikes_through_text_that_was_voided(stack: Tour, page: Watched) -> None:
    # The answer's stream breaks after three words; the step is retried and writes it again.
    stack.llm.fault("responses", count=1, after=1, cut_after_tokens=3)
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo?"})
    page.page.goto(f"{stack.web_url}/runs/{run_id}")
    expect(page.page.locator("#status")).to_have_text("Done.", timeout=60_000)

    texts = page.page.locator("#events li.text")
    assert [tuple(e.locator("span").all_inner_texts()[1:]) for e in texts.all()] == [
        ("text_void", "The weather in"),
        ("text", ANSWER),
    ]
    expect(texts.first).to_have_class("text void")
    expect(texts.first).to_have_attribute("title", "the LLM call failed (APIConnectionError)")


# --- an evaluation's report ------------------------------------------------------------------------


def test_an_evaluation_report_shows_each_case_and_the_pass_rate(stack: Tour, page: Watched) -> None:
    cases = [
        {"name": "<b>leg</b>", "input": {"amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital",
                                         "reason": "hospital bill for a broken leg (pages eval)"},
         "expect": "approves the claim"},
        {"name": "dress", "input": {"amount": 800, "category": "other", "placeOfService": "Bridal Boutique",
                                    "reason": "a wedding dress (pages eval)"},
         "expect": "approves the claim"},
    ]  # fmt: skip
    resp = stack.call(
        "Evaluation/pages-eval/run", {"service": "ParallelAgentClaimApproval/run", "cases": cases}
    )
    assert resp.status_code == 200, resp.text

    page.page.goto(f"{stack.web_url}/evals/pages-eval")
    expect(page.page.locator("#summary")).to_have_text(
        "ParallelAgentClaimApproval/run: 2 of 2 cases graded, 1 passed (50 %)."
    )
    rows = page.page.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).locator("td").all_inner_texts()[:3] == [
        "<b>leg</b>",
        "pass",
        "1.00",
    ]  # text, not markup
    assert rows.nth(1).locator("td").all_inner_texts()[:3] == ["dress", "fail", "0.00"]


def test_an_unknown_evaluation_says_so(stack: Tour, page: Watched) -> None:
    page.page.goto(f"{stack.web_url}/evals/never-run")
    expect(page.page.locator("#summary")).to_have_text("No evaluation run 'never-run' has started.")
