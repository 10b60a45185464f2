"""One view of a model request, whichever OpenAI API it came through.

The Responses API (what the Agents SDK calls) and Chat Completions (the manual loop) describe the
same things differently. The policy reads a `Conversation` and answers with a `Reply`; the server
translates both ways.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant", "tool_call", "tool_output"]


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]

    def param_names(self) -> set[str]:
        """Every property name in the parameter schema, nested objects and $refs included."""
        names: set[str] = set()
        _walk_names(self.parameters, self.parameters, names, depth=0)
        return names


@dataclass
class Message:
    role: Role
    text: str = ""
    name: str = ""  # tool name, for tool calls
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""


@dataclass
class Conversation:
    instructions: str
    tools: list[Tool]
    messages: list[Message]
    model: str = ""

    # --- what was said ---------------------------------------------------------------------
    def user_texts(self) -> list[str]:
        return [m.text for m in self.messages if m.role == "user"]

    def last_user_text(self) -> str:
        texts = self.user_texts()
        return texts[-1] if texts else ""

    def current_round(self) -> list[Message]:
        """The messages after the last user message: the work done for the current request."""
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].role == "user":
                return self.messages[i + 1 :]
        return list(self.messages)

    def results(self, tool_name: str | None = None) -> list[tuple[Message, str]]:
        """(call, output) pairs of the current round, in call order, optionally for one tool."""
        outputs = {m.call_id: m.text for m in self.current_round() if m.role == "tool_output"}
        return [
            (m, outputs[m.call_id])
            for m in self.current_round()
            if m.role == "tool_call" and m.call_id in outputs and (tool_name is None or m.name == tool_name)
        ]

    def called(self, tool_name: str) -> bool:
        return any(m.role == "tool_call" and m.name == tool_name for m in self.current_round())

    # --- what is offered ---------------------------------------------------------------------
    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def tool_with_param(self, param: str) -> Tool | None:
        return next((t for t in self.tools if param in t.param_names()), None)

    def agent_name(self) -> str:
        """A short label for logs: the first line of the instructions."""
        first = (
            self.instructions.strip().splitlines()[0] if self.instructions.strip() else "(no instructions)"
        )
        return first[:80]


@dataclass
class Reply:
    """The model's turn: either tool calls or a final text answer."""

    text: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


# --- parsing -------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def _args(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def from_responses_request(body: dict[str, Any]) -> Conversation:
    """Read a `POST /v1/responses` body."""
    instructions = _text_of(body.get("instructions"))
    tools = [
        Tool(t.get("name", ""), t.get("description") or "", t.get("parameters") or {})
        for t in body.get("tools") or []
        if t.get("type") == "function"
    ]
    raw_input = body.get("input")
    items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else (raw_input or [])
    messages: list[Message] = []
    for item in items:
        kind = item.get("type")
        role = item.get("role")
        if kind == "function_call":
            messages.append(
                Message(
                    "tool_call",
                    name=item.get("name", ""),
                    arguments=_args(item.get("arguments")),
                    call_id=item.get("call_id", ""),
                )
            )
        elif kind == "function_call_output":
            messages.append(
                Message("tool_output", text=_text_of(item.get("output")), call_id=item.get("call_id", ""))
            )
        elif role in ("system", "developer"):
            instructions = "\n".join(x for x in (instructions, _text_of(item.get("content"))) if x)
        elif role == "user":
            messages.append(Message("user", text=_text_of(item.get("content"))))
        elif role == "assistant":
            messages.append(Message("assistant", text=_text_of(item.get("content"))))
    return Conversation(instructions, tools, messages, model=str(body.get("model", "")))


def from_chat_request(body: dict[str, Any]) -> Conversation:
    """Read a `POST /v1/chat/completions` body."""
    tools = [
        Tool(f.get("name", ""), f.get("description") or "", f.get("parameters") or {})
        for t in body.get("tools") or []
        if t.get("type") == "function" and isinstance(f := t.get("function"), dict)
    ]
    instructions: list[str] = []
    messages: list[Message] = []
    for m in body.get("messages") or []:
        role = m.get("role")
        if role in ("system", "developer"):
            instructions.append(_text_of(m.get("content")))
        elif role == "user":
            messages.append(Message("user", text=_text_of(m.get("content"))))
        elif role == "assistant":
            if m.get("content"):
                messages.append(Message("assistant", text=_text_of(m.get("content"))))
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function") or {}
                messages.append(
                    Message(
                        "tool_call",
                        name=fn.get("name", ""),
                        arguments=_args(fn.get("arguments")),
                        call_id=tc.get("id", ""),
                    )
                )
        elif role == "tool":
            messages.append(
                Message("tool_output", text=_text_of(m.get("content")), call_id=m.get("tool_call_id", ""))
            )
    return Conversation("\n".join(instructions), tools, messages, model=str(body.get("model", "")))


# --- JSON schema helpers -------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return _resolve(node, root) if isinstance(node, dict) else {}
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list):
            # Optional[X] is anyOf [X, null]: fill in the X.
            for option in options:
                if isinstance(option, dict) and option.get("type") != "null":
                    return _resolve(option, root)
    return schema


def _walk_names(schema: dict[str, Any], root: dict[str, Any], out: set[str], depth: int) -> None:
    if depth > 8:
        return
    schema = _resolve(schema, root)
    for name, sub in (schema.get("properties") or {}).items():
        out.add(name)
        if isinstance(sub, dict):
            _walk_names(sub, root, out, depth + 1)


def fill_arguments(parameters: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Arguments matching a tool's JSON schema: leaves named in `values` get those values.

    Nested objects are filled recursively, so `{"req": {"city": ...}}` and `{"city": ...}` both work
    from `values={"city": "Denver"}`. Leaves without a value get their default or an empty value.
    """
    filled = _fill(parameters, parameters, values, depth=0)
    return filled if isinstance(filled, dict) else {}


def _fill(schema: dict[str, Any], root: dict[str, Any], values: dict[str, Any], depth: int) -> Any:
    schema = _resolve(schema, root)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        out: dict[str, Any] = {}
        for name, sub in (schema.get("properties") or {}).items():
            sub_resolved = _resolve(sub, root) if isinstance(sub, dict) else {}
            is_object = sub_resolved.get("type") == "object" or "properties" in sub_resolved
            if name in values and not (is_object and not isinstance(values[name], dict)):
                out[name] = values[name]
            elif depth < 8 and isinstance(sub, dict):
                out[name] = _fill(sub, root, values, depth + 1)
        return out
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    return {"string": "", "number": 0, "integer": 0, "boolean": False, "array": []}.get(str(kind))


# --- reading tool outputs ------------------------------------------------------------------------

_REPR_PAIR = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s]+)")


def parse_output(text: str) -> dict[str, Any] | None:
    """A tool output as a dict: JSON, or the `key=value` repr of a pydantic model; else None."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    pairs = _REPR_PAIR.findall(text)
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for key, raw in pairs:
        if raw[:1] in "'\"":
            out[key] = raw[1:-1]
        else:
            try:
                out[key] = json.loads(raw)
            except ValueError:
                out[key] = raw
    return out
