"""What every JSON route of the web process answers with, and what it takes from a browser."""

import json
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def message(status: int, text: str, **extra: object) -> JSONResponse:
    """An answer that says what happened: `{"message": ..., ...}`."""
    return JSONResponse({"message": text, **extra}, status_code=status)


def refused(request: Request) -> Response | None:
    """A POST that is not JSON, or that a page of another origin sends, is refused."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return message(415, "send JSON (content-type: application/json)")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return message(403, f"cross-origin request refused (origin {origin})")
    return None


async def json_body(request: Request) -> dict[str, Any] | Response:
    """The POST's JSON object, or the answer that refuses it."""
    if (refusal := refused(request)) is not None:
        return refusal
    try:
        body = json.loads(await request.body())
    except ValueError:
        return message(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return message(400, "the body must be a JSON object")
    return body
