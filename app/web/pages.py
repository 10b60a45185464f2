"""Pages for the people in the loop: the reviewers' inbox, a live run view, a chat, evaluations.

    GET  /reviews                      the reviewers' inbox (updates itself)
    GET  /runs/<invocation id>         a streaming run's progress events, live
    GET  /chat/<key>                   the conversation of Chat/<key>, with a box for the next message
    GET  /evals/<run id>               an evaluation run's report, as far as it has come
    GET  /spend                        every tenant's budget, use and reservations, live

The pages are static HTML and a little JavaScript (app/web/static/); what they show comes from the
JSON routes below, which read and write through the Restate ingress (the list of tenants alone
comes from the admin API's SQL, server side):

    GET  /api/reviews                  ReviewInbox/reviewers/list
    GET  /api/reviews/stream           server-sent events: the list, each time it changes
    POST /api/reviews/<id>/decision    {"approved": true|false}: resolves the review's awakeable
    GET  /api/chat/<key>/history       Chat/<key>/get_history, as [{"role", "text"}]
    POST /api/chat/<key>/message       {"message": "..."}: Chat/<key>/message, waits for the answer
    GET  /api/evals/<run id>           Evaluation/<run id>/report
    GET  /api/spend                    Spend/<tenant>/get of every tenant that has spent or has a budget

A decision is accepted only for a review that is in the inbox (404 otherwise). A review whose
invocation has ended without removing it (killed: no code ran) is left out (`EndedRuns`). The JavaScript puts
every text into the page with `textContent`; a strict Content-Security-Policy (scripts and styles
from this origin only, no inline code) is set on every response. POSTs must be JSON and, when the
browser names an origin, come from this one.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.answers import json_body, message
from app.web.runs import admin_query
from app.web.settings import Settings

STATIC = Path(__file__).parent / "static"
INBOX = "/ReviewInbox/reviewers/list"
# A chat answer may take a while with a real model (several LLM calls, retries).
CHAT_TIMEOUT_SECONDS = 300.0

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """Adds the Content-Security-Policy and friends to every response (streams included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers={"cache-control": "no-cache"})


def _ingress(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.ingress
    return client


class EndedRuns:
    """The invocations of reviews that have ended without taking their review out of the inbox.

    An invocation killed from the UI or the admin API runs no more code, so its review stays in
    the inbox; resolving it would do nothing. Such reviews are left out. Whether an invocation
    still runs is asked through the ingress (HTTP 470: not completed yet), at most every
    RECHECK_SECONDS per invocation; an ended one stays ended.
    """

    RECHECK_SECONDS = 10.0

    def __init__(self) -> None:
        self.ended: set[str] = set()
        self.checked: dict[str, float] = {}

    async def void(self, client: httpx.AsyncClient, reviews: list[dict[str, Any]]) -> set[str]:
        now = time.monotonic()
        current = {r["invocationId"] for r in reviews}
        self.checked = {inv: at for inv, at in self.checked.items() if inv in current}
        self.ended &= current
        for inv in current - self.ended:
            if now - self.checked.get(inv, -self.RECHECK_SECONDS) < self.RECHECK_SECONDS:
                continue
            self.checked[inv] = now
            resp = await client.get(f"/restate/invocation/{quote(inv, safe='')}/output")
            from_ingress = resp.headers.get("x-restate-error-source") == "ingress"
            if resp.status_code != 470 and not (from_ingress and resp.status_code >= 500):
                self.ended.add(inv)  # completed, failed, killed, or gone after its retention
        return self.ended


async def _reviews(request: Request) -> list[dict[str, Any]]:
    """The pending reviews that can still be decided, oldest first."""
    client = _ingress(request)
    resp = await client.get(INBOX)
    resp.raise_for_status()
    reviews: list[dict[str, Any]] = resp.json()["reviews"]
    void = await request.app.state.ended_runs.void(client, reviews)
    return [r for r in reviews if r["invocationId"] not in void]


def _passed_on(resp: httpx.Response) -> JSONResponse:
    """An error answer of the ingress, passed on with its message (e.g. the contract's 400)."""
    try:
        said = str(resp.json().get("message") or resp.text)
    except (ValueError, AttributeError):
        said = resp.text[:200]
    return message(resp.status_code if 400 <= resp.status_code < 500 else 502, said)


def _unreachable(e: httpx.HTTPError) -> JSONResponse:
    return message(502, f"the Restate ingress could not be reached: {e}")


# --- pages ---------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    return RedirectResponse("/reviews")


async def reviews_page(request: Request) -> Response:
    return _page("reviews.html")


async def run_page(request: Request) -> Response:
    return _page("run.html")


async def chat_page(request: Request) -> Response:
    return _page("chat.html")


async def eval_page(request: Request) -> Response:
    return _page("eval.html")


async def spend_page(request: Request) -> Response:
    return _page("spend.html")


# --- the inbox -----------------------------------------------------------------------------------


async def list_reviews(request: Request) -> Response:
    try:
        return JSONResponse({"reviews": await _reviews(request)})
    except httpx.HTTPError as e:
        return _unreachable(e)


async def review_stream(request: Request) -> Response:
    """The inbox as server-sent events: the whole list first, then again each time it changes."""
    settings: Settings = request.app.state.settings

    async def frames() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"  # the browser reconnects after a second when the stream ends
        last: str | None = None
        last_change = time.monotonic()
        while time.monotonic() - last_change < settings.stream_idle_seconds:
            try:
                event, data = "reviews", json.dumps({"reviews": await _reviews(request)})
            except httpx.HTTPError as e:
                problem = f"the Restate ingress could not be reached: {e}"
                event, data = "unreachable", json.dumps({"message": problem})
            if data != last:
                yield f"event: {event}\ndata: {data}\n\n"
                last, last_change = data, time.monotonic()
            await asyncio.sleep(settings.poll_seconds)
        # Ends after STREAM_IDLE_SECONDS without a change; the page reconnects and gets the list anew.

    return StreamingResponse(
        frames(), headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
    )


async def decide(request: Request) -> Response:
    review_id: str = request.path_params["review_id"]
    body = await json_body(request)
    if isinstance(body, Response):
        return body
    approved = body.get("approved")
    if not isinstance(approved, bool) or set(body) != {"approved"}:
        return message(400, 'send {"approved": true} or {"approved": false}')
    client = _ingress(request)
    try:
        if not any(r["id"] == review_id for r in await _reviews(request)):
            return message(404, f"no pending review {review_id} (decided already, or timed out)")
        # Exactly what the curl command in the log does.
        resp = await client.post(f"/restate/awakeables/{quote(review_id, safe='')}/resolve", json=approved)
    except httpx.HTTPError as e:
        return _unreachable(e)
    if resp.status_code >= 300:
        return message(502, f"the ingress refused the decision: HTTP {resp.status_code} {resp.text[:200]}")
    return JSONResponse({"id": review_id, "approved": approved}, status_code=202)


# --- the chat ------------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def conversation(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The messages of a session's items ({"role", "text"}); tool calls and their outputs left out."""
    messages = []
    for item in items:
        role = item.get("role")
        if role in ("user", "assistant") and item.get("type", "message") == "message":
            messages.append({"role": str(role), "text": _text(item.get("content"))})
    return messages


def _chat_path(request: Request, handler: str) -> str:
    return f"/Chat/{quote(request.path_params['key'], safe='')}/{handler}"


async def chat_history(request: Request) -> Response:
    try:
        resp = await _ingress(request).get(_chat_path(request, "get_history"))
    except httpx.HTTPError as e:
        return _unreachable(e)
    if resp.status_code != 200:
        return _passed_on(resp)
    return JSONResponse({"messages": conversation(resp.json())})


async def chat_message(request: Request) -> Response:
    body = await json_body(request)
    if isinstance(body, Response):
        return body
    # The sender's tenant goes with the message (docs/front-door.md, tenants).
    tenant = {"x-tenant": request.headers["x-tenant"]} if "x-tenant" in request.headers else {}
    try:
        resp = await _ingress(request).post(
            _chat_path(request, "message"), json=body, timeout=CHAT_TIMEOUT_SECONDS, headers=tenant
        )
    except httpx.HTTPError as e:
        return _unreachable(e)
    if resp.status_code != 200:
        return _passed_on(resp)
    return JSONResponse({"answer": resp.json()})


# --- evaluation reports ------------------------------------------------------------------------------


async def eval_report(request: Request) -> Response:
    """An evaluation run's report (`Evaluation/<run id>/report`), as far as it has come."""
    path = f"/Evaluation/{quote(request.path_params['run_id'], safe='')}/report"
    try:
        resp = await _ingress(request).get(path)
    except httpx.HTTPError as e:
        return _unreachable(e)
    if resp.status_code != 200:
        return _passed_on(resp)
    return JSONResponse(resp.json())


# --- tenants' spend -----------------------------------------------------------------------------------

MAX_TENANTS = 200


async def spend_list(request: Request) -> Response:
    """The tenants Restate holds state for in `Spend` (asked on the admin API, server side), each as
    `Spend/<tenant>/get` answers through the ingress."""
    settings: Settings = request.app.state.settings
    sql = "SELECT DISTINCT service_key FROM state WHERE service_name = 'Spend' ORDER BY service_key"
    try:
        async with httpx.AsyncClient(base_url=settings.admin_url, timeout=10) as admin:
            rows = await admin_query(admin, sql)
        tenants = [str(row["service_key"]) for row in rows][:MAX_TENANTS]
        client = _ingress(request)
        answers = await asyncio.gather(*(client.get(f"/Spend/{quote(t, safe='')}/get") for t in tenants))
    except httpx.HTTPError as e:
        return message(502, f"Restate could not be reached: {e}")
    return JSONResponse({"tenants": [a.json() for a in answers if a.status_code == 200]})


routes = [
    Route("/", home),
    Route("/reviews", reviews_page),
    Route("/runs/{run_id}", run_page),
    Route("/chat/{key}", chat_page),
    Route("/evals/{run_id}", eval_page),
    Route("/spend", spend_page),
    Route("/api/spend", spend_list),
    Route("/api/reviews", list_reviews),
    Route("/api/reviews/stream", review_stream),
    Route("/api/reviews/{review_id}/decision", decide, methods=["POST"]),
    Route("/api/chat/{key}/history", chat_history),
    Route("/api/chat/{key}/message", chat_message, methods=["POST"]),
    Route("/api/evals/{run_id}", eval_report),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
