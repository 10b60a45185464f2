"""Tour step 11, the manual agent loop: ManualLoopAgent."""

from datetime import datetime

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


def overlap(intervals: list[tuple[datetime, datetime]]) -> bool:
    """True when all intervals share a moment: each started before any of them finished."""
    return max(start for start, _ in intervals) < min(end for _, end in intervals)


def test_the_manual_loop_answers_for_both_cities(stack: Tour) -> None:
    resp = stack.call("ManualLoopAgent/run", {})

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        "Here is the current weather:\n- New York: Sunny, 11 degrees Celsius\n"
        "- San Francisco: Partly cloudy, 16 degrees Celsius"
    )
    steps = stack.step_times(resp.headers["x-restate-id"])
    assert [name for name, _, _ in steps] == ["LLM call", "Get weather", "Get weather", "LLM call"]
    assert overlap([(start, end) for name, start, end in steps if name == "Get weather"])


@pytest.mark.crash
def test_a_crash_mid_loop_repeats_no_llm_call(stack: Tour) -> None:
    prompt = "What is the weather like in Lisbon and Madrid? (m1)"
    stack.llm.fault("weather", count=1, hang=30, status=200)  # one of the two lookups hangs
    invocation = stack.send("ManualLoopAgent/run", {"message": prompt})
    wait_until(
        lambda: len([c for c in stack.llm.stats()["calls"] if c["api"] == "weather"]) == 2,
        what="both lookups",
    )

    stack.kill_endpoint()
    stack.restart_endpoint()
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert (
        "Lisbon: Clear, 19 degrees Celsius" in resp.json()
        and "Madrid: Sunny, 20 degrees Celsius" in resp.json()
    )
    assert [c["api"] for c in stack.llm_calls(prompt)] == ["chat", "chat"]  # the two of a clean run
