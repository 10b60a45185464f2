"""From the policy's `Reply` to what goes on the wire, in either API.

An `Answer` is one model turn as the API reports it: tool calls (arguments as raw strings, so a
misbehaving answer can carry invalid JSON), text or a refusal, and how the turn ended. Here the
request's own controls are honoured (`tool_choice`, `parallel_tool_calls`, the output token cap),
the misbehaviours of the fault API are made, and both wire formats are written with every key the
published schema requires. Ids are unique per answer.
"""

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from dev.offline_llm.contract import forced_tool
from dev.offline_llm.conversation import Conversation, Reply, fill_arguments

Ending = Literal["stop", "length", "failed"]

MISBEHAVIOURS = (
    "unknown_tool",
    "bad_json",
    "bad_args",
    "endless_tools",
    "empty",
    "refusal",
    "long_answer",
    "incomplete",
    "failed",
)
REFUSAL = "I'm sorry, but I can't help with that."
NO_SUCH_TOOL = "no_such_tool"
LONG_ANSWER = 200_000


@dataclass
class Answer:
    calls: list[tuple[str, str]] = field(default_factory=list)  # (tool name, raw JSON arguments)
    text: str | None = None
    refusal: str | None = None
    ending: Ending = "stop"

    @classmethod
    def of(cls, reply: Reply) -> "Answer":
        return cls(calls=[(name, json.dumps(args)) for name, args in reply.calls], text=reply.text)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


# --- the request's controls ------------------------------------------------------------------------


def controlled(reply: Reply, conv: Conversation, body: dict[str, Any], api: str) -> Answer:
    """The scripted reply, bent to `tool_choice`, `parallel_tool_calls` and the token cap."""
    calls = list(reply.calls)
    text = reply.text
    choice = body.get("tool_choice")
    forced = forced_tool(choice, chat=api == "chat")
    if choice == "none" and calls:
        text = (
            "I would call " + ", ".join(dict.fromkeys(n for n, _ in calls)) + ", but no tool may be used now."
        )
        calls = []
    elif choice == "required" and not calls and conv.tools:
        calls = [(conv.tools[0].name, fill_arguments(conv.tools[0].parameters, {}))]
    elif forced is not None and not any(n == forced for n, _ in calls):
        tool = conv.tool(forced)
        calls = [(forced, fill_arguments(tool.parameters if tool else {}, {}))]
    elif forced is not None:
        calls = [c for c in calls if c[0] == forced]
    if calls:
        text = None
    if body.get("parallel_tool_calls") is False:
        calls = calls[:1]
    answer = Answer(calls=[(n, json.dumps(a)) for n, a in calls], text=text)
    cap = body.get("max_output_tokens") if api == "responses" else _chat_cap(body)
    if isinstance(cap, int) and answer.text is not None and tokens(answer.text) > cap:
        answer.text = answer.text[: max(1, cap) * 4]
        answer.ending = "length"
    return answer


def _chat_cap(body: dict[str, Any]) -> Any:
    cap = body.get("max_completion_tokens")
    return cap if cap is not None else body.get("max_tokens")


# --- misbehaviour on request ------------------------------------------------------------------------


def misbehave(
    kind: str, conv: Conversation, scripted: Reply | None, tool: str | None, length: int | None
) -> Answer:
    """A well-formed answer that a real model could give, and that a careless agent mishandles."""
    offered = [t.name for t in conv.tools]
    wanted = scripted.calls[0][0] if scripted and scripted.calls else None
    target = wanted if wanted in offered else (offered[0] if offered else None)
    if kind == "unknown_tool" or (kind in ("bad_args", "endless_tools") and target is None):
        return Answer(calls=[(tool or NO_SUCH_TOOL, "{}")])
    if kind == "bad_json":
        name = target or tool or NO_SUCH_TOOL
        return Answer(calls=[(name, '{"city": "Denv')])
    if kind == "bad_args":
        return Answer(calls=[(str(target), json.dumps({"unexpected_field": 42}))])
    if kind == "endless_tools":
        if scripted and scripted.calls and wanted == target:
            return Answer(calls=[(scripted.calls[0][0], json.dumps(scripted.calls[0][1]))])
        # Once the script is done with its tools, the same call again, as a looping model does.
        earlier = [m for m in conv.messages if m.role == "tool_call" and m.name == target]
        if earlier:
            return Answer(calls=[(str(target), json.dumps(earlier[-1].arguments))])
        schema = conv.tool(str(target))
        return Answer(
            calls=[(str(target), json.dumps(fill_arguments(schema.parameters if schema else {}, {})))]
        )
    if kind == "empty":
        return Answer()
    if kind == "refusal":
        return Answer(refusal=REFUSAL)
    if kind == "long_answer":
        n = LONG_ANSWER if length is None else length
        line = "This answer goes on and on. "
        return Answer(text=(line * (n // len(line) + 1))[:n])
    if kind == "incomplete":
        return Answer(text="The answer was cut off in the midd", ending="length")
    if kind == "failed":
        return Answer(ending="failed")
    raise ValueError(f"unknown misbehaviour {kind!r}")


# --- wire formats ------------------------------------------------------------------------------------


def responses_payload(body: dict[str, Any], conv: Conversation, answer: Answer) -> dict[str, Any]:
    output: list[dict[str, Any]] = [
        {
            "type": "function_call",
            "id": new_id("fc"),
            "call_id": new_id("call"),
            "name": name,
            "arguments": args,
            "status": "completed",
        }
        for name, args in answer.calls
    ]
    content: list[dict[str, Any]] = []
    if answer.text is not None:
        content.append({"type": "output_text", "text": answer.text, "annotations": [], "logprobs": []})
    if answer.refusal is not None:
        content.append({"type": "refusal", "refusal": answer.refusal})
    if content:
        output.append(
            {
                "type": "message",
                "id": new_id("msg"),
                "role": "assistant",
                "status": "incomplete" if answer.ending == "length" else "completed",
                "content": content,
            }
        )
    status = {"stop": "completed", "length": "incomplete", "failed": "failed"}[answer.ending]
    prompt_tokens = tokens(json.dumps(body.get("input", "")) + conv.instructions)
    completion_tokens = tokens(json.dumps(output))
    now = int(time.time())
    return {
        "id": new_id("resp"),
        "object": "response",
        "created_at": now,
        "completed_at": now if status == "completed" else None,
        "status": status,
        "error": {"code": "server_error", "message": "The model failed to generate a response."}
        if status == "failed"
        else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": conv.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": body.get("reasoning"),
        "store": body.get("store") is not False,
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": {
            "input_tokens": prompt_tokens,
            # the spec asks for cached_tokens; openai-python 3.x's types also for cache_write_tokens
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens,
        },
        # optional keys the spec types as plain strings: echoed when the request sets them
        **{k: body[k] for k in ("user", "prompt_cache_key", "safety_identifier") if k in body},
    }


def chat_payload(body: dict[str, Any], conv: Conversation, answer: Answer) -> dict[str, Any]:
    tool_calls = [
        {"id": new_id("call"), "type": "function", "function": {"name": name, "arguments": args}}
        for name, args in answer.calls
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text,
        "refusal": answer.refusal,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if answer.ending == "failed":
        finish = "content_filter"
    elif answer.ending == "length":
        finish = "length"
    else:
        finish = "tool_calls" if tool_calls else "stop"
    prompt_tokens = tokens(json.dumps(body.get("messages", [])))
    completion_tokens = tokens(json.dumps(message))
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": conv.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "service_tier": "default",
        "system_fingerprint": "offline-stand-in",
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
