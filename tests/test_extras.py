"""What agent builders reach for next, made durable: guardrails and an exactly-once cost ledger."""

import time
from typing import Any

import pytest

from dev.harness import Tour, wait_until
from dev.misbehaviour import claim

pytestmark = pytest.mark.e2e

# --- GuardedClaimAgent -------------------------------------------------------------------------------

INPUT_GUARDRAIL = "Guardrail 'is_insurance_claim'"
OUTPUT_GUARDRAIL = "Guardrail 'within_policy_limit'"
CLAIM_AGENT = "You are an insurance claim evaluation agent. Decide whether the claim is covered"


def calls_of(stack: Tour, agent: str, since: int = 0) -> list[dict[str, Any]]:
    """The stand-in's log of LLM requests by the agent whose instructions start with `agent`."""
    return [
        c
        for c in stack.llm.stats()["calls"]
        if c["seq"] > since and c["api"] in ("responses", "chat") and c.get("agent", "").startswith(agent)
    ]


def llm_steps(stack: Tour, invocation_id: str) -> list[str]:
    return [row["name"] for row in stack.journal(invocation_id) if row["entry_type"] == "Command: Run"]


def last_seq(stack: Tour) -> int:
    calls = stack.llm.stats()["calls"]
    return int(calls[-1]["seq"]) if calls else 0


def test_a_claim_passes_both_guardrails_and_every_llm_call_is_journaled(stack: Tour) -> None:
    since = last_seq(stack)
    invocation = stack.send(
        "GuardedClaimAgent/run", {"message": "Process my hospital bill of 3000USD for a broken leg."}
    )
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == "I reviewed the claim of 3,000 USD for broken leg: approved."
    # In this order: the input guardrail, the claim agent, the output guardrail; each once.
    agents = [c["agent"][:30] for c in calls_of(stack, "", since)]
    assert agents == [INPUT_GUARDRAIL[:30], CLAIM_AGENT[:30], OUTPUT_GUARDRAIL[:30]]
    # The guardrail agents' LLM calls are journaled steps of the invocation, like the agent's own.
    assert llm_steps(stack, invocation) == ["call LLM", "call LLM", "call LLM"]


def test_a_message_that_is_not_a_claim_trips_the_input_guardrail_before_the_agent_runs(stack: Tour) -> None:
    since = last_seq(stack)
    invocation = stack.send("GuardedClaimAgent/run", {"message": "What is the capital of France?"})
    resp = stack.output(invocation)

    assert resp.status_code == 422, resp.text
    assert resp.json()["message"] == (
        "Input guardrail 'is_insurance_claim' tripped: "
        "The message describes no loss, damage or bill to reimburse."
    )
    assert len(calls_of(stack, INPUT_GUARDRAIL, since)) == 1
    assert calls_of(stack, CLAIM_AGENT, since) == []  # the claim agent was never asked
    assert calls_of(stack, OUTPUT_GUARDRAIL, since) == []
    # A terminal error: the invocation is over (a retryable one would keep it backing off).
    assert stack.wait_status(invocation, "completed")["completion_failure"] == (
        "[422] Input guardrail 'is_insurance_claim' tripped: "
        "The message describes no loss, damage or bill to reimburse."
    )
    assert llm_steps(stack, invocation) == ["call LLM"]


def test_an_answer_promising_more_than_the_policy_limit_trips_the_output_guardrail(stack: Tour) -> None:
    since = last_seq(stack)
    resp = stack.call(
        "GuardedClaimAgent/run", {"message": "Process my hospital bill of 50000USD for a broken leg."}
    )

    assert resp.status_code == 422, resp.text
    assert resp.json()["message"] == (
        "Output guardrail 'within_policy_limit' tripped: "
        "the answer promises 50,000, more than the policy limit of 10,000."
    )
    assert [len(calls_of(stack, a, since)) for a in (INPUT_GUARDRAIL, CLAIM_AGENT, OUTPUT_GUARDRAIL)] == [
        1,
        1,
        1,
    ]
    # Not retried: no LLM call after the tripwire.
    assert len(calls_of(stack, "", since)) == 3


@pytest.mark.crash
def test_a_crash_after_the_input_guardrail_does_not_ask_it_again(stack: Tour) -> None:
    since = last_seq(stack)
    # The input guardrail's call goes through; the claim agent's call hangs: the crash comes after
    # the guardrail's verdict was journaled.
    stack.llm.fault("llm", count=1, after=1, hang=30, status=200)
    invocation = stack.send(
        "GuardedClaimAgent/run", {"message": "Process my dental bill of 800USD for a root canal."}
    )
    wait_until(lambda: calls_of(stack, CLAIM_AGENT, since), what="the claim agent's call to be in flight")

    stack.kill_endpoint()
    stack.restart_endpoint()
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == "I reviewed the claim of 800 USD for root canal: approved."
    assert len(calls_of(stack, INPUT_GUARDRAIL, since)) == 1  # replayed from the journal
    assert len(calls_of(stack, CLAIM_AGENT, since)) == 2  # the call that never answered, made again
    assert len(calls_of(stack, OUTPUT_GUARDRAIL, since)) == 1
    assert llm_steps(stack, invocation) == ["call LLM", "call LLM", "call LLM"]


def test_a_guardrail_verdict_that_is_not_json_ends_the_run_instead_of_retrying_forever(stack: Tour) -> None:
    since = last_seq(stack)
    # The input guardrail's model answers prose where its output type wants JSON.
    stack.llm.fault("llm", count=1, misbehave="long_answer", length=28)
    resp = stack.call("GuardedClaimAgent/run", {"message": "Process my hospital bill of 300USD for a cast."})

    assert resp.status_code == 502, resp.text
    assert resp.json()["message"] == (
        "The model's answer does not fit the agent's output type (ClaimCheckGuardrail): "
        "Invalid JSON when parsing model output"
    )
    assert len(calls_of(stack, "", since)) == 1  # told once, the journaled answer is not asked again


# --- LlmUsage ---------------------------------------------------------------------------------------------

GPT_41 = {"input": 2.0, "output": 8.0}  # the default price of gpt-4.1, USD per million tokens


def ledger(stack: Tour, key: str) -> dict[str, Any]:
    resp = stack.http.get(f"/LlmUsage/{key}/get")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def answered(calls: list[dict[str, Any]]) -> dict[str, int]:
    """What the stand-in answered (and reported as `usage`) for these calls."""
    done = [c for c in calls if c.get("status") == 200]
    return {
        "calls": len(done),
        "input_tokens": sum(c["usage"]["input_tokens"] for c in done),
        "output_tokens": sum(c["usage"]["output_tokens"] for c in done),
    }


def spent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in ("calls", "input_tokens", "output_tokens")}


def settled(stack: Tour, key: str, before: dict[str, Any], calls: int) -> dict[str, Any]:
    """The ledger once it counted `calls` more calls (its records are one-way calls: they land soon
    after), checked again a moment later: nothing more comes."""
    wait_until(lambda: ledger(stack, key)["calls"] >= before["calls"] + calls, what=f"{calls} calls in {key}")
    time.sleep(1.0)
    return ledger(stack, key)


@pytest.mark.crash
def test_the_ledger_counts_every_llm_call_once_across_a_crash(stack: Tour) -> None:
    prompt = "What is the weather like in Oslo? (ledger)"
    before = ledger(stack, "WeatherAgent")
    # The first LLM call is answered and journaled; the second hangs until the crash, and its
    # answer never reaches the journal.
    stack.llm.fault("llm", count=1, after=1, hang=300, status=200)
    invocation = stack.send("WeatherAgent/run", {"message": prompt})
    wait_until(lambda: len(stack.llm_calls(prompt)) == 2, what="the second LLM call to be in flight")

    stack.kill_endpoint()
    stack.restart_endpoint()
    assert stack.output(invocation).status_code == 200

    made = answered(stack.llm_calls(prompt))
    assert made["calls"] == 2  # the first call (replayed after the crash, not made again), the retried second
    after = settled(stack, "WeatherAgent", before, made["calls"])
    assert spent(before, after) == made
    cost = (after["input_tokens"] * GPT_41["input"] + after["output_tokens"] * GPT_41["output"]) / 1e6
    assert after["cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert after["models"]["gpt-4.1"]["calls"] == after["calls"] and after["unpriced"] == []
    # Each call was recorded by a one-way call journaled right after it.
    steps = [
        (r["entry_type"], r["name"])
        for r in stack.journal(invocation)
        if r["entry_type"].startswith("Command")
    ]
    assert [t for t, _ in steps if t in ("Command: Run", "Command: OneWayCall")][:2] == [
        "Command: Run",
        "Command: OneWayCall",
    ]


def test_a_virtual_object_is_counted_under_its_service_and_its_key(stack: Tour) -> None:
    message = "My name is Ledger Alice."
    service_before, key_before = ledger(stack, "Chat"), ledger(stack, "Chat%2Fledger-alice")

    assert stack.call("Chat/ledger-alice/message", {"message": message}).status_code == 200

    made = answered(stack.llm_calls(message))
    assert made["calls"] == 1
    assert spent(key_before, settled(stack, "Chat%2Fledger-alice", key_before, 1)) == made
    assert spent(service_before, settled(stack, "Chat", service_before, 1)) == made


def test_the_manual_loop_and_the_guardrail_agents_are_counted_too(stack: Tour) -> None:
    prompt = "What is the weather like in New York and San Francisco? (ledger)"
    loop_before, guarded_before = ledger(stack, "ManualLoopAgent"), ledger(stack, "GuardedClaimAgent")
    since = last_seq(stack)

    assert stack.call("ManualLoopAgent/run", {"message": prompt}).status_code == 200
    claim = stack.call(
        "GuardedClaimAgent/run", {"message": "Process my dental bill of 400USD for a filling."}
    )
    assert claim.status_code == 200

    made = answered(stack.llm_calls(prompt))
    assert made["calls"] == 2
    assert spent(loop_before, settled(stack, "ManualLoopAgent", loop_before, 2)) == made
    guarded = answered(
        [
            c
            for c in calls_of(stack, "", since)
            if c["agent"].startswith((INPUT_GUARDRAIL, CLAIM_AGENT, OUTPUT_GUARDRAIL))
        ]
    )
    assert guarded["calls"] == 3  # both guardrail agents and the claim agent
    assert spent(guarded_before, settled(stack, "GuardedClaimAgent", guarded_before, 3)) == guarded


def test_the_streaming_agent_keeps_its_own_hooks_and_is_counted(stack: Tour) -> None:
    prompt = "What is the weather like in Lisbon? (ledger)"
    before = ledger(stack, "StreamingAgent")

    run_id = stack.send("StreamingAgent/run", {"message": prompt})
    assert stack.output(run_id).status_code == 200

    page = wait_until(
        lambda: (p := stack.call(f"AgentEvents/{run_id}/read", {"offset": 0}).json())["done"] and p,
        what="the done event",
    )
    events = page["events"]
    assert [e["type"] for e in events if not e["type"].startswith("text_")] == [
        "llm_start", "llm_end", "tool_start", "tool_end", "llm_start", "llm_end", "done"
    ]  # fmt: skip
    made = answered(stack.llm_calls(prompt))
    assert spent(before, settled(stack, "StreamingAgent", before, 2)) == made


@pytest.mark.misbehaviour
@pytest.mark.parametrize(
    ("service", "prompt"),
    [
        ("WeatherAgent", "What is the weather like in Oslo? (billed, cut off)"),
        # The manual loop calls chat completions itself: finish_reason "length".
        ("ManualLoopAgent", "What is the weather like in Oslo and Rome? (billed, cut off)"),
        # Streamed: the cut-off answer's usage comes with its response.incomplete event.
        ("StreamingAgent", "What is the weather like in Oslo? (billed, cut off, streamed)"),
    ],
)
def test_a_cut_off_answer_ends_the_run_and_is_billed_once(stack: Tour, service: str, prompt: str) -> None:
    before = ledger(stack, service)
    stack.llm.fault("llm", count=1, misbehave="incomplete")

    resp = stack.call(f"{service}/run", {"message": prompt})

    assert resp.status_code == 502 and "cut off" in resp.text, resp.text
    made = answered(stack.llm_calls(prompt))
    assert made["calls"] == 1 and made["output_tokens"] > 0  # delivered, so billed
    after = settled(stack, service, before, 1)
    assert spent(before, after) == made
    assert after["failed_calls"] - before["failed_calls"] == 1
    assert after["models"]["gpt-4.1"]["failed_calls"] >= 1


def test_only_the_agents_write_to_the_ledger(stack: Tour) -> None:
    resp = stack.call(
        "LlmUsage/WeatherAgent/record", {"model": "gpt-4.1", "input_tokens": 1, "output_tokens": 1}
    )

    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == "the invoked service is not public"
    assert ledger(stack, "NoSuchService") == {
        "calls": 0, "failed_calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
        "models": {}, "unpriced": [],
    }  # fmt: skip


def test_the_price_table_is_configurable(stack: Tour) -> None:
    stack.restart_endpoint(LLM_PRICES='{"gpt-4.1": {"input": 1000000, "output": 0}}')
    assert (
        stack.call("WeatherAgent/run", {"message": "What is the weather like in Rome? (prices)"}).status_code
        == 200
    )

    usage = ledger(stack, "WeatherAgent")
    # Priced when read: every input token at 1 USD, output tokens free.
    assert usage["input_tokens"] > 0 and usage["cost_usd"] == usage["input_tokens"]


# --- McpClaimAgent ------------------------------------------------------------------------------------------

MCP_TOOLS = ["check_eligibility", "compare_to_standard_rates", "check_fraud"]


def mcp_calls(stack: Tour, reason: str) -> list[str]:
    """The checks the MCP server really ran for the claim (its log lines, in the endpoint's log)."""
    lines = (stack.workdir / "endpoint.log").read_text(errors="replace").splitlines()
    prefix = "[claim checks MCP] "
    return [
        line.split(prefix, 1)[1].split(" of ", 1)[0]
        for line in lines
        if prefix in line and f"of {reason!r}:" in line
    ]


def test_mcp_tools_are_listed_and_called_as_durable_steps(stack: Tour) -> None:
    body = claim("mcp-1")
    reason = body["reason"]
    resp = stack.call("McpClaimAgent/run", body)

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        f"Decision: the claim of 3,000 USD for {reason} is approved. Findings: check_eligibility: eligible; "
        "compare_to_standard_rates: reasonable; check_fraud: low risk."
    )
    assert llm_steps(stack, resp.headers["x-restate-id"]) == [
        "MCP list tools",
        "call LLM",
        "MCP check_eligibility",
        "call LLM",
        "MCP compare_to_standard_rates",
        "call LLM",
        "MCP check_fraud",
        "call LLM",
    ]
    assert mcp_calls(stack, reason) == MCP_TOOLS


@pytest.mark.crash
def test_a_crash_after_mcp_calls_does_not_repeat_them(stack: Tour) -> None:
    body = claim("mcp-crash")
    reason = body["reason"]
    # Two LLM calls are answered (and their MCP calls made); the third hangs until the crash.
    stack.llm.fault("llm", count=1, after=2, hang=300, status=200)
    invocation = stack.send("McpClaimAgent/run", body)
    wait_until(
        lambda: len(stack.llm_calls(reason)) == 3, timeout=60, what="the third LLM call to be in flight"
    )
    assert mcp_calls(stack, reason) == MCP_TOOLS[:2]

    stack.kill_endpoint()
    stack.restart_endpoint()
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith(f"Decision: the claim of 3,000 USD for {reason} is approved.")
    # Each check ran once: the two before the crash were replayed from the journal.
    assert mcp_calls(stack, reason) == MCP_TOOLS
    assert llm_steps(stack, invocation).count("MCP list tools") == 1
