"""Responses API request bodies, built without the OpenAI client's per-call type walk.

Before it sends a request, the OpenAI client walks the body against the request's TypedDicts to
rename aliased fields and format dates and files. No Responses request type has an alias or a
format (checked below, once, on the installed openai), so on a body of plain JSON values the walk
only drops the arguments left out (`omit`), for 3-4 ms of CPU per LLM call (bench/NOTES.md).
`install()` gives `responses.create` that body directly when everything in it is a plain JSON
value; anything else goes through openai's own transform, as does every other endpoint. Nothing
changes on the wire: tests/runtime/test_request_body.py compares both on the tour's bodies.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from typing_extensions import is_typeddict

Transform = Callable[[Any, Any], Awaitable[Any]]


def renames_or_formats(annotation: Any, seen: set[int] | None = None) -> bool:
    """Whether openai's transform could change a plain JSON value of this type: an alias or a
    format anywhere in it (a TypedDict's fields, a union's members, a list's items)."""
    from openai._utils._transform import PropertyInfo

    seen = set() if seen is None else seen
    if id(annotation) in seen:
        return False
    seen.add(id(annotation))
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        if any(isinstance(m, PropertyInfo) and (m.alias or m.format) for m in metadata):
            return True
        return renames_or_formats(base, seen)
    if is_typeddict(annotation):
        fields = get_type_hints(annotation, include_extras=True).values()
        return any(renames_or_formats(field, seen) for field in fields)
    return any(renames_or_formats(arg, seen) for arg in get_args(annotation))


def plain_json(value: Any) -> bool:
    """True for what json.dumps writes as is: dicts with str keys, lists, str, numbers, bools, None."""
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return True
    if type(value) is dict:
        return all(isinstance(k, str) and plain_json(v) for k, v in value.items())
    if type(value) is list:
        return all(plain_json(v) for v in value)
    return False


def without_the_walk(transform: Transform, request_types: tuple[Any, ...]) -> Transform:
    """`transform`, except for a body of one of `request_types` made of plain JSON values: that
    body, less the arguments left out."""
    from openai._utils import is_given

    async def transform_body(data: Any, expected_type: Any) -> Any:
        if expected_type in request_types and type(data) is dict:
            body = {key: value for key, value in data.items() if is_given(value)}
            if plain_json(body):
                return body
        return await transform(data, expected_type)

    transform_body.openai_transform = transform  # type: ignore[attr-defined]
    return transform_body


def install() -> bool:
    """Build `responses.create` bodies without the walk, if this openai version's request types
    let nothing else change. Returns whether it did."""
    try:
        from openai.resources.responses import responses
        from openai.types.responses import response_create_params as params
    except ImportError:  # another layout: leave the client as it is
        return False
    transform = getattr(responses, "async_maybe_transform", None)
    if transform is None:
        return False
    if hasattr(transform, "openai_transform"):
        return True
    request_types = (params.ResponseCreateParamsNonStreaming, params.ResponseCreateParamsStreaming)
    if any(renames_or_formats(t) for t in request_types):
        return False
    responses.async_maybe_transform = without_the_walk(transform, request_types)  # type: ignore[assignment]
    return True
