"""What the real OpenAI API refuses with HTTP 400, checked before the policy sees a request.

Parameter names, required fields and basic types come from OpenAI's published OpenAPI document
(the subset in `openai_spec_subset.json`, see `spec_subset.py`). The rules the document cannot
express are written out here, with the API's own wording where it is known: every tool call
answered by exactly one output with its call_id, and no output without its call.

Not checked: deep schemas of content parts and tool definitions, model names, token limits of
the prompt, and anything that needs stored state (`previous_response_id`, `conversation`, which
are refused). Lenient on purpose: an optional field of an input item or message sent as null
counts as not sent (the Restate integration sends journaled items back that way; whether the live
API accepts every such null is not known here).
"""

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SPEC_SUBSET = Path(__file__).with_name("openai_spec_subset.json")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class InvalidRequest(Exception):
    """An HTTP 400 in the API's error shape."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, "invalid_request_error", self.param, self.code)


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# --- what the published spec says ----------------------------------------------------------------


@cache
def schemas() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_SUBSET.read_text())
    return data["components"]["schemas"]


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while isinstance(ref := node.get("$ref"), str):
        node = schemas()[ref.rsplit("/", 1)[1]]
    return node


def _properties(node: dict[str, Any], out: dict[str, Any], required: set[str]) -> None:
    node = _deref(node)
    for part in node.get("allOf", []):
        _properties(part, out, required)
    out.update(node.get("properties", {}))
    required.update(node.get("required", []))


@cache
def parameters(schema: str) -> tuple[dict[str, Any], frozenset[str]]:
    """The top-level properties of a request schema and its required ones (allOf merged)."""
    props: dict[str, Any] = {}
    required: set[str] = set()
    _properties(schemas()[schema], props, required)
    return props, frozenset(required)


def json_types(node: dict[str, Any], depth: int = 0) -> set[str] | None:
    """The JSON types a schema admits (None: any). Follows $ref, anyOf/oneOf, enums."""
    node = _deref(node)
    if depth > 10:
        return None
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        found: set[str] = set()
        for option in options:
            sub = json_types(option, depth + 1)
            if sub is None:
                return None
            found |= sub
        return found
    if "enum" in node:
        return {_type_of(v) for v in node["enum"]}
    if "properties" in node:
        return {"object"}
    return None


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a decimal",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def _fits(value: Any, allowed: set[str]) -> bool:
    kind = _type_of(value)
    return kind in allowed or (kind == "integer" and "number" in allowed)


def _check_type(value: Any, node: dict[str, Any], param: str) -> None:
    allowed = json_types(node)
    if allowed is not None and not _fits(value, allowed):
        wanted = " or ".join(_TYPE_WORDS.get(t, t) for t in sorted(allowed - {"null"}))
        raise InvalidRequest(
            f"Invalid type for '{param}': expected {wanted}, but got {_TYPE_WORDS[_type_of(value)]} instead.",
            param,
            "invalid_type",
        )
    if _type_of(value) in ("integer", "number"):
        low, high = _bounds(node)
        if low is not None and value < low:
            raise InvalidRequest(
                f"Invalid '{param}': {_type_of(value)} below minimum value. Expected a value >= {low:g}, "
                f"but got {value:g} instead.",
                param,
                f"{_type_of(value)}_below_min_value",
            )
        if high is not None and value > high:
            raise InvalidRequest(
                f"Invalid '{param}': {_type_of(value)} above maximum value. Expected a value <= {high:g}, "
                f"but got {value:g} instead.",
                param,
                f"{_type_of(value)}_above_max_value",
            )


def _bounds(node: dict[str, Any]) -> tuple[float | None, float | None]:
    """The minimum and maximum of the numeric branch of a schema, if it sets them."""
    node = _deref(node)
    for option in node.get("anyOf") or node.get("oneOf") or []:
        low, high = _bounds(option)
        if low is not None or high is not None:
            return low, high
    return node.get("minimum"), node.get("maximum")


def _check_required(item: dict[str, Any], schema: str, where: str) -> None:
    props, required = parameters(schema)
    for name in sorted(required):
        if name not in item:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.{name}'.",
                f"{where}.{name}",
                "missing_required_parameter",
            )
    for name, value in item.items():
        # An optional field sent as null counts as not sent: the Restate integration journals the
        # SDK's items and sends them back with every optional field, e.g. `"namespace": null`.
        if name in props and not (value is None and name not in required):
            _check_type(value, props[name], f"{where}.{name}")


def check_top_level(body: Any, schema: str, required: tuple[str, ...]) -> None:
    """Unknown parameters, missing required ones and wrong top-level types."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", None, "invalid_type")
    props, spec_required = parameters(schema)
    for name in body:
        if name not in props:
            raise InvalidRequest(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    for name in sorted({*spec_required, *required}):
        if body.get(name) is None:
            raise InvalidRequest(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    for name, value in body.items():
        _check_type(value, props[name], name)
    _check_stream_options(body, props)


def _check_stream_options(body: dict[str, Any], props: dict[str, Any]) -> None:
    """`stream_options` holds only the keys its schema names, and only with `stream: true`.

    The API's wording for a chat request with `stream_options` but no stream is known (HTTP 400,
    param `stream_options`); the Responses API's schema says the same ("Only set this when you
    set `stream: true`") and gets the same answer here.
    """
    options = body.get("stream_options")
    if options is None:
        return
    allowed: dict[str, Any] = {}
    for branch in _deref(props["stream_options"]).get("anyOf", []):
        allowed.update(_deref(branch).get("properties", {}))
    for name, value in options.items():
        param = f"stream_options.{name}"
        if name not in allowed:
            raise InvalidRequest(f"Unknown parameter: '{param}'.", param, "unknown_parameter")
        _check_type(value, allowed[name], param)
    if body.get("stream") is not True:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )


# --- the Responses API ----------------------------------------------------------------------------


def check_responses_request(body: Any) -> None:
    check_top_level(body, "CreateResponse", ("model",))
    for name in ("previous_response_id", "conversation"):
        if body.get(name) is not None:
            # The stand-in keeps nothing, so any id is unknown to it, as it would be to the API.
            raise InvalidRequest(f"The offline stand-in stores no state: '{name}' cannot be found.", name)
    if body.get("input") is None and body.get("prompt") is None:
        raise InvalidRequest("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    names = _check_tools(body.get("tools") or [], "tools", chat=False)
    _check_tool_choice(body, names, chat=False)
    items = body.get("input")
    if isinstance(items, list):
        _check_input_items(items)


def _check_input_items(items: list[Any]) -> None:
    calls: dict[str, int] = {}
    answered: set[str] = set()
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        kind = item.get("type", "message")
        if kind == "function_call":
            _check_required(item, "FunctionToolCall", where)
            calls[item["call_id"]] = i
        elif kind == "function_call_output":
            _check_required(item, "FunctionCallOutputItemParam", where)
            call_id = item["call_id"]
            if call_id not in calls:
                raise InvalidRequest(
                    f"No tool call found for function call output with call_id {call_id}.", "input"
                )
            answered.add(call_id)
        elif kind == "message":
            if item.get("role") not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(
                    f"Invalid value for '{where}.role': expected one of 'user', 'assistant', 'system' "
                    "or 'developer'.",
                    f"{where}.role",
                    "invalid_value",
                )
            _check_required(item, "EasyInputMessage", where)
    for call_id in calls:
        if call_id not in answered:
            raise InvalidRequest(f"No tool output found for function call {call_id}.", "input")


# --- Chat Completions ------------------------------------------------------------------------------

_CHAT_ROLES = {
    "system": "ChatCompletionRequestSystemMessage",
    "developer": "ChatCompletionRequestDeveloperMessage",
    "user": "ChatCompletionRequestUserMessage",
    "assistant": "ChatCompletionRequestAssistantMessage",
    "tool": "ChatCompletionRequestToolMessage",
    "function": "ChatCompletionRequestFunctionMessage",
}


def check_chat_request(body: Any) -> None:
    check_top_level(body, "CreateChatCompletionRequest", ("model", "messages"))
    messages = body["messages"]
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
            "array instead.",
            "messages",
            "empty_array",
        )
    names = _check_tools(body.get("tools") or [], "tools", chat=True)
    _check_tool_choice(body, names, chat=True)
    pending: dict[str, int] = {}  # tool_call_id -> index of the assistant message
    for i, m in enumerate(messages):
        where = f"messages.[{i}]"
        if not isinstance(m, dict):
            raise InvalidRequest(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        role = m.get("role")
        if role not in _CHAT_ROLES:
            raise InvalidRequest(
                f"Invalid value: '{role}'. Supported values are: {', '.join(repr(r) for r in _CHAT_ROLES)}.",
                f"{where}.role",
                "invalid_value",
            )
        if role != "tool" and pending:
            _unanswered(pending)
        _check_required(m, _CHAT_ROLES[role], where)
        if role == "assistant":
            for j, call in enumerate(m.get("tool_calls") or []):
                _check_required(call, "ChatCompletionMessageToolCall", f"{where}.tool_calls.[{j}]")
                pending[call["id"]] = i
        elif role == "tool" and pending.pop(m["tool_call_id"], None) is None:
            raise InvalidRequest(
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                "message with 'tool_calls'.",
                f"{where}.role",
            )
    if pending:
        _unanswered(pending)


def _unanswered(pending: dict[str, int]) -> None:
    index = min(pending.values())
    raise InvalidRequest(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        "'tool_call_id'. The following tool_call_ids did not have response messages: " + ", ".join(pending),
        f"messages.[{index}].role",
    )


# --- tools, both APIs --------------------------------------------------------------------------------


def _check_tools(tools: list[Any], where: str, chat: bool) -> list[str]:
    """The function names offered; a function tool without a valid name is refused."""
    names = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or "type" not in tool:
            raise InvalidRequest(
                f"Missing required parameter: '{where}[{i}].type'.",
                f"{where}[{i}].type",
                "missing_required_parameter",
            )
        if tool["type"] != "function":
            continue
        fn = tool.get("function") if chat else tool
        param = f"{where}[{i}].function.name" if chat else f"{where}[{i}].name"
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str):
            raise InvalidRequest(
                f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
            )
        if not _TOOL_NAME.match(name):
            raise InvalidRequest(
                f"Invalid '{param}': string does not match pattern. Expected a string that matches the "
                f"pattern '{_TOOL_NAME.pattern}'.",
                param,
                "invalid_value",
            )
        names.append(name)
    return names


def _check_tool_choice(body: dict[str, Any], names: list[str], chat: bool) -> None:
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise InvalidRequest(
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                "tool_choice",
                "invalid_value",
            )
        if choice == "required" and not names and not body.get("tools"):
            raise InvalidRequest(
                "Tool choice 'required' must be used with 'tools'.", "tool_choice", "invalid_value"
            )
        return
    name = forced_tool(choice, chat)
    if name is not None and name not in names:
        raise InvalidRequest(
            f"Tool choice 'function' not found in 'tools' parameter: no function named '{name}'.",
            "tool_choice",
            "invalid_value",
        )


def forced_tool(choice: Any, chat: bool) -> str | None:
    """The function a `tool_choice` object names, if any."""
    if not isinstance(choice, dict) or choice.get("type") != "function":
        return None
    fn = choice.get("function") if chat else choice
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        param = "tool_choice.function.name" if chat else "tool_choice.name"
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    return name
