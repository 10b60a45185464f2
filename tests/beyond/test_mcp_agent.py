"""Beyond the tour: McpClaimAgent, MCP tools as durable steps."""

import pytest

from dev.harness import Tour, wait_until
from tests.runtime.misbehaviour_cases import claim

pytestmark = pytest.mark.e2e


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
    assert stack.run_steps(resp.headers["x-restate-id"]) == [
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
    assert stack.run_steps(invocation).count("MCP list tools") == 1
