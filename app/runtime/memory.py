"""Giving freed memory back to the system when the endpoint is idle.

A waiting approval costs the endpoint nothing: the invocation suspends and lives in the Restate
Server. But the burst of agent turns that led to it leaves the freed memory in glibc's heap, where
RSS still counts it (bench/NOTES.md, "Waiting"). When no request has been in flight for
TRIM_IDLE_SECONDS after some work, the endpoint hands it back with `malloc_trim(0)`: a few
milliseconds, at a moment nobody waits for it. Elsewhere than on glibc, nothing is done.

And each HTTP/2 connection from the server forgets the streams that ended normally
(`forget_ended_streams`): h2 would remember the last 65,536 of them, ~106 B each, for nothing.
"""

import asyncio
import ctypes
import os
import time
from collections.abc import Callable
from typing import Any

import h2.connection
from h2.stream import StreamClosedBy
from h2.utilities import SizeLimitDict

TRIM_IDLE_SECONDS = float(os.environ.get("APP_TRIM_IDLE_SECONDS", "1"))


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
                self.trim(0)
                self.trims += 1
                return


# --- HTTP/2: no record of the streams that ended normally ----------------------------------------

_RESET = (StreamClosedBy.RECV_RST_STREAM, StreamClosedBy.SEND_RST_STREAM)


class _ResetStreams(SizeLimitDict):
    """h2's record of closed streams, keeping only the reset ones.

    h2 reads the record for one thing: whether a frame that arrives on a closed stream is a stream
    error (the stream was reset: the frame may have been in flight) or a connection error. For a
    stream that ended normally it is a connection error with or without the record (only its
    error code differs: PROTOCOL_ERROR instead of STREAM_CLOSED), so only resets are worth keeping.
    Every invocation is a stream, so the full record grew with every turn, to ~7 MB per connection.
    """

    def __setitem__(self, stream_id: int, closed_by: Any) -> None:
        if closed_by in _RESET:
            super().__setitem__(stream_id, closed_by)


def forget_ended_streams() -> None:
    """Make every h2 connection created from now on (hypercorn's) keep only its reset streams."""
    connection = h2.connection.H2Connection
    if getattr(connection, "_forgets_ended_streams", False):
        return
    init = connection.__init__

    def __init__(self: h2.connection.H2Connection, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._closed_streams = _ResetStreams(size_limit=self.MAX_CLOSED_STREAMS)

    connection.__init__ = __init__  # type: ignore[method-assign]
    connection._forgets_ended_streams = True  # type: ignore[attr-defined]
