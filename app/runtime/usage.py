"""The LLM usage of one run, tallied from journaled answers, for the cost ledger (app/advanced/llm_usage.py).

A tally is built from what the journal holds, so a replay builds the same one: it is sent to the
ledger once, when the run ends, at the same place of the journal every time.

A run restarted as a new invocation from a step of another's journal (restart-as-new,
docs/control.md) replays a copy of that journal: its first answers were made, and paid for, by
the other invocation. Each journaled answer names the invocation that made it (`made_by`), and a
tally keeps each maker's calls apart: what goes to the ledger is the calls of the maker of the
run's latest answer, i.e. of this invocation if it made any, so that no call is counted twice.
"""

from collections.abc import Callable
from typing import NoReturn

import restate
from restate import TerminalError

from app.runtime.invocation import invocation_id
from app.runtime.llm_client import billed_usage

# model -> {"calls", "failed_calls", "input_tokens", "output_tokens"}
Usage = dict[str, dict[str, int]]


class UsageTally:
    """LLM calls per model: their tokens, and how many were billed but refused (cut off), kept
    apart by the invocation that made them."""

    def __init__(self) -> None:
        self.by_maker: dict[str, Usage] = {}
        self.latest_maker: str | None = None  # who made the run's latest journaled answer

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

    @property
    def models(self) -> Usage:
        """What the ledger gets: the calls of the maker of the latest answer (this invocation's,
        unless every answer so far is a copy)."""
        return self.by_maker.get(self.latest_maker or "", {})

    def made_here(self) -> bool:
        """Whether the run's latest answer was made by this invocation (not copied from another)."""
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


# What the endpoint installs to receive a finished run's tally (one journaled send).
UsageRecorder = Callable[[restate.Context, UsageTally], None]
