"""The stream consumer base every socket uses.

A subclass says which outlet the socket follows and whether the user may follow it
(``authorize``), which events it forwards (``accepts``), what the snapshot holds
(``snapshot``), and how to answer client commands (``handle_command``). The base does the
rest, identically for the three sockets:

1. accept, then close 4401 (no or bad token), 4404 (unknown or another tenant's), 4403;
2. subscribe to the process hub *before* reading the log, so nothing committed meanwhile is
   lost (what arrives live is buffered and de-duplicated by seq);
3. send a snapshot (no ``since``, or a ``since`` the log cannot serve: ``"reset": true``) or
   replay the log after ``since``;
4. forward live events in strictly increasing seq, none twice; a gap is filled from the log.

Delivery itself lives in ``pos.streams.subscription``: in-step events go straight to the
socket; a paused socket buffers (bounded) behind a writer task, so it never delays the others,
and one that overflows catches up from the process's recent events or the log.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import connection, transaction

from pos import metrics
from pos.process_cache import process_cache
from pos.streams import log
from pos.streams.hub import get_hub
from pos.streams.subscription import Subscription
from pos.ws_protocol import FRAMES_EXTENSION

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_RATE_LIMITED = 4429


class CommandError(Exception):
    """A client command that cannot be carried out: becomes an ``error`` message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Access:
    """The outcome of ``authorize``: the outlet followed, or the close code to refuse with."""

    outlet_id: str | None = None
    close_code: int | None = None

    @classmethod
    def refuse(cls, code: int) -> Access:
        return cls(close_code=code)


def _connect_allowed(user_id) -> bool:
    """Counts the user's socket connections in the current minute (shared across processes).

    Fails open: with the cache (Redis) unreachable the connection is allowed, since screens
    must keep working through a Redis outage; the limit returns with the cache.
    """
    cache = process_cache()
    key = f"ws-connects:{user_id}:{int(time.time() // 60)}"
    try:
        if cache.add(key, 1, timeout=90):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=90)
                count = 1
    except Exception:
        logger.warning("connection-rate store unreachable; socket allowed", exc_info=True)
        return True
    return count <= settings.WS_CONNECTS_PER_MINUTE


class MessageBucket:
    """Token bucket limiting one socket's client messages."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _snapshot_transaction(outlet_id: str, build) -> tuple[int, dict[str, Any]]:
    """Read the outlet's last seq and the snapshot state in one consistent database snapshot."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        seq = log.last_seq(outlet_id)
        return seq, build()


class StreamConsumer(AsyncWebsocketConsumer, abc.ABC):
    """Base for the outlet-stream sockets. Subclasses implement the three abstract hooks and
    may override ``handle_command``."""

    stream_name = "stream"

    subscription: Subscription | None = None
    user = None
    send_frame = None  # the server's prebuilt-frame writer, where it offers one

    async def __call__(self, scope, receive, send) -> None:
        """Channels' consumer loop, for a socket whose only message source is its client.

        The hub carries stream messages to the subscription, so the socket has no channel on
        the layer (that would only cost Redis work per socket). ``AsyncConsumer.__call__``
        waits on its sources through ``await_many_dispatch``, which keeps a task and an
        ``asyncio.wait`` per socket even for one source: about 2.5 KB of every idle socket.
        With one source, awaiting it directly dispatches the same messages in the same order.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        frames = (scope.get("extensions") or {}).get(FRAMES_EXTENSION)
        if frames is not None:
            self.send_frame = frames["send"]
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    # --- hooks ------------------------------------------------------------------------------
    @abc.abstractmethod
    def authorize(self, user) -> Access:
        """Runs in a worker thread (may use the ORM). Return the outlet or a close code."""

    @abc.abstractmethod
    def accepts(self, name: str, order_id: str | None, station_id: str | None) -> bool:
        """Whether an event of this outlet goes to this socket. Runs on the event loop."""

    @abc.abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """Runs in a worker thread inside the snapshot transaction: the current state."""

    async def handle_command(self, content: dict[str, Any]) -> dict[str, Any]:
        """Answer a client message whose type the base does not know."""
        raise CommandError("unknown_type", f"Unknown message type {content.get('type')!r}.")

    # --- connection -------------------------------------------------------------------------
    async def connect(self) -> None:
        await self.accept()
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(_connect_allowed)(self.user.pk):
            await self.close(code=CLOSE_RATE_LIMITED)
            return
        access: Access = await database_sync_to_async(self.authorize)(self.user)
        if access.close_code is not None:
            await self.close(code=access.close_code)
            return
        self.bucket = MessageBucket(settings.WS_MESSAGES_PER_SECOND, settings.WS_MESSAGE_BURST)
        outlet_id = str(access.outlet_id)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        since = _parse_since(query.get("since", [None])[0])

        hub = get_hub()
        subscription = Subscription(self, hub, outlet_id, last_seq=0)
        await hub.subscribe(outlet_id, subscription)  # buffer live events from now on
        self.subscription = subscription
        metrics.open_sockets.labels(stream=self.stream_name).inc()

        if since is not None:
            current = await database_sync_to_async(log.last_seq)(outlet_id)
            if await database_sync_to_async(log.since_is_replayable)(outlet_id, since, current):
                subscription.last_seq = since
                subscription.start()  # replays the log after since, then goes live
                return
        await self._send_snapshot(reset=since is not None)
        subscription.start()

    async def _send_snapshot(self, *, reset: bool) -> None:
        outlet_id = self.subscription.outlet_id
        seq, state = await database_sync_to_async(_snapshot_transaction)(outlet_id, self.snapshot)
        self.subscription.last_seq = seq
        payload = {"type": "snapshot", "seq": seq, **state}
        if reset:
            payload["reset"] = True
        await self.send_json(payload)

    async def disconnect(self, code: int) -> None:
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            metrics.open_sockets.labels(stream=self.stream_name).dec()
            await get_hub().unsubscribe(subscription.outlet_id, subscription)
            await subscription.stop()

    # --- client messages --------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if self.subscription is None:
            return  # closing
        if not self.bucket.take():
            await self.send_error("rate_limited", "Too many messages; the socket is closed.")
            await self.close(code=CLOSE_RATE_LIMITED)
            return
        raw = text_data if text_data is not None else bytes_data
        size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw or b"")
        if size > settings.WS_MAX_FRAME_BYTES:
            await self.send_error("frame_too_large",
                                  f"Frames are limited to {settings.WS_MAX_FRAME_BYTES} bytes.")
            return
        try:
            content = json.loads(raw)
        except RecursionError:
            await self.send_error("invalid_message", "The message is nested too deeply.")
            return
        except (TypeError, ValueError, UnicodeDecodeError):
            await self.send_error("malformed_json", "The message is not valid JSON.")
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("invalid_message", 'A message is a JSON object with a "type".')
            return
        request_id = content.get("request_id")
        if content["type"] == "ping":
            await self.send_json({"type": "pong", "seq": self.subscription.last_seq})
            return
        try:
            reply = await self.handle_command(content)
        except CommandError as exc:
            await self.send_error(exc.code, exc.message, request_id=request_id)
            return
        if reply is not None:
            await self.send_json(reply)

    async def send_error(self, code: str, message: str, *, request_id: Any = None) -> None:
        payload: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if request_id is not None:
            payload["request_id"] = request_id
        await self.send_json(payload)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":"), default=str))


def _parse_since(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return -1  # unusable: answered with a reset snapshot
