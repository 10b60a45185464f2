"""The public web process: what people and browsers reach (the endpoint is Restate's alone).

    python -m app.web            # http://127.0.0.1:8000 (WEB_HOST / WEB_PORT, or --host / --port)

It talks to Restate only through the ingress (RESTATE_INGRESS_URL, default
http://localhost:8080), never to the endpoint. It serves the agents' progress streams
(app/web/streams.py) and the pages for the people in the loop (app/web/pages.py). `make run`
starts it and prints its address.

    GET /reviews                                 the reviewers' inbox: pending reviews, Approve / Reject
    GET /runs/<invocation id>                    a streaming run's progress, live
    GET /chat/<key>                              the Chat object's conversation, and a box to write
    GET /api/runs/<invocation id>/trace          where the run's trace is (with traces on: app/web/runs.py)

    GET /health                                  {"status": "ok", "open_streams": 0}
    GET /streams/<invocation id>                 server-sent events until the run is done
    GET /streams/<invocation id>/events?offset=N&wait=S    long-poll: JSON, events after N
    POST /streams/<invocation id>/live           the endpoint's streamed text, for the readers now
"""

import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.web import live, pages, runs, streams
from app.web.settings import Settings


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(base_url=settings.ingress_url, timeout=30) as client:
            app.state.ingress = client
            yield

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "open_streams": request.app.state.open_streams})

    app = Starlette(
        routes=[Route("/health", health), *streams.routes, *pages.routes, *runs.routes],
        middleware=[Middleware(pages.SecurityHeaders)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.open_streams = 0
    app.state.live = live.Readers()
    app.state.ended_runs = pages.EndedRuns()
    return app
