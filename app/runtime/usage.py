"""The LLM usage of one run, tallied from journaled answers, for the cost ledger (app/advanced/llm_usage.py),
and what the run may still spend of its tenant's budget (app/advanced/spend.py).

A tally is built from what the journal holds, so a replay builds the same one: it is sent to the
ledger once, when the run ends, at the same place of the journal every time.

A run restarted as a new invocation from a step of another's journal (restart-as-new,
docs/control.md) replays a copy of that journal: its first answers were made, and paid for, by
the other invocation. Each journaled answer names the invocation that made it (`made_by`), and a
tally keeps each maker's calls apart. What the run sends and decides goes by the maker of its
latest answer: the other invocation's while it replays the copy (so that it sends and decides what
that one did, and the copy matches), its own once it made a call, so that no call counts twice.
"""

import dataclasses
from collections.abc import Awaitable, Callable
from typing import NoReturn

import restate
from restate import TerminalError

from app.runtime.invocation import invocation_id

# model -> {"calls", "failed_calls", "input_tokens", "output_tokens"}
Usage = dict[str, dict[str, int]]


@dataclasses.dataclass
class Allowance:
    """What the run may spend of its tenant's budget (app/advanced/spend.py): the reservations it
    was granted, their tokens, the largest call the tenant has made; or no limit at all."""

    grants: list[str] = dataclasses.field(default_factory=list)
    tokens: int = 0
    call_max: int = 0
    unlimited: bool = False


# What the endpoint installs to receive a finished run's tally (one journaled send).
UsageRecorder = Callable[[restate.Context, "UsageTally"], None]

# What the endpoint installs to run before each LLM call: it may end the run (a tenant's budget).
BeforeLlmCall = Callable[[restate.Context, "UsageTally"], Awaitable[None]]

_before_llm_call: BeforeLlmCall | None = None


def install_before_llm_call(before_llm_call: BeforeLlmCall | None) -> None:
    global _before_llm_call
    _before_llm_call = before_llm_call


class UsageTally:
    """LLM calls per model: their tokens, and how many were billed but refused (cut off), kept
    apart by the invocation that made them; and what the run may still spend."""

    def __init__(self) -> None:
        self.by_maker: dict[str, Usage] = {}
        self.largest_call: dict[str, int] = {}  # tokens of each maker's largest call
        self.latest_maker: str | None = None  # who made the run's latest journaled answer
        self.allowance = Allowance()

    async def before_llm_call(self, restate_context: restate.Context) -> None:
        """What runs before each LLM call of the run (installed by the endpoint): may end the run."""
        if _before_llm_call is not None:
            await _before_llm_call(restate_context, self)

    def add(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        failed: bool = False,
        made_by: str | None = None,
    ) -> None:
        # An answer journaled before answers were stamped was made by this invocation.
        maker = made_by or invocation_id() or ""
        self.latest_maker = maker
        totals = self.by_maker.setdefault(maker, {}).setdefault(
            model, {"calls": 0, "failed_calls": 0, "input_tokens": 0, "output_tokens": 0}
        )
        totals["calls"] += 1
        totals["failed_calls"] += int(failed)
        totals["input_tokens"] += input_tokens
        totals["output_tokens"] += output_tokens
        self.largest_call[maker] = max(self.largest_call.get(maker, 0), input_tokens + output_tokens)

    @property
    def models(self) -> Usage:
        """What the ledger gets: the calls of the maker of the latest answer (this invocation's,
        unless every answer so far is a copy)."""
        return self.by_maker.get(self.latest_maker or "", {})

    def tokens(self) -> int:
        """The tokens of those calls: what the run's allowance has paid for."""
        return sum(t["input_tokens"] + t["output_tokens"] for t in self.models.values())

    def max_call_tokens(self) -> int:
        return self.largest_call.get(self.latest_maker or "", 0)

    def made_here(self) -> bool:
        """Whether the run's latest answer was made by this invocation (not copied from another):
        every command after it is this invocation's own."""
        return self.latest_maker is not None and self.latest_maker == invocation_id()

    def reraise_counting_bill(self, error: TerminalError) -> NoReturn:
        """Raise on the terminal error an LLM step failed with, after counting the refused answer it
        carries if the API billed it (its usage travels in the journaled error's metadata); then
        without the bill, so that no caller counts it again."""
        if (billed := billed_usage(error)) is None:
            raise error
        model, input_tokens, output_tokens, made_by = billed
        self.add(model, input_tokens, output_tokens, failed=True, made_by=made_by)
        raise TerminalError(error.message, error.status_code) from error


def bill(model: str, input_tokens: int, output_tokens: int) -> dict[str, str]:
    """The metadata of a terminal error for an answer the API billed but the run refuses (Restate
    journals it with the failure): the model, its tokens, and the invocation billed."""
    return {
        "billed_model": model,
        "billed_input_tokens": str(input_tokens),
        "billed_output_tokens": str(output_tokens),
        "billed_by": invocation_id() or "",
    }


def billed_usage(error: TerminalError) -> tuple[str, int, int, str | None] | None:
    """(model, input tokens, output tokens, invocation billed) of a refused answer that the API
    billed, if any (see `bill`)."""
    meta = error.metadata or {}
    try:
        tokens = int(meta["billed_input_tokens"]), int(meta["billed_output_tokens"])
        return meta["billed_model"], *tokens, meta.get("billed_by") or None
    except (KeyError, ValueError):
        return None
