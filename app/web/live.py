"""Streamed text, live: the endpoint sends each batch of an answer's text here too, beside the
run's topic, and the readers of /streams/<id> on this process get it at once.

The topic (`AgentEvents`) stays the record: numbered events, voids, what a reconnecting reader
reads. Its per-run invocation queue is what makes it slow to deliver (~100 ms: the run's progress
events and the readers' waits queue ahead of the text); a live copy takes a few milliseconds.

    POST /streams/<invocation id>/live    {"token", "seq", "events"}: one batch, as sent to the topic

- The batch must carry the run's stream token: the topic has its digest (`AgentEvents/<id>/text_digest`),
  so text that does not come from the run is refused with a 403, here as there. 202 when shown,
  204 when no reader of this process waits for the run (nothing checked, nothing kept).
- Live events have no `offset`, and `"live": true`. Every text_delta carries `at`, where it starts
  in its attempt's text; `Merge` sends each piece of text once per connection: the topic's copy of
  text already shown live goes out with what was not shown yet (often ""), keeping its offset.
- The topic decides: text of an attempt it voids is voided; an attempt shown live that the topic
  never carried (its call ended without it, or the run did) is voided here, at once.
"""

import asyncio
import hmac
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.advanced.streaming.topic import TextBatch, token_digest

Queue = asyncio.Queue[tuple[str, Any]]


class Readers:
    """The readers of each run on this process (their queues), and the runs' token digests."""

    def __init__(self) -> None:
        self.queues: dict[str, set[Queue]] = {}
        self.digests: dict[str, str] = {}
        self.asking: dict[str, asyncio.Task[str | None]] = {}

    def add(self, run_id: str, queue: Queue) -> None:
        self.queues.setdefault(run_id, set()).add(queue)

    def remove(self, run_id: str, queue: Queue) -> None:
        queues = self.queues.get(run_id, set())
        queues.discard(queue)
        if not queues:
            self.queues.pop(run_id, None)
            self.digests.pop(run_id, None)

    async def digest(self, client: httpx.AsyncClient, run_id: str) -> str | None:
        """The digest of the run's stream token, asked of its topic (a shared handler: it does
        not wait behind the run's events) until it has one."""
        if (known := self.digests.get(run_id)) is not None:
            return known
        resp = await client.post(f"/AgentEvents/{quote(run_id, safe='')}/text_digest", json=None)
        resp.raise_for_status()
        digest = resp.json()
        if isinstance(digest, str) and run_id in self.queues:
            self.digests[run_id] = digest
        return digest if isinstance(digest, str) else None

    def ask_early(self, client: httpx.AsyncClient, run_id: str) -> None:
        """Ask for the digest now, in the background, if it is not known yet: the run's first
        text then waits for no round trip (the run registers its token before its first event)."""
        if run_id in self.digests or run_id in self.asking:
            return
        task = asyncio.create_task(self.digest(client, run_id))
        self.asking[run_id] = task
        task.add_done_callback(lambda done: self._asked(run_id, done))

    def _asked(self, run_id: str, task: "asyncio.Task[str | None]") -> None:
        self.asking.pop(run_id, None)
        if not task.cancelled():
            task.exception()  # retrieved, not raised: a failed early ask is made again later


async def receive(request: Request) -> Response:
    run_id: str = request.path_params["run_id"]
    readers: Readers = request.app.state.live
    if run_id not in readers.queues:
        return Response(status_code=204)
    try:
        batch = TextBatch.model_validate_json(await request.body())
    except ValidationError as e:
        return JSONResponse({"message": str(e)}, status_code=400)
    try:
        digest = await readers.digest(request.app.state.ingress, run_id)
    except httpx.HTTPError as e:
        return JSONResponse({"message": f"the Restate ingress could not be reached: {e}"}, status_code=502)
    if digest is None or not hmac.compare_digest(token_digest(batch.token), digest):
        return JSONResponse({"message": "Refused: the text does not carry this run's stream token."}, 403)
    events = [e.model_dump() for e in batch.events]
    for queue in readers.queues.get(run_id, set()):
        queue.put_nowait(("live", events))
    return Response(status_code=202)


class Merge:
    """What one connection has shown of each attempt's text, live or from the topic: every piece
    goes out once, and the topic's voids (and its silence) settle the live text."""

    def __init__(self) -> None:
        self.shown: dict[str, int] = {}  # attempt -> characters of its text sent
        self.calls: dict[str, int] = {}  # attempt -> its call, for attempts started on this connection
        self.on_topic: set[str] = set()  # attempts the topic carries
        self.voided: set[str] = set()
        self.cut: set[str] = set()  # a live batch went missing: the topic sends the rest
        self.ended = 0  # the last call the topic ended

    def live(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in events:
            attempt, call = event["attempt"], event["call"]
            if attempt in self.voided or attempt in self.cut or call <= self.ended:
                continue  # voided, cut off, or its call has its answer already
            if event["type"] == "text_start":
                if attempt in self.calls:
                    continue
                # A new attempt at a call: the text of the one before it is not the answer (the
                # topic says so too, when the new attempt's text reaches it).
                out += self._void("the LLM call is being retried", call=call, on_topic=True)
                self.calls[attempt] = call
                out.append({"type": "text_start", "call": call, "attempt": attempt, "live": True})
            elif event["type"] == "text_delta":
                if attempt not in self.calls:
                    continue
                piece = self._piece(attempt, event["at"], event["delta"])
                if piece is None:  # a batch went missing: the topic sends the rest
                    self.cut.add(attempt)
                elif piece[1]:
                    at, delta = piece
                    out.append({"type": "text_delta", "call": call, "attempt": attempt, "at": at, "delta": delta, "live": True})  # fmt: skip
            elif attempt in self.calls:  # text_void from the attempt itself
                out += self._void(event.get("reason") or "the attempt failed", attempt=attempt, on_topic=True)
        return out

    def durable(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind, attempt = event["type"], event.get("attempt", "")
        if kind == "text_start":
            self.on_topic.add(attempt)
            self.calls.setdefault(attempt, event["call"])
        elif kind == "text_delta":
            at, delta = self._piece(attempt, event["at"], event["delta"]) or (event["at"], event["delta"])
            return [{**event, "at": at, "delta": delta}]
        elif kind == "text_void":
            self.voided.add(attempt)
        elif kind == "llm_end":
            self.ended = max(self.ended, event["call"])
            return [*self._void("not the journaled answer", upto=self.ended), event]
        elif kind in ("done", "error"):
            return [*self._void("the run ended without this answer"), event]
        return [event]

    def _piece(self, attempt: str, at: int, delta: str) -> tuple[int, str] | None:
        """The part of `delta` (starting at `at`) not sent yet, and where it starts; None if
        something before it is missing."""
        shown = self.shown.get(attempt, 0)
        if at > shown:
            return None
        self.shown[attempt] = max(shown, at + len(delta))
        return shown, delta[shown - at :]

    def _void(
        self,
        reason: str,
        *,
        call: int | None = None,
        attempt: str | None = None,
        upto: int | None = None,
        on_topic: bool = False,
    ) -> list[dict[str, Any]]:
        """Void the attempts not voided yet (of `call`, or `attempt`, or of calls up to `upto`):
        those shown live only, or (with `on_topic`) those the topic carries too."""
        out = []
        for a, c in self.calls.items():
            if a in self.voided or (a in self.on_topic and not on_topic):
                continue
            if (call is not None and c != call) or (attempt is not None and a != attempt):
                continue
            if upto is not None and c > upto:
                continue
            self.voided.add(a)
            out.append({"type": "text_void", "call": c, "attempt": a, "reason": reason, "live": True})
        return out
