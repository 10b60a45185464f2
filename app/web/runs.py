"""A run's page, beyond its progress events: where its trace is.

    GET /api/runs/<invocation id>/trace    {"url": ..., "trace_id": ...}: the run's trace in Phoenix

With traces on (`make run-traced` sets TRACES_URL, the trace viewer's address), the web process
asks Phoenix for a span of the run (restate-server tags each with `restate.invocation.id`) and
answers with the address of its trace; a sub-agent's run is found in its caller's trace. 404 when
traces are off, or when Phoenix has no span of the run (yet: spans reach it within a second or
two); 400 for something that is not an invocation id.
"""

import re
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.web.settings import Settings

INVOCATION_ID = re.compile(r"inv_[0-9A-Za-z]{20,40}")


def _message(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


def invocation_id(request: Request) -> str | Response:
    """The path's invocation id, or the 400 that says it is not one."""
    run_id: str = request.path_params["run_id"]
    if not INVOCATION_ID.fullmatch(run_id):
        return _message(400, f"not an invocation id: {run_id[:60]!r} (they look like inv_1abc...)")
    return run_id


async def trace(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    run_id = invocation_id(request)
    if isinstance(run_id, Response):
        return run_id
    if not settings.traces_url:
        return _message(404, "traces are off: start the tour with `make run-traced`", traces=False)
    spans = f"{settings.traces_url}/v1/projects/{quote(settings.traces_project, safe='')}/spans"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.get(
                spans, params={"attribute": f"restate.invocation.id:{run_id}", "limit": 1}
            )
    except httpx.HTTPError as e:
        return _message(
            502, f"the trace viewer at {settings.traces_url} could not be reached: {e}", traces=True
        )
    found = resp.json().get("data", []) if resp.status_code == 200 else []
    if not found:
        return _message(404, f"no trace of {run_id} in the trace viewer (yet)", traces=True)
    trace_id = str(found[0]["context"]["trace_id"])
    # Phoenix's own address for a trace, whichever project holds it.
    url = f"{settings.traces_url}/redirects/traces/{trace_id}"
    return JSONResponse({"url": url, "trace_id": trace_id, "traces": True})


routes = [Route("/api/runs/{run_id}/trace", trace)]
