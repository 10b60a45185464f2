"""A model that misbehaves never traps an invocation: every model-calling service x every misbehaviour.

The stand-in misbehaves on purpose (`misbehave` in its fault API). For each behaviour, every
service that calls a model is invoked at once; each invocation must end, completed or failed with
a terminal error that says what the model did, within a bounded number of LLM calls, and nothing
may be left retrying (`backing-off`) or `paused`. With a misbehaviour only once, the model is
told (an unknown tool, bad arguments) and the run completes with the answer it would have given.
"""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dev.harness import Tour, wait_until
from dev.offline_llm.answers import REFUSAL
from tests.runtime.misbehaviour_cases import CASES, Case, approving_reviews, call, weather

pytestmark = [pytest.mark.e2e, pytest.mark.misbehaviour]

MAX_TURNS = 4  # AGENT_MAX_TURNS for this module's endpoint (10 by default): the same loops, shorter
LLM_MAX_ATTEMPTS = 3  # for this module's endpoint (5 by default)
ENDPOINT_ENV = {"AGENT_MAX_TURNS": str(MAX_TURNS), "LLM_MAX_ATTEMPTS": str(LLM_MAX_ATTEMPTS)}


@pytest.fixture
def stack(tour: Tour) -> Iterator[Tour]:
    tour.llm.reset()
    if tour.endpoint_overrides != ENDPOINT_ENV:
        tour.restart_endpoint(**ENDPOINT_ENV)
    yield tour
    tour.llm.reset()


@pytest.fixture
def approver(stack: Tour) -> Iterator[None]:
    with approving_reviews(stack):
        yield


def run_all(stack: Tour, cases: list[Case]) -> list[tuple[Case, httpx.Response]]:
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = list(pool.map(lambda case: (case, call(stack, case)[0]), cases))

    def stuck() -> list[dict[str, str]]:
        return stack.admin.query(
            "SELECT target, status, last_failure FROM sys_invocation WHERE status IN ('backing-off', 'paused')"
        )

    # Every agent's invocation has ended. An invocation it sent (the cost ledger's record) may be
    # between two attempts on this busy machine for a moment; none may stay so.
    try:
        wait_until(lambda: stuck() == [], timeout=20, what="no invocation retrying or paused")
    except AssertionError:
        raise AssertionError(f"invocations left retrying or paused: {stuck()}") from None
    return results


def error_of(case: Case, resp: httpx.Response) -> str:
    """The message of a failed invocation, or of a graceful answer that reports the failure."""
    if case.graceful:
        assert resp.status_code == 200, resp.text
        prefix = "The agent couldn't complete the request: "
        assert resp.json().startswith(prefix), resp.text
        return str(resp.json()).removeprefix(prefix)
    assert resp.status_code >= 400, f"{case.path} completed: {resp.text[:200]}"
    message: str = resp.json()["message"]
    return message


LOOPING = f"The model called tools for {MAX_TURNS} turns without answering ("


def looped_on_bad_arguments(case: Case, msg: str) -> bool:
    return LOOPING in msg and (
        "invalid arguments" in msg
        # an agent without tools gets a call to a tool it does not have
        or "unknown tool" in msg
        # the manual loop tells the model itself, and counts the calls by name
        or case.chat_api
        # handoffs take no arguments: agents handing the claim back and forth
        or "transfer_to_" in msg
    )


# behaviour -> check of the error message (given the case)
ALWAYS: dict[str, Callable[[Case, str], bool]] = {
    "unknown_tool": lambda case, msg: (
        LOOPING in msg and ("'no_such_tool' x" in msg or "no_such_tool x" in msg)
    ),
    "bad_json": looped_on_bad_arguments,
    "bad_args": looped_on_bad_arguments,
    "endless_tools": lambda case, msg: LOOPING in msg,
    # `in`, not `==`: a race of two agents names the failure of each
    "empty": lambda case, msg: "The model gave an empty answer (no text and no tool call)." in msg,
    "refusal": lambda case, msg: f"The model refused to answer: {REFUSAL!r}" in msg,
    "incomplete": lambda case, msg: "The model's answer was cut off (" in msg,
    "failed": lambda case, msg: (
        msg == "The model's answer was withheld (finish_reason: content_filter)."
        if case.chat_api
        else "failed" in msg
    ),
}


@pytest.mark.parametrize("behaviour", list(ALWAYS))
def test_every_run_ends_when_the_model_always_misbehaves(stack: Tour, approver: None, behaviour: str) -> None:
    stack.llm.fault("llm", count=100_000, misbehave=behaviour)

    results = run_all(stack, CASES)

    calls = stack.llm.stats()["llm_calls"]
    attempts = LLM_MAX_ATTEMPTS if behaviour == "failed" else 1
    assert calls <= sum(case.agent_runs for case in CASES) * MAX_TURNS * attempts
    wrong = [
        (case.path, resp.status_code, resp.text[:300])
        for case, resp in results
        if not ALWAYS[behaviour](case, error_of(case, resp))
    ]
    assert wrong == []


def test_a_very_long_answer_is_answered(stack: Tour) -> None:
    stack.llm.fault("llm", count=100_000, misbehave="long_answer", length=200_000)

    results = run_all(stack, [c for c in CASES if c.agent_runs == 1 and not c.path.startswith("Booking")])

    for case, resp in results:
        assert resp.status_code == 200, (case.path, resp.text[:300])
        assert len(resp.json()) >= 200_000, case.path


@pytest.mark.parametrize("behaviour", ["unknown_tool", "bad_json", "bad_args"])
def test_a_model_told_once_corrects_itself(stack: Tour, behaviour: str) -> None:
    for case in (Case("WeatherAgent/run", weather), Case("ManualLoopAgent/run", weather, chat_api=True)):
        stack.llm.reset()
        stack.llm.fault("llm", count=1, misbehave=behaviour)

        resp, _ = call(stack, case)

        assert resp.status_code == 200, resp.text
        assert resp.json() == "The weather in San Francisco is currently partly cloudy, 16 degrees Celsius."
        # the misbehaving answer, the corrected tool call, the final answer
        assert stack.llm.stats()["llm_calls"] == 3
