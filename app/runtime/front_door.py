"""The front door: one input contract for every handler, enforced in one place.

The rules live on the request models (`RequestModel`, app/runtime/request_models.py): unknown
fields refused, strict types. `enforce_input_contract(services)` — called once, on the
endpoint's list of services — makes every handler that takes a pydantic model answer a request
that breaks the rules with a `TerminalError(status_code=400)` whose message names the field and
the rule, e.g. `Invalid request: amount: must be greater than 0`. Why here and not in the SDK's
serde, and why the wrapper also restores a tool's 4xx: docs/front-door.md. A request's `x-tenant`
header is checked here too (app/runtime/tenants.py).
"""

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

import restate
from pydantic import BaseModel, ValidationError
from restate.handler import Handler
from restate.serde import PydanticJsonSerde, Serde, is_pydantic

from app.runtime.tenants import check_tenant

M = TypeVar("M", bound=BaseModel)

# --- the 400 ------------------------------------------------------------------------------------

_RULES = {
    "extra_forbidden": "unknown field",
    "missing": "required",
    "model_type": "the body must be a JSON object",
    "model_attributes_type": "the body must be a JSON object",
    "json_invalid": "the body is not valid JSON",
    "json_type": "the body is not valid JSON",
    "float_type": "must be a number",
    "int_type": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "string_too_short": "must not be empty",
    "date_type": "must be a date, YYYY-MM-DD",
    "date_parsing": "must be a date, YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a date, YYYY-MM-DD",
    "date_from_datetime_inexact": "must be a date, YYYY-MM-DD",
}


def describe(error: ValidationError) -> str:
    """'Invalid request: amount: must be greater than 0; foo: unknown field' (no pydantic URLs)."""
    problems = []
    for e in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in e["loc"])
        rule = _RULES.get(e["type"]) or str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "string_too_long":
            rule = f"must be at most {e.get('ctx', {}).get('max_length')} characters"
        problems.append(f"{where}: {rule}" if where else rule)
    shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
    return f"Invalid request: {shown}"


class Rejected:
    """What the input serde hands the handler instead of a model when the request breaks the rules."""

    def __init__(self, message: str) -> None:
        self.message = message


class ContractSerde(Serde[M], Generic[M]):
    """JSON <-> pydantic model; a body that breaks the contract becomes `Rejected`, never an exception."""

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def deserialize(self, buf: bytes) -> M | Rejected:  # type: ignore[override]
        if not buf:
            return Rejected("Invalid request: the body is empty; send a JSON object (e.g. {})")
        try:
            return self.model.model_validate_json(buf)
        except ValidationError as e:
            return Rejected(describe(e))

    def serialize(self, obj: M | dict[str, Any] | None) -> bytes:
        if obj is None:
            return b""
        if not isinstance(obj, self.model):
            obj = self.model.model_validate(obj)
        return obj.model_dump_json(by_alias=True).encode()


def _caller_error(error: restate.TerminalError) -> restate.TerminalError | None:
    """The 4xx TerminalError that a generic 500 stands for (see the module docstring), if any."""
    if error.status_code != 500:
        return None
    seen: set[int] = set()
    cause: BaseException | None = error.__context__ or error.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, restate.TerminalError) and 400 <= cause.status_code < 500:
            return cause if cause.message == error.message else None
        cause = cause.__cause__ or cause.__context__
    return None


def _guard(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def guarded(restate_context: Any, *args: Any) -> Any:
        check_tenant(restate_context)
        if args and isinstance(args[0], Rejected):
            raise restate.TerminalError(args[0].message, status_code=400)
        try:
            return await fn(restate_context, *args)
        except restate.TerminalError as e:
            if (original := _caller_error(e)) is not None:
                raise restate.TerminalError(original.message, original.status_code, original.metadata) from e
            raise

    return guarded


def enforce_input_contract(
    services: Iterable[restate.Service | restate.VirtualObject | restate.Workflow],
) -> None:
    """Install the contract on every handler of `services` (once, before the app is built)."""
    for service in services:
        handler: Handler[Any, Any]
        for handler in service.handlers.values():
            if getattr(handler.fn, "__contract__", False):
                continue
            io = handler.handler_io
            model = io.input_type.annotation if io.input_type is not None else None
            if (
                handler.arity == 2
                and model is not None
                and is_pydantic(model)
                and isinstance(io.input_serde, PydanticJsonSerde)
            ):
                io.input_serde = ContractSerde(model)
            handler.fn = _guard(handler.fn)
            handler.fn.__contract__ = True  # type: ignore[attr-defined]
