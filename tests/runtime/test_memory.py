"""The endpoint gives freed memory back when idle (app/runtime/memory.py): once all requests are
done for the idle time, not while one is in flight, and again after the next burst."""

import asyncio
from typing import Any

from app.runtime.memory import TrimWhenIdle


def test_the_heap_is_trimmed_once_the_requests_are_done_for_the_idle_time() -> None:
    trims: list[float] = []
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("path") == "/slow":
            await release.wait()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        middleware = TrimWhenIdle(app, idle=0.1)
        middleware.trim = lambda pad: trims.append(loop.time()) or 1
        http = {"type": "http", "path": "/"}
        slow = loop.create_task(middleware({"type": "http", "path": "/slow"}, None, None))
        await middleware(http, None, None)
        await asyncio.sleep(0.3)
        assert trims == []  # /slow is still in flight (an invocation that has not suspended)
        release.set()
        await slow
        done = loop.time()
        await asyncio.sleep(0.05)
        assert trims == []  # not before the idle time
        await asyncio.sleep(0.15)
        assert len(trims) == 1 and trims[0] - done >= 0.1
        await asyncio.sleep(0.3)
        assert len(trims) == 1  # once per idle spell
        await middleware(http, None, None)  # the next burst
        await asyncio.sleep(0.2)
        assert len(trims) == 2
        await middleware({"type": "lifespan"}, None, None)
        await asyncio.sleep(0.2)
        assert len(trims) == 2  # only HTTP requests count

    asyncio.run(scenario())


def test_http2_connections_forget_the_streams_that_ended_normally_but_not_the_reset_ones() -> None:
    import pytest
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.exceptions import ProtocolError
    from hpack import Encoder
    from hyperframe.frame import Frame, HeadersFrame, RstStreamFrame

    from app.runtime.memory import forget_ended_streams

    forget_ended_streams()
    client = H2Connection(H2Configuration(client_side=True))
    server = H2Connection(H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    request = [(":method", "POST"), (":path", "/invoke"), (":scheme", "http"), (":authority", "x")]

    def exchange(stream_id: int, reset: bool = False) -> None:
        client.send_headers(stream_id, request, end_stream=True)
        server.receive_data(client.data_to_send())
        if reset:
            server.reset_stream(stream_id)
        else:
            server.send_headers(stream_id, [(":status", "200")], end_stream=True)
        client.receive_data(server.data_to_send())

    for stream_id in range(1, 2001, 2):  # 1,000 invocations, each a stream that ends normally
        exchange(stream_id)
    exchange(2001, reset=True)
    exchange(2003)  # opening a stream is when h2 files the closed ones
    assert dict(server._closed_streams) == {2001: server._stream_closed_by(2001)}

    # Trailers still in flight on the reset stream are a stream error: answered with RST_STREAM.
    def late_trailers(stream_id: int) -> bytes:
        frame = HeadersFrame(stream_id, flags=["END_STREAM", "END_HEADERS"])
        frame.data = Encoder().encode([("x-late", "1")])
        return frame.serialize()

    server.receive_data(late_trailers(2001))
    header, _ = Frame.parse_frame_header(memoryview(server.data_to_send()[:9]))
    assert isinstance(header, RstStreamFrame) and header.stream_id == 2001
    # On a stream that ended normally they are a connection error, as they were with the full record.
    with pytest.raises(ProtocolError):
        server.receive_data(late_trailers(1))
