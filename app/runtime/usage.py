"""The LLM usage of one run, tallied from journaled answers, for the cost ledger (app/advanced/llm_usage.py).

A tally is built from what the journal holds, so a replay builds the same one: it is sent to the
ledger once, when the run ends, at the same place of the journal every time.
"""

from collections.abc import Callable
from typing import NoReturn

import restate
from restate import TerminalError

from app.runtime.llm_client import billed_usage

# model -> {"calls", "failed_calls", "input_tokens", "output_tokens"}
Usage = dict[str, dict[str, int]]

# What the endpoint installs to receive a finished run's tally (one journaled send).
UsageRecorder = Callable[[restate.Context, Usage], None]


class UsageTally:
    """LLM calls per model: their tokens, and how many were billed but refused (cut off)."""

    def __init__(self) -> None:
        self.models: Usage = {}

    def add(self, model: str, input_tokens: int, output_tokens: int, failed: bool = False) -> None:
        totals = self.models.setdefault(
            model, {"calls": 0, "failed_calls": 0, "input_tokens": 0, "output_tokens": 0}
        )
        totals["calls"] += 1
        totals["failed_calls"] += int(failed)
        totals["input_tokens"] += input_tokens
        totals["output_tokens"] += output_tokens

    def reraise_counting_bill(self, error: TerminalError) -> NoReturn:
        """Raise on the terminal error an LLM step failed with, after counting the refused answer it
        carries if the API billed it (its usage travels in the journaled error's metadata); then
        without the bill, so that no caller counts it again."""
        if (billed := billed_usage(error)) is None:
            raise error
        self.add(*billed, failed=True)
        raise TerminalError(error.message, error.status_code) from error
