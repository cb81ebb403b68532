"""One socket's place in an outlet stream, and the hot path that feeds it.

The hub hands every event of an outlet to each of its subscriptions, synchronously, on the
event loop. A subscription that is in step (nothing buffered, nothing to catch up, the event
is the next seq) sends the frame right there: where the server offers it
(``pos.ws_protocol``), by writing the event's frame, built once per process, to the socket's
transport; elsewhere through the server's ``send``, which only suspends when the socket's
transport is paused (a slow reader). For a healthy socket either completes in one step, with
no task switch per socket. Otherwise, and whenever that send does suspend, the
event goes to a bounded per-socket buffer drained by a writer task that exists only while
there is something to write. A buffer that overflows is dropped and refilled from the
outlet's recent events (kept by the hub) or the log, so a slow socket never delays the
others and never grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

from django.conf import settings

from pos import metrics
from pos.streams.wire import frame_of, frames_of

logger = logging.getLogger(__name__)

Message = dict[str, Any]


class StreamSocket(Protocol):
    """What a subscription needs from its consumer."""

    base_send: Callable[[dict[str, Any]], Awaitable[None]]
    # Writes a prebuilt text frame if the socket can take it at once (``pos.ws_protocol``);
    # None where the server offers no such thing.
    send_frame: Callable[[bytes], bool] | None

    def accepts(self, name: str, order_id: str | None, station_id: str | None) -> bool: ...

    async def close(self, code: int | None = None) -> None: ...


class EventSource(Protocol):
    """Where catch-up reads from: the hub's recent events, then the log."""

    def recent(self, outlet_id: str, seq: int) -> Message | None: ...

    async def fetch_after(self, outlet_id: str, after: int) -> list[Message] | None: ...


async def finish_suspended(coro: Coroutine[Any, Any, Any], pending: Any) -> None:
    """Drive to completion a coroutine that was stepped by hand and suspended on ``pending``.

    Does what a Task does for the rest of the coroutine: waits for the future it yielded (or
    a bare yield), then resumes it, until it returns; cancellation is passed into it.
    """
    while True:
        try:
            if pending is None:
                await asyncio.sleep(0)
            else:
                pending._asyncio_future_blocking = False
                await asyncio.wait((pending,))
        except asyncio.CancelledError:
            coro.close()
            raise
        try:
            pending = coro.send(None)
        except StopIteration:
            return


class Subscription:
    __slots__ = (
        "_dead",
        "buffer",
        "catch_up_needed",
        "last_seq",
        "limit",
        "outlet_id",
        "send_frame",
        "socket",
        "source",
        "started",
        "writer",
    )

    def __init__(
        self, socket: StreamSocket, source: EventSource, outlet_id: str, last_seq: int
    ) -> None:
        self.socket = socket
        self.send_frame = getattr(socket, "send_frame", None)
        self.source = source
        self.outlet_id = outlet_id
        self.last_seq = last_seq
        self.buffer: deque[Message] | None = None
        self.limit = settings.WS_SEND_QUEUE_LIMIT
        self.catch_up_needed = False
        self.started = False  # until the snapshot or replay point is set, everything buffers
        self.writer: asyncio.Task | None = None
        self._dead = False

    # --- called by the hub, on the loop, without awaiting: quick, never blocks --------------
    def deliver_many(self, messages: Sequence[Message], frames: bytes | None = None) -> None:
        """Take events of the outlet in seq order (one, or a transaction's): while in step,
        those this socket accepts go out together, in one write where the server takes
        prebuilt frames; from the first one out of step on, they queue for the writer.
        ``frames``: all of ``messages`` framed back to back, built once by the caller for
        every socket that takes them all."""
        if self._dead:
            return
        index = 0
        if self.writer is None and self.started and not self.buffer and not self.catch_up_needed:
            accepted: list[Message] = []
            for message in messages:
                seq = message["seq"]
                if seq > self.last_seq + 1:
                    break  # a gap: the writer fills it before sending this one
                index += 1
                if seq <= self.last_seq:
                    continue  # already sent (replay, or a relay re-publication)
                self.last_seq = seq
                if self._accepts(message):
                    accepted.append(message)
            if accepted:
                whole = frames is not None and len(accepted) == len(messages)
                self._send_now(accepted, frames if whole else None)
        for message in messages[index:]:
            self._enqueue(message)

    def request_catch_up(self) -> None:
        if self._dead:
            return
        self.catch_up_needed = True
        self._ensure_writer()

    def catch_up_if_behind(self, settled_seq: int) -> None:
        """The watchdog's check: catch up unless every event up to ``settled_seq`` was sent
        or waits in this socket's buffer. A socket behind its own buffer is not behind the
        stream: reading the log for it again would only add work when the server is already
        overloaded (a gap inside the buffer is filled as the writer reaches it)."""
        received = self.buffer[-1]["seq"] if self.buffer else 0
        if max(received, self.last_seq) < settled_seq:
            self.request_catch_up()

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """The snapshot or replay point is set: forward from ``last_seq`` on."""
        self.started = True
        self.catch_up_needed = True  # whatever was committed since the snapshot was read
        self._ensure_writer()

    async def stop(self) -> None:
        self._dead = True
        writer, self.writer = self.writer, None
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    # --- internals --------------------------------------------------------------------------
    def _accepts(self, message: Message) -> bool:
        return self.socket.accepts(message["name"], message.get("order"), message.get("station"))

    def _send_now(self, messages: list[Message], frames: bytes | None = None) -> None:
        """Send ``messages`` (in order, already counted in ``last_seq``; ``frames``, theirs if
        built) without awaiting; what cannot be sent at once is finished by the writer, ahead
        of anything queued."""
        if self.send_frame is not None and self.send_frame(frames or frames_of(messages)):
            return
        for index, message in enumerate(messages):
            coro = self.socket.base_send({"type": "websocket.send", "text": message["text"]})
            try:
                pending = coro.send(None)
            except StopIteration:
                continue
            except Exception:
                self._dead = True  # the socket is gone; its disconnect cleans up
                logger.debug("send to a closed socket", exc_info=True)
                return
            # The transport is paused: the writer finishes this send and sends the rest; later
            # events queue behind them.
            metrics.socket_sends_suspended.inc()
            self.writer = asyncio.get_running_loop().create_task(
                self._drain(coro, pending, messages[index + 1 :])
            )
            return

    def _enqueue(self, message: Message) -> None:
        if self.buffer is None:
            self.buffer = deque()
        if len(self.buffer) >= self.limit:
            self.buffer.clear()  # too far behind: refill from recent events and the log
            self.catch_up_needed = True
            metrics.socket_resyncs.inc()
        else:
            self.buffer.append(message)
        self._ensure_writer()

    def _ensure_writer(self) -> None:
        if self.writer is None and self.started and not self._dead:
            self.writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self, suspended_send=None, pending=None, unsent=()) -> None:
        try:
            if suspended_send is not None:
                await finish_suspended(suspended_send, pending)
            for message in unsent:  # counted in last_seq already: send, do not forward
                await self.socket.base_send({"type": "websocket.send", "text": message["text"]})
            while True:
                if self.catch_up_needed:
                    self.catch_up_needed = False
                    await self.catch_up()
                    continue
                if not self.buffer:
                    return
                await self._forward(self.buffer.popleft())
        except asyncio.CancelledError:
            raise
        except Exception:
            self._dead = True
            logger.exception("stream writer failed; closing the socket")
            with contextlib.suppress(Exception):
                await self.socket.close(code=1011)
        finally:
            if self.writer is asyncio.current_task():
                self.writer = None

    async def _forward(self, message: Message) -> None:
        seq = message["seq"]
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            await self.catch_up(up_to=seq - 1)  # a gap on the live path
            if seq <= self.last_seq:
                return
        await self._send(message)

    async def _send(self, message: Message) -> None:
        seq = message["seq"]
        if seq != self.last_seq + 1:
            # Pruned (or never committed) seqs cannot be replayed: jump, but say so.
            logger.warning(
                "event log has a hole",
                extra={"outlet": self.outlet_id, "after": self.last_seq, "next": seq},
            )
        self.last_seq = seq
        if self._accepts(message) and not (
            self.send_frame is not None and self.send_frame(frame_of(message))
        ):
            await self.socket.base_send({"type": "websocket.send", "text": message["text"]})

    async def catch_up(self, up_to: int | None = None) -> None:
        """Send, in order, every event after ``last_seq`` (up to ``up_to``): from the hub's
        recent events while they reach, then from the log."""
        while up_to is None or self.last_seq < up_to:
            message = self.source.recent(self.outlet_id, self.last_seq + 1)
            if message is not None:
                await self._send(message)
                continue
            fetched = await self.source.fetch_after(self.outlet_id, self.last_seq)
            if fetched is None:
                continue  # someone else just filled the recent events: read them there
            if not fetched:
                return
            for message in fetched:
                if up_to is not None and message["seq"] > up_to:
                    return
                if message["seq"] > self.last_seq:
                    await self._send(message)
