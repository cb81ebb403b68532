"""A stream socket client that behaves like a well-made screen, and records what it got.

``StreamClient`` follows ``/ws/orders/<outlet>/`` or ``/ws/kitchen/<outlet>/`` of a real
server process with the ``websockets`` package, the way docs/realtime.md tells client
authors to: keep the last seq applied; on any close other than a refusal, back off and
reconnect with ``?since=<last seq>``, to whichever server process ``choose_server`` names.
Every frame received is recorded per connection (``Session``) with the time it arrived, so
a checker can compare the whole history with the outlet's event log afterwards.

Knobs for fault tests: ``drop()`` closes the socket from the client side (cleanly, or by
aborting the TCP connection as a lost network would); ``stop_reading()`` makes the client stop
reading frames while staying connected (with a small receive buffer, so the server feels it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

#: Close codes after which a well-made client does not retry (docs/realtime.md).
REFUSALS = frozenset({4401, 4403, 4404})
RATE_LIMITED = 4429


@dataclass(frozen=True)
class Received:
    seq: int
    name: str
    outlet: str
    committed: float  # the event's ``at``, as a UNIX time
    received: float  # when this client read the frame, as a UNIX time


@dataclass
class Session:
    """One connection: where it went, what it asked for, and every event it read."""

    server: str
    since: int | None
    opened_at: float
    closed_at: float | None = None
    close_code: int | None = None
    snapshot_seq: int | None = None
    reset: bool = False
    events: list[Received] = field(default_factory=list)

    @property
    def seqs(self) -> list[int]:
        return [event.seq for event in self.events]


class StreamClient:
    """One logical screen: keeps its last seq across connections, reconnects with ``since``."""

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        outlet_id: str,
        token: str,
        choose_server: Callable[[], str],
        station_id: str | None = None,
        max_queue: int = 64,
        receive_buffer: int | None = None,
        backoff: tuple[float, float] = (0.05, 1.0),
    ) -> None:
        if kind not in ("orders", "kitchen"):
            raise ValueError(f"unknown socket kind {kind!r}")
        self.name = name
        self.kind = kind
        self.outlet_id = str(outlet_id)
        self.token = token
        self.choose_server = choose_server
        self.station_id = station_id
        self.max_queue = max_queue
        self.receive_buffer = receive_buffer
        self.backoff = backoff

        self.start_seq: int | None = None  # the first snapshot's seq: events after it are due
        self.last_seq: int | None = None
        self.sessions: list[Session] = []
        self.errors: list[dict] = []  # ``error`` frames and frames the protocol does not have
        self.failed_connects: list[str] = []
        self.refused_with: int | None = None

        self._reading = asyncio.Event()
        self._reading.set()
        self._ws: ClientConnection | None = None
        self._pause_next = 0.0
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._progress = asyncio.Condition()

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> StreamClient:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        return self

    async def stop(self) -> None:
        self._stopping = True
        self._reading.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Until a connection has delivered its first frame (snapshot or replay)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.refused_with is not None:
                raise AssertionError(f"{self.name} was refused with {self.refused_with}")
            if self._ws is not None and self.last_seq is not None:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{self.name} did not connect in {timeout}s: "
                             f"{self.failed_connects[-3:]}")

    async def wait_for_seq(self, seq: int, timeout: float) -> bool:
        """Until ``last_seq`` reaches ``seq``; False on timeout."""
        async def reached() -> None:
            async with self._progress:
                await self._progress.wait_for(
                    lambda: self.last_seq is not None and self.last_seq >= seq
                )

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            return False
        return True

    # --- fault knobs ------------------------------------------------------------------------
    async def drop(self, *, pause: float = 0.0, abort: bool = False) -> None:
        """Close the current connection; reconnect (with ``since``) after ``pause`` seconds.

        ``abort`` drops the TCP connection without a closing handshake, as a lost network does.
        """
        ws = self._ws
        if ws is None:
            return
        self._pause_next = pause
        if abort:
            ws.transport.abort()
        else:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)

    def stop_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    # --- the connection loop ----------------------------------------------------------------
    def url(self, base: str) -> str:
        query = {"token": self.token}
        if self.station_id:
            query["station"] = self.station_id
        if self.last_seq is not None:
            query["since"] = str(self.last_seq)
        return f"{base}/ws/{self.kind}/{self.outlet_id}/?{urlencode(query)}"

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stopping:
            base = self.choose_server()
            session: Session | None = None
            try:
                session = await self._connect_and_read(base)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.failed_connects.append(f"{base}: {type(exc).__name__}: {exc}")
            if self._stopping:
                return
            code = session.close_code if session is not None else None
            if code in REFUSALS:
                self.refused_with = code
                return
            if session is not None and session.events:
                delay = self.backoff[0]  # it worked for a while: start the backoff over
            pause, self._pause_next = self._pause_next, 0.0
            wait = max(pause, delay * random.uniform(0.5, 1.5))
            if code == RATE_LIMITED:
                wait = max(wait, 1.0)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.backoff[1])

    def _socket(self, base: str) -> socket.socket | None:
        if self.receive_buffer is None:
            return None
        parts = urlsplit(base)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Set before connecting, so the TCP window is small from the start.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            sock.settimeout(2)
            sock.connect((parts.hostname, parts.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    async def _connect_and_read(self, base: str) -> Session:
        sock = self._socket(base)
        kwargs = {"sock": sock} if sock is not None else {}
        since = self.last_seq
        try:
            ws = await connect(
                self.url(base), proxy=None, compression=None, max_size=None,
                max_queue=self.max_queue, ping_interval=None, open_timeout=5,
                close_timeout=2, **kwargs,
            )
        except InvalidStatus as exc:
            raise OSError(f"handshake answered {exc.response.status_code}") from exc
        session = Session(server=base, since=since, opened_at=time.time())
        self.sessions.append(session)
        self._ws = ws
        try:
            while True:
                await self._reading.wait()
                raw = await ws.recv()
                await self._apply(session, raw)
        except ConnectionClosed as exc:
            received = exc.rcvd
            session.close_code = received.code if received is not None else 1006
        finally:
            self._ws = None
            session.closed_at = time.time()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1)
        return session

    async def _apply(self, session: Session, raw: str | bytes) -> None:
        now = time.time()
        try:
            frame = json.loads(raw)
        except ValueError:
            self.errors.append({"type": "not_json", "raw": str(raw)[:200]})
            return
        kind = frame.get("type")
        if kind == "snapshot":
            session.snapshot_seq = frame["seq"]
            session.reset = bool(frame.get("reset"))
            if self.start_seq is None:
                self.start_seq = frame["seq"]
            self.last_seq = frame["seq"]
        elif kind == "event":
            event = Received(
                seq=frame["seq"],
                name=frame["event"],
                outlet=frame["outlet"],
                committed=datetime.fromisoformat(frame["at"]).timestamp(),
                received=now,
            )
            session.events.append(event)
            if self.last_seq is None or event.seq > self.last_seq:
                self.last_seq = event.seq
        elif kind == "pong":
            return
        else:
            self.errors.append(frame)
            return
        async with self._progress:
            self._progress.notify_all()

    # --- what was received, across sessions -------------------------------------------------
    @property
    def received(self) -> list[Received]:
        return [event for session in self.sessions for event in session.events]


async def start_clients(clients: list[StreamClient], timeout: float = 15.0) -> None:
    for client in clients:
        client.start()
    await asyncio.gather(*(client.wait_connected(timeout) for client in clients))


async def stop_clients(clients: list[StreamClient]) -> None:
    await asyncio.gather(*(client.stop() for client in clients))
