"""The stand-in's HTTP surface, as a small ASGI app (served by hypercorn in `__main__`).

OpenAI-compatible:
    POST /v1/responses            what the Agents SDK calls
    POST /v1/chat/completions     what the manual agent loop calls
    GET  /v1/models
wttr.in-compatible:
    GET  /wttr/{city}?format=j1   deterministic weather; unknown places get 404 "Unknown location"
Test hooks (not part of any OpenAI API):
    POST /_stub/faults            {"target": "llm"|"responses"|"chat"|"weather", "count": N,
                                   "status": 429|500|..., "retry_after": s, "hang": s, "after": N}
                                  the next N matching requests (after letting `after` through)
                                  hang `hang` seconds, then fail with `status` (< 400: answer)
    POST /_stub/latency           {"ms": N}: fixed latency added to every LLM call
    GET  /_stub/stats             call counters and a log of recent calls
    POST /_stub/reset             zero the counters, drop faults and latency
    GET  /health
"""

import asyncio
import hashlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from dev.offline_llm import policy, weather_data
from dev.offline_llm.conversation import Conversation, Reply, from_chat_request, from_responses_request

Scope = dict[str, Any]
Receive = Any
Send = Any

LLM_TARGETS = {"responses", "chat"}


@dataclass
class Fault:
    target: str  # "llm" (either API), "responses", "chat" or "weather"
    count: int
    status: int = 500
    retry_after: float | None = None
    hang: float = 0.0
    after: int = 0  # let this many matching requests through first

    def matches(self, target: str) -> bool:
        return self.count > 0 and (self.target == target or (self.target == "llm" and target in LLM_TARGETS))


@dataclass
class StubState:
    faults: list[Fault] = field(default_factory=list)
    latency_ms: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=2000))
    started: float = field(default_factory=time.time)
    seq: int = 0

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def take_fault(self, target: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(target):
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
            "responses_calls": c.get("responses", 0),
            "chat_calls": c.get("chat", 0),
            "weather_calls": c.get("weather", 0),
            "weather_completed": c.get("weather_ok", 0),
            "faults_injected": c.get("faults", 0),
            "pending_faults": [f.__dict__ for f in self.faults if f.count > 0],
            "latency_ms": self.latency_ms,
            "calls": list(self.log),
        }


def _ident(prefix: str, *parts: Any) -> str:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return f"{prefix}_{digest[:24]}"


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def responses_payload(body: dict[str, Any], conv: Conversation, reply: Reply) -> dict[str, Any]:
    resp_id = _ident("resp", body)
    output: list[dict[str, Any]] = []
    for i, (name, args) in enumerate(reply.calls):
        output.append(
            {
                "type": "function_call",
                "id": _ident("fc", body, i),
                "call_id": _ident("call", body, i),
                "name": name,
                "arguments": json.dumps(args),
                "status": "completed",
            }
        )
    if reply.text is not None:
        output.append(
            {
                "type": "message",
                "id": _ident("msg", body),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
            }
        )
    prompt_tokens = _tokens(json.dumps(body.get("input", "")) + conv.instructions)
    completion_tokens = _tokens(json.dumps(output))
    return {
        "id": resp_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": conv.model or "offline-stand-in",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chat_payload(body: dict[str, Any], conv: Conversation, reply: Reply) -> dict[str, Any]:
    tool_calls = [
        {
            "id": _ident("call", body, i),
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for i, (name, args) in enumerate(reply.calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    prompt_tokens = _tokens(json.dumps(body.get("messages", [])))
    completion_tokens = _tokens(json.dumps(message))
    return {
        "id": _ident("chatcmpl", body),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": conv.model or "offline-stand-in",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class OfflineLLM:
    """The ASGI application. One instance holds the counters and the pending faults."""

    def __init__(self, latency_ms: int = 0) -> None:
        self.state = StubState(latency_ms=latency_ms)

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

    async def route(
        self, method: str, path: str, query: bytes, body: bytes
    ) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        if method == "POST" and path == "/v1/responses":
            return await self.llm("responses", body)
        if method == "POST" and path == "/v1/chat/completions":
            return await self.llm("chat", body)
        if method == "GET" and path.startswith("/wttr/"):
            return await self.weather(unquote(path[len("/wttr/") :]))
        if method == "GET" and path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": "offline-stand-in", "object": "model"}]}, []
        if method == "GET" and path == "/health":
            return 200, {"status": "ok"}, []
        if method == "GET" and path == "/_stub/stats":
            return 200, self.state.stats(), []
        if method == "POST" and path == "/_stub/reset":
            self.state = StubState()
            return 200, {"status": "reset"}, []
        if method == "POST" and path == "/_stub/faults":
            return self.add_fault(body)
        if method == "POST" and path == "/_stub/latency":
            try:
                self.state.latency_ms = int(json.loads(body or b"{}").get("ms", 0))
            except (ValueError, AttributeError):
                return 400, {"error": {"message": 'expected {"ms": <int>}'}}, []
            return 200, {"latency_ms": self.state.latency_ms}, []
        return (
            404,
            {"error": {"message": f"no route for {method} {path}", "type": "invalid_request_error"}},
            [],
        )

    def add_fault(self, body: bytes) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        try:
            spec = json.loads(body or b"{}")
            fault = Fault(
                target=str(spec.get("target", "llm")),
                count=int(spec.get("count", 1)),
                status=int(spec.get("status", 500)),
                retry_after=float(spec["retry_after"]) if spec.get("retry_after") is not None else None,
                hang=float(spec.get("hang", 0)),
                after=int(spec.get("after", 0)),
            )
        except (ValueError, TypeError, AttributeError) as e:
            return 400, {"error": {"message": f"bad fault spec: {e}"}}, []
        if fault.target not in {"llm", "weather", *LLM_TARGETS}:
            return 400, {"error": {"message": "target must be llm, responses, chat or weather"}}, []
        self.state.faults.append(fault)
        return 200, {"pending_faults": [f.__dict__ for f in self.state.faults if f.count > 0]}, []

    async def apply_fault(self, target: str) -> tuple[int, Any, list[tuple[bytes, bytes]]] | None:
        """Hang and/or fail this request if a fault is pending for its target."""
        fault = self.state.take_fault(target)
        if fault is None:
            return None
        self.state.count("faults")
        if fault.hang:
            await asyncio.sleep(fault.hang)
        if fault.status < 400:
            return None  # a pure delay: answer normally afterwards
        headers = []
        if fault.retry_after is not None:
            headers.append((b"retry-after", f"{fault.retry_after:g}".encode()))
        kind = "rate_limit_exceeded" if fault.status == 429 else "server_error"
        return (
            fault.status,
            {"error": {"message": f"[offline stand-in] injected HTTP {fault.status}", "type": kind}},
            headers,
        )

    async def llm(self, api: str, raw: bytes) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        self.state.count(api)
        self.state.seq += 1
        entry: dict[str, Any] = {
            "seq": self.state.seq,
            "t": round(time.time() - self.state.started, 3),
            "api": api,
        }
        self.state.log.append(entry)
        try:
            body = json.loads(raw or b"{}")
            conv = from_responses_request(body) if api == "responses" else from_chat_request(body)
        except (ValueError, AttributeError, TypeError) as e:
            entry["status"] = 400
            return 400, {"error": {"message": f"invalid JSON body: {e}", "type": "invalid_request_error"}}, []
        entry.update(
            agent=conv.agent_name(), tools=[t.name for t in conv.tools], input=conv.last_user_text()[:400]
        )
        if self.state.latency_ms:
            await asyncio.sleep(self.state.latency_ms / 1000)
        failure = await self.apply_fault(api)
        if failure is not None:
            entry["status"] = failure[0]
            return failure
        reply = policy.respond(conv)
        entry.update(
            status=200,
            reply="tool_calls: " + ", ".join(n for n, _ in reply.calls) if reply.calls else "text",
            end=round(time.time() - self.state.started, 3),
        )
        self.state.count(f"{api}_ok")
        payload = (
            responses_payload(body, conv, reply) if api == "responses" else chat_payload(body, conv, reply)
        )
        return 200, payload, []

    async def weather(self, city: str) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        self.state.count("weather")
        self.state.seq += 1
        entry: dict[str, Any] = {
            "seq": self.state.seq,
            "t": round(time.time() - self.state.started, 3),
            "api": "weather",
            "input": city,
        }
        self.state.log.append(entry)
        failure = await self.apply_fault("weather")
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
