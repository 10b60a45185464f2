"""The endpoint's HTTP/2 fixes (app/runtime/http2.py): a connection survives data that arrives
after the endpoint answered, and keeps no record of the streams that ended normally."""

import asyncio
import socket
from typing import Any

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ResponseReceived, StreamEnded
from h2.exceptions import ProtocolError
from hpack import Encoder
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hyperframe.frame import Frame, HeadersFrame, RstStreamFrame

from app.runtime.http2 import fix_http2

REQUEST = [(":method", "POST"), (":path", "/invoke"), (":scheme", "http"), (":authority", "endpoint")]


def test_data_arriving_after_the_answer_leaves_the_connection_serving() -> None:
    """As the Restate Server does when a message crosses the endpoint's suspension: the request
    stream sends more data after the response has ended. hypercorn alone drops the connection."""
    fix_http2()

    async def answer_at_once(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"suspended"})

    async def scenario() -> list[int]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        stop = asyncio.Event()
        server = asyncio.create_task(serve(answer_at_once, config, shutdown_trigger=stop.wait))
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        client = H2Connection(H2Configuration(client_side=True))
        client.initiate_connection()
        statuses: list[int] = []

        async def exchange(stream_id: int) -> None:
            client.send_headers(stream_id, REQUEST)  # the request stays open, as Restate's does
            writer.write(client.data_to_send())
            ended = False
            while not ended:
                data = await asyncio.wait_for(reader.read(65536), 5)
                if not data:
                    raise ConnectionError("the endpoint closed the connection")
                for event in client.receive_data(data):
                    if isinstance(event, ResponseReceived):
                        statuses.append(int(dict(event.headers)[b":status"]))
                    ended |= isinstance(event, StreamEnded) and event.stream_id == stream_id
                writer.write(client.data_to_send())

        try:
            await exchange(1)
            await asyncio.sleep(0.1)  # the endpoint is done with stream 1
            client.send_data(1, b"a message that crossed the answer", end_stream=True)
            writer.write(client.data_to_send())
            await asyncio.sleep(0.1)
            await exchange(3)  # the same connection serves the next invocation
        finally:
            writer.close()
            stop.set()
            await server
        return statuses

    assert asyncio.run(scenario()) == [200, 200]


def test_connections_forget_the_streams_that_ended_normally_but_not_the_reset_ones() -> None:
    fix_http2()
    client = H2Connection(H2Configuration(client_side=True))
    server = H2Connection(H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())

    def exchange(stream_id: int, reset: bool = False) -> None:
        client.send_headers(stream_id, REQUEST, end_stream=True)
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
