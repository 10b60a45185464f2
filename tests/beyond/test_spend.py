"""Spend under control (app/advanced/spend.py): a token budget per tenant, checked before the LLM
calls, exact after them, against the real restate-server; the stand-in's own count of the tokens it
answered with is the yardstick. Also run in forced-replay mode (marker `budget`)."""

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from dev.harness import Tour, wait_until
from tests.beyond.conftest import Watched

pytestmark = [pytest.mark.e2e, pytest.mark.budget]

_tenants = itertools.count(1)


def new_tenant(what: str) -> str:
    return f"{what}-{next(_tenants)}"


def spend(stack: Tour, tenant: str) -> dict[str, Any]:
    resp = stack.http.get(f"/Spend/{tenant}/get")
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


def settled(stack: Tour, tenant: str, runs: int) -> dict[str, Any]:
    """The tenant's spend once `runs` runs have settled and no reservation is left."""
    found: dict[str, Any] = wait_until(
        lambda: (s := spend(stack, tenant))["used"]["runs"] >= runs and not s["runs_in_flight"] and s,
        what=f"{runs} runs of {tenant} settled",
    )
    return found


def billed(stack: Tour, marker: str) -> list[int]:
    """Tokens of each LLM call the stand-in answered (and billed) for prompts containing `marker`."""
    return [
        c["usage"]["input_tokens"] + c["usage"]["output_tokens"]
        for c in stack.llm_calls(marker)
        if c.get("usage")
    ]


def weather(stack: Tour, tenant: str, city: str, marker: str) -> httpx.Response:
    return stack.http.post(
        "/WeatherAgent/run",
        json={"message": f"What is the weather like in {city}? ({marker})"},
        headers={"x-tenant": tenant},
    )


def test_a_budget_of_about_one_run_answers_once_then_refuses_before_any_llm_call(stack: Tour) -> None:
    tenant = new_tenant("one-run")
    assert stack.http.post(f"/Spend/{tenant}/set_budget", json={"max_tokens": 300}).status_code == 200

    first = weather(stack, tenant, "Tokyo", tenant)
    assert first.status_code == 200, first.text
    assert first.json() == "The weather in Tokyo is currently cloudy, 17 degrees Celsius."
    used = settled(stack, tenant, 1)["used"]
    assert used["tokens"] == sum(billed(stack, tenant)) and used["calls"] == 2

    second = weather(stack, tenant, "Oslo", f"{tenant} again")
    assert second.status_code == 402
    message = second.json()["message"]
    # (Less than one call's worth is left: not enough for another run.)
    assert message.startswith(
        f"Tenant {tenant!r} has no budget left for another run: used {used['tokens']} of 300 tokens"
    )
    # Ended before its first LLM call: the model was never asked, and nothing was retried.
    assert stack.llm_calls(f"{tenant} again") == []
    row = stack.invocation(second.headers["x-restate-id"])
    assert row["completion_failure"].startswith("[402]") and not row.get("retry_count")
    assert spend(stack, tenant)["used"]["tokens"] == used["tokens"]


def test_twenty_parallel_runs_spend_within_the_budget_plus_one_call(stack: Tour) -> None:
    tenant = new_tenant("parallel")
    # What one of the tenant's runs takes, learned from one run before the budget is set.
    assert weather(stack, tenant, "Tokyo", f"{tenant} first").status_code == 200
    first = settled(stack, tenant, 1)["used"]["tokens"]
    budget = first + 1200
    stack.http.post(f"/Spend/{tenant}/set_budget", json={"max_tokens": budget}).raise_for_status()

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: weather(stack, tenant, "Tokyo", f"{tenant} #{i}"), range(20)))

    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 402}, statuses
    done = statuses.count(200)
    final = settled(stack, tenant, 1 + done)  # (a refused run spent nothing: nothing to settle)
    calls = billed(stack, tenant)
    # Counted exactly: what the stand-in billed, no more, no less.
    assert final["used"]["tokens"] == sum(calls)
    # Within the budget plus one call's worth at most.
    assert final["used"]["tokens"] <= budget + max(calls)
    assert done >= 2  # the budget was shared out, not given to one run
    assert final["reserved"] == 0


@pytest.mark.crash
def test_a_crash_counts_no_token_twice(stack: Tour) -> None:
    tenant = new_tenant("crash")
    stack.http.post(f"/Spend/{tenant}/set_budget", json={"max_tokens": 5000}).raise_for_status()
    marker = f"{tenant} run"
    stack.llm.fault("weather", count=1, hang=30, status=200)
    invocation = stack.http.post(
        "/WeatherAgent/run/send",
        json={"message": f"What is the weather like in Vienna? ({marker})"},
        headers={"x-tenant": tenant},
    ).json()["invocationId"]
    wait_until(lambda: stack.weather_calls("Vienna"), what="the weather step to be in flight")

    stack.kill_endpoint()
    stack.restart_endpoint()
    assert stack.output(invocation).status_code == 200

    used = settled(stack, tenant, 1)["used"]
    assert used["calls"] == 2 == len(billed(stack, marker))
    assert used["tokens"] == sum(billed(stack, marker))


def test_a_run_restarted_from_a_step_counts_only_its_new_calls(stack: Tour) -> None:
    tenant = new_tenant("restart")
    stack.http.post(f"/Spend/{tenant}/set_budget", json={"max_tokens": 5000}).raise_for_status()
    first = weather(stack, tenant, "Tokyo", tenant)
    assert first.status_code == 200
    before = settled(stack, tenant, 1)["used"]
    invocation = first.headers["x-restate-id"]
    lookup = next(e["index"] for e in stack.journal(invocation) if e.get("name") == "Get weather")

    rerun = httpx.patch(
        f"{stack.admin.url}/invocations/{invocation}/restart-as-new", params={"from": lookup - 1}, timeout=30
    )
    assert rerun.status_code == 200, rerun.text
    assert stack.output(rerun.json()["new_invocation_id"]).status_code == 200

    after = settled(stack, tenant, 2)["used"]
    calls = billed(stack, tenant)
    assert len(calls) == 3  # two by the first run, one by the rerun
    assert after["calls"] == before["calls"] + 1
    assert after["tokens"] == before["tokens"] + calls[-1] == sum(calls)


def test_the_tenant_follows_the_run_into_its_sub_agents(stack: Tour) -> None:
    tenant = new_tenant("remote")
    claim = {
        "date": "2024-10-01",
        "amount": 3000,
        "category": "orthopedic",
        "placeOfService": "General Hospital",
        "reason": f"hospital bill for a broken leg ({tenant})",
    }
    resp = stack.http.post("/RemoteMultiAgentClaimApproval/run", json=claim, headers={"x-tenant": tenant})
    assert resp.status_code == 200, resp.text
    # The coordinator's two calls, the eligibility and the fraud agent's one each: four runs.
    used = settled(stack, tenant, 3)["used"]
    assert used["calls"] == 4
    assert spend(stack, tenant)["budget"] is None  # counted all the same, without a budget


def test_a_bad_tenant_is_a_400_that_names_it(stack: Tour) -> None:
    resp = stack.http.post(
        "/WeatherAgent/run",
        json={"message": "What is the weather like in Tokyo?"},
        headers={"x-tenant": "no tenant!"},
    )
    assert resp.status_code == 400
    assert resp.json()["message"].startswith("Invalid request: x-tenant: must be 1 to 36 letters")
    assert not stack.invocation(resp.headers["x-restate-id"]).get("retry_count")


def test_a_request_without_a_tenant_is_counted_and_never_limited(stack: Tour) -> None:
    before = settled(stack, "default", 0)["used"]
    resp = stack.call("WeatherAgent/run", {"message": "What is the weather like in Tokyo? (no tenant)"})
    assert resp.status_code == 200, resp.text
    # The tour's journal, as it was: nothing reserved.
    assert [
        e["name"] for e in stack.journal(resp.headers["x-restate-id"]) if e["entry_type"] == "Command: Call"
    ] == []
    used = settled(stack, "default", before["runs"] + 1)["used"]
    assert used["tokens"] - before["tokens"] == sum(billed(stack, "(no tenant)"))
    refused = stack.http.post("/Spend/default/set_budget", json={"max_tokens": 1})
    assert refused.status_code == 400
    assert "requests without x-tenant) has no budget" in refused.json()["message"]


def test_a_bad_budget_is_a_400_that_names_the_field(stack: Tour) -> None:
    resp = stack.http.post(f"/Spend/{new_tenant('bad')}/set_budget", json={"max_tokens": -5})
    assert resp.status_code == 400
    assert resp.json()["message"] == "Invalid request: max_tokens: Input should be greater than or equal to 0"


def test_the_web_process_passes_the_tenant_on(stack: Tour) -> None:
    tenant = new_tenant("web")
    key = f"chat-{tenant}"
    resp = httpx.post(
        f"{stack.web_url}/api/chat/{key}/message",
        json={"message": "My name is Alice."},
        headers={"x-tenant": tenant},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    assert settled(stack, tenant, 1)["used"]["calls"] == 1


def test_the_spend_page_shows_each_tenant_live(stack: Tour, page: Watched) -> None:
    tenant = new_tenant("page")
    stack.http.post(f"/Spend/{tenant}/set_budget", json={"max_tokens": 5000}).raise_for_status()
    page.page.goto(f"{stack.web_url}/spend")
    row = page.page.locator(f'#tenants tr[data-tenant="{tenant}"]')
    expect(row.locator(".budget")).to_have_text("5,000 tokens")
    expect(row.locator(".used")).to_have_text("0 tokens, 0.000000 USD, 0 calls")

    assert weather(stack, tenant, "Tokyo", tenant).status_code == 200
    used = settled(stack, tenant, 1)["used"]
    # The open page follows, by itself.
    expect(row.locator(".used")).to_have_text(
        f"{used['tokens']:,} tokens, {used['cost_usd']:.6f} USD, 2 calls"
    )
    expect(row.locator(".left")).to_have_text(f"{5000 - used['tokens']:,} tokens")
    expect(row.locator(".reserved")).to_have_text("0 tokens (0 runs)")
