"""A finished answer, replayed as the server-sent events of `stream: true`, in either API.

The answer is decided first, exactly as for a non-streamed request (`answers.responses_payload`,
`answers.chat_payload`); this module only cuts that payload into the events the real API sends,
so a streamed answer cannot differ from the non-streamed one: the concatenated deltas are its
text and its tool arguments, and the Responses API's terminal event carries the very payload.

Responses API (`event:` line + `data:` line per event, each with `type` and an increasing
`sequence_number`, no `[DONE]`):

    response.created, response.in_progress
    per output item: response.output_item.added, then
      function call: response.function_call_arguments.delta (a few fragments) / .done
      message:       response.content_part.added, response.output_text.delta (a word each) or
                     response.refusal.delta, response.output_text.done / response.refusal.done,
                     response.content_part.done
    response.output_item.done
    response.completed | response.incomplete (token cap) | response.failed

Chat Completions (`data:` lines only, `chat.completion.chunk` objects, then `data: [DONE]`): the
role in the first delta (with the first tool call's id and name, as the API sends them), content,
refusal or argument fragments in the following ones, `finish_reason` in the last chunk with a
choice, and with `stream_options.include_usage` a `"usage": null` on every chunk and a last chunk
with empty `choices` carrying the usage.

Every delta is an `Event` with `token=True`: the server paces those (`token_ms`) and counts them
for the `cut_after_tokens` fault; `terminal` marks the event that completes the answer.
"""

import copy
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# A word with the whitespace before it, or trailing whitespace: several deltas per sentence, and
# "".join(pieces) == text exactly.
_WORDS = re.compile(r"\s*\S+|\s+")
# Runs of word characters and runs of the rest: `{"city": "Denver"}` -> `{"`, `city`, `": "`,
# `Denver`, `"}`. A handful of fragments per argument object, as a tokenizer would cut it.
_FRAGMENTS = re.compile(r"\w+|\W+")


@dataclass
class Event:
    """One server-sent event: `data` is a JSON object, or the literal `[DONE]`."""

    data: dict[str, Any] | str
    name: str | None = None  # the `event:` line (Responses API only)
    token: bool = False  # a delta of the answer's text, refusal or arguments
    terminal: bool = False  # the event that completes the answer (the stream ends soon after)

    def encode(self) -> bytes:
        data = self.data if isinstance(self.data, str) else json.dumps(self.data, separators=(",", ":"))
        head = f"event: {self.name}\n" if self.name else ""
        return f"{head}data: {data}\n\n".encode()


def words(text: str) -> list[str]:
    return _WORDS.findall(text)


def fragments(arguments: str) -> list[str]:
    return _FRAGMENTS.findall(arguments)


# --- Responses API ---------------------------------------------------------------------------------


def responses_events(payload: dict[str, Any]) -> Iterator[Event]:
    """The events of `POST /v1/responses` with `stream: true` whose final response is `payload`."""
    seq = 0

    def event(data: dict[str, Any], token: bool = False, terminal: bool = False) -> Event:
        nonlocal seq
        data = {**data, "sequence_number": seq}
        seq += 1
        return Event(data, name=str(data["type"]), token=token, terminal=terminal)

    # Before any output the response is in progress: no output, no usage, no verdict yet.
    pending = {
        **copy.deepcopy(payload),
        "status": "in_progress",
        "output": [],
        "usage": None,
        "error": None,
        "incomplete_details": None,
        "completed_at": None,
    }
    yield event({"type": "response.created", "response": pending})
    yield event({"type": "response.in_progress", "response": pending})
    for index, item in enumerate(payload["output"]):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "function_call":
            yield event(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                }
            )
            for piece in fragments(item["arguments"]):
                yield event({"type": "response.function_call_arguments.delta", **where, "delta": piece}, True)
            yield event(
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
        else:  # an assistant message: its text and refusal parts
            yield event(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "content": [], "status": "in_progress"},
                }
            )
            for part_index, part in enumerate(item["content"]):
                yield from _content_part(event, {**where, "content_index": part_index}, part)
        yield event({"type": "response.output_item.done", "output_index": index, "item": item})
    final = copy.deepcopy(payload)
    if final["status"] == "completed":
        final["completed_at"] = int(time.time())  # when the last event is sent, as the API reports
    kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
        final["status"], "response.failed"
    )
    yield event({"type": kind, "response": final}, terminal=True)


def _content_part(event: Any, where: dict[str, Any], part: dict[str, Any]) -> Iterator[Event]:
    if part["type"] == "output_text":
        text = part["text"]
        yield event({"type": "response.content_part.added", **where, "part": {**part, "text": ""}})
        for piece in words(text):
            yield event({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}, True)
        yield event({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
    else:  # a refusal
        refusal = part["refusal"]
        yield event({"type": "response.content_part.added", **where, "part": {**part, "refusal": ""}})
        for piece in words(refusal):
            yield event({"type": "response.refusal.delta", **where, "delta": piece}, True)
        yield event({"type": "response.refusal.done", **where, "refusal": refusal})
    yield event({"type": "response.content_part.done", **where, "part": part})


# --- Chat Completions ------------------------------------------------------------------------------


def chat_events(payload: dict[str, Any], include_usage: bool) -> Iterator[Event]:
    """The chunks of `POST /v1/chat/completions` with `stream: true` that add up to `payload`."""
    head = {k: payload[k] for k in ("id", "created", "model", "service_tier", "system_fingerprint")}
    choice = payload["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None, token: bool = False) -> Event:
        data: dict[str, Any] = {
            **head,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None  # on every chunk but the last, as the API documents
        return Event(data, token=token, terminal=finish is not None)

    text, refusal = message["content"], message["refusal"]
    calls = message.get("tool_calls") or []
    first: dict[str, Any] = {
        "role": "assistant",
        "content": "" if text is not None else None,
        "refusal": "" if refusal is not None else None,
    }
    for index, call in enumerate(calls):
        # The call's id, type and name come first (with the role, for the first call), then its
        # arguments in fragments.
        header = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        if index == 0:
            yield chunk({**first, "tool_calls": [header]})
        else:
            yield chunk({"tool_calls": [header]})
        for piece in fragments(call["function"]["arguments"]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, token=True)
    if not calls:
        yield chunk(first)
    for piece in words(text or ""):
        yield chunk({"content": piece}, token=True)
    for piece in words(refusal or ""):
        yield chunk({"refusal": piece}, token=True)
    yield chunk({}, finish=choice["finish_reason"])
    if include_usage:
        yield Event({**head, "object": "chat.completion.chunk", "choices": [], "usage": payload["usage"]})
    yield Event("[DONE]")
