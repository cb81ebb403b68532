"""uvicorn's WebSocket protocol with less state per connection.

Run uvicorn with ``--ws pos.ws_protocol:WebSocketProtocol``.

A server process holds thousands of idle screens, so what each connection keeps matters. This
is uvicorn's own websockets-sansio protocol (handshake, keepalive pings and their timeout,
closing handshake, flow control: all inherited, none changed); three pieces of its state are
lighter:

- the receive queue: ``asyncio.Queue`` allocates four deques up front (getters, putters,
  items, and the waiters of its ``join`` event), about 3 KB; uvicorn uses an unbounded queue's
  ``put_nowait``, ``get`` and ``empty``, which ``ReceiveQueue`` provides with two lists;
- the ``writable`` flag: an ``asyncio.Event`` allocates a deque of waiters (760 B) that only a
  paused transport ever uses; ``Flag`` keeps its waiters only while there are some;
- the opening handshake's request and response, whose header maps (about 4 KB) nothing reads
  once the response is written: the scope holds the request headers the application sees.
  websockets' parser keeps the request in a local of its generator for as long as the
  connection lives, so its header map is emptied rather than only let go of.

It also lets the application write a text frame it has already built (``send_frame``,
offered in the scope as the ``pos.websocket.frames`` extension): the stream hub builds each
event's frame once and writes it to every socket, instead of each socket encoding and framing
the same text again through ``websocket.send``.

Requires the uvicorn version pinned in pyproject.toml (its websockets-sansio protocol with
keepalive pings); tests/test_ws_protocol.py checks the state replaced here is still uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

# The scope extension under which a connection offers ``send_frame``: {"send": callable}.
FRAMES_EXTENSION = "pos.websocket.frames"


class ReceiveQueue:
    """An unbounded ``asyncio.Queue`` as uvicorn uses it: ``put_nowait``, ``get``, ``empty``.

    Wake-up and cancellation follow ``asyncio.Queue.get``: getters are woken in order, and a
    getter cancelled after it was woken passes the wake-up on.
    """

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._getters: list[asyncio.Future] = []

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_next()

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()  # in case it was not done yet
                if getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_next()
                raise
        return self._items.pop(0)

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class Flag:
    """``asyncio.Event`` (``set``, ``clear``, ``is_set``, ``wait``) whose list of waiters
    exists only while something waits."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            self._waiters.remove(waiter)
            if not self._waiters:
                self._waiters = None


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """``WebSocketsSansIOProtocol`` with the lighter state described in the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()  # as uvicorn's: writable until the transport pauses

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The scope holds what the application may read of the request (its headers are a
        # copy). The response is kept until the application accepts (see start_keepalive).
        self.request = None
        event.headers.clear()
        if not self.close_sent:  # accepted by websockets: the scope exists
            self.scope["extensions"][FRAMES_EXTENSION] = {"send": self.send_frame}

    def send_frame(self, frame: bytes) -> bool:
        """Write ``frame``, a complete unmasked text frame, if the connection can take it now.

        Returns False, writing nothing, when it cannot: the transport is paused (a slow
        reader) or closing, the connection is not open (handshake, closing handshake, gone),
        compression was negotiated (the frame is uncompressed), or websockets has output of
        its own pending. The caller then sends the text through ``websocket.send``, which
        waits, fails or frames as the connection needs.
        """
        if (
            self.writable.is_set()
            and not self.close_sent
            and self.handshake_complete
            and self.initial_response is None
            and not self.disconnected
            and self.conn.state is State.OPEN
            and not self.conn.extensions
            and not self.conn.writes
            and not self.transport.is_closing()
        ):
            self.transport.write(frame)
            return True
        return False

    def start_keepalive(self) -> None:
        # Called once, when the accepting response has been written: the handshake is over.
        self.response = None
        super().start_keepalive()
