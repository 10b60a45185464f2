"""Unit tests: how LLM API errors and tool errors are classified for Restate."""

from datetime import timedelta
from typing import Any

import httpx
import openai
import pytest
from restate import TerminalError
from restate.exceptions import RetryableError, SdkInternalBaseException

from app.error_handling import explain_to_the_llm
from app.runtime.llm_client import classify, retry_after


def api_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "https://api.openai.com/v1/responses")
    response = httpx.Response(
        status, headers=headers or {}, request=request, json={"error": {"message": "nope"}}
    )
    return openai.APIStatusError(f"Error code: {status} - nope", response=response, body=None)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_requests_that_cannot_succeed_are_terminal_at_once(status: int) -> None:
    error = classify(api_error(status))
    assert isinstance(error, TerminalError) and error.status_code == status
    assert f"HTTP {status}" in error.message


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retry_after_is_honoured_for_retryable_statuses(status: int) -> None:
    error = classify(api_error(status, {"retry-after": "7"}))
    assert isinstance(error, RetryableError) and error.retry_after == timedelta(seconds=7)


@pytest.mark.parametrize("status", [429, 500])
def test_without_retry_after_the_error_is_left_to_the_steps_backoff(status: int) -> None:
    original = api_error(status)
    assert classify(original) is original


def test_retry_after_forms() -> None:
    class Response:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    assert retry_after(Response({"retry-after-ms": "1500"})) == timedelta(milliseconds=1500)
    assert retry_after(Response({"retry-after": "2"})) == timedelta(seconds=2)
    assert retry_after(Response({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == timedelta(
        0
    )  # in the past
    assert retry_after(Response({})) is None


def test_only_terminal_tool_errors_are_explained_to_the_llm() -> None:
    context: Any = None
    assert "Unknown location" in explain_to_the_llm(context, TerminalError("Unknown location: X"))
    # A cancellation, a transient error and Restate's own control flow all go up to Restate.
    for error in (TerminalError("cancelled", status_code=409), RuntimeError("network down")):
        with pytest.raises(type(error)):
            explain_to_the_llm(context, error)
    with pytest.raises(SdkInternalBaseException):
        explain_to_the_llm(context, SdkInternalBaseException("suspended"))


@pytest.mark.parametrize(
    "value", ["soon", "Wed, 99 Foo 2015 07:28:00 GMT", "Mon, 32 Jan 2024 00:00:00 GMT", ""]
)
def test_a_malformed_retry_after_date_is_ignored_and_the_original_error_kept(value: str) -> None:
    assert retry_after(api_error(503, {"retry-after": value}).response) is None
    original = api_error(503, {"retry-after": value})
    assert classify(original) is original  # still the API's 503, left to the step's backoff
    refused = classify(api_error(401, {"retry-after": value}))
    assert isinstance(refused, TerminalError) and refused.status_code == 401
