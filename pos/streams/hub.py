"""Per-process fan-out: one channel-layer subscription per outlet, shared by local sockets.

Every server process owns one hub per event loop. The hub holds one channel on the layer, adds
it to the group of each outlet that has at least one local socket, and hands each message it
receives to the subscriptions of that outlet. Redis work per event is therefore O(processes),
not O(sockets), and the message text (already JSON) is built once at publication. A process
that falls behind hands out what has queued up together, one write per socket for all of it,
so that it catches up rather than falling further behind.

The hub never trusts the layer to deliver. After a receive error it rejoins its groups and
asks every subscription to catch up from the log; a watchdog compares each subscription with
the outlet's committed cursor every few seconds, so an event dropped anywhere (a full channel,
a Redis restart that lost the group) still reaches the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from pos import metrics
from pos.models import StreamCursor
from pos.streams import log
from pos.streams.wire import frames_of, group_for_outlet, message_from_row, messages_of

logger = logging.getLogger(__name__)

WATCHDOG_INTERVAL_S = 2.0
GROUP_REFRESH_S = 3600.0
# Events of one outlet committed by several processes close together may be published, and
# so arrive, out of seq order. A later event waits this long for the ones before it, so that
# sockets get them in order from memory instead of each filling the gap from the log.
REORDER_WAIT_S = 0.05
# A message that reaches the hub more than LATE_S after its publication has queued behind
# others: the process is behind (a burst, a slow core). The hub then lets GATHER_S pass before
# handing out, and hands out everything that arrived meanwhile together: one write per socket
# for all of it instead of one per event, so a backlog shrinks instead of feeding itself. A
# process that keeps up hands out every message as it arrives. The publication stamp is the
# publishing host's clock: hosts kept in step by NTP differ by far less than LATE_S, and a
# host whose clock runs ahead would at worst cost every message GATHER_S.
LATE_S = 0.015
GATHER_S = 0.005


class Subscriber(Protocol):
    def deliver_many(self, messages: list[dict[str, Any]], frames: bytes | None = None) -> None:
        ...

    def request_catch_up(self) -> None: ...

    def catch_up_if_behind(self, settled_seq: int) -> None: ...


class RecentEvents:
    """The last N messages of one outlet, by seq: catch-ups read here before the log."""

    __slots__ = ("by_seq", "order", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.by_seq: dict[int, dict[str, Any]] = {}
        self.order: deque[int] = deque()

    def add(self, message: dict[str, Any]) -> None:
        seq = message["seq"]
        if seq in self.by_seq:
            return
        self.by_seq[seq] = message
        self.order.append(seq)
        while len(self.order) > self.size:
            self.by_seq.pop(self.order.popleft(), None)


class OutletStream:
    """What the hub keeps for one outlet that has local sockets; dropped with the last one."""

    __slots__ = ("fill_lock", "held", "log_end", "log_reads", "next_seq", "recent",
                 "release_timer", "subscribers")

    def __init__(self, recent_size: int) -> None:
        self.subscribers: set[Subscriber] = set()
        self.recent = RecentEvents(recent_size)
        # One log read at a time (``fetch_after``): reads started, and (read, seq) of the
        # latest read that found the log ending at seq. A catch-up that waited for a read
        # which started after it asked, and is not behind where that read found the end, has
        # nothing to read.
        self.fill_lock = asyncio.Lock()
        self.log_reads = 0
        self.log_end: tuple[int, int] | None = None
        # The seq handed out next, and arrivals after a gap held for it (REORDER_WAIT_S).
        self.next_seq: int | None = None
        self.held: dict[int, dict[str, Any]] = {}
        self.release_timer: asyncio.TimerHandle | None = None

    def cancel_release(self) -> None:
        """No held event waits any more (or the outlet is dropped): stop the reorder timer."""
        if self.release_timer is not None:
            self.release_timer.cancel()
            self.release_timer = None


def _seq(message: dict[str, Any]) -> int:
    return message["seq"]


def _waited(message: dict[str, Any]) -> float:
    """Seconds since the layer message was published (its last event's stamp)."""
    published = messages_of(message)[-1].get("published")
    return time.time() - published if published else 0.0


def _log_messages(outlet_id: str, after: int) -> list[dict[str, Any]]:
    outlet_id = str(uuid.UUID(str(outlet_id)))
    return [message_from_row(outlet_id, row) for row in log.event_rows_after(outlet_id, after)]


def _cursors(outlet_ids: list[str]) -> dict[str, int]:
    rows = StreamCursor.objects.filter(outlet_id__in=outlet_ids).values_list(
        "outlet_id", "last_seq"
    )
    return {str(outlet_id): last_seq for outlet_id, last_seq in rows}


class StreamHub:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.outlets: dict[str, OutletStream] = {}
        # Messages received from the layer and not handed out yet (see LATE_S).
        self._arrivals: deque[dict[str, Any]] = deque()
        self._arrived: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    # --- membership -------------------------------------------------------------------------
    async def subscribe(self, outlet_id: str, subscriber: Subscriber) -> None:
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel("hub.")
            stream = self.outlets.get(outlet_id)
            if stream is None:
                stream = self.outlets[outlet_id] = OutletStream(settings.WS_RECENT_EVENTS)
                await self._join(outlet_id)
            stream.subscribers.add(subscriber)
            if not self._tasks:
                loop = asyncio.get_running_loop()
                self._tasks = [
                    loop.create_task(self._read_loop(), name="stream-hub-reader"),
                    loop.create_task(self._dispatch_loop(), name="stream-hub-dispatcher"),
                    loop.create_task(self._watchdog(), name="stream-hub-watchdog"),
                ]

    async def unsubscribe(self, outlet_id: str, subscriber: Subscriber) -> None:
        async with self._lock:
            stream = self.outlets.get(outlet_id)
            if stream is None:
                return
            stream.subscribers.discard(subscriber)
            if not stream.subscribers:
                del self.outlets[outlet_id]
                stream.cancel_release()
                try:
                    await self.layer.group_discard(group_for_outlet(outlet_id), self.channel)
                except Exception:
                    logger.warning("group_discard failed", exc_info=True)
            if not self.outlets:
                await self._stop_tasks()

    async def _join(self, outlet_id: str) -> None:
        try:
            await self.layer.group_add(group_for_outlet(outlet_id), self.channel)
        except Exception:
            # The layer is down: the watchdog keeps the socket current from the log, and the
            # reader rejoins every group once the layer answers again.
            logger.warning("group_add failed; serving from the log", exc_info=True)

    async def _rejoin_all(self) -> None:
        for outlet_id in list(self.outlets):
            await self._join(outlet_id)

    async def _stop_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        self._arrivals.clear()
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        for task in tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # --- delivery ---------------------------------------------------------------------------
    def dispatch_many(self, messages: Sequence[dict[str, Any]]) -> None:
        """Hand messages from the layer to their outlets' sockets: each outlet's events in one
        hand-out, in seq order; an event that arrives after a gap waits up to
        ``REORDER_WAIT_S`` for the missing ones."""
        by_outlet: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            by_outlet.setdefault(message.get("outlet"), []).extend(messages_of(message))
        for outlet_id, events in by_outlet.items():
            stream = self.outlets.get(outlet_id)
            if stream is not None and stream.subscribers:
                if len(events) > 1:
                    events.sort(key=_seq)
                self._dispatch_events(stream, events)

    def _dispatch_events(self, stream: OutletStream, events: list[dict[str, Any]]) -> None:
        ready: list[dict[str, Any]] = []
        for event in events:
            seq = event["seq"]
            expected = stream.next_seq
            if expected is not None and seq > expected:
                stream.held[seq] = event
                continue
            ready.append(event)
            if expected is None or seq == expected:
                stream.next_seq = seq + 1
                self._drain(stream, ready)
        if stream.held and stream.release_timer is None:
            stream.release_timer = asyncio.get_running_loop().call_later(
                REORDER_WAIT_S, self._release, stream
            )
        self._hand_out(stream, ready)

    def _drain(self, stream: OutletStream, ready: list[dict[str, Any]]) -> None:
        """Move held messages that are next in line to ``ready``."""
        held = stream.held
        while held:
            message = held.pop(stream.next_seq, None)
            if message is None:
                return
            ready.append(message)
            stream.next_seq += 1
        stream.cancel_release()

    def _release(self, stream: OutletStream) -> None:
        """The wait is over: hand out what is held, in order, gaps and all (each socket fills
        a gap from the log, as after any lost message)."""
        stream.release_timer = None
        held, stream.held = stream.held, {}
        ready = [held[seq] for seq in sorted(held)]
        if ready:
            stream.next_seq = ready[-1]["seq"] + 1
        self._hand_out(stream, ready)

    def _hand_out(self, stream: OutletStream, messages: list[dict[str, Any]]) -> None:
        subscribers = stream.subscribers
        if not subscribers or not messages:
            return
        now = time.time()
        for message in messages:
            stream.recent.add(message)
            committed = message.get("committed")
            if committed:
                metrics.fanout_latency.observe(max(0.0, now - committed))
        started = time.perf_counter()
        frames = frames_of(messages)  # once for every socket that takes them all
        for subscriber in tuple(subscribers):
            subscriber.deliver_many(messages, frames)
        metrics.fanout_handout.observe(time.perf_counter() - started)
        metrics.events_delivered.inc(len(subscribers) * len(messages))

    # --- the event source of catch-ups ------------------------------------------------------
    def recent(self, outlet_id: str, seq: int) -> dict[str, Any] | None:
        stream = self.outlets.get(outlet_id)
        return stream.recent.by_seq.get(seq) if stream is not None else None

    async def fetch_after(self, outlet_id: str, after: int) -> list[dict[str, Any]] | None:
        """Read the log after ``after`` into the recent events and return what was read.

        One reader per outlet at a time: when many sockets fall behind together (a Redis
        outage, a burst) the first reads the log and the others find the events in memory
        (``None`` tells the caller to look there again). Sockets that connect together (every
        screen after a restart) each catch up from their snapshot's seq: those that waited
        for a read which found nothing after their seq get ``[]`` without reading again.
        """
        stream = self.outlets.get(outlet_id)
        if stream is None:  # no local socket follows the outlet (any more): nothing to share
            return await database_sync_to_async(_log_messages)(outlet_id, after)
        reads_before = stream.log_reads
        async with stream.fill_lock:
            if stream.recent.by_seq.get(after + 1) is not None:
                return None
            end = stream.log_end
            if end is not None and end[0] > reads_before and after >= end[1]:
                return []  # read after this call began: nothing was committed after ``after``
            stream.log_reads += 1
            read = stream.log_reads
            messages = await database_sync_to_async(_log_messages)(outlet_id, after)
            if len(messages) < log.REPLAY_BATCH:
                stream.log_end = (read, messages[-1]["seq"] if messages else after)
            for message in messages:
                stream.recent.add(message)
            return messages

    def _everyone_catch_up(self) -> None:
        for stream in self.outlets.values():
            for subscriber in tuple(stream.subscribers):
                subscriber.request_catch_up()

    async def _read_loop(self) -> None:
        backoff = 0.1
        failed = False
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failed:
                    logger.warning("channel layer receive failed; retrying", exc_info=True)
                failed = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if failed:
                failed, backoff = False, 0.1
                async with self._lock:
                    await self._rejoin_all()
                self._everyone_catch_up()
            self._arrivals.append(message)
            self._arrival_event().set()

    def _arrival_event(self) -> asyncio.Event:
        if self._arrived is None:
            self._arrived = asyncio.Event()
        return self._arrived

    async def _dispatch_loop(self) -> None:
        """Hand out what the reader received: at once, or, when the process is behind,
        together with what arrives in the next ``GATHER_S`` (see ``LATE_S``)."""
        arrived = self._arrival_event()
        while True:
            await arrived.wait()
            arrived.clear()
            if not self._arrivals:
                continue
            if _waited(self._arrivals[-1]) > LATE_S:
                await asyncio.sleep(GATHER_S)
                arrived.clear()
            batch = list(self._arrivals)
            self._arrivals.clear()
            try:
                self.dispatch_many(batch)
            except Exception:
                logger.exception("stream hand-out failed; sockets catch up from the log")
                self._everyone_catch_up()

    async def _watchdog(self) -> None:
        """Catch up any subscription still behind a seq committed one interval ago.

        Comparing with the previous tick's cursor leaves events in flight (committed a few
        milliseconds ago, not yet delivered) to the live path.
        """
        since_refresh = 0.0
        previous: dict[str, int] = {}
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            since_refresh += WATCHDOG_INTERVAL_S
            outlet_ids = list(self.outlets)
            if not outlet_ids:
                continue
            try:
                cursors = await database_sync_to_async(_cursors)(outlet_ids)
            except Exception:
                logger.warning("watchdog could not read cursors", exc_info=True)
                continue
            for outlet_id, settled_seq in previous.items():
                stream = self.outlets.get(outlet_id)
                for subscriber in tuple(stream.subscribers if stream is not None else ()):
                    subscriber.catch_up_if_behind(settled_seq)
            previous = cursors
            if since_refresh >= GROUP_REFRESH_S:
                since_refresh = 0.0
                async with self._lock:
                    await self._rejoin_all()  # memberships expire after group_expiry


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamHub] = (
    weakref.WeakKeyDictionary()
)


def get_hub() -> StreamHub:
    """The hub of the running event loop (one per server process in production)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = StreamHub()
    return hub


def running_hub_loop() -> asyncio.AbstractEventLoop | None:
    """A running event loop of this process that serves sockets (has a hub), if any."""
    for loop in list(_hubs):
        if loop.is_running() and not loop.is_closed():
            return loop
    return None
