"""Any model, never outside the journal: a `Model` instance (AnyModelAgent) and the Chat
Completions setting (OPENAI_API=chat_completions) are journaled like a model's name."""

from collections.abc import Iterator

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

ANSWER = "The weather in Oslo is currently light snow, 1 degrees Celsius."


def answered(stack: Tour, marker: str) -> list[dict[str, object]]:
    return [c for c in stack.llm_calls(marker) if c.get("status") == 200]


@pytest.fixture
def chat_completions(stack: Tour) -> Iterator[Tour]:
    """The endpoint with every agent on the Chat Completions API (the next test gets the default back)."""
    stack.restart_endpoint(OPENAI_API="chat_completions")
    yield stack


def crash_between_the_llm_calls(stack: Tour, path: str, marker: str) -> str:
    """Start a run whose second LLM call hangs, SIGKILL the endpoint then, start it again."""
    stack.llm.fault("llm", count=1, after=1, hang=300, status=200, containing=marker)
    invocation = stack.send(path, {"message": f"What is the weather like in Oslo? ({marker})"})
    wait_until(lambda: len(stack.llm_calls(marker)) == 2, what="the second LLM call in flight")
    stack.kill_endpoint()
    stack.restart_endpoint(**stack.endpoint_overrides)
    return invocation


def test_an_agent_on_a_model_instance_is_journaled(stack: Tour) -> None:
    resp = stack.call("AnyModelAgent/run", {"message": "What is the weather like in Oslo? (am1)"})

    assert resp.status_code == 200, resp.text
    assert resp.json() == ANSWER
    assert stack.run_steps(resp.headers["x-restate-id"]) == ["call LLM", "Get weather", "call LLM"]
    assert {c["api"] for c in stack.llm_calls("(am1)")} == {"chat"}  # the instance's API


@pytest.mark.crash
def test_a_crash_after_a_model_instances_call_does_not_call_the_model_again(stack: Tour) -> None:
    invocation = crash_between_the_llm_calls(stack, "AnyModelAgent/run", "(am2)")

    assert stack.output(invocation).json() == ANSWER
    assert len(answered(stack, "(am2)")) == 2  # the first (once), the second (retried after the crash)


@pytest.mark.crash
def test_on_chat_completions_a_crash_does_not_call_the_model_again(chat_completions: Tour) -> None:
    stack = chat_completions
    invocation = crash_between_the_llm_calls(stack, "WeatherAgent/run", "(am3)")

    assert stack.output(invocation).json() == ANSWER
    assert {c["api"] for c in stack.llm_calls("(am3)")} == {"chat"}
    assert len(answered(stack, "(am3)")) == 2
    assert stack.run_steps(invocation) == ["call LLM", "Get weather", "call LLM"]
