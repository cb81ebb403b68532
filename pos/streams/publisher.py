"""Publication of committed outbox rows to the channel layer.

Publication is at-most-once (the channel layer drops silently when a channel is over
capacity, and Redis may be down): delivery guarantees come from the log, which sockets read
to fill any gap. A row is marked published once its ``group_send`` returned; rows left
unpublished (a crash between commit and publication, a Redis outage) are picked up by the
relay task.

After a commit the marks are not written by the committing thread: one marker thread per
process writes them a batch at a time (``MARK_LINGER_S`` after the first), so a write request
does not wait for a second statement and a second commit of its own, and the database gets
one ``UPDATE`` for many events. A mark lost with its process (or a failed batch) costs the
relay re-publishing those events after ``OUTBOX_RELAY_AFTER_S``; sockets drop the repeats by
seq. The relay marks what it publishes at once (it reads the unmarked rows again next).

Publication is called from sync code (on-commit callbacks, the relay). With the Redis
channel layer the calling thread sends itself (``group_send_blocking``, on blocking
connections the process keeps): a commit's events leave as soon as COMMIT returns, without a
hop to an event loop's thread and back. Any other layer (the in-memory one of the embedded
mode, a Sentinel-backed Redis) is used from an event loop chosen so that its connections are
reused, never built per commit:

- in a process whose loop serves sockets (a web process with sockets open), that loop: the
  layer's connections are already there, and the in-memory layer of the embedded mode must
  only be touched from its own loop (its schedule thread publishes too);
- elsewhere (a Celery worker, ``manage.py outbox_relay``, a web process before its first
  socket) one long-lived loop of the process's own, in a daemon thread, keeps the layer's
  Redis connections open between commits, instead of a new loop, thread and connection per
  commit as ``async_to_sync`` from a thread without a loop would build.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from django.db import connection
from django.utils import timezone

from pos import metrics
from pos.models import StreamEvent
from pos.streams.wire import batch_message, batches_for, group_for_outlet

logger = logging.getLogger(__name__)

T = TypeVar("T")
PUBLISH_TIMEOUT_S = 30.0


def _mark_published(ids: Sequence[int]) -> None:
    """Set ``published_at`` on the rows not marked yet: one plain statement, as it runs after
    every commit (a queryset ``update()`` compiled its query anew each time)."""
    quote = connection.ops.quote_name
    meta = StreamEvent._meta
    table, key, published = (
        quote(meta.db_table), quote(meta.pk.column), quote(meta.get_field("published_at").column)
    )
    sql = (  # names come from the model's meta; every value is a parameter
        f"UPDATE {table} SET {published} = %s "  # noqa: S608
        f"WHERE {key} IN ({', '.join('%s' for _ in ids)}) AND {published} IS NULL"
    )
    now = meta.get_field("published_at").get_db_prep_value(timezone.now(), connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, *ids])


def _failed(outlet_id: str, batch: Sequence[StreamEvent]) -> None:
    metrics.publish_failures.inc()
    logger.warning(
        "publication failed; the relay will retry",
        extra={"outlet": outlet_id, "seq": batch[0].seq, "events": len(batch)},
        exc_info=True,
    )


async def send_events(events: Sequence[StreamEvent]) -> list[int]:
    """Send the events to their outlets' groups, each outlet's in seq order and together (one
    message per outlet and transaction, up to ``BATCH_MAX_EVENTS``); stop at the first
    failure (later events wait for the relay, so order holds). Returns the ids sent."""
    layer = get_channel_layer()
    sent: list[int] = []
    for outlet_id, batch in batches_for(events):
        try:
            await layer.group_send(group_for_outlet(outlet_id), batch_message(outlet_id, batch))
        except Exception:
            _failed(outlet_id, batch)
            break
        sent.extend(event.pk for event in batch)
    return sent


def send_events_blocking(layer: Any, events: Sequence[StreamEvent]) -> list[int]:
    """``send_events`` in the calling thread, through ``layer.group_send_blocking``."""
    sent: list[int] = []
    for outlet_id, batch in batches_for(events):
        try:
            layer.group_send_blocking(group_for_outlet(outlet_id),
                                      batch_message(outlet_id, batch))
        except Exception:
            _failed(outlet_id, batch)
            break
        sent.extend(event.pk for event in batch)
    return sent


def _blocking_layer() -> Any | None:
    """The channel layer if it can send from this thread (the Redis layer), else None."""
    layer = get_channel_layer()
    return layer if getattr(layer, "can_send_blocking", False) else None


def open_connections() -> None:
    """Open the connections publication will use, so that the first commit does not pay for
    them (a process that has been serving has them open)."""
    layer = get_channel_layer()
    if getattr(layer, "can_send_blocking", False):
        layer.ping_blocking()
    elif hasattr(layer, "ping"):
        run_on_a_loop(layer.ping())


class _PublisherLoop:
    """One event loop per process, in a daemon thread, for callers that have none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child (a Celery prefork worker) inherits the object, not the thread.
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(target=self._loop.run_forever, name="pos-publisher",
                                 daemon=True).start()
            return self._loop


_publisher_loop = _PublisherLoop()


def _refuse_on_a_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("publication is sync code: call it from a thread, not the loop")


def run_on_a_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` from sync code on the loop publication should use (module docs)."""
    from pos.streams.hub import running_hub_loop

    try:
        _refuse_on_a_loop()
    except RuntimeError:
        coroutine.close()
        raise
    loop = running_hub_loop() or _publisher_loop.loop()
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(PUBLISH_TIMEOUT_S)


MARK_LINGER_S = 0.05  # a batch of marks waits this long for more after its first
MARKER_IDLE_S = 2.0  # an idle marker closes its database connection after this long


class _Marker:
    """Writes ``published_at`` for the process's on-commit publications from one daemon
    thread, a batch at a time (module docs)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ids: list[int] = []
        self._writing = False
        self._hurry = 0  # callers of flush() waiting: write without lingering
        self._idle = False  # the thread waits for a first mark (else it lingers or writes)
        self._close = False
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, ids: Sequence[int]) -> None:
        with self._cond:
            # A forked child (a Celery prefork worker) inherits the object, not the thread.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._ids, self._writing, self._pid = [], False, os.getpid()
                self._thread = threading.Thread(target=self._run, name="pos-marker",
                                                daemon=True)
                self._thread.start()
            self._ids.extend(ids)
            if self._idle:
                # Only a waiting thread is woken: one lingering over a batch takes these
                # along when its linger ends, and waking it on every commit cost each commit
                # two context switches and a turn at the GIL.
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0, *, close: bool = False) -> bool:
        """Write every mark added so far now; wait for it (at most ``timeout`` s). With
        ``close``, the marker then closes its database connection. True if all were written."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                return not self._ids
            self._hurry += 1
            self._close = self._close or close
            self._cond.notify_all()
            try:
                return self._cond.wait_for(
                    lambda: not self._ids and not self._writing and not self._close, timeout
                )
            finally:
                self._hurry -= 1

    def _run(self) -> None:
        while True:
            with self._cond:
                self._idle = True
                work = self._cond.wait_for(lambda: self._ids or self._close, MARKER_IDLE_S)
                self._idle = False
                if work and self._ids:
                    # Let the commits of the next few ms join this batch.
                    self._cond.wait_for(lambda: self._hurry, MARK_LINGER_S)
                batch, self._ids = self._ids, []
                self._writing = bool(batch)
                close = self._close or not work
            if batch:
                self._write(batch)
            if close:
                connection.close()  # this thread's own; opened again by the next batch
            with self._cond:
                self._writing = False
                if close:
                    self._close = False
                self._cond.notify_all()

    @staticmethod
    def _write(ids: list[int]) -> None:
        for attempt in range(2):
            try:
                _mark_published(ids)
                return
            except Exception:
                connection.close()  # a broken connection: the retry opens a new one
                if attempt:
                    logger.warning(
                        "marking published events failed; the relay will publish them again",
                        extra={"events": len(ids)}, exc_info=True,
                    )


_marker = _Marker()


def flush_marks(timeout: float = 10.0, *, close: bool = False) -> bool:
    """Write the pending published marks of this process now and wait for them (tests,
    shutdown); ``close`` also closes the marker's database connection."""
    return _marker.flush(timeout, close=close)


def publish(events: Sequence[StreamEvent], *, path: str = "commit", mark_now: bool = False
            ) -> int:
    """Publish ``events`` and have the sent ones marked published: by the marker thread, or
    with ``mark_now`` at once in the caller's thread (the relay, which reads the unmarked rows
    again next). ``path`` labels the metric. Returns how many were sent."""
    layer = _blocking_layer()
    if layer is not None:
        _refuse_on_a_loop()
        sent = send_events_blocking(layer, events)
    else:
        sent = run_on_a_loop(send_events(events))
    if sent:
        metrics.events_published.labels(path=path).inc(len(sent))
        if mark_now:
            _mark_published(sent)
        else:
            _marker.add(sent)
    return len(sent)


def publish_after_commit(events: Sequence[StreamEvent]) -> None:
    """on_commit callback: publish now, never raise (the transaction is already committed)."""
    try:
        publish(events)
    except Exception:
        logger.exception("on-commit publication failed; the relay will retry")
