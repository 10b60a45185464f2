"""The endpoint's log: one line per event a reader of the tour cares about.

A failing durable step (the Denver outage) is retried every 0.5-10 s, and the SDK logs each
failed attempt with two tracebacks; the HTTP clients log a line per request. Here each failed
attempt becomes one line (step, attempt, error); the full traceback stays at DEBUG level
(`LOG_LEVEL=DEBUG`), and the Restate UI shows it too.
"""

import logging
import os
import re
from collections import OrderedDict

from restate.extensions import current_context

_VM_FAILURE = re.compile(r"^\((?P<code>\d+)\) (?P<error>.*?)(?:\nStacktrace:|$)", re.DOTALL)
_STEP = re.compile(r"Related command: run \[(?P<step>[^\]]*)\]")


class OneLinePerFailedStep(logging.Filter):
    """Turns the SDK's 'Exception in do_progress' traceback of a failed step into one line."""

    def __init__(self) -> None:
        super().__init__()
        # (invocation id, step) -> failed attempts seen by this process; bounded.
        self.attempts: OrderedDict[tuple[str, str], int] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() not in ("Exception in do_progress", "Exception in take_notification"):
            return True
        if not record.exc_info or record.exc_info[1] is None:
            return True
        text = str(record.exc_info[1])
        failure, step = _VM_FAILURE.search(text), _STEP.search(text)
        if failure is None or step is None:
            return True
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True  # keep the traceback
        name = step.group("step")
        key = (_invocation_id(), name)
        self.attempts[key] = self.attempts.pop(key, 0) + 1
        while len(self.attempts) > 10_000:
            self.attempts.popitem(last=False)
        record.msg = "Step %r failed (attempt %d, %s): %s"
        record.args = (name, self.attempts[key], key[0], failure.group("error").strip())
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True


def _invocation_id() -> str:
    context = current_context()
    try:
        return context.request().id if context is not None else "?"
    except Exception:
        return "?"


def setup_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("restate.server_context").addFilter(OneLinePerFailedStep())
    if level != "DEBUG":
        # One line per HTTP request to the LLM, the weather API and the admin API is noise.
        for name in ("httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)
