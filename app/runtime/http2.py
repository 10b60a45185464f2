"""Two fixes to the endpoint's HTTP/2 server (hypercorn 0.18 on h2 4), installed by `fix_http2()`.

Every invocation is an HTTP/2 stream from the Restate Server to the endpoint, so what a connection
does per stream, it does per invocation:

- A stream the endpoint has answered can still receive data: the server may send a message while
  the endpoint's answer (say, a suspension) is on its way. hypercorn then looks the stream up
  without the guard it has for the stream's end, and the `KeyError` kills the connection with
  every invocation on it (hypercorn issue 329; the guard is in open PRs). Restate retries them,
  nothing is lost, but each one is replayed. `_ignore_data_after_answer` drops such data after
  giving its bytes back to the connection's flow-control window, as h2 does for a closed stream.
- h2 remembers how each of a connection's last 65,536 closed streams closed (~106 B each), to
  decide whether a frame arriving after the close is a stream error (the stream was reset: the
  frame may have been in flight) or a connection error. For a stream that ended normally it is a
  connection error with or without the record (only the error code differs: PROTOCOL_ERROR rather
  than STREAM_CLOSED), so `_ResetStreams` keeps the reset ones only.
"""

from typing import Any

import h2.connection
import h2.events
from h2.stream import StreamClosedBy
from h2.utilities import SizeLimitDict
from hypercorn.protocol.h2 import H2Protocol

_RESET = (StreamClosedBy.RECV_RST_STREAM, StreamClosedBy.SEND_RST_STREAM)


class _ResetStreams(SizeLimitDict):
    """h2's record of closed streams, keeping only the reset ones."""

    def __setitem__(self, stream_id: int, closed_by: Any) -> None:
        if closed_by in _RESET:
            super().__setitem__(stream_id, closed_by)


def _forget_ended_streams() -> None:
    init = h2.connection.H2Connection.__init__

    def __init__(self: h2.connection.H2Connection, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._closed_streams = _ResetStreams(size_limit=self.MAX_CLOSED_STREAMS)

    h2.connection.H2Connection.__init__ = __init__  # type: ignore[method-assign]


def _ignore_data_after_answer() -> None:
    handle_events = H2Protocol._handle_events

    async def _handle_events(self: H2Protocol, events: list[h2.events.Event]) -> None:
        batch: list[h2.events.Event] = []
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                # Whether the stream is still there depends on the events before this one.
                if batch:
                    await handle_events(self, batch)
                    batch = []
                if event.stream_id not in self.streams:
                    self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    continue
            batch.append(event)
        await handle_events(self, batch)  # also when empty: it sends what is due (the window update)

    H2Protocol._handle_events = _handle_events  # type: ignore[method-assign]


_fixed = False


def fix_http2() -> None:
    """Install both fixes, once per process, before the server accepts connections."""
    global _fixed
    if not _fixed:
        _forget_ended_streams()
        _ignore_data_after_answer()
        _fixed = True
