"""The sending side of streamed text: from inside the journaled LLM step to the run's topic.

`StreamedModel` calls the model with streaming and hands every `response.output_text.delta` to a
`TextAttempt`, which sends the deltas of one attempt at one LLM call to the run's topic through
the Restate ingress (`AgentEvents/<run>/text/send`, one-way): a side effect of the step, like the
HTTP request to the model, so not journaled. At most one send is in flight; deltas that arrive
meanwhile go out together in the next, so the order holds and the first token is sent at once.
The step's result, the complete response, is journaled once; a replay streams nothing again.

Each batch also goes live to the web process (STREAM_LIVE_URL, app/web/live.py), which shows it to
its readers at once; the topic's invocation queue takes ~100 ms. Best effort: the topic stays
the record (offsets, voids), and a reader misses nothing if the live copy does not get through.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
from agents import Model, ModelResponse, Usage
from agents.items import TResponseStreamEvent
from agents.models.multi_provider import MultiProvider
from openai.types.responses import Response

from app.advanced.streaming.topic import MAX_DELTA_CHARS
from app.runtime.http_clients import loop_client
from app.runtime.invocation import invocation_id
from app.runtime.llm_client import check_answer
from app.runtime.settings import restate_ingress_url, stream_live_url

log = logging.getLogger(__name__)

# How long a failing attempt waits for its `text_void` to be accepted before it re-raises. Best
# effort: if it does not get through, the topic voids the text when the next attempt starts.
VOID_TIMEOUT_SECONDS = 2.0
# How long a finished attempt waits for its last text to be accepted before the step returns.
FINISH_TIMEOUT_SECONDS = 5.0
# Sends of one batch to the ingress before an attempt stops streaming (its text is then checked
# against the journaled answer at `llm_end`, see TextLedger).
SEND_TRIES = 3
# The live copy is one try, short: a late preview is worth nothing.
LIVE_TIMEOUT_SECONDS = 0.5


def new_token() -> str:
    """The run's stream token: random, made in a journaled step (`restate_context.run_typed`), so
    a retry of the run sends with the token the topic knows. Not `restate_context.random()`: that
    is seeded by the invocation id, which every reader of the stream knows."""
    return secrets.token_urlsafe(24)


# --- the endpoint's side -------------------------------------------------------------------------


def _ingress_client() -> httpx.AsyncClient:
    return loop_client("ingress", lambda: httpx.AsyncClient(base_url=restate_ingress_url(), timeout=3))


def _live_client() -> httpx.AsyncClient | None:
    if not (url := stream_live_url()):
        return None
    return loop_client("live text", lambda: httpx.AsyncClient(base_url=url, timeout=LIVE_TIMEOUT_SECONDS))


class TextStream:
    """The text of one run: where it goes (the run's topic) and the token it must carry."""

    def __init__(
        self,
        run_id: str,
        token: str,
        client: httpx.AsyncClient | None = None,
        live: httpx.AsyncClient | None = None,
    ) -> None:
        self.run_id = run_id
        self.token = token
        self.client = client
        self.live = live
        self.calls = 0  # the number of the LLM call in progress, counted on every replay too (ProgressHooks)

    def attempt(self) -> "TextAttempt":
        """A new attempt at the current LLM call. Its text is not streamed while the stream is
        still the topic of the invocation this run was restarted from (its answer comes at
        `llm_end`, on this run's own topic: app/advanced/streaming/agent.py)."""
        attempt = TextAttempt(self, self.calls)
        running = invocation_id()
        attempt.broken = running is not None and running != self.run_id
        return attempt

    async def send(self, events: list[dict[str, Any]], seq: int) -> bool:
        """One batch to the topic, one-way; True once the ingress has accepted it. A batch sent
        again (its answer was lost) is dropped by the topic: it knows the attempt's last `seq`.
        (Not an idempotency key: Restate would keep a record of every batch for a day.)"""
        client = self.client or _ingress_client()
        url = f"/AgentEvents/{quote(self.run_id, safe='')}/text/send"
        body = {"token": self.token, "seq": seq, "events": events}
        for attempt in range(SEND_TRIES):
            try:
                resp = await client.post(url, json=body)
                if resp.status_code < 300:
                    return True
                problem = f"HTTP {resp.status_code}: {resp.text[:200]}"
                if resp.status_code < 500:
                    break
            except httpx.HTTPError as e:
                problem = repr(e)
            await asyncio.sleep(0.1 * 3**attempt)
        log.warning("Text of run %s is no longer streamed (the ingress: %s)", self.run_id, problem)
        return False

    async def send_live(self, events: list[dict[str, Any]], seq: int) -> bool:
        """The same batch to the web process, for its readers now; False if it did not get there
        (the attempt then stops sending live: its readers get the rest from the topic)."""
        client = self.live or _live_client()
        if client is None:
            return False
        body = {"token": self.token, "seq": seq, "events": events}
        try:
            resp = await client.post(f"/streams/{quote(self.run_id, safe='')}/live", json=body)
        except httpx.HTTPError:
            return False
        return resp.status_code < 300


class TextAttempt:
    """The text of one attempt at one LLM call, sent as it comes: one send in flight at a time."""

    def __init__(self, stream: TextStream, call: int) -> None:
        self.stream = stream
        self.call = call
        self.id = secrets.token_hex(4)
        self.chars = 0
        self.batches = 0
        self.queue: list[dict[str, Any]] = []
        self.sender: asyncio.Task[None] | None = None
        self.broken = False  # a send failed: the rest is left to the check at llm_end
        self.live_ok = True  # the live copy still gets through

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "call": self.call, "attempt": self.id, **fields}

    def write(self, delta: str) -> None:
        """Queue a delta; it goes out now if no send is in flight, else with the next."""
        if not delta or self.broken:
            return
        if self.chars == 0:
            self.queue.append(self._event("text_start"))
        at = self.chars  # where `delta` starts in the attempt's text
        self.chars += len(delta)
        last = self.queue[-1] if self.queue else None
        if last is not None and last["type"] == "text_delta" and len(last["delta"]) < MAX_DELTA_CHARS:
            room = MAX_DELTA_CHARS - len(last["delta"])
            last["delta"] += delta[:room]
            at += min(room, len(delta))
            delta = delta[room:]
        for i in range(0, len(delta), MAX_DELTA_CHARS):
            self.queue.append(self._event("text_delta", at=at + i, delta=delta[i : i + MAX_DELTA_CHARS]))
        self._kick()

    def _kick(self) -> None:
        if self.sender is None or self.sender.done():
            self.sender = asyncio.get_running_loop().create_task(self._send_queued())

    async def _send_queued(self) -> None:
        while self.queue and not self.broken:
            batch, self.queue = self.queue, []
            self.batches += 1
            seq = self.batches - 1
            if self.live_ok:
                durable, self.live_ok = await asyncio.gather(
                    self.stream.send(batch, seq), self.stream.send_live(batch, seq)
                )
            else:
                durable = await self.stream.send(batch, seq)
            if not durable:
                self.broken = True
                self.queue = []

    async def finish(self) -> None:
        """Wait until everything written is accepted by the ingress (before the step's result is
        journaled, so that all of the text is on the topic before the run's `llm_end`), but not
        longer than FINISH_TIMEOUT_SECONDS: a slow ingress must not hold up the answer. What did
        not get through is put right at `llm_end` (TextLedger)."""
        try:
            await asyncio.wait_for(self._drained(), FINISH_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("Text of run %s: the ingress is slow; the rest comes at llm_end", self.stream.run_id)
            self.broken = True
            self.abort()

    async def _drained(self) -> None:
        while self.sender is not None and not self.sender.done():
            await asyncio.shield(self.sender)

    async def fail(self, error: BaseException) -> None:
        """The attempt failed: tell the reader at once that its text is void (best effort)."""
        if self.chars == 0 or self.broken:
            self.abort()
            return
        if isinstance(error, asyncio.CancelledError):
            self.abort()  # the topic voids the text when the next attempt (or the run's end) comes
            return
        reason = f"the LLM call failed ({type(error).__name__})"
        self.queue.append(self._event("text_void", reason=reason))
        self._kick()
        try:
            await asyncio.wait_for(self._drained(), VOID_TIMEOUT_SECONDS)
        except TimeoutError:
            self.abort()

    def abort(self) -> None:
        self.queue = []
        if self.sender is not None and not self.sender.done():
            self.sender.cancel()


# --- the model: streamed inside the journaled step -----------------------------------------------


def _usage(response: Response) -> Usage:
    usage = response.usage
    if usage is None:
        return Usage(requests=1)
    return Usage(
        requests=1,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        input_tokens_details=usage.input_tokens_details,
        output_tokens_details=usage.output_tokens_details,
    )


class StreamedModel(Model):
    """A model (or a model's name) whose `get_response` streams: the same request, with the text sent on as it
    comes. The endpoint's agent runs journal a `Model` instance like a model name, so it runs only
    inside the journaled `call LLM` step (app/runtime/agent_runs.py)."""

    def __init__(self, model: str | Model, text: TextStream) -> None:
        self.model = MultiProvider().get_model(model) if isinstance(model, str) else model
        self.text = text

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        attempt = self.text.attempt()
        completed: Response | None = None
        try:
            events = self.model.stream_response(*args, **kwargs)
            try:
                async for event in events:
                    if event.type == "response.output_text.delta":
                        attempt.write(event.delta)
                    elif event.type == "response.completed":
                        completed = event.response
                    elif event.type in ("response.incomplete", "response.failed"):
                        # A cut-off answer is a terminal 502, as when not streamed (check_answer,
                        # which bills it to the model that was asked); a failed one makes the
                        # Agents SDK raise next: retried like an API error.
                        check_answer(event.response, str(getattr(self.model, "model", "?")))
            finally:
                await _close(events)
            if completed is None:
                raise ConnectionError("The model's stream ended without a completed response.")
            await attempt.finish()
        except BaseException as e:
            await attempt.fail(e)
            raise
        return ModelResponse(output=completed.output, usage=_usage(completed), response_id=completed.id)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        return self.model.stream_response(*args, **kwargs)


async def _close(events: AsyncIterator[Any]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
