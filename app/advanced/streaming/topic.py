"""The run's topic: the Virtual Object `AgentEvents`, one per StreamingAgent run (key: its invocation id).

It keeps the run's events, numbered by offset, and is read from an offset: a reader that
reconnects misses none and sees none twice. The run publishes its progress with journaled
one-way sends (`publish`, ingress-private: nothing is published twice, none is lost); the text of
its answers arrives through the ingress (`text`, public, but refused without the run's stream
token), and `TextLedger` keeps it honest: partial text of an attempt that did not become the
journaled answer is voided (`text_void`), and each call's text is checked against the journaled
answer at `llm_end`. Why and how: docs/beyond-the-tour.md, "Streaming intermediate results".

    curl localhost:8080/AgentEvents/<invocation id>/read --json '{"offset": 0}'
"""

import dataclasses
import hashlib
import hmac
from datetime import timedelta
from typing import Any, ClassVar, Literal

import restate
from pydantic import BaseModel, Field, model_validator
from restate import TerminalError

from app.runtime.request_models import RequestModel

# The longest delta in one event: a long answer sent in one batch is split.
MAX_DELTA_CHARS = 16_000
FORBIDDEN = 403


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
    at: int = Field(
        default=0, ge=0, le=100_000_000, description="Where the delta starts in the attempt's text."
    )
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
                # `at`: where the delta starts in its attempt's text, counted here, not by the sender.
                # A reader that also got the text live (app/web/live.py) skips what it has.
                at = len(self.open["text"])
                self.open["text"] += event["delta"]
                _append(
                    events,
                    {
                        "type": "text_delta",
                        "call": call,
                        "attempt": attempt,
                        "at": at,
                        "delta": event["delta"],
                    },
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
            _append(
                events, {"type": "text_delta", "call": call, "attempt": attempt, "at": 0, "delta": answer}
            )


def _append(events: list[dict[str, Any]], event: dict[str, Any]) -> None:
    events.append({**event, "offset": len(events)})


# --- the topic -----------------------------------------------------------------------------------

# Its own journals are not kept (one per event): an event is never rerun (docs/control.md).
agent_events = restate.VirtualObject("AgentEvents", journal_retention=timedelta(0))


class ReadRequest(RequestModel):
    """Where to read from in a run's progress events."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"offset": 0}]

    offset: int = Field(default=0, ge=0, description="Number of events already seen.")


class WaitRequest(RequestModel):
    """Where to read from, and how long to wait for an event when there is none yet."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"offset": 0, "wait": 10}]

    offset: int = Field(default=0, ge=0, description="Number of events already seen.")
    wait: float = Field(default=10, ge=0, le=60, allow_inf_nan=False, description="Seconds to wait, at most.")


class Waiter(BaseModel):
    """A reader waiting for the events after `offset`: its awakeable, resolved with them."""

    awakeable_id: str
    offset: int


MAX_WAITERS = 100  # readers of one run waiting at once (the oldest are woken, with nothing, first)


async def _topic(restate_context: restate.ObjectContext) -> tuple[list[dict[str, Any]], TextLedger]:
    events: list[dict[str, Any]] = await restate_context.get("events", type_hint=list) or []
    return events, TextLedger.from_state(await restate_context.get("text", type_hint=dict))


def _save(restate_context: restate.ObjectContext, events: list[dict[str, Any]], ledger: TextLedger) -> None:
    restate_context.set("events", events)
    restate_context.set("text", ledger.as_state())


def _page(events: list[dict[str, Any]], offset: int) -> dict[str, Any]:
    return {
        "events": events[offset:],
        "next_offset": max(len(events), offset),
        "done": any(e["type"] in ("done", "error") for e in events),
    }


async def _wake(restate_context: restate.ObjectContext, events: list[dict[str, Any]], before: int) -> None:
    """The readers waiting (see `next_events`) get the events that came, at once: a push, not a poll."""
    if len(events) == before:
        return
    waiters: list[dict[str, Any]] = await restate_context.get("waiters", type_hint=list) or []
    for waiter in waiters:
        restate_context.resolve_awakeable(waiter["awakeable_id"], _page(events, waiter["offset"]))
    if waiters:
        restate_context.clear("waiters")


# Only the agent publishes (a one-way call from its own invocation); the ingress refuses it.
@agent_events.handler(ingress_private=True)
async def publish(restate_context: restate.ObjectContext, event: dict[str, Any]) -> None:
    events, ledger = await _topic(restate_context)
    # Besides appending the event (see TextLedger): `llm_start` lets through text of its call that
    # came first, `llm_end` checks the call's streamed text against the journaled answer, and
    # `done` or `error` voids text that did not become an answer.
    before = len(events)
    ledger.published(events, event)
    _save(restate_context, events, ledger)
    await _wake(restate_context, events, before)


# The run registers its stream token (its digest) before its first LLM call. It waits for the
# answer (a call, not a send): its text must not reach the topic before the token does.
@agent_events.handler(ingress_private=True)
async def allow_text(restate_context: restate.ObjectContext, token_sha256: str) -> None:
    events, ledger = await _topic(restate_context)
    ledger.allow(token_sha256)
    _save(restate_context, events, ledger)


# The text, as the model writes it: sent by the endpoint through the ingress from inside the
# journaled LLM step (where the Restate context cannot send), so this handler is public. Text
# without the run's stream token is refused: TerminalError 403. A `text_start` of a new attempt
# first voids the partial text of the attempt before it (killed, or failed).
@agent_events.handler()
async def text(restate_context: restate.ObjectContext, batch: TextBatch) -> None:
    events, ledger = await _topic(restate_context)
    ledger.check(batch.token)
    before = len(events)
    ledger.text(events, [e.model_dump() for e in batch.events], batch.seq)
    _save(restate_context, events, ledger)
    await _wake(restate_context, events, before)


# The digest of the run's stream token, for the web process to check the text the endpoint sends
# it live (app/web/live.py): the same token as the text sent here. Only its digest: it gives the
# token away no more than reading the state would.
@agent_events.handler(kind="shared")
async def text_digest(restate_context: restate.ObjectSharedContext) -> str | None:
    return TextLedger.from_state(await restate_context.get("text", type_hint=dict)).token_sha256


@agent_events.handler(kind="shared")
async def read(restate_context: restate.ObjectSharedContext, req: ReadRequest) -> dict[str, Any]:
    return _page(await restate_context.get("events", type_hint=list) or [], req.offset)


# A reader waits here (`next`) for the next events: they come as soon as they land (the topic
# resolves the reader's awakeable), or after `wait` seconds with none. The events stay in the topic: a reader
# that missed a wake-up (or reconnects) reads them from its offset all the same.
@agent_events.handler("next", kind="shared")
async def next_events(restate_context: restate.ObjectSharedContext, req: WaitRequest) -> dict[str, Any]:
    page = _page(await restate_context.get("events", type_hint=list) or [], req.offset)
    if page["events"] or page["done"] or req.wait == 0:
        return page
    awakeable_id, landed = restate_context.awakeable(type_hint=dict)
    await restate_context.object_call(
        watch, key=restate_context.key(), arg=Waiter(awakeable_id=awakeable_id, offset=req.offset)
    )
    match await restate.select(landed=landed, timeout=restate_context.sleep(timedelta(seconds=req.wait))):
        case ["landed", newer]:
            return dict(newer)
        case _:
            return page  # nothing new within `wait`


@agent_events.handler(ingress_private=True)
async def watch(restate_context: restate.ObjectContext, waiter: Waiter) -> None:
    """Wake `waiter` when events after its offset land (at once, if some did since it read)."""
    events: list[dict[str, Any]] = await restate_context.get("events", type_hint=list) or []
    page = _page(events, waiter.offset)
    if page["events"] or page["done"]:
        restate_context.resolve_awakeable(waiter.awakeable_id, page)
        return
    waiters: list[dict[str, Any]] = await restate_context.get("waiters", type_hint=list) or []
    waiters.append(waiter.model_dump())
    for gone in waiters[:-MAX_WAITERS]:  # bounded: the oldest get an empty page now
        restate_context.resolve_awakeable(gone["awakeable_id"], _page(events, gone["offset"]))
    restate_context.set("waiters", waiters[-MAX_WAITERS:])
