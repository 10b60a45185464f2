"""Token streaming for a durable agent: the text of an answer reaches the reader as the model writes
it, while the answer itself is journaled once, as for every agent.

The pieces, in the order a token travels (the lesson is in app/advanced/streaming_agent.py):

- `StreamedModel` is the model under Restate's `RestateModelWrapper`: inside the journaled
  `call LLM` step it calls the model with `stream_response` and hands every
  `response.output_text.delta` to a `TextAttempt`; it returns the `ModelResponse` of the final
  `response.completed` event. The step's result is journaled as before; a replay takes it from the
  journal and never calls the model, so it streams nothing again.
- `TextAttempt` sends the deltas of one attempt at one LLM call to the run's topic through the
  Restate ingress (`AgentEvents/<run>/text/send`, one-way): a side effect of the step, like the
  HTTP request to the model, so not journaled by the agent. At most one send is in flight; deltas
  that arrive meanwhile go out together in the next, so the order holds and the first token is
  sent at once. Each send carries the run's stream token and its number in the attempt (see
  `TextLedger`).
- `TextLedger` is the topic's bookkeeping of text (pure; the `AgentEvents` handlers call it): it
  refuses text without the token, voids the partial text of an attempt that did not become the
  journaled answer (`text_void`, appended by the topic itself, so a SIGKILLed attempt needs no one
  to send it), and checks each call's text against the journaled answer at `llm_end`.
- `run_streamed` is `DurableRunner.run` with `StreamedModel` slotted under `RestateModelWrapper`;
  `run_agent(..., on_text=...)` uses it (app/utils/agent_runs.py).

Events on the topic, besides the run's own journaled ones (`llm_start` and `llm_end` carry `call`,
the number of the LLM call in the run, from 1):

    {"type": "text_start", "call": 2, "attempt": "9f2c1a0b"}   an attempt at call 2 starts writing
    {"type": "text_delta", "call": 2, "attempt": "9f2c1a0b", "delta": "The weather"}
    {"type": "text_void",  "call": 2, "attempt": "9f2c1a0b", "reason": "..."}   forget its text

The text of a call is the concatenation of the deltas of its attempts that were not voided; at
`llm_end` it is the journaled answer's text, and the final call's text is the `done` output.
"""

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from agents import Agent, Model, ModelResponse, RunConfig, Runner, RunResult, TResponseInputItem, Usage
from agents.items import TResponseStreamEvent
from openai.types.responses import Response
from pydantic import Field, model_validator
from restate import RunOptions, TerminalError
from restate.ext.openai.functions import wrap_agent_tools
from restate.ext.openai.models import State
from restate.ext.openai.runner_wrapper import DurableModelCalls, RestateModelWrapper
from restate.ext.openai.session import RestateSession

from app.utils.contract import RequestModel
from app.utils.llm import MODEL, check_answer
from app.utils.utils import loop_client, restate_ingress_url

log = logging.getLogger(__name__)

# How long a failing attempt waits for its `text_void` to be accepted before it re-raises. Best
# effort: if it does not get through, the topic voids the text when the next attempt starts.
VOID_TIMEOUT_SECONDS = 2.0
# How long a finished attempt waits for its last text to be accepted before the step returns.
FINISH_TIMEOUT_SECONDS = 5.0
# Sends of one batch to the ingress before an attempt stops streaming (its text is then checked
# against the journaled answer at `llm_end`, see TextLedger).
SEND_TRIES = 3
# The longest delta in one event: a long answer sent in one batch is split.
MAX_DELTA_CHARS = 16_000
FORBIDDEN = 403


def new_token() -> str:
    """The run's stream token: random, made in a journaled step (`restate_context.run_typed`), so
    a retry of the run sends with the token the topic knows. Not `restate_context.random()`: that
    is seeded by the invocation id, which every reader of the stream knows."""
    return secrets.token_urlsafe(24)


def token_digest(token: str) -> str:
    """What the topic keeps: a digest, so reading its state does not give the token away."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- the wire: what the endpoint sends through the ingress ---------------------------------------


class TextEvent(RequestModel):
    """One text event of one attempt at one LLM call."""

    type: Literal["text_start", "text_delta", "text_void"]
    call: int = Field(ge=1, le=10_000, description="The LLM call's number in the run, from 1.")
    attempt: str = Field(pattern=r"^[0-9a-f]{8,32}$", description="Random id of the attempt.")
    delta: str = Field(default="", max_length=MAX_DELTA_CHARS)
    reason: str = Field(default="", max_length=200)


class TextBatch(RequestModel):
    """What `AgentEvents/<run>/text` takes: text events of one attempt, and the run's stream token."""

    # The playground's example is the docs' forged delta: well-formed, and refused with a 403.
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "token": "guessed",
            "seq": 0,
            "events": [{"type": "text_delta", "call": 2, "attempt": "0badc0de", "delta": "Buy now!"}],
        }
    ]

    token: str = Field(max_length=100, description="The run's stream token (only the run knows it).")
    seq: int = Field(ge=0, le=1_000_000, description="The batch's number in its attempt, from 0.")
    events: list[TextEvent] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def one_attempt(self) -> "TextBatch":
        if len({(e.call, e.attempt) for e in self.events}) != 1:
            raise ValueError("the events of a batch belong to one attempt at one call")
        return self


# --- the topic's side ------------------------------------------------------------------------------


@dataclasses.dataclass
class TextLedger:
    """What the topic knows about text, kept in its state next to the events (`as_state`).

    - `token_sha256`: the digest of the run's stream token; text without the token is refused.
    - `open`: the attempt whose text is on the stream and not yet settled (call, attempt, text).
    - `calls` / `ended`: the latest LLM call started / ended (from the run's journaled events).
      Text of a call that has not started on the topic yet is `held` until its `llm_start`
      arrives (the text comes by the ingress, `llm_start` by the run's journaled send: either may
      be first); text of an ended call comes from an attempt that lost, and is dropped.
    - `voided`: attempts whose text was voided; anything else they send is dropped.
    - `seqs`: the last batch number of each attempt; a batch sent twice counts once.
    """

    token_sha256: str | None = None
    open: dict[str, Any] | None = None
    calls: int = 0
    ended: int = 0
    held: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    voided: list[str] = dataclasses.field(default_factory=list)
    seqs: dict[str, int] = dataclasses.field(default_factory=dict)  # attempt -> its last batch

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "TextLedger":
        return cls(**state) if state else cls()

    def as_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def allow(self, digest: str) -> None:
        """The run's own registration (an ingress-private call): the first one counts."""
        if self.token_sha256 is None:
            self.token_sha256 = digest

    def check(self, token: str) -> None:
        """TerminalError 403 unless `token` is the run's stream token."""
        if self.token_sha256 is None:
            raise TerminalError("Refused: no text stream is open for this run.", status_code=FORBIDDEN)
        if not hmac.compare_digest(token_digest(token), self.token_sha256):
            raise TerminalError(
                "Refused: the text does not carry this run's stream token.", status_code=FORBIDDEN
            )

    # Everything below appends to `events` (the topic's list, each event numbered by its offset).

    def published(self, events: list[dict[str, Any]], event: dict[str, Any]) -> None:
        """An event the run published by a journaled send (once, replays included)."""
        kind = event.get("type")
        if kind == "llm_start":
            self.calls = int(event.get("call", self.calls + 1))
            _append(events, event)
            ready = [e for e in self.held if e["call"] <= self.calls]
            self.held = [e for e in self.held if e["call"] > self.calls]
            for held in ready:
                self._apply(events, held)
        elif kind == "llm_end":
            event = dict(event)
            answer = event.pop("text", None)  # the journaled answer's text: checked, not shown again
            call = int(event.get("call", self.calls))
            if answer is not None:
                self._settle(events, call, answer)
            self.open = None
            self.ended = max(self.ended, call)
            _append(events, event)
        else:
            if kind in ("done", "error"):
                self._void_open(events, "the run ended without this answer")
                self.held = []
            _append(events, event)

    def text(self, events: list[dict[str, Any]], batch: list[dict[str, Any]], seq: int) -> None:
        """A batch of text events of one attempt, sent by the endpoint through the ingress (the
        token was checked)."""
        attempt = batch[0]["attempt"]
        if seq <= self.seqs.get(attempt, -1):
            return  # sent again: the first one was accepted after all
        self.seqs[attempt] = seq
        for event in batch:
            if event["call"] <= self.ended or event["attempt"] in self.voided:
                continue  # from an attempt that lost: its call is settled or its text voided
            if event["call"] > self.calls:
                self.held.append(event)
            else:
                self._apply(events, event)

    def _apply(self, events: list[dict[str, Any]], event: dict[str, Any]) -> None:
        attempt, call = event["attempt"], event["call"]
        is_open = self.open is not None and self.open["attempt"] == attempt
        if event["type"] == "text_start":
            if is_open:
                return  # a batch sent twice
            # A new attempt: the text of the one before it (killed, failed, or whose answer never
            # reached the journal) is not the answer.
            self._void_open(events, "the LLM call is being retried")
            self.open = {"call": call, "attempt": attempt, "text": ""}
            _append(events, {"type": "text_start", "call": call, "attempt": attempt})
        elif event["type"] == "text_delta":
            if is_open:
                assert self.open is not None
                self.open["text"] += event["delta"]
                _append(
                    events, {"type": "text_delta", "call": call, "attempt": attempt, "delta": event["delta"]}
                )
        elif is_open:  # text_void from the attempt itself
            self._void_open(events, event.get("reason") or "the attempt failed")
        elif attempt not in self.voided:
            self.voided.append(attempt)

    def _void_open(self, events: list[dict[str, Any]], reason: str) -> None:
        if self.open is None:
            return
        if self.open["text"]:
            _append(
                events,
                {
                    "type": "text_void",
                    "call": self.open["call"],
                    "attempt": self.open["attempt"],
                    "reason": reason,
                },
            )
        self.voided.append(self.open["attempt"])
        self.open = None

    def _settle(self, events: list[dict[str, Any]], call: int, answer: str) -> None:
        """At `llm_end`: the text on the stream for `call` must be the journaled answer's."""
        streamed = self.open["text"] if self.open is not None and self.open["call"] == call else ""
        if streamed == answer:
            return
        # The attempt that was journaled streamed nothing or only part of it (the ingress was
        # unreachable), or the text on the stream is another attempt's: put the answer right.
        self._void_open(events, "the journaled answer differs")
        if answer:
            attempt = "journal"  # (never a sender's: theirs are hex)
            _append(events, {"type": "text_start", "call": call, "attempt": attempt})
            _append(events, {"type": "text_delta", "call": call, "attempt": attempt, "delta": answer})


def _append(events: list[dict[str, Any]], event: dict[str, Any]) -> None:
    events.append({**event, "offset": len(events)})


def answer_text(response: ModelResponse) -> str:
    """The text of a model response (its messages' output_text parts, in order)."""
    parts = []
    for item in response.output:
        if getattr(item, "type", None) == "message":
            for part in getattr(item, "content", []):
                if getattr(part, "type", None) == "output_text":
                    parts.append(part.text)
    return "".join(parts)


# --- the endpoint's side -------------------------------------------------------------------------


def _ingress_client() -> httpx.AsyncClient:
    return loop_client("ingress", lambda: httpx.AsyncClient(base_url=restate_ingress_url(), timeout=3))


class TextStream:
    """The text of one run: where it goes (the run's topic) and the token it must carry."""

    def __init__(self, run_id: str, token: str, client: httpx.AsyncClient | None = None) -> None:
        self.run_id = run_id
        self.token = token
        self.client = client
        self.calls = 0  # LLM calls of the run so far, counted on every replay too (CountedCalls)

    def attempt(self) -> "TextAttempt":
        """A new attempt at the current LLM call."""
        return TextAttempt(self, self.calls)

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

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "call": self.call, "attempt": self.id, **fields}

    def write(self, delta: str) -> None:
        """Queue a delta; it goes out now if no send is in flight, else with the next."""
        if not delta or self.broken:
            return
        if self.chars == 0:
            self.queue.append(self._event("text_start"))
        self.chars += len(delta)
        last = self.queue[-1] if self.queue else None
        if last is not None and last["type"] == "text_delta" and len(last["delta"]) < MAX_DELTA_CHARS:
            room = MAX_DELTA_CHARS - len(last["delta"])
            last["delta"] += delta[:room]
            delta = delta[room:]
        for i in range(0, len(delta), MAX_DELTA_CHARS):
            self.queue.append(self._event("text_delta", delta=delta[i : i + MAX_DELTA_CHARS]))
        self._kick()

    def _kick(self) -> None:
        if self.sender is None or self.sender.done():
            self.sender = asyncio.get_running_loop().create_task(self._send_queued())

    async def _send_queued(self) -> None:
        while self.queue and not self.broken:
            batch, self.queue = self.queue, []
            self.batches += 1
            if not await self.stream.send(batch, self.batches - 1):
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
    """A model whose `get_response` streams: the same request, with the text sent on as it comes.

    It sits under `RestateModelWrapper`, so it runs only inside the journaled `call LLM` step.
    """

    def __init__(self, model: Model, text: TextStream) -> None:
        self.model = model
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
                        check_answer(event.response, str(getattr(self.model, "model", MODEL)))
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


class CountedCalls(RestateModelWrapper):
    """Restate's journaled model call, counting the run's LLM calls (replays included, so the
    numbers are the same on every attempt of the invocation)."""

    def __init__(self, model: StreamedModel, state: State, llm_run_options: RunOptions[Any]) -> None:
        super().__init__(model, state, llm_run_options)
        self.text = model.text

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.text.calls += 1
        return await super().get_response(*args, **kwargs)


class StreamedModelCalls(DurableModelCalls):
    """Restate's model provider, with `StreamedModel` under its journaled model call."""

    def __init__(self, state: State, llm_retry_opts: RunOptions[Any], text: TextStream) -> None:
        super().__init__(state, llm_retry_opts)
        self.text = text

    def get_model(self, model_name: str | None) -> Model:
        inner = super(DurableModelCalls, self).get_model(model_name or None)
        return CountedCalls(StreamedModel(inner, self.text), self.state, self.llm_retry_opts)


async def run_streamed(
    starting_agent: Agent[Any],
    input: str | list[TResponseInputItem],
    *,
    text: TextStream,
    use_restate_session: bool = False,
    run_options: RunOptions[Any] | None = None,
    **kwargs: Any,
) -> RunResult:
    """`DurableRunner.run` (restate.ext.openai.runner_wrapper), step for step, with the model
    provider `StreamedModelCalls` in place of `DurableModelCalls`, which it hard-codes.
    (tests/test_token_stream.py notices when a new restate-sdk changes `DurableRunner.run`.)"""
    state = State()
    llm_retry_opts = run_options if run_options is not None else RunOptions()
    run_config = kwargs.pop("run_config", RunConfig())
    run_config = dataclasses.replace(
        run_config, model_provider=StreamedModelCalls(state, llm_retry_opts, text)
    )
    session = kwargs.pop("session", None)
    if use_restate_session:
        if session is not None:
            raise TerminalError("When use_restate_session is True, session config cannot be provided.")
        session = RestateSession()
    agent = wrap_agent_tools(starting_agent, state)
    try:
        return await Runner.run(
            starting_agent=agent, input=input, run_config=run_config, session=session, **kwargs
        )
    finally:
        if session is not None and isinstance(session, RestateSession):
            session.flush()
