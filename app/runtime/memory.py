"""Giving freed memory back to the system when the endpoint is idle.

A waiting approval costs the endpoint nothing: the invocation suspends and lives in the Restate
Server. But the burst of agent turns that led to it leaves the freed memory in glibc's heap, where
RSS still counts it (bench/NOTES.md, "Waiting"). When no request has been in flight for
TRIM_IDLE_SECONDS after some work, the endpoint collects the turns' garbage cycles (a suspended
turn leaves a few: its exception's traceback holds the frames that hold it) and hands the freed
memory back with `malloc_trim(0)`: a few milliseconds, at a moment nobody waits for it. Elsewhere
than on glibc, nothing is done.

The collection is cheap because `freeze_startup_objects` has set aside what the process imported
(~180,000 objects that live as long as it does): a full collection no longer walks them, at
idle or in the middle of a turn.
"""

import asyncio
import ctypes
import gc
import os
import time
from collections.abc import Callable
from typing import Any

TRIM_IDLE_SECONDS = float(os.environ.get("APP_TRIM_IDLE_SECONDS", "1"))


def freeze_startup_objects() -> None:
    """Once the app is built: what exists now stays for the life of the process, so the garbage
    collector stops walking it (a full collection: ~110 ms before, ~0 after, measured apart)."""
    gc.collect()
    gc.freeze()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class TrimWhenIdle:
    """ASGI middleware: counts the HTTP requests in flight (an invocation is one, until it
    suspends or ends) and trims the heap once they have all been done for `idle` seconds."""

    def __init__(self, app: Any, idle: float = TRIM_IDLE_SECONDS) -> None:
        self.app = app
        self.idle = idle
        self.trim = _malloc_trim() if idle > 0 else None
        self.active = 0
        self.last_done = 0.0
        self.waiting: asyncio.Task[None] | None = None
        self.trims = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.trim is None:
            await self.app(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self.last_done = time.monotonic()
            if self.active == 0 and (self.waiting is None or self.waiting.done()):
                self.waiting = asyncio.get_running_loop().create_task(self._trim_when_idle())

    async def _trim_when_idle(self) -> None:
        while True:
            await asyncio.sleep(self.idle - (time.monotonic() - self.last_done))
            if self.active:
                return  # the next request to end waits again
            if time.monotonic() - self.last_done >= self.idle:
                assert self.trim is not None
                gc.collect()
                self.trim(0)
                self.trims += 1
                return
