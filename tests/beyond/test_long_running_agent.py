"""Beyond the tour: ScheduledAgent, a watch that reschedules itself durably."""

import itertools
import time
from typing import Any

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


def status(stack: Tour, key: str) -> dict[str, Any]:
    resp = stack.http.get(f"/ScheduledAgent/{key}/status")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def wait_checks(stack: Tour, key: str, at_least: int) -> dict[str, Any]:
    return wait_until(
        lambda: (s := status(stack, key))["checks"] >= at_least and s, timeout=60, what=f"{at_least} checks"
    )


@pytest.mark.crash
def test_the_schedule_survives_restarts_without_drifting_or_doubling(stack: Tour) -> None:
    key = "watch-oslo"
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Oslo", "interval_seconds": 1})
    assert started.status_code == 200 and started.json()["active"] is True
    wait_checks(stack, key, 2)

    # Starting again does not start a second chain of checks.
    assert stack.call(f"ScheduledAgent/{key}/start", {"city": "Oslo", "interval_seconds": 1}).json()["active"]
    stack.kill_endpoint()
    stack.restart_endpoint()
    stack.restart_server()
    before_stop = wait_checks(stack, key, status(stack, key)["checks"] + 3)

    stopped = stack.http.post(f"/ScheduledAgent/{key}/stop").json()
    assert stopped["active"] is False
    # The check that was already scheduled runs once more, sees the stop, and ends the chain:
    # after more than two intervals, still no new check.
    time.sleep(2.5)
    final = status(stack, key)
    assert final["checks"] == stopped["checks"]
    log = final["log"]
    seqs = [entry["seq"] for entry in log]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no check twice, none skipped
    # Each check was planned a whole number of intervals after the previous one, across the
    # restarts: on the original plan (a check missed during a restart is skipped, not shifted).
    gaps = [b["planned_at"] - a["planned_at"] for a, b in itertools.pairwise(log)]
    assert all(gap >= 1 and abs(gap - round(gap)) < 1e-6 for gap in gaps), gaps
    assert all(
        entry["report"] == "The weather in Oslo is currently light snow, 1 degrees Celsius." for entry in log
    )
    assert final["checks"] >= before_stop["checks"]


def test_a_scheduled_agent_can_be_stopped_before_its_first_check(stack: Tour) -> None:
    key = "watch-brief"
    stack.call(f"ScheduledAgent/{key}/start", {"city": "Rome", "interval_seconds": 3600})
    wait_checks(stack, key, 1)
    assert stack.http.post(f"/ScheduledAgent/{key}/stop").json()["active"] is False
    assert status(stack, key)["checks"] == 1  # the next check is an hour away, and will end the chain


def checks_of(stack: Tour, key: str) -> list[dict[str, Any]]:
    return stack.admin.query(
        "SELECT id, status, completion_result, completion_failure FROM sys_invocation "
        f"WHERE target = 'ScheduledAgent/{key}/check' ORDER BY created_at"
    )


def test_stop_cancels_a_check_that_is_stuck(stack: Tour) -> None:
    key = "watch-denver"  # the tour's weather outage: every check's weather step keeps failing
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Denver", "interval_seconds": 1})
    assert started.status_code == 200, started.text
    wait_until(
        lambda: (c := checks_of(stack, key)) and c[0]["status"] in ("backing-off", "paused"),
        what="the first check to be stuck retrying",
    )

    stopped = stack.http.post(f"/ScheduledAgent/{key}/stop", timeout=20)

    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["active"] is False and stopped.json()["checks"] == 0
    [stuck] = checks_of(stack, key)
    assert (stuck["status"], stuck["completion_failure"]) == ("completed", "[409] cancelled")
    time.sleep(3)  # three intervals: no check is scheduled any more
    assert len(checks_of(stack, key)) == 1 and status(stack, key)["checks"] == 0


def test_a_check_that_fails_for_good_is_logged_and_the_watch_goes_on(stack: Tour) -> None:
    key = "watch-atlantis"
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Atlantis", "interval_seconds": 1})
    assert started.status_code == 200, started.text

    checked = wait_checks(stack, key, 2)

    assert checked["active"] is True
    failure = "Check failed: Unknown location: Atlantis. Please provide a valid city name."
    assert [(e["seq"], e["report"]) for e in checked["log"][:2]] == [(1, failure), (2, failure)]
    assert stack.http.post(f"/ScheduledAgent/{key}/stop").status_code == 200


def test_after_downtime_missed_checks_are_skipped_with_one_catch_up(stack: Tour) -> None:
    key = "watch-lisbon"
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Lisbon", "interval_seconds": 2})
    assert started.status_code == 200, started.text
    wait_checks(stack, key, 2)
    assert stack.endpoint is not None
    stopped_at = time.time()
    stack.endpoint.stop()
    time.sleep(10)  # five intervals without the endpoint
    restarted_at = time.time()
    stack.start_endpoint()
    wait_checks(stack, key, status(stack, key)["checks"] + 3)

    stopped = stack.http.post(f"/ScheduledAgent/{key}/stop")
    assert stopped.status_code == 200, stopped.text
    log = status(stack, key)["log"]
    # Exactly one check that was due during the downtime ran after it; the others were skipped.
    late = [e for e in log if e["done_at"] > stopped_at and e["planned_at"] < restarted_at]
    assert len(late) == 1, log
    after = log[log.index(late[0]) + 1 :]
    assert len(after) >= 2 and all(e["planned_at"] > restarted_at for e in after)
    gaps = [b["planned_at"] - a["planned_at"] for a, b in itertools.pairwise(log)]
    assert all(gap >= 2 and abs(gap / 2 - round(gap / 2)) < 1e-6 for gap in gaps), gaps
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert len(stack.weather_calls("Lisbon")) == len(log)  # no check made twice


def test_the_scheduler_tick_is_refused_through_the_ingress(stack: Tour) -> None:
    key = "watch-private"
    started = stack.call(f"ScheduledAgent/{key}/start", {"city": "Rome", "interval_seconds": 3600})
    assert started.status_code == 200, started.text
    wait_checks(stack, key, 1)

    resp = stack.call(f"ScheduledAgent/{key}/check", {"seq": 2, "planned_at": time.time()})

    assert resp.status_code == 400, resp.text
    # No check was added: there are the first one and the next one, an hour away, as before.
    wait_until(lambda: len(checks_of(stack, key)) == 2, what="the next check to be scheduled")
    assert [c["status"] for c in checks_of(stack, key)] == ["completed", "scheduled"]
    assert status(stack, key)["checks"] == 1
    assert stack.call(f"ScheduledAgent/{key}/end_watch").status_code == 400
