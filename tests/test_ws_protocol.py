"""``pos.ws_protocol``: uvicorn's websockets-sansio protocol with lighter per-connection state.

The behaviour tests run a real uvicorn server, in process, with uvicorn's own protocol and with
ours, and expect the same from both: handshake, messages, close codes, keepalive pings (a peer
that answers stays, a peer that does not is closed). The contract test fails if uvicorn stops
keeping the state ``WebSocketProtocol`` replaces where it expects it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct

import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pos.streams.wire import text_frame
from pos.ws_protocol import FRAMES_EXTENSION, Flag, ReceiveQueue, WebSocketProtocol

OURS = "pos.ws_protocol:WebSocketProtocol"
UVICORNS = "websockets-sansio"


async def echo_app(scope, receive, send):
    """Accepts, answers each text in upper case, closes with 4001 when asked to."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001})
        else:
            await send({"type": "websocket.send", "text": message["text"].upper()})


async def frames_app(scope, receive, send):
    """Answers each text with that text as a frame written through ``send_frame`` (reporting
    whether it was written), or through ``websocket.send`` when the server offers none."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    frames = scope["extensions"].get(FRAMES_EXTENSION)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message["text"]
        if frames is None:
            await send({"type": "websocket.send", "text": f"no extension: {text}"})
        elif not frames["send"](text_frame(text)):
            await send({"type": "websocket.send", "text": f"refused: {text}"})


@contextlib.asynccontextmanager
async def serving(ws: str, app=echo_app, **options):
    config = uvicorn.Config(app, ws=ws, lifespan="off", log_level="warning", **options)
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield server, f"ws://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def connections_of(server, kind):
    return [c for c in server.server_state.connections if isinstance(c, kind)]


# --- behaviour, against uvicorn's protocol and ours ------------------------------------------
@pytest.mark.parametrize("ws", [UVICORNS, OURS])
async def test_messages_and_close_codes(ws):
    async with serving(ws) as (_, url), connect(url, ping_interval=None) as client:
        for text in ("one", "two", "three"):
            await client.send(text)
            assert await client.recv() == text.upper()
        await client.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert closed.value.rcvd.code == 4001


@pytest.mark.parametrize("ws", [UVICORNS, OURS])
async def test_a_peer_that_answers_pings_stays_connected(ws):
    pings = {"ws_ping_interval": 0.1, "ws_ping_timeout": 0.2}
    # The client sends no pings of its own, and answers the server's.
    async with serving(ws, **pings) as (_, url), connect(url, ping_interval=None) as client:
        await asyncio.sleep(1.0)
        await client.send("still here")
        assert await client.recv() == "STILL HERE"


async def _raw_handshake(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("ws://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )
    response = await reader.readuntil(b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101")
    return reader, writer


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    assert length < 126  # control frames only here
    return first & 0x0F, await reader.readexactly(length)


@pytest.mark.parametrize("ws", [UVICORNS, OURS])
async def test_a_peer_that_does_not_answer_pings_is_closed(ws):
    async with serving(ws, ws_ping_interval=0.1, ws_ping_timeout=0.2) as (_, url):
        reader, writer = await _raw_handshake(url)
        try:
            async with asyncio.timeout(10):
                assert (await _read_frame(reader))[0] == 0x9  # ping, never answered
                opcode, payload = await _read_frame(reader)
                assert opcode == 0x8  # close: keepalive ping timeout
                assert struct.unpack("!H", payload[:2])[0] == 1011
                assert await reader.read() == b""  # and the server hangs up
        finally:
            writer.close()


# --- prebuilt frames ---------------------------------------------------------------------------
async def test_prebuilt_frames_arrive_as_text_messages_of_any_length():
    texts = ["short", "é" * 100, "x" * 126, "y" * 70_000]  # 7-, 16- and 64-bit lengths
    async with serving(OURS, frames_app) as (_, url), connect(
        url, ping_interval=None, compression=None, max_size=None
    ) as client:
        for text in texts:
            await client.send(text)
            assert await client.recv() == text


async def test_uvicorns_own_protocol_offers_no_prebuilt_frames():
    async with serving(UVICORNS, frames_app) as (_, url), connect(url) as client:
        await client.send("x")
        assert await client.recv() == "no extension: x"


async def test_a_compressed_connection_refuses_prebuilt_frames():
    # The frame is uncompressed; where permessage-deflate was negotiated the caller must send
    # the text through websocket.send, which compresses it.
    async with serving(OURS, frames_app, ws_per_message_deflate=True) as (_, url), connect(
        url, ping_interval=None, compression="deflate"
    ) as client:
        await client.send("x")
        assert await client.recv() == "refused: x"


async def test_a_paused_or_closing_connection_refuses_prebuilt_frames():
    async with serving(OURS) as (server, url), connect(
        url, ping_interval=None, compression=None
    ) as client:
        await client.send("x")
        await client.recv()
        [protocol] = connections_of(server, WebSocketProtocol)
        frame = text_frame("late")
        protocol.pause_writing()
        assert protocol.send_frame(frame) is False
        protocol.resume_writing()
        assert protocol.send_frame(frame) is True
        assert await client.recv() == "late"
        await client.send("close")  # the server sends its close frame
        with pytest.raises(ConnectionClosed):
            await client.recv()
        assert protocol.send_frame(frame) is False


# --- what each connection keeps --------------------------------------------------------------
async def test_uvicorn_keeps_the_state_that_ours_replaces():
    """If this fails, uvicorn changed the internals ``WebSocketProtocol`` relies on."""
    async with serving(UVICORNS) as (server, url), connect(url, ping_interval=None) as client:
        await client.send("x")
        await client.recv()
        [protocol] = connections_of(server, WebSocketsSansIOProtocol)
        assert type(protocol) is WebSocketsSansIOProtocol
        assert isinstance(protocol.queue, asyncio.Queue)
        assert isinstance(protocol.writable, asyncio.Event)
        assert protocol.request is not None and protocol.response is not None
        assert protocol.ping_timer is not None  # keepalive started on accept


async def test_our_connections_keep_the_lighter_state():
    async with serving(OURS) as (server, url), connect(url, ping_interval=None) as client:
        await client.send("x")
        await client.recv()
        [protocol] = connections_of(server, WebSocketProtocol)
        assert isinstance(protocol.queue, ReceiveQueue)
        assert isinstance(protocol.writable, Flag) and protocol.writable.is_set()
        assert protocol.request is None and protocol.response is None
        assert protocol.ping_timer is not None  # keepalive started on accept


# --- the replacements, as asyncio's ------------------------------------------------------------
async def test_receive_queue_is_fifo_and_get_waits_for_put():
    queue = ReceiveQueue()
    assert queue.empty()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await getter == 1
    assert not queue.empty() and queue.qsize() == 1
    assert await queue.get() == 2
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_receive_queue_wakes_getters_in_order_and_passes_on_a_cancelled_wake_up():
    queue = ReceiveQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("a")  # wakes first
    first.cancel()  # ... which is cancelled before it runs: second gets the item
    async with asyncio.timeout(5):
        assert await second == "a"
    assert first.cancelled()
    assert queue.empty() and queue._getters == []


async def test_flag_waits_until_set_and_keeps_no_waiters():
    flag = Flag()
    assert not flag.is_set()
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    flag.set()
    assert await waiter is True
    assert await flag.wait() is True  # set: returns at once
    flag.clear()
    cancelled = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert flag._waiters is None
