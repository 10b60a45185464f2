"""What the tests of several tour steps share: claims marked so that each test finds its own LLM
calls and review requests on the session's stack, and the answers they lead to."""

import itertools
import subprocess
from datetime import datetime
from typing import Any

from dev.harness import run_curl

_markers = itertools.count(1)


def claim_prompt(amount: str = "3000USD") -> tuple[str, str]:
    """A claim in words, with a unique marker, so each test finds its own review request."""
    marker = f"claim {next(_markers)}"
    return f"Process my hospital bill of {amount} for a broken leg ({marker}).", marker


def decided(marker: str, verdict: str) -> str:
    """The agent's answer once a human decided the claim made by `claim_prompt()`."""
    return f"The claim of 3,000 USD for broken leg ({marker}) was {verdict} by a human reviewer."


def run_printed(command: str) -> subprocess.CompletedProcess[str]:
    """Run a command as the service log printed it (with `--fail`: an HTTP error fails it)."""
    return run_curl(command, timeout=30)


def claim_body(amount: float = 3000, category: str = "orthopedic") -> tuple[dict[str, Any], str]:
    """The tour's claim as JSON, its reason marked uniquely."""
    marker = f"p{next(_markers)}"
    body = {"date": "2024-10-01", "amount": amount, "category": category, "placeOfService": "General Hospital",
            "reason": f"hospital bill for a broken leg ({marker})"}  # fmt: skip
    return body, marker


def overlap(intervals: list[tuple[datetime, datetime]]) -> bool:
    """True when all intervals share a moment: each started before any of them finished."""
    return max(start for start, _ in intervals) < min(end for _, end in intervals)
