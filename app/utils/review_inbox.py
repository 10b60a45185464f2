"""Human reviews: asking for one, reading the decision, and the reviewers' inbox (steps 2-4).

`ReviewInbox` is a Virtual Object with one instance (key `reviewers`); each pending review is one
state entry, named by its awakeable id. The approval agents add a review when they ask for it and
remove it when it is decided (or timed out, or the invocation is cancelled), both with journaled
one-way sends: a replay of the agent neither adds nor removes anything twice.

    curl localhost:8080/ReviewInbox/reviewers/list        # what the page at :8000/reviews shows

`add` and `remove` are ingress-private: only the agents write to the inbox. A review is decided
by resolving its awakeable (the curl command in the log, or the page's buttons, which resolve it
through the ingress); the agent then removes it.
"""

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import restate
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from app.runtime.settings import restate_ingress_url
from app.utils.claims import InsuranceClaim

# Restate's logger stays quiet while a handler replays its journal: each line is logged once.
logger = restate.getLogger(__name__)

INBOX_KEY = "reviewers"

# Its own journals are not kept: adding or removing a review is never rerun (docs/control.md).
review_inbox = restate.VirtualObject("ReviewInbox", journal_retention=timedelta(0))


class Review(BaseModel):
    """A pending human review. JSON field names are camelCase (invocationId, requestedAt)."""

    # Its ids are new with every review: not worth a place in pydantic's cache of JSON strings.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", cache_strings="keys"
    )

    id: str  # the awakeable's id: resolve it with JSON true (approve) or false (reject)
    agent: str  # the service that asks, e.g. HumanClaimApprovalAgent
    invocation_id: str
    claim: InsuranceClaim
    requested_at: float  # seconds since the epoch (UTC)
    times_out_at: float | None = None  # when the agent stops waiting and decides itself


# `add` and `remove` read nothing: without `state_preload=False` each of them would be sent the
# whole inbox (every pending review), a cost that grows with the number of people waiting.
@review_inbox.handler(ingress_private=True, state_preload=False)
async def add(restate_context: restate.ObjectContext, review: Review) -> None:
    restate_context.set(review.id, review.model_dump(mode="json", by_alias=True))


@review_inbox.handler(ingress_private=True, state_preload=False)
async def remove(restate_context: restate.ObjectContext, awakeable_id: str) -> None:
    restate_context.clear(awakeable_id)


@review_inbox.handler("list", kind="shared")
async def list_reviews(restate_context: restate.ObjectSharedContext) -> dict[str, Any]:
    """The pending reviews, oldest first."""
    reviews = [await restate_context.get(key, type_hint=dict) for key in await restate_context.state_keys()]
    pending = sorted((r for r in reviews if r), key=lambda r: (r["requestedAt"], r["id"]))
    return {"reviews": pending}


def request_human_review(claim: InsuranceClaim, awakeable_id: str) -> None:
    """Notify a human reviewer. Here: print the commands that approve or reject, to the service log.

    In a real system this would send an e-mail or a Slack message with two buttons.
    """
    ingress = restate_ingress_url().removeprefix("http://")
    resolve = f"curl {ingress}/restate/awakeables/{awakeable_id}/resolve --json"
    # `make run` says where the public web process is: the reviewers' inbox has the same two buttons.
    web = os.environ.get("PUBLIC_WEB_URL")
    print(
        f"🔔 Human review requested for claim: {claim.model_dump_json(by_alias=True)}\n"
        f"   approve: {resolve} 'true'\n"
        f"   reject:  {resolve} 'false'" + (f"\n   or in the reviewers' inbox: {web}/reviews" if web else ""),
        flush=True,
    )


@dataclasses.dataclass(frozen=True)
class Decision:
    """A reviewer's decision; `reason` (a rejection's, say) is for the agent to read."""

    approved: bool
    reason: str | None = None


MAX_REASON_CHARS = 500


def parse_review(answer: bytes | None) -> Decision | None:
    """The reviewer's decision from the body of the resolve command: JSON `true` or `false`, or
    `{"approved": false, "reason": "..."}` to give a reason.

    Restate's ingress accepts any body for an awakeable, so a typo (`--json 'maybe'`) arrives
    here. It must not decide the claim, nor break the invocation: it is logged and ignored, and
    the caller asks again.
    """
    try:
        value = json.loads(answer or b"")
    except ValueError:
        value = None
    if isinstance(value, bool):
        return Decision(value)
    if (
        isinstance(value, dict)
        and isinstance(value.get("approved"), bool)
        and set(value) <= {"approved", "reason"}
    ):
        reason = value.get("reason")
        if reason is None or (isinstance(reason, str) and 0 < len(reason.strip()) <= MAX_REASON_CHARS):
            return Decision(value["approved"], reason.strip() if reason else None)
    shown = (answer or b"").decode(errors="replace")[:80]
    logger.warning(
        "Ignored the answer %r to a review request: send true or false (or "
        '{"approved": false, "reason": "..."}, a reason of at most %d characters). Asking again.',
        shown,
        MAX_REASON_CHARS,
    )
    return None


def parse_decision(answer: bytes | None) -> bool | None:
    """`parse_review`'s verdict alone: True (approved), False (rejected), None (ask again)."""
    decision = parse_review(answer)
    return None if decision is None else decision.approved


def seconds_from_now(seconds: float) -> float:
    """A point in time (seconds since the epoch), e.g. a review's deadline; run it as a durable step."""
    return time.time() + seconds


def _ask(claim: InsuranceClaim, awakeable_id: str, invocation_id: str) -> dict[str, Any]:
    request_human_review(claim, awakeable_id)
    return {"requested_at": time.time(), "awakeable_id": awakeable_id, "invocation_id": invocation_id}


@contextlib.asynccontextmanager
async def pending_review(
    restate_context: restate.Context,
    agent: str,
    claim: InsuranceClaim,
    awakeable_id: str,
    times_out_at: float | None = None,
) -> AsyncIterator[None]:
    """Ask for a review (the journaled "Request review" step) and keep it in the inbox while waiting.

    The review leaves the inbox when the block ends: decided, timed out, or the invocation
    cancelled (a TerminalError). A suspension or a transient error leaves it there: the wait goes on.

    The inbox is told the ids the step journaled, not the running invocation's: a run restarted
    from a copy of this journal (docs/control.md) sends what the copy holds, the same entries.
    """
    requested = await restate_context.run_typed(
        "Request review",
        _ask,
        claim=claim,
        awakeable_id=awakeable_id,
        invocation_id=restate_context.request().id,
    )
    if not isinstance(requested, dict):  # journaled before reviews named their ids: a time
        ids = {"awakeable_id": awakeable_id, "invocation_id": restate_context.request().id}
        requested = {"requested_at": requested, **ids}
    review = Review(
        id=requested["awakeable_id"],
        agent=agent,
        invocation_id=requested["invocation_id"],
        claim=claim,
        requested_at=requested["requested_at"],
        times_out_at=times_out_at,
    )
    restate_context.object_send(add, key=INBOX_KEY, arg=review)
    try:
        yield
    except restate.TerminalError as e:
        restate_context.object_send(remove, key=INBOX_KEY, arg=review.id)
        if e.status_code == 409 and e.message == "cancelled":
            raise restate.TerminalError(
                f"Cancelled while waiting for a review (claim: {claim.reason}); nobody decided it, and it "
                "is no longer in the reviewers' inbox.",
                409,
            ) from e
        raise
    restate_context.object_send(remove, key=INBOX_KEY, arg=review.id)
