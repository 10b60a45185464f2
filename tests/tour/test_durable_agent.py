"""Tour step 1, durable execution: the WeatherAgent against a real restate-server."""

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e


def test_weather_for_the_asked_city(stack: Tour) -> None:
    resp = stack.call("WeatherAgent/run", {"message": "What is the weather like in San Francisco?"})

    assert resp.status_code == 200, resp.text
    # The stand-in's wttr.in copy says 16 degrees Celsius and partly cloudy for San Francisco.
    assert resp.json() == "The weather in San Francisco is currently partly cloudy, 16 degrees Celsius."

    # The journal holds what docs/tour.md names for step 1: the request, both LLM calls with the
    # "Get weather" step between them, the one call that counts the run in the cost ledger, the answer.
    invocation = resp.headers["x-restate-id"]
    commands = [
        (e["entry_type"], e["name"])
        for e in stack.journal(invocation)
        if e["entry_type"].startswith("Command")
    ]
    assert commands == [
        ("Command: Input", ""),
        ("Command: Run", "call LLM"),
        ("Command: Run", "Get weather"),
        ("Command: Run", "call LLM"),
        ("Command: OneWayCall", ""),
        ("Command: Output", ""),
    ]
    assert stack.sends(invocation) == ["LlmUsage/WeatherAgent/record"]


def test_empty_body_uses_the_tour_default(stack: Tour) -> None:
    resp = stack.call("WeatherAgent/run", {})

    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in San Francisco is currently partly cloudy, 16 degrees Celsius."


def test_other_cities_get_their_own_weather(stack: Tour) -> None:
    resp = stack.call("WeatherAgent/run", {"message": "How is the weather in Tokyo today?"})

    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Tokyo is currently cloudy, 17 degrees Celsius."


def test_denver_retries_until_the_failure_is_fixed(stack: Tour) -> None:
    invocation = stack.send("WeatherAgent/run", {"message": "What is the weather like in Denver?"})

    # Restate keeps retrying the failing step; the admin API shows why.
    row = wait_until(
        lambda: (r := stack.invocation(invocation)).get("retry_count", 0) >= 2 and r,
        timeout=30,
        what="Denver to be retried",
    )
    assert row["status"] in ("backing-off", "running")
    assert "SIMULATED" in row["last_failure"]
    assert row["last_failure_related_command_name"] == "Get weather"
    assert stack.llm_calls("Denver"), "the first LLM call happened before the failing step"
    first_llm_calls = len(stack.llm_calls("Denver"))
    # The endpoint's log shows one line per failed attempt, no traceback between them.
    log = (stack.workdir / "endpoint.log").read_text().splitlines()
    failed = [i for i, line in enumerate(log) if "Step 'Get weather' failed" in line and invocation in line]
    assert [log[i].split(" ", 2)[2] for i in failed[:2]] == [
        f"WARNING restate.server_context: Step 'Get weather' failed (attempt {n}, {invocation}): "
        "Exception('[👻 SIMULATED] Fetching weather failed: Weather API down...')"
        for n in (1, 2)
    ]
    assert not [line for line in log[failed[0] : failed[1]] if "Traceback" in line or "HTTP Request" in line]

    # The fix: restart the endpoint without the simulated outage. The same invocation finishes.
    stack.restart_endpoint(FAIL_ON_DENVER="false")
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Denver is currently clear, 7 degrees Celsius."
    # The journaled first LLM call was replayed, not repeated: one more call wrote the answer.
    assert len(stack.llm_calls("Denver")) == first_llm_calls + 1 == 2


@pytest.mark.crash
def test_crash_during_the_weather_step_repeats_no_llm_call(stack: Tour) -> None:
    prompt = "What is the weather like in Vienna? (crash test)"
    stack.llm.fault("weather", count=1, hang=30, status=200)  # the lookup hangs: the crash comes mid-step
    invocation = stack.send("WeatherAgent/run", {"message": prompt})
    wait_until(lambda: stack.weather_calls("Vienna"), what="the weather step to be in flight")

    stack.kill_endpoint()  # SIGKILL
    stack.restart_endpoint()
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Vienna is currently fog, 9 degrees Celsius."
    # Exactly the two LLM calls of a clean run: the first one was journaled before the crash.
    assert len(stack.llm_calls(prompt)) == 2
    # The step that was in flight ran again (it never finished), and completed once.
    assert [c.get("status") for c in stack.weather_calls("Vienna")][-1] == 200


@pytest.mark.crash
def test_crash_after_the_weather_step_repeats_neither(stack: Tour) -> None:
    prompt = "What is the weather like in Oslo? (crash after the step)"
    # The first LLM call goes through; the second one hangs, so the crash comes after the weather
    # step was journaled.
    stack.llm.fault("llm", count=1, after=1, hang=30, status=200)
    invocation = stack.send("WeatherAgent/run", {"message": prompt})
    wait_until(lambda: len(stack.llm_calls(prompt)) == 2, what="the second LLM call to be in flight")

    stack.kill_endpoint()
    stack.restart_endpoint()
    resp = stack.output(invocation)

    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Oslo is currently light snow, 1 degrees Celsius."
    # The weather was fetched once: the journaled step was replayed, not run again.
    assert len(stack.weather_calls("Oslo")) == 1
    # The first LLM call was replayed; only the call that never answered was made again.
    assert len(stack.llm_calls(prompt)) == 3


def test_transient_llm_errors_are_retried(stack: Tour) -> None:
    prompt = "What is the weather like in Paris? (flaky LLM)"
    stack.llm.fault("llm", count=2, status=500)

    resp = stack.call("WeatherAgent/run", {"message": prompt})

    assert resp.status_code == 200, resp.text
    assert resp.json() == "The weather in Paris is currently partly cloudy, 14 degrees Celsius."
    statuses = [c["status"] for c in stack.llm_calls(prompt)]
    assert statuses == [500, 500, 200, 200]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"message": 5}', "Invalid request: message: must be a string"),
        (b'{"message": ""}', "Invalid request: message: must not be empty"),
        (b"this is not json", "Invalid request: the body is not valid JSON"),
    ],
)
def test_bad_input_is_rejected_with_a_message_and_not_retried(
    stack: Tour, body: bytes, expected: str
) -> None:
    resp = stack.call("WeatherAgent/run", raw=body)

    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == expected
    row = stack.invocation(resp.headers["x-restate-id"])
    assert row["status"] == "completed"
    assert row["completion_result"] == "failure"


def test_unknown_city_is_a_terminal_error(stack: Tour) -> None:
    resp = stack.call("WeatherAgent/run", {"message": "What is the weather like in Atlantis?"})

    # The caller's mistake, so a 4xx: the tool's TerminalError(status_code=400) keeps its status.
    assert resp.status_code == 400, resp.text
    assert "Unknown location: Atlantis" in resp.json()["message"]
    row = stack.invocation(resp.headers["x-restate-id"])
    assert row["status"] == "completed" and row["completion_result"] == "failure"


def test_missing_content_type_is_a_client_error(stack: Tour) -> None:
    resp = stack.http.post("/WeatherAgent/run", content=b"{}")

    assert resp.status_code == 400
    assert "content-type" in resp.json()["message"].lower()
