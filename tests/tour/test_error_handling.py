"""Tour step 10, error handling: ErrorHandlingAgent caps every kind of retry."""

import pytest

from dev.harness import Tour

pytestmark = pytest.mark.e2e


def test_an_llm_that_keeps_failing_gets_exactly_three_attempts_then_a_graceful_answer(stack: Tour) -> None:
    stack.llm.fault("llm", count=50, status=500)
    resp = stack.call("ErrorHandlingAgent/run", {"message": "What is the weather like in Rome? (e1)"})

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith("The agent couldn't complete the request:")
    assert [c["status"] for c in stack.llm_calls("(e1)")] == [500, 500, 500]


def test_a_refused_key_is_not_retried(stack: Tour) -> None:
    stack.llm.fault("llm", count=50, status=401)
    resp = stack.call("ErrorHandlingAgent/run", {"message": "What is the weather like in Rome? (e2)"})

    assert resp.status_code == 200, resp.text
    assert "The LLM API refused the request (HTTP 401)" in resp.json()
    assert [c["status"] for c in stack.llm_calls("(e2)")] == [401]


def test_a_rate_limit_is_retried_after_the_delay_the_api_asked_for(stack: Tour) -> None:
    stack.llm.fault("llm", count=1, status=429, retry_after=3)
    resp = stack.call("ErrorHandlingAgent/run", {"message": "What is the weather like in Rome? (e3)"})

    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Rome is currently sunny, 18 degrees Celsius."
    calls = stack.llm_calls("(e3)")
    assert [c["status"] for c in calls] == [429, 200, 200]
    # The step's own backoff would retry after 1 s; Retry-After said 3 s, and that was honoured.
    assert calls[1]["t"] - calls[0]["t"] >= 2.9  # 3 s, give or take a timer tick


def test_a_terminal_tool_error_ends_the_run_and_becomes_a_graceful_answer(stack: Tour) -> None:
    resp = stack.call("ErrorHandlingAgent/run", {"message": "What is the weather like in Atlantis? (e4)"})

    assert resp.status_code == 200, resp.text
    assert resp.json() == (
        "The agent couldn't complete the request: Unknown location: Atlantis. Please provide a valid city name."
    )
    assert len(stack.llm_calls("(e4)")) == 1  # the LLM never saw the error


def test_a_tool_error_can_go_back_to_the_llm_instead(stack: Tour) -> None:
    resp = stack.call(
        "ErrorHandlingAgent/run_with_explanations", {"message": "What is the weather like in Atlantis? (e5)"}
    )

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith(
        "Sorry, I could not get the weather (The tool failed and retrying will not help:"
    )
    assert len(stack.llm_calls("(e5)")) == 2  # the LLM got the error and wrote the answer


def test_a_handler_that_keeps_failing_ends_after_the_services_attempts(stack: Tour) -> None:
    # Denver's weather step always fails: the service's policy ends the invocation after 5 attempts.
    resp = stack.call("ErrorHandlingAgent/run", {"message": "What is the weather like in Denver? (e6)"})

    assert resp.status_code == 500
    assert "SIMULATED" in resp.json()["message"]
    row = stack.invocation(resp.headers["x-restate-id"])
    assert row["status"] == "completed" and row["completion_result"] == "failure"
    assert len(stack.llm_calls("(e6)")) == 1  # 5 attempts, one LLM call: replayed from the journal
