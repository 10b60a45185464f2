"""The front door: every request checked, internals private, streams that answer, a pre-filled playground.

End-to-end against the real restate-server, as a user with curl would see it: a request that
breaks a handler's input contract gets HTTP 400 naming the field and ends at once; a caller's
mistake found later (an unknown city) is a 4xx too; `AgentEvents/publish` is not reachable
through the ingress; the public web process answers for unknown runs, bad offsets, readers that
leave and streams that idle; the playground's examples are valid requests; sessions are bounded.
"""

import json
import time
from typing import Any

import httpx
import pytest

from app.utils.session import trim
from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

CLAIM = {
    "date": "2024-10-01",
    "amount": 3000,
    "category": "orthopedic",
    "placeOfService": "General Hospital",
    "reason": "hospital bill for a broken leg",
}


def assert_rejected(stack: Tour, resp: httpx.Response, message: str) -> None:
    """HTTP 400 with exactly `message`, and the invocation ended at once (no retry)."""
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == message
    row = stack.invocation(resp.headers["x-restate-id"])
    assert row["status"] == "completed" and row["completion_result"] == "failure"
    assert row.get("retry_count", 0) in (0, 1, None)


# --- 1. one input contract ---------------------------------------------------------------------


def test_an_unknown_field_is_refused_instead_of_using_the_default(stack: Tour) -> None:
    resp = stack.call("WeatherAgent/run", {"msg": "What is the weather like in Tokyo?"})

    assert_rejected(stack, resp, "Invalid request: msg: unknown field")
    assert not stack.llm_calls("San Francisco"), "nothing reached the model"


@pytest.mark.parametrize(
    ("amount", "rule"),
    [
        (-5, "amount: must be greater than 0"),
        (0, "amount: must be greater than 0"),
        (True, "amount: must be a number"),
        ("3000", "amount: must be a number"),
        (1e400, "amount: must be a finite number"),
    ],
)
def test_a_claim_amount_must_be_a_positive_number(stack: Tour, amount: Any, rule: str) -> None:
    body = json.dumps({**CLAIM, "amount": amount}).replace("Infinity", "1e400").encode()

    resp = stack.call("ParallelToolClaimAgent/run", raw=body)

    assert_rejected(stack, resp, f"Invalid request: {rule}")


@pytest.mark.parametrize(
    ("date", "rule"),
    [("2024-13-01", "date: must be a date, YYYY-MM-DD"), (20241001, "date: must be a date, YYYY-MM-DD")],
)
def test_a_claim_date_must_be_an_iso_date(stack: Tour, date: Any, rule: str) -> None:
    resp = stack.call("RemoteMultiAgentClaimApproval/run", {**CLAIM, "date": date})

    assert_rejected(stack, resp, f"Invalid request: {rule}")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"this is not json", "Invalid request: the body is not valid JSON"),
        (b"null", "Invalid request: the body must be a JSON object"),
        (b'["What is the weather like in Tokyo?"]', "Invalid request: the body must be a JSON object"),
        (b'"What is the weather like in Tokyo?"', "Invalid request: the body must be a JSON object"),
        (b'{"message": 5}', "Invalid request: message: must be a string"),
        (b'{"message": ""}', "Invalid request: message: must not be empty"),
    ],
)
def test_a_body_that_is_not_the_request_object_is_a_400(stack: Tour, body: bytes, message: str) -> None:
    resp = stack.call("WeatherAgent/run", raw=body)

    assert_rejected(stack, resp, message)


def test_a_claim_with_missing_fields_names_each_of_them(stack: Tour) -> None:
    resp = stack.call("ParallelAgentClaimApproval/run", {"amount": 3000, "reason": "x", "extra": 1})

    assert_rejected(
        stack,
        resp,
        "Invalid request: category: required; placeOfService: required; extra: unknown field",
    )


def test_a_one_megabyte_message_never_reaches_the_model(stack: Tour) -> None:
    marker = "(front door 1 MB)"
    message = f"What is the weather like in Tokyo? {marker} " + "x" * 1_000_000

    resp = stack.call("WeatherAgent/run", {"message": message})

    assert_rejected(stack, resp, "Invalid request: message: must be at most 4000 characters")
    assert stack.llm_calls(marker) == []


def test_a_message_at_the_limit_is_served(stack: Tour) -> None:
    message = "What is the weather like in Tokyo? "
    resp = stack.call("WeatherAgent/run", {"message": message + "." * (4000 - len(message))})

    assert resp.status_code == 200, resp.text


def test_an_unknown_city_is_the_callers_error_not_a_500(stack: Tour) -> None:
    # The tool's TerminalError(status_code=400) is re-raised by restate's Agents SDK integration
    # as a plain (500) terminal error; the contract's wrapper gives the caller the 400 back.
    resp = stack.call("StreamingAgent/run", {"message": "What is the weather like in Atlantis?"})

    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == "Unknown location: Atlantis. Please provide a valid city name."


def test_valid_claims_are_still_served(stack: Tour) -> None:
    resp = stack.call("RemoteMultiAgentClaimApproval/run", CLAIM)

    assert resp.status_code == 200, resp.text
    # Without a date (the LLM sends null when the text names none) a claim is valid too.
    no_date = {key: value for key, value in CLAIM.items() if key != "date"}
    assert stack.call("RemoteMultiAgentClaimApproval/run", no_date).status_code == 200


# --- 2. internal handlers are private ----------------------------------------------------------


def test_a_forged_progress_event_is_refused_by_the_ingress(stack: Tour) -> None:
    run_id = "inv_forged"

    resp = stack.call(f"AgentEvents/{run_id}/publish", {"type": "done", "output": "forged"})

    assert resp.status_code == 400, resp.text
    assert resp.json() == {"code": 400, "message": "the invoked service is not public", "source": "ingress"}
    assert stack.call(f"AgentEvents/{run_id}/read", {"offset": 0}).json()["events"] == []


def test_the_endpoint_serves_no_streams(stack: Tour) -> None:
    # The endpoint is Restate's alone: an unsigned request is refused, /streams included.
    assert httpx.get(f"{stack.endpoint_url}/streams/inv_unknown", timeout=5).status_code == 401


# --- 3. the public stream reader ---------------------------------------------------------------

NEVER_EXISTED = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"  # well-formed, but Restate never ran it


@pytest.mark.parametrize("path", ["", "/events"])
@pytest.mark.parametrize("run_id", ["inv_unknown", NEVER_EXISTED])
def test_an_unknown_run_is_a_404_at_once(stack: Tour, run_id: str, path: str) -> None:
    resp = httpx.get(f"{stack.web_url}/streams/{run_id}{path}", timeout=5)

    assert resp.status_code == 404
    assert resp.json() == {"message": f"unknown run: {run_id} (use the invocationId that /send returned)"}


@pytest.mark.parametrize(
    ("path", "params", "headers", "message"),
    [
        ("/events", {"offset": "-1"}, {}, "offset must be a whole number >= 0 (got '-1')"),
        ("/events", {"offset": "soon"}, {}, "offset must be a whole number >= 0 (got 'soon')"),
        ("/events", {"wait": "abc"}, {}, "wait must be a number of seconds from 0 to 60 (got 'abc')"),
        ("/events", {"wait": "61"}, {}, "wait must be a number of seconds from 0 to 60 (got '61')"),
        ("/events", {"wait": "nan"}, {}, "wait must be a number of seconds from 0 to 60 (got 'nan')"),
        ("", {"offset": "-1"}, {}, "offset must be a whole number >= 0 (got '-1')"),
        ("", {}, {"last-event-id": "x"}, "Last-Event-ID must be a whole number >= 0 (got 'x')"),
    ],
)
def test_a_bad_offset_or_wait_is_a_400(
    stack: Tour, path: str, params: dict[str, str], headers: dict[str, str], message: str
) -> None:
    resp = httpx.get(
        f"{stack.web_url}/streams/{NEVER_EXISTED}{path}", params=params, headers=headers, timeout=5
    )

    assert resp.status_code == 400
    assert resp.json() == {"message": message}


def open_streams(stack: Tour) -> int:
    count: int = httpx.get(f"{stack.web_url}/health", timeout=5).json()["open_streams"]
    return count


def test_a_reader_that_leaves_is_no_longer_served(stack: Tour) -> None:
    stack.llm.fault("weather", count=1, hang=30, status=200)  # the run stays in its weather step
    run_id = stack.send("StreamingAgent/run", {"message": "What is the weather like in Lisbon?"})

    with httpx.stream("GET", f"{stack.web_url}/streams/{run_id}", timeout=30) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        assert next(lines) == "id: 0"
        assert open_streams(stack) == 1
    # The client is gone: the web process stops polling for it at once.
    wait_until(lambda: open_streams(stack) == 0, timeout=5, what="the stream to be closed")


@pytest.fixture
def quick_idle(stack: Tour) -> Tour:
    stack.restart_web(STREAM_IDLE_SECONDS="1")  # `fresh` restores the default for the next test
    return stack


def test_an_idle_stream_ends_with_an_idle_event(quick_idle: Tour) -> None:
    stack = quick_idle
    # A run that exists but publishes nothing: a WeatherAgent invocation.
    run_id = stack.call("WeatherAgent/run", {}).headers["x-restate-id"]

    started = time.monotonic()
    with httpx.stream("GET", f"{stack.web_url}/streams/{run_id}", timeout=30) as resp:
        assert resp.status_code == 200
        body = resp.read().decode()

    assert time.monotonic() - started < 10
    assert body == 'event: idle\ndata: {"type": "idle", "seconds": 1.0, "next_offset": 0}\n\n'
    assert open_streams(stack) == 0


# --- 4. the playground is pre-filled -----------------------------------------------------------

# Every handler that takes a request is for users: the internal ones are ingress-private.
NOT_FOR_USERS: set[tuple[str, str]] = set()


def test_every_playground_request_is_prefilled_with_a_valid_example(stack: Tour) -> None:
    from app.__main__ import services

    handlers = {(s.name, h.name): h for s in services for h in s.handlers.values()}
    checked = 0
    for service in httpx.get(f"{stack.admin.url}/services", timeout=10).json()["services"]:
        name = service["name"]
        if not service.get("public", True):
            continue  # ingress-private: the project's own
        doc = httpx.get(f"{stack.admin.url}/services/{name}/openapi", timeout=10).json()
        schemas = doc["components"]["schemas"]
        for path, operations in doc["paths"].items():
            if not path.startswith(f"/restate/call/{name}/"):
                continue
            handler_name = path.rsplit("/", 1)[-1]
            body = operations["post"].get("requestBody")
            if body is None or (name, handler_name) in NOT_FOR_USERS:
                continue
            schema = schemas[body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
            examples = schema.get("examples") or []
            where = f"{name}/{handler_name}"
            for field in schema.get("required", []):
                assert "default" in schema["properties"][field] or (
                    examples and all(field in example for example in examples)
                ), f"{where}: {field} has neither a default nor an example"
            model = handlers[(name, handler_name)].handler_io.input_type.annotation
            defaults = {k: p["default"] for k, p in schema["properties"].items() if "default" in p}
            for example in examples or [defaults]:
                model.model_validate_json(json.dumps(example))  # as the ingress would pass it
            checked += 1
    assert checked >= 20
    # A private handler is not offered at all.
    events = httpx.get(f"{stack.admin.url}/services/AgentEvents/openapi", timeout=10).json()
    assert not [path for path in events["paths"] if path.endswith("/publish")]


def test_the_claim_example_is_the_tours_claim(stack: Tour) -> None:
    doc = httpx.get(f"{stack.admin.url}/services/ParallelToolClaimAgent/openapi", timeout=10).json()
    schema = doc["components"]["schemas"]["runRequest"]

    assert schema["examples"] == [CLAIM]
    assert stack.call("ParallelToolClaimAgent/run", schema["examples"][0]).status_code == 200


# --- 5. bounded sessions -----------------------------------------------------------------------


def test_a_chat_keeps_at_most_max_session_items(stack: Tour) -> None:
    stack.restart_endpoint(MAX_SESSION_ITEMS="3")  # `fresh` restores the default for the next test
    key = "front-door-bounded"

    stack.call(f"Chat/{key}/message", {"message": "My name is Alice."})
    stack.call(f"Chat/{key}/message", {"message": "Hello there."})
    history = stack.http.post(f"/Chat/{key}/get_history").json()
    # Four items trimmed to three would start with the assistant's answer: whole items are
    # dropped until the history starts at a user message.
    assert [(item.get("role"), item.get("content")) for item in history][:1] == [("user", "Hello there.")]
    assert len(history) == 2

    answer = stack.call(f"Chat/{key}/message", {"message": "What is my name?"}).json()

    assert answer == "You have not told me your name yet."  # the first turn is gone
    assert len(stack.http.post(f"/Chat/{key}/get_history").json()) == 2


def test_trimming_never_leaves_a_tool_output_without_its_call() -> None:
    turn = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"role": "assistant", "type": "message", "content": "Sunny."},
    ]
    items: list[Any] = [*turn, *turn]

    assert trim(items, 8) == items
    assert trim(items, 6) == turn  # not [output, answer, *turn]
    assert trim(items, 3) == []  # no user message is left within the bound
    assert trim(items, 4) == turn
