"""A lean WebSocket client for the load generator (RFC 6455, client side, no extensions).

The load client has to take tens of thousands of small frames per second on one core, and a
general-purpose client spends most of that budget on per-frame machinery. This one does the
handshake, reads unmasked server frames straight out of ``data_received`` and hands each
text message to a callback with the time the bytes arrived; it answers pings and closes, and
sends masked text frames. No compression is offered, so servers never compress.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HEADER = 16 * 1024


class HandshakeError(Exception):
    pass


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame (clients must mask)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + key + _mask(payload, key)


class ClientProtocol(asyncio.Protocol):
    """One socket. ``on_message(text_bytes, arrived_at)`` runs for every text message."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        on_message: Callable[[bytes, float], None],
        on_close: Callable[[int | None], None] | None = None,
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.on_message = on_message
        self.on_close = on_close
        self.key = base64.b64encode(os.urandom(16))
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self._header = b""
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._upgraded = False

    # --- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        request = (
            f"GET {self.path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        )
        transport.write(request.encode("latin-1"))

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        if not self._upgraded:
            self._header += data
            end = self._header.find(b"\r\n\r\n")
            if end < 0:
                if len(self._header) > MAX_HEADER:
                    self._fail(HandshakeError("handshake response too long"))
                return
            head, data = self._header[:end], self._header[end + 4 :]
            self._header = b""
            try:
                self._check_handshake(head)
            except HandshakeError as exc:
                self._fail(exc)
                return
            self._upgraded = True
            if not self.opened.done():
                self.opened.set_result(None)
            if not data:
                return
        buf = self._buffer + data if self._buffer else data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & 0x80:  # a server must not mask; read past the key anyway
                head += 4
            end = pos + head + length
            if end > size:
                break
            payload = buf[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if opcode == OP_TEXT and b0 & 0x80:
                self.on_message(payload, arrived)
            else:
                self._control_or_fragment(b0, opcode, payload, arrived)
        self._buffer = buf[pos:] if pos < size else b""

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)
        if self.on_close is not None:
            self.on_close(self.close_code)

    # --- frames ---------------------------------------------------------------------------
    def _control_or_fragment(self, b0: int, opcode: int, payload: bytes, arrived: float) -> None:
        fin = bool(b0 & 0x80)
        if opcode in (OP_TEXT, OP_BINARY):
            self._fragment_opcode = opcode
            self._fragments = [payload]
        elif opcode == OP_CONT:
            self._fragments.append(payload)
            if fin:
                message = b"".join(self._fragments)
                self._fragments = []
                if self._fragment_opcode == OP_TEXT:
                    self.on_message(message, arrived)
        elif opcode == OP_PING:
            self.transport.write(encode_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self.transport.is_closing():
                self.transport.write(encode_frame(OP_CLOSE, payload[:2]))
                self.transport.close()

    def send_text(self, text: str) -> None:
        self.transport.write(encode_frame(OP_TEXT, text.encode()))

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(OP_CLOSE, code.to_bytes(2, "big")))
            # The server answers with its close frame and drops the TCP connection; this
            # side lets it go after a moment in any case (see ``abort_after``).

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- handshake ------------------------------------------------------------------------
    def _check_handshake(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"101":
            raise HandshakeError(f"handshake refused: {lines[0].decode('latin-1')}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1(self.key + GUID).digest())
        if headers.get(b"sec-websocket-accept") != expected:
            raise HandshakeError("bad Sec-WebSocket-Accept")

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: Callable[[bytes, float], None],
    on_close: Callable[[int | None], None] | None = None,
    timeout: float = 10.0,
) -> ClientProtocol:
    """Open one socket and finish the handshake (raises on refusal or timeout)."""
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: ClientProtocol(host, port, path, on_message, on_close), host, port
        ),
        timeout,
    )
    await asyncio.wait_for(asyncio.shield(protocol.opened), timeout)
    return protocol
