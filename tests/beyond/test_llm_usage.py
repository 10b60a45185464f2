"""Beyond the tour: LlmUsage, every LLM call counted exactly once."""

import time
from typing import Any

import httpx
import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

# The stand-in's agents, by the start of their instructions.
INPUT_GUARDRAIL = "Guardrail 'is_insurance_claim'"
OUTPUT_GUARDRAIL = "Guardrail 'within_policy_limit'"
CLAIM_AGENT = "You are an insurance claim evaluation agent. Decide whether the claim is covered"


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
    # The run's usage went to the ledger in one journaled one-way call, after its last LLM call:
    # no invocation per LLM call.
    commands = [r["entry_type"] for r in stack.journal(invocation) if r["entry_type"].startswith("Command")]
    assert [c for c in commands if c in ("Command: Run", "Command: OneWayCall")] == [
        "Command: Run",  # call LLM
        "Command: Run",  # Get weather
        "Command: Run",  # call LLM
        "Command: OneWayCall",  # LlmUsage/WeatherAgent/record
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
    since = stack.llm_seq()

    assert stack.call("ManualLoopAgent/run", {"message": prompt}).status_code == 200
    claim = stack.call(
        "GuardedClaimAgent/run", {"message": "Process my dental bill of 400USD for a filling."}
    )
    assert claim.status_code == 200
    # Three agent runs (the guardrails' run inside the claim agent's), one entry in the journal.
    assert stack.sends(claim.headers["x-restate-id"]) == ["LlmUsage/GuardedClaimAgent/record"]

    made = answered(stack.llm_calls(prompt))
    assert made["calls"] == 2
    assert spent(loop_before, settled(stack, "ManualLoopAgent", loop_before, 2)) == made
    guarded = answered(
        [
            c
            for c in stack.llm_calls_of("", since)
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


@pytest.mark.crash
def test_a_cancelled_run_counts_what_it_spent_once(stack: Tour) -> None:
    marker = "ledger cancelled"
    before = ledger(stack, "HumanClaimApprovalAgent")
    invocation = stack.send(
        "HumanClaimApprovalAgent/run",
        {"message": f"Process my hospital bill of 3000USD for a broken leg ({marker})."},
    )
    stack.wait_review(marker)  # the model asked for the human_approval tool, which waits

    assert httpx.patch(f"{stack.admin.url}/invocations/{invocation}/cancel", timeout=10).status_code == 202
    assert stack.output(invocation).status_code == 409

    made = answered(stack.llm_calls(marker))
    assert made["calls"] == 1
    assert spent(before, settled(stack, "HumanClaimApprovalAgent", before, 1)) == made
    assert stack.sends(invocation).count("LlmUsage/HumanClaimApprovalAgent/record") == 1


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
