"""Bounded durable sessions: a conversation kept in a Virtual Object's state, never growing without end.

Every agent that keeps a conversation (Chat, InterruptibleAgent, MultiAgentClaimApproval) runs with
`session=BoundedSession()` instead of `use_restate_session=True`. It is restate's own
`RestateSession` (the items live in the object's state under `items`, written once, when the run
ends), except that before writing it keeps at most MAX_SESSION_ITEMS items (default 100),
dropping the oldest first.

A history must start at a user message: cut in the middle of a turn and it could start with a
`function_call_output` whose `function_call` is gone, which the OpenAI API refuses (HTTP 400).
So whole leading items are dropped until the first one left is a user message.
"""

import os
from typing import Any

from agents import TResponseInputItem
from restate.ext.openai.session import RestateSession

MAX_SESSION_ITEMS = int(os.environ.get("MAX_SESSION_ITEMS", "100"))


def _is_user_message(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message"


def trim(items: list[TResponseInputItem], max_items: int) -> list[TResponseInputItem]:
    """The newest items, at most `max_items` of them, starting at a user message ([] if none is left)."""
    if len(items) <= max_items:
        return items
    start = len(items) - max_items
    while start < len(items) and not _is_user_message(items[start]):
        start += 1
    return items[start:]


class BoundedSession(RestateSession):
    """restate's `RestateSession`, trimmed to the newest `max_items` items when it is written."""

    def __init__(self, max_items: int | None = None) -> None:
        super().__init__()
        self.max_items = MAX_SESSION_ITEMS if max_items is None else max_items

    def flush(self) -> None:
        if self._items is not None:
            # A pure function of the items: a replay writes exactly the same history.
            self._items = trim(self._items, self.max_items)
        super().flush()
