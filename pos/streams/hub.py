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
from pos.streams.wire import group_for_outlet, message_from_row, messages_of

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
    last_seq: int

    def deliver_many(self, messages: list[dict[str, Any]]) -> None: ...

    def request_catch_up(self) -> None: ...


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
        self.subscribers: dict[str, set[Subscriber]] = {}
        self._recent: dict[str, RecentEvents] = {}
        self._fill_locks: dict[str, asyncio.Lock] = {}
        # Per outlet: log reads started, and (read, seq) of the latest read that found the log
        # ending at seq. A catch-up that waited for a read which started after it asked, and
        # is not behind where that read found the end, has nothing to read.
        self._log_reads: dict[str, int] = {}
        self._log_ends: dict[str, tuple[int, int]] = {}
        # Per outlet: the seq the hub dispatches next, and arrivals after a gap held for it.
        self._next_seq: dict[str, int] = {}
        self._held: dict[str, dict[int, dict[str, Any]]] = {}
        self._release_timers: dict[str, asyncio.TimerHandle] = {}
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
            subscribers = self.subscribers.setdefault(outlet_id, set())
            if not subscribers:
                await self._join(outlet_id)
            subscribers.add(subscriber)
            if not self._tasks:
                loop = asyncio.get_running_loop()
                self._tasks = [
                    loop.create_task(self._read_loop(), name="stream-hub-reader"),
                    loop.create_task(self._dispatch_loop(), name="stream-hub-dispatcher"),
                    loop.create_task(self._watchdog(), name="stream-hub-watchdog"),
                ]

    async def unsubscribe(self, outlet_id: str, subscriber: Subscriber) -> None:
        async with self._lock:
            subscribers = self.subscribers.get(outlet_id)
            if subscribers is None:
                return
            subscribers.discard(subscriber)
            if not subscribers:
                del self.subscribers[outlet_id]
                self._recent.pop(outlet_id, None)
                self._fill_locks.pop(outlet_id, None)
                self._log_reads.pop(outlet_id, None)
                self._log_ends.pop(outlet_id, None)
                self._next_seq.pop(outlet_id, None)
                self._held.pop(outlet_id, None)
                timer = self._release_timers.pop(outlet_id, None)
                if timer is not None:
                    timer.cancel()
                try:
                    await self.layer.group_discard(group_for_outlet(outlet_id), self.channel)
                except Exception:
                    logger.warning("group_discard failed", exc_info=True)
            if not self.subscribers:
                await self._stop_tasks()

    async def _join(self, outlet_id: str) -> None:
        try:
            await self.layer.group_add(group_for_outlet(outlet_id), self.channel)
        except Exception:
            # The layer is down: the watchdog keeps the socket current from the log, and the
            # reader rejoins every group once the layer answers again.
            logger.warning("group_add failed; serving from the log", exc_info=True)

    async def _rejoin_all(self) -> None:
        for outlet_id in list(self.subscribers):
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
    def dispatch(self, message: dict[str, Any]) -> None:
        """Hand a message from the layer (one event, or a transaction's events of one outlet)
        to the outlet's sockets."""
        self.dispatch_many((message,))

    def dispatch_many(self, messages: Sequence[dict[str, Any]]) -> None:
        """Hand messages from the layer to their outlets' sockets: each outlet's events in one
        hand-out, in seq order; an event that arrives after a gap waits up to
        ``REORDER_WAIT_S`` for the missing ones."""
        by_outlet: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            by_outlet.setdefault(message.get("outlet"), []).extend(messages_of(message))
        for outlet_id, events in by_outlet.items():
            if self.subscribers.get(outlet_id):
                if len(events) > 1:
                    events.sort(key=_seq)
                self._dispatch_events(outlet_id, events)

    def _dispatch_events(self, outlet_id: str, events: list[dict[str, Any]]) -> None:
        ready: list[dict[str, Any]] = []
        for event in events:
            seq = event["seq"]
            expected = self._next_seq.get(outlet_id)
            if expected is not None and seq > expected:
                self._held.setdefault(outlet_id, {})[seq] = event
                continue
            ready.append(event)
            if expected is None or seq == expected:
                self._next_seq[outlet_id] = seq + 1
                self._drain(outlet_id, ready)
        if self._held.get(outlet_id) and outlet_id not in self._release_timers:
            self._release_timers[outlet_id] = asyncio.get_running_loop().call_later(
                REORDER_WAIT_S, self._release, outlet_id
            )
        self._hand_out(outlet_id, ready)

    def _drain(self, outlet_id: str, ready: list[dict[str, Any]]) -> None:
        """Move held messages that are next in line to ``ready``."""
        held = self._held.get(outlet_id)
        while held:
            message = held.pop(self._next_seq[outlet_id], None)
            if message is None:
                return
            ready.append(message)
            self._next_seq[outlet_id] += 1
        self._held.pop(outlet_id, None)
        timer = self._release_timers.pop(outlet_id, None)
        if timer is not None:
            timer.cancel()

    def _release(self, outlet_id: str) -> None:
        """The wait is over: hand out what is held, in order, gaps and all (each socket fills
        a gap from the log, as after any lost message)."""
        self._release_timers.pop(outlet_id, None)
        held = self._held.pop(outlet_id, None) or {}
        ready = [held[seq] for seq in sorted(held)]
        if ready:
            self._next_seq[outlet_id] = ready[-1]["seq"] + 1
        self._hand_out(outlet_id, ready)  # a no-op once the outlet has no sockets

    def _hand_out(self, outlet_id: str, messages: list[dict[str, Any]]) -> None:
        subscribers = self.subscribers.get(outlet_id)
        if not subscribers or not messages:
            return
        recent = self._recent_of(outlet_id)
        now = time.time()
        for message in messages:
            recent.add(message)
            committed = message.get("committed")
            if committed:
                metrics.fanout_latency.observe(max(0.0, now - committed))
        started = time.perf_counter()
        for subscriber in tuple(subscribers):
            subscriber.deliver_many(messages)
        metrics.fanout_handout.observe(time.perf_counter() - started)
        metrics.events_delivered.inc(len(subscribers) * len(messages))

    # --- the event source of catch-ups ------------------------------------------------------
    def _recent_of(self, outlet_id: str) -> RecentEvents:
        recent = self._recent.get(outlet_id)
        if recent is None:
            recent = self._recent[outlet_id] = RecentEvents(settings.WS_RECENT_EVENTS)
        return recent

    def recent(self, outlet_id: str, seq: int) -> dict[str, Any] | None:
        recent = self._recent.get(outlet_id)
        return recent.by_seq.get(seq) if recent is not None else None

    async def fetch_after(self, outlet_id: str, after: int) -> list[dict[str, Any]] | None:
        """Read the log after ``after`` into the recent events and return what was read.

        One reader per outlet at a time: when many sockets fall behind together (a Redis
        outage, a burst) the first reads the log and the others find the events in memory
        (``None`` tells the caller to look there again). Sockets that connect together (every
        screen after a restart) each catch up from their snapshot's seq: those that waited
        for a read which found nothing after their seq get ``[]`` without reading again.
        """
        reads_before = self._log_reads.get(outlet_id, 0)
        lock = self._fill_locks.setdefault(outlet_id, asyncio.Lock())
        async with lock:
            if self.recent(outlet_id, after + 1) is not None:
                return None
            end = self._log_ends.get(outlet_id)
            if end is not None and end[0] > reads_before and after >= end[1]:
                return []  # read after this call began: nothing was committed after ``after``
            read = self._log_reads[outlet_id] = self._log_reads.get(outlet_id, 0) + 1
            messages = await database_sync_to_async(_log_messages)(outlet_id, after)
            if len(messages) < log.REPLAY_BATCH:
                self._log_ends[outlet_id] = (read, messages[-1]["seq"] if messages else after)
            if outlet_id in self.subscribers:
                recent = self._recent_of(outlet_id)
                for message in messages:
                    recent.add(message)
            return messages

    def _everyone_catch_up(self) -> None:
        for subscribers in self.subscribers.values():
            for subscriber in tuple(subscribers):
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
            outlet_ids = list(self.subscribers)
            if not outlet_ids:
                continue
            try:
                cursors = await database_sync_to_async(_cursors)(outlet_ids)
            except Exception:
                logger.warning("watchdog could not read cursors", exc_info=True)
                continue
            for outlet_id, settled_seq in previous.items():
                for subscriber in tuple(self.subscribers.get(outlet_id, ())):
                    if subscriber.last_seq < settled_seq:
                        subscriber.request_catch_up()
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
