"""Which invocation this code runs in, for what it journals: an answer, a review, a stream.

Restate can restart a finished invocation as a new one from a step of its journal
(`restart-as-new`, docs/control.md): the new invocation replays a copy of the old journal up to
that step, then goes on. Results it journals name the invocation that made them, so that a copy
can be told from its own work: an LLM call copied from the original is not paid for again.
"""

from restate.extensions import current_context


def invocation_id() -> str | None:
    """The id of the invocation this code runs in (None outside a Restate handler)."""
    try:
        restate_context = current_context()
    except LookupError:
        return None
    return restate_context.request().id if restate_context is not None else None
