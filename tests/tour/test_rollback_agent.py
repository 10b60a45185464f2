"""Tour step 12, rollback (saga): BookingWithRollbackAgent."""

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


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
