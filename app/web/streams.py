"""Reading an agent's progress stream (the `AgentEvents` topic of app/advanced/streaming/topic.py).

    GET /streams/<invocation id>                   text/event-stream: every event, until `done`
    GET /streams/<invocation id>/events?offset=N&wait=S    JSON {"events", "next_offset", "done"}

Both read the topic through the Restate ingress, waiting at it (`AgentEvents/<id>/next`): the
topic answers as soon as an event lands, so nothing is polled. An SSE reader that reconnects
sends `Last-Event-ID` and gets the events after it: none missed, none twice. The SSE stream also
carries the answer's text live, as the endpoint sends it here (app/web/live.py): those events
have no id, and each piece of text comes once per connection (`at` says where it starts).

- 404 at once for a run Restate does not know (the ingress's invocation status says so, and the
  topic holds no event for it); 400 for an offset that is not a whole number >= 0, or a wait that
  is not a number of seconds between 0 and 60.
- A stream ends when the run is done, when the reader goes away (nothing is read for it after
  that), or after STREAM_IDLE_SECONDS (default 300) without a new event, with a last `idle`
  event: reconnect to read on.
- 502 if the ingress cannot be reached.
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.web import live
from app.web.answers import message
from app.web.settings import Settings

log = logging.getLogger(__name__)

# The longest one wait at the topic: the stream checks that its reader is still there in between.
MAX_WAIT_SECONDS = 25.0


class BadRequest(Exception):
    pass


def _whole_number(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number >= 0 (got {raw!r})") from None
    if value < 0:
        raise BadRequest(f"{name} must be a whole number >= 0 (got {raw!r})")
    return value


def _offset(request: Request) -> int:
    if (raw := request.query_params.get("offset")) is not None:
        return _whole_number("offset", raw)
    if (last := request.headers.get("last-event-id")) is not None:
        # A reconnecting SSE client sends the id (offset) of the last event it saw.
        return _whole_number("Last-Event-ID", last) + 1
    return 0


def _wait(request: Request, settings: Settings) -> float:
    raw = request.query_params.get("wait", "10")
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= settings.max_wait_seconds:  # also refuses nan
        raise BadRequest(
            f"wait must be a number of seconds from 0 to {settings.max_wait_seconds:g} (got {raw!r})"
        )
    return wait


async def _read(client: httpx.AsyncClient, run_id: str, offset: int, wait: float = 0) -> dict[str, Any]:
    """The events after `offset`; with `wait`, the topic holds the call until one lands (a push:
    `AgentEvents/<id>/next` returns as soon as the run publishes), or `wait` seconds have passed."""
    resp = await client.post(
        f"/AgentEvents/{quote(run_id, safe='')}/next",
        json={"offset": offset, "wait": wait},
        timeout=wait + 10,
    )
    resp.raise_for_status()
    page: dict[str, Any] = resp.json()
    return page


async def _run_exists(client: httpx.AsyncClient, run_id: str) -> bool:
    """Does Restate know this invocation? Asked through the ingress, as any reader could."""
    resp = await client.get(f"/restate/invocation/{quote(run_id, safe='')}/output")
    if resp.headers.get("x-restate-error-source") == "ingress" and resp.status_code in (400, 404):
        # Not found, or not an invocation id at all. A run whose record is gone (after its
        # retention) still has its events.
        return bool((await _read(client, run_id, 0))["events"])
    return True  # done (200 or its failure), or still running (470)


async def _checked(request: Request) -> tuple[str, int, httpx.AsyncClient] | Response:
    """The run id, the offset and the ingress client; or the response that refuses the request."""
    run_id: str = request.path_params["run_id"]
    try:
        offset = _offset(request)
    except BadRequest as e:
        return message(400, str(e))
    client: httpx.AsyncClient = request.app.state.ingress
    try:
        if not await _run_exists(client, run_id):
            return message(404, f"unknown run: {run_id} (use the invocationId that /send returned)")
    except httpx.HTTPError as e:
        return message(502, f"the Restate ingress could not be reached: {e}")
    return run_id, offset, client


async def long_poll(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    try:
        wait = _wait(request, settings)
    except BadRequest as e:
        return message(400, str(e))
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    run_id, offset, client = checked
    try:
        return JSONResponse(await _read(client, run_id, offset, wait))
    except httpx.HTTPError as e:
        return message(502, f"the Restate ingress could not be reached: {e}")


def _frame(event: dict[str, Any]) -> str:
    # Live text has no id: a reconnecting reader resumes after the topic's last event it saw.
    head = f"id: {event['offset']}\n" if "offset" in event else ""
    return f"{head}event: {event['type']}\ndata: {json.dumps(event)}\n\n"


async def _topic_pages(
    client: httpx.AsyncClient, run_id: str, offset: int, settings: Settings, queue: live.Queue
) -> None:
    """The topic's pages from `offset` onto `queue` (waiting at the topic in between), until the
    run is done or nothing came for `stream_idle_seconds`; then ("idle", ...) or ("error", ...)."""
    try:
        last_event = time.monotonic()
        while True:
            idle_left = settings.stream_idle_seconds - (time.monotonic() - last_event)
            page = await _read(client, run_id, offset, wait=max(0.0, min(idle_left, MAX_WAIT_SECONDS)))
            queue.put_nowait(("page", page))
            if page["events"]:
                last_event = time.monotonic()
            offset = page["next_offset"]
            if page["done"]:
                return
            if time.monotonic() - last_event >= settings.stream_idle_seconds:
                idle = {"type": "idle", "seconds": settings.stream_idle_seconds, "next_offset": offset}
                queue.put_nowait(("idle", idle))
                return
    except httpx.HTTPError as e:
        queue.put_nowait(("error", {"type": "error", "message": f"ingress: {e}"}))
    except Exception as e:
        # Anything else ends the stream too (its reader would otherwise wait for ever), and is logged.
        queue.put_nowait(("error", {"type": "error", "message": f"the web process: {type(e).__name__}"}))
        log.exception("Reading the topic of run %s failed", run_id)


async def server_sent_events(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    run_id, offset, client = checked

    async def frames() -> AsyncIterator[str]:
        # Counted while open, so /health shows that a reader who went away is no longer served.
        request.app.state.open_streams += 1
        readers: live.Readers = request.app.state.live
        queue: live.Queue = asyncio.Queue()
        readers.add(run_id, queue)
        readers.ask_early(client, run_id)
        topic = asyncio.create_task(_topic_pages(client, run_id, offset, settings, queue))
        merge = live.Merge()
        try:
            while True:
                kind, item = await queue.get()
                if kind == "live":
                    for event in merge.live(item):
                        yield _frame(event)
                elif kind == "page":
                    readers.ask_early(client, run_id)
                    for event in item["events"]:
                        for out in merge.durable(event):
                            yield _frame(out)
                    if item["done"]:
                        return
                else:  # idle, or the ingress could not be reached
                    yield f"event: {kind}\ndata: {json.dumps(item)}\n\n"
                    return
        finally:
            topic.cancel()
            readers.remove(run_id, queue)
            request.app.state.open_streams -= 1

    # Starlette stops `frames` as soon as the client disconnects (it listens for http.disconnect).
    return StreamingResponse(
        frames(), headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
    )


routes = [
    Route("/streams/{run_id}", server_sent_events, methods=["GET"]),
    Route("/streams/{run_id}/live", live.receive, methods=["POST"]),
    Route("/streams/{run_id}/events", long_poll, methods=["GET"]),
]
