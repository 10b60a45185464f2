"""The stand-in's HTTP surface, as a small ASGI app (served by hypercorn in `__main__`).

OpenAI-compatible:
    POST /v1/responses            what the Agents SDK calls
    POST /v1/chat/completions     what the manual agent loop calls
    GET  /v1/models
  Every request is first checked as the real API checks it (`contract`): unknown or missing
  parameters, wrong types, tool calls and outputs paired by call_id. A refused request gets the
  API's HTTP 400 error shape. `tool_choice`, `parallel_tool_calls` and the output token cap are
  honoured. A request no skill of the policy scripts is answered HTTP 422 naming the agent, the
  tools and the question: never a made-up 200.
  `stream: true` (both APIs; `stream_options.include_usage` in chat) answers with server-sent
  events (`streaming`): the same answer as without streaming, a word (text) or a fragment (tool
  arguments) per delta. Errors (400, 422, injected failures) are plain HTTP errors before any
  event, as the API sends them; the fixed latency passes before the response starts, and
  `token_ms` between two deltas (the first delta follows the response's first events at once).
wttr.in-compatible:
    GET  /wttr/{city}?format=j1   deterministic weather; unknown places get 404 "Unknown location"
Test hooks (not part of any OpenAI API):
    POST /_stub/faults            {"target": "llm"|"responses"|"chat"|"weather", "count": N,
                                   "status": 429|500|..., "retry_after": s, "hang": s, "after": N}
                                  the next N matching requests (after letting `after` through;
                                  with "containing": TEXT, only requests whose latest user
                                  message contains TEXT match) hang `hang` seconds, then fail
                                  with `status` (< 400: answer).
                                  Retry-After is whole seconds (rounded up, >= 1), and
                                  retry-after-ms carries the exact value, as OpenAI sends them.
                                  LLM targets only: {"misbehave": KIND, "tool": NAME, "length": N}
                                  answers those requests HTTP 200 with a misbehaving (but
                                  well-formed) answer instead of the scripted one; `status` is
                                  ignored. KIND is one of `answers.MISBEHAVIOURS`:
                                  unknown_tool (a call to `tool`, default "no_such_tool"),
                                  bad_json (arguments that are not JSON), bad_args (JSON that does
                                  not fit the tool's schema), endless_tools (a valid call, every
                                  time), empty (no text, no call), refusal, long_answer (`length`
                                  characters, default 200000), incomplete (cut at the token cap),
                                  failed (status "failed" / finish_reason "content_filter").
                                  Streamed LLM requests only: {"cut_after_tokens": N} sends the
                                  stream up to its Nth delta (0: none; an answer with fewer
                                  deltas: all but its terminal event), then drops the connection
                                  without ending the response, as a network failure does (the
                                  client reads an incomplete body). Not streamed requests let
                                  such a fault through. Combines with `misbehave` and `hang`;
                                  `status` is ignored.
    POST /_stub/latency           {"ms": N, "token_ms": M}, either key alone: `ms` is a fixed
                                  latency before every LLM answer, `token_ms` the pace of a
                                  streamed answer (between two deltas); both integers >= 0.
                                  Start values: --latency-ms, --token-ms (or OFFLINE_LLM_TOKEN_MS).
    GET  /_stub/stats             call counters, token totals and a log of recent calls (each
                                  answered call with the `usage` its answer reported; streamed
                                  ones with "stream": true, when their first delta and their end
                                  were sent, how many deltas, and "cut" or "hung_up" if so)
    POST /_stub/reset             zero the counters, drop faults; latency and pace back to their
                                  start values
    GET  /health
"""

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from dev.offline_llm import policy, weather_data
from dev.offline_llm.answers import (
    MISBEHAVIOURS,
    Answer,
    chat_payload,
    controlled,
    misbehave,
    responses_payload,
)
from dev.offline_llm.contract import InvalidRequest, check_chat_request, check_responses_request, error_body
from dev.offline_llm.conversation import from_chat_request, from_responses_request
from dev.offline_llm.streaming import Event, chat_events, responses_events

Scope = dict[str, Any]
Receive = Any
Send = Any
Result = tuple[int, Any, list[tuple[bytes, bytes]]]

LLM_TARGETS = {"responses", "chat"}
MODEL_CREATED = 1_700_000_000  # a fixed date for /v1/models


@dataclass
class Fault:
    target: str  # "llm" (either API), "responses", "chat" or "weather"
    count: int
    status: int = 500
    retry_after: float | None = None
    hang: float = 0.0
    after: int = 0  # let this many matching requests through first
    misbehave: str | None = None  # answer 200 with this misbehaviour instead of failing
    tool: str | None = None  # the tool name for unknown_tool
    length: int | None = None  # characters of a long_answer
    cut_after_tokens: int | None = None  # streamed calls only: drop the connection after N deltas
    containing: str | None = None  # only requests whose latest user message contains this text

    def matches(self, target: str, streamed: bool = False, text: str = "") -> bool:
        if self.cut_after_tokens is not None and not streamed:
            return False  # a cut is for a stream; a plain call must not use it up
        if self.containing is not None and self.containing not in text:
            return False
        return self.count > 0 and (self.target == target or (self.target == "llm" and target in LLM_TARGETS))


@dataclass
class StubState:
    faults: list[Fault] = field(default_factory=list)
    latency_ms: int = 0
    token_ms: int = 0  # between two deltas of a streamed answer
    counts: dict[str, int] = field(default_factory=dict)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=2000))
    started: float = field(default_factory=time.time)
    seq: int = 0

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def take_fault(self, target: str, streamed: bool = False, text: str = "") -> Fault | None:
        for fault in self.faults:
            if fault.matches(target, streamed, text):
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.count -= 1
                return fault
        return None

    def stats(self) -> dict[str, Any]:
        c = self.counts
        return {
            # every request that reached the stand-in, failed ones included
            "llm_calls": c.get("responses", 0) + c.get("chat", 0),
            "llm_completed": c.get("responses_ok", 0) + c.get("chat_ok", 0),
            # what the answers reported in `usage`, summed over every answer sent (one sent to a
            # client that had hung up counts too, as the real API would bill it)
            "input_tokens": c.get("input_tokens", 0),
            "output_tokens": c.get("output_tokens", 0),
            "responses_calls": c.get("responses", 0),
            "chat_calls": c.get("chat", 0),
            "streamed_calls": c.get("streamed", 0),  # of llm_calls, those with stream: true
            "weather_calls": c.get("weather", 0),
            "weather_completed": c.get("weather_ok", 0),
            "faults_injected": c.get("faults", 0),
            "misbehaviours_injected": c.get("misbehaviours", 0),
            "invalid_requests": c.get("invalid", 0),  # refused with 400, as the real API would
            "unscripted_requests": c.get("unscripted", 0),  # refused with 422: no skill scripts them
            "pending_faults": [f.__dict__ for f in self.faults if f.count > 0],
            "latency_ms": self.latency_ms,
            "token_ms": self.token_ms,
            "calls": list(self.log),
        }


async def _wait_for_disconnect(receive: Receive, hung_up: asyncio.Event) -> None:
    """Set `hung_up` when the client goes away (the request body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    hung_up.set()


def retry_after_headers(seconds: float) -> list[tuple[bytes, bytes]]:
    """OpenAI's pair: Retry-After in whole seconds (at least 1), retry-after-ms exact."""
    return [
        (b"retry-after", str(max(1, math.ceil(seconds))).encode()),
        (b"retry-after-ms", str(max(0, round(seconds * 1000))).encode()),
    ]


@dataclass
class EventStream:
    """A streamed answer on its way: the events, and what the sending of them must do."""

    events: Iterator[Event]
    token_ms: int
    cut_after_tokens: int | None  # drop the connection after this many deltas (a fault)
    entry: dict[str, Any]  # the call's line in the stats' log, completed as the stream goes


class OfflineLLM:
    """The ASGI application. One instance holds the counters and the pending faults.

    `latency_ms` and `token_ms` are the start values of the fixed latency and of the pace of
    streamed answers; `/_stub/latency` changes them, `/_stub/reset` restores them.
    """

    def __init__(self, latency_ms: int = 0, token_ms: int = 0) -> None:
        self.start_latency_ms, self.start_token_ms = latency_ms, token_ms
        self.state = StubState(latency_ms=latency_ms, token_ms=token_ms)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload, headers = await self.route(
            scope["method"], scope["path"], scope.get("query_string", b""), body
        )
        if isinstance(payload, EventStream):
            await self.send_events(payload, headers, receive, send)
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        content_type = b"text/plain; charset=utf-8" if isinstance(payload, bytes) else b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(data)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def route(self, method: str, path: str, query: bytes, body: bytes) -> Result:
        if method == "POST" and path == "/v1/responses":
            return await self.llm("responses", body)
        if method == "POST" and path == "/v1/chat/completions":
            return await self.llm("chat", body)
        if method == "GET" and path.startswith("/wttr/"):
            return await self.weather(unquote(path[len("/wttr/") :]))
        if method == "GET" and path == "/v1/models":
            model = {
                "id": "offline-stand-in",
                "object": "model",
                "created": MODEL_CREATED,
                "owned_by": "system",
            }
            return 200, {"object": "list", "data": [model]}, []
        if method == "GET" and path == "/health":
            return 200, {"status": "ok"}, []
        if method == "GET" and path == "/_stub/stats":
            return 200, self.state.stats(), []
        if method == "POST" and path == "/_stub/reset":
            self.state = StubState(latency_ms=self.start_latency_ms, token_ms=self.start_token_ms)
            return 200, {"status": "reset"}, []
        if method == "POST" and path == "/_stub/faults":
            return self.add_fault(body)
        if method == "POST" and path == "/_stub/latency":
            return self.set_latency(body)
        return 404, error_body(f"no route for {method} {path}", "invalid_request_error"), []

    def set_latency(self, body: bytes) -> Result:
        """`{"ms": N, "token_ms": M}`: each key given is set, the other one is left as it is."""
        keys = {"ms": "latency_ms", "token_ms": "token_ms"}
        try:
            spec = json.loads(body or b"{}")
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            return 400, error_body('expected {"ms": <int>, "token_ms": <int>}', "invalid_request_error"), []
        for key, value in spec.items():
            if key not in keys:
                return (
                    400,
                    error_body(f"unknown key {key!r} (ms, token_ms)", "invalid_request_error", key),
                    [],
                )
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return 400, error_body(f"{key} must be an integer >= 0", "invalid_request_error", key), []
        for key, value in spec.items():
            setattr(self.state, keys[key], value)
        return 200, {"latency_ms": self.state.latency_ms, "token_ms": self.state.token_ms}, []

    def add_fault(self, body: bytes) -> Result:
        def refused(message: str, param: str | None = None) -> Result:
            return 400, error_body(message, "invalid_request_error", param), []

        try:
            spec = json.loads(body or b"{}")
            fault = Fault(
                target=str(spec.get("target", "llm")),
                count=int(spec.get("count", 1)),
                status=int(spec.get("status", 500)),
                retry_after=float(spec["retry_after"]) if spec.get("retry_after") is not None else None,
                hang=float(spec.get("hang", 0)),
                after=int(spec.get("after", 0)),
                misbehave=str(spec["misbehave"]) if spec.get("misbehave") is not None else None,
                tool=str(spec["tool"]) if spec.get("tool") is not None else None,
                length=int(spec["length"]) if spec.get("length") is not None else None,
                cut_after_tokens=int(spec["cut_after_tokens"])
                if spec.get("cut_after_tokens") is not None
                else None,
                containing=str(spec["containing"]) if spec.get("containing") is not None else None,
            )
        except (ValueError, TypeError, AttributeError) as e:
            return refused(f"bad fault spec: {e}")
        if fault.target not in {"llm", "weather", *LLM_TARGETS}:
            return refused("target must be llm, responses, chat or weather", "target")
        if fault.misbehave is not None:
            if fault.misbehave not in MISBEHAVIOURS:
                return refused(f"misbehave must be one of {', '.join(MISBEHAVIOURS)}", "misbehave")
            if fault.target == "weather":
                return refused("misbehave is for LLM targets (llm, responses, chat)", "target")
        if fault.length is not None and fault.length < 0:
            return refused("length must be >= 0", "length")
        if fault.cut_after_tokens is not None:
            if fault.target == "weather":
                return refused("cut_after_tokens is for LLM targets (llm, responses, chat)", "target")
            if fault.cut_after_tokens < 0:
                return refused("cut_after_tokens must be >= 0", "cut_after_tokens")
        self.state.faults.append(fault)
        return 200, {"pending_faults": [f.__dict__ for f in self.state.faults if f.count > 0]}, []

    async def take_fault(self, target: str, streamed: bool = False, text: str = "") -> Fault | None:
        """The pending fault for this request (`text`: its latest user message), if any, after its hang."""
        fault = self.state.take_fault(target, streamed, text)
        if fault is None:
            return None
        self.state.count("misbehaviours" if fault.misbehave else "faults")
        if fault.hang:
            await asyncio.sleep(fault.hang)
        return fault

    @staticmethod
    def failure(fault: Fault | None) -> Result | None:
        """The HTTP error a fault injects (None: answer normally, perhaps after a delay)."""
        if fault is None or fault.misbehave or fault.cut_after_tokens is not None or fault.status < 400:
            return None
        headers = retry_after_headers(fault.retry_after) if fault.retry_after is not None else []
        kind, code = ("requests", "rate_limit_exceeded") if fault.status == 429 else ("server_error", None)
        message = f"[offline stand-in] injected HTTP {fault.status}"
        return fault.status, error_body(message, kind, None, code), headers

    async def llm(self, api: str, raw: bytes) -> Result:
        self.state.count(api)
        self.state.seq += 1
        entry: dict[str, Any] = {
            "seq": self.state.seq,
            "t": round(time.time() - self.state.started, 3),
            "api": api,
        }
        self.state.log.append(entry)
        refused: InvalidRequest | None = None
        body: Any = None
        try:
            body = json.loads(raw or b"{}")
            (check_responses_request if api == "responses" else check_chat_request)(body)
        except ValueError as e:
            refused = InvalidRequest(f"invalid JSON body: {e}")
        except (TypeError, AttributeError, KeyError) as e:  # a shape no check foresaw
            refused = InvalidRequest(f"the stand-in cannot read this request: {e!r}")
        except InvalidRequest as e:
            refused = e
        streamed = isinstance(body, dict) and body.get("stream") is True
        if streamed:
            entry["stream"] = True
            self.state.count("streamed")
        if refused is not None:
            entry.update(status=400, error=refused.message)
            self.state.count("invalid")
            print(
                f"[offline LLM] refused a {api} request (400, param {refused.param}): {refused.message}",
                flush=True,
            )
            return 400, refused.body(), []
        conv = from_responses_request(body) if api == "responses" else from_chat_request(body)
        entry.update(
            agent=conv.agent_name(),
            model=str(body.get("model", "")),
            tools=[t.name for t in conv.tools],
            input=conv.last_user_text()[:400],
        )
        if self.state.latency_ms:
            await asyncio.sleep(self.state.latency_ms / 1000)
        fault = await self.take_fault(api, streamed, conv.last_user_text())
        if (failure := self.failure(fault)) is not None:
            entry["status"] = failure[0]
            return failure
        reply = policy.respond(conv)
        answer: Answer
        if fault is not None and fault.misbehave:
            answer = misbehave(fault.misbehave, conv, reply, fault.tool, fault.length)
            entry["misbehave"] = fault.misbehave
            print(
                f"[offline LLM] misbehaving on purpose ({fault.misbehave}) for {conv.agent_name()}",
                flush=True,
            )
        elif reply is None:
            message = policy.unscripted(conv)
            entry.update(status=422, error=message, end=round(time.time() - self.state.started, 3))
            self.state.count("unscripted")
            print(f"[offline LLM] 422: {message}", flush=True)
            return 422, error_body(message, "invalid_request_error", None, "offline_stand_in_unscripted"), []
        else:
            answer = controlled(reply, conv, body, api)
        payload = (
            responses_payload(body, conv, answer) if api == "responses" else chat_payload(body, conv, answer)
        )
        usage = payload["usage"]
        tokens = {
            "input_tokens": usage.get("input_tokens", usage.get("prompt_tokens", 0)),
            "output_tokens": usage.get("output_tokens", usage.get("completion_tokens", 0)),
        }
        entry.update(
            status=200,
            reply="tool_calls: " + ", ".join(n for n, _ in answer.calls) if answer.calls else "text",
            end=round(time.time() - self.state.started, 3),
        )
        cut = fault.cut_after_tokens if fault is not None else None
        if cut is None:
            # Counted once the answer is decided, streamed or not: a stream whose client hangs up
            # counts too, as the real API would bill it.
            entry["usage"] = tokens
            self.state.count(f"{api}_ok")
            for key, n in tokens.items():
                self.state.count(key, n)
        else:  # the answer never arrives whole: neither completed nor billed
            entry["cut_after_tokens"] = cut
        if not streamed:
            return 200, payload, []
        if api == "responses":
            events = responses_events(payload)
        else:
            events = chat_events(
                payload, include_usage=(body.get("stream_options") or {}).get("include_usage") is True
            )
        return 200, EventStream(events, self.state.token_ms, cut, entry), []

    async def send_events(
        self, stream: EventStream, headers: list[tuple[bytes, bytes]], receive: Receive, send: Send
    ) -> None:
        """Send a streamed answer event by event (each its own body chunk, so each is flushed),
        pacing the deltas and cutting the stream where a fault says."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    *headers,
                ],
            }
        )
        entry, cut = stream.entry, stream.cut_after_tokens
        hung_up = asyncio.Event()
        watcher = asyncio.create_task(_wait_for_disconnect(receive, hung_up))
        loop = asyncio.get_running_loop()
        deltas = 0
        due = 0.0  # when the next delta is due (loop time): a schedule, so sleeps do not drift
        try:
            for event in stream.events:
                if cut is not None and (event.terminal or (event.token and deltas >= cut)):
                    entry.update(cut=True, deltas=deltas, end=self._now())
                    print(f"[offline LLM] cut the stream after {deltas} deltas (fault)", flush=True)
                    # Return without the final body message: the server closes the connection with
                    # the response unfinished, which the client reads as a broken transfer.
                    return
                if event.token:
                    if deltas == 0:
                        due = loop.time()
                        entry["first_delta"] = self._now()
                    else:
                        due += stream.token_ms / 1000
                        if (delay := due - loop.time()) > 0:
                            with contextlib.suppress(TimeoutError):  # woken early if the client leaves
                                await asyncio.wait_for(hung_up.wait(), delay)
                    deltas += 1
                if hung_up.is_set():
                    entry.update(hung_up=True, deltas=deltas, end=self._now())
                    return
                await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            entry.update(deltas=deltas, end=self._now())
        finally:
            watcher.cancel()

    def _now(self) -> float:
        """Seconds since the stand-in started (or was reset), as the log's times are."""
        return round(time.time() - self.state.started, 3)

    async def weather(self, city: str) -> Result:
        self.state.count("weather")
        self.state.seq += 1
        entry: dict[str, Any] = {
            "seq": self.state.seq,
            "t": round(time.time() - self.state.started, 3),
            "api": "weather",
            "input": city,
        }
        self.state.log.append(entry)
        failure = self.failure(await self.take_fault("weather"))
        if failure is not None:
            entry["status"] = failure[0]
            return failure
        found = weather_data.lookup(city)
        entry["end"] = round(time.time() - self.state.started, 3)
        if found is None:
            entry["status"] = 404
            return 404, f"Unknown location; please try ~{city}".encode(), []
        entry["status"] = 200
        self.state.count("weather_ok")
        return 200, weather_data.wttr_j1(*found), []
