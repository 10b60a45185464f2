"""Tour steps 8-12: parallel tool steps, parallel agents, error handling, manual loop, rollback."""

import itertools
import re
from datetime import datetime
from typing import Any

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

_marks = itertools.count(1)


def claim(amount: float = 3000, category: str = "orthopedic") -> tuple[dict[str, Any], str]:
    marker = f"p{next(_marks)}"
    body = {"date": "2024-10-01", "amount": amount, "category": category, "placeOfService": "General Hospital",
            "reason": f"hospital bill for a broken leg ({marker})"}  # fmt: skip
    return body, marker


def overlap(intervals: list[tuple[datetime, datetime]]) -> bool:
    """True when all intervals share a moment: each started before any of them finished."""
    return max(start for start, _ in intervals) < min(end for _, end in intervals)


# --- parallel tool steps ---------------------------------------------------------------------------


def test_the_three_claim_steps_run_at_the_same_time(stack: Tour) -> None:
    body, marker = claim()
    resp = stack.call("ParallelToolClaimAgent/run", body)

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith(
        f"Decision: the claim of 3,000 USD for hospital bill for a broken leg ({marker}) is approved."
    )
    assert "'eligibility: eligible', 'cost: reasonable', 'fraud: low risk'" in resp.json()
    steps = {name: (start, end) for name, start, end in stack.step_times(resp.headers["x-restate-id"])}
    # Each step takes about a second; they overlap, so together they took about one second, not three.
    assert overlap([steps["eligibility"], steps["cost"], steps["fraud"]])


# --- parallel agents ---------------------------------------------------------------------------------


def sub_invocations(stack: Tour, parent: str) -> list[dict[str, Any]]:
    """The sub-agents' invocations (not the cost ledger's records, one per LLM call)."""
    return stack.admin.query(
        "SELECT id, target, status, created_at, completed_at, completion_result, completion_failure "
        f"FROM sys_invocation WHERE invoked_by_id = '{parent}' AND target_service_name != 'LlmUsage' "
        "ORDER BY created_at"
    )


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_three_sub_agents_work_in_parallel_then_one_decides(stack: Tour) -> None:
    stack.llm.latency(400)  # every LLM call takes 0.4 s: sequential sub-agents could not overlap
    body, marker = claim()
    resp = stack.call("ParallelAgentClaimApproval/run", body)

    assert resp.status_code == 200, resp.text
    assert (
        resp.json()
        == f"I reviewed the claim of 3,000 USD for hospital bill for a broken leg ({marker}): approved."
    )
    children = sub_invocations(stack, resp.headers["x-restate-id"])
    assert sorted(c["target"] for c in children) == [
        "EligibilityAgent/run",
        "FraudAgent/run",
        "RateComparisonAgent/run",
    ]
    assert overlap([(when(c["created_at"]), when(c["completed_at"])) for c in children])
    decision = [
        c for c in stack.llm_calls(marker) if c["agent"].startswith("You are a claim decision engine")
    ]
    assert (
        len(decision) == 1
        and "eligibility: eligible; cost: reasonable; fraud: low risk" in decision[0]["input"]
    )


def test_a_race_takes_the_first_answer_and_cancels_the_rest(stack: Tour) -> None:
    # Whichever sub-agent asks first is stuck for 10 s. (Under forced replay the cancellation
    # reaches the loser only when its in-flight LLM step returns, hence the generous wait below.)
    stack.llm.fault("llm", count=1, hang=10, status=200)
    body, _ = claim()
    resp = stack.call("ParallelAgentClaimApproval/race", body)

    assert resp.status_code == 200, resp.text
    assert re.fullmatch(r"Fraud risk: low risk \(first answer, from the (first|second) agent\)", resp.json())
    children = wait_until(
        lambda: (
            (c := sub_invocations(stack, resp.headers["x-restate-id"]))
            and all(x["status"] == "completed" for x in c)
            and c
        ),
        timeout=60,
        what="both contenders to end",
    )
    assert sorted(c["completion_result"] for c in children) == ["failure", "success"]
    loser = next(c for c in children if c["completion_result"] == "failure")
    assert "cancel" in loser["completion_failure"].lower()


def test_a_race_whose_first_finisher_failed_takes_the_other_answer(stack: Tour) -> None:
    # One contender's LLM call answers after 3 s; the other is refused at once (HTTP 400, terminal).
    stack.llm.fault("llm", count=1, hang=3, status=200)
    stack.llm.fault("llm", count=1, status=400)
    body, marker = claim()
    resp = stack.call("ParallelAgentClaimApproval/race", body)

    assert resp.status_code == 200, resp.text
    assert re.fullmatch(r"Fraud risk: low risk \(first answer, from the (first|second) agent\)", resp.json())
    assert sorted(c["status"] for c in stack.llm_calls(marker)) == [200, 400]
    children = sub_invocations(stack, resp.headers["x-restate-id"])
    assert sorted((c["status"], c["completion_result"]) for c in children) == [
        ("completed", "failure"),
        ("completed", "success"),
    ]
    failed = next(c for c in children if c["completion_result"] == "failure")
    assert "The LLM API refused the request (HTTP 400)" in failed["completion_failure"]


def test_a_race_that_all_contenders_lost_fails_naming_each_failure(stack: Tour) -> None:
    stack.llm.fault("llm", count=2, status=400)
    body, marker = claim()
    resp = stack.call("ParallelAgentClaimApproval/race", body)

    assert resp.status_code == 500, resp.text
    refused = (
        "The LLM API refused the request (HTTP 400): Error code: 400 - [offline stand-in] injected HTTP 400"
    )
    assert resp.json()["message"] in (
        f"No fraud agent answered: first: {refused}; second: {refused}",
        f"No fraud agent answered: second: {refused}; first: {refused}",
    )
    assert [c["status"] for c in stack.llm_calls(marker)] == [400, 400]  # no retry of a refusal
    invocation = stack.invocation(resp.headers["x-restate-id"])
    assert invocation["status"] == "completed" and invocation["completion_result"] == "failure"


# --- error handling ------------------------------------------------------------------------------------


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


# --- manual agent loop ------------------------------------------------------------------------------


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


# --- rollback ---------------------------------------------------------------------------------------------


def booking_log(stack: Tour, booking_id: str) -> list[str]:
    """The booking system's actions for one trip, in order, as the endpoint log recorded them."""
    lines = (stack.workdir / "endpoint.log").read_text(errors="replace").splitlines()
    return [line.split(" [")[0][2:] for line in lines if line.endswith(f"[{booking_id}]")]


def run_names(stack: Tour, invocation: str) -> list[str]:
    return [name for name, _, _ in stack.step_times(invocation) if name != "call LLM"]


def test_a_failed_flight_rolls_back_in_reverse_order(stack: Tour) -> None:
    resp = stack.call("BookingWithRollbackAgent/book", {"booking_id": "trip-sfo"})

    assert resp.status_code == 500
    assert resp.json()["message"] == "[👻 SIMULATED] Flight booking failed: No flights to SFO available..."
    assert run_names(stack, resp.headers["x-restate-id"]) == [
        "Book hotel",
        "Book flight",
        "Cancel flight",
        "Cancel hotel",
    ]
    assert [line.strip() for line in booking_log(stack, "trip-sfo")] == [
        "Reserved hotel in San Francisco for 1 guest(s)",
        "Cancelled flight booking",
        "Cancelled hotel booking",
    ]


def test_an_unavailable_car_rolls_back_all_three(stack: Tour) -> None:
    message = "Book a trip to Seattle from March 15-17, flying from JFK, a hotel for 1 guest and a limousine."
    resp = stack.call("BookingWithRollbackAgent/book", {"booking_id": "trip-limo", "message": message})

    assert resp.status_code == 500
    assert resp.json()["message"] == "[👻 SIMULATED] Car booking failed: no limousine available in Seattle"
    assert run_names(stack, resp.headers["x-restate-id"])[-3:] == [
        "Cancel car",
        "Cancel flight",
        "Cancel hotel",
    ]


def test_a_successful_booking_confirms_all_and_compensates_nothing(stack: Tour) -> None:
    message = (
        "Book a trip to Seattle from March 15-17, flying from JFK, a hotel for 1 guest and a compact car."
    )
    resp = stack.call("BookingWithRollbackAgent/book", {"booking_id": "trip-ok", "message": message})

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith("Your trip is booked:\n- hotel: Hotel in Seattle, March 15 to March 17")
    names = run_names(stack, resp.headers["x-restate-id"])
    assert names == [
        "Book hotel",
        "Book flight",
        "Book car",
        "Confirm hotel",
        "Confirm flight",
        "Confirm car",
    ]
    assert not any("Cancelled" in line for line in booking_log(stack, "trip-ok"))


@pytest.mark.crash
def test_a_crash_between_compensations_repeats_none_and_skips_none(stack: Tour) -> None:
    stack.restart_endpoint(BOOKING_SECONDS="2")  # slow bookings: room to crash between two cancellations
    invocation = stack.send("BookingWithRollbackAgent/book", {"booking_id": "trip-crash"})
    steps = wait_until(
        lambda: (
            (s := stack.step_times(invocation))
            and any(name == "Cancel flight" and end for name, _, end in s)
            and s
        ),
        timeout=60,
        what="the flight cancellation to finish",
    )
    assert not any(name == "Cancel hotel" and end for name, _, end in steps)

    stack.kill_endpoint()  # while the hotel cancellation runs
    stack.restart_endpoint(BOOKING_SECONDS="2")
    resp = stack.output(invocation)

    assert resp.status_code == 500
    assert resp.json()["message"] == "[👻 SIMULATED] Flight booking failed: No flights to SFO available..."
    assert run_names(stack, invocation) == ["Book hotel", "Book flight", "Cancel flight", "Cancel hotel"]
    cancellations = [line.strip() for line in booking_log(stack, "trip-crash") if "Cancelled" in line]
    assert cancellations == ["Cancelled flight booking", "Cancelled hotel booking"]  # each exactly once
