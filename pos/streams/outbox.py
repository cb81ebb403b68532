"""The one event path: ``emit`` records an outbox event inside the caller's transaction.

Code that emits runs in ``outbox.atomic`` (``transaction.atomic`` that also finishes the events
emitted inside it). ``emit`` records the event and runs the reactions other apps registered
for its name (inside the same transaction: they commit or roll back with the change). When the
outermost ``outbox.atomic`` block ends, just before the transaction can commit, the events
that survived (a rolled-back savepoint takes its events with it) are written with the outlet's
next seqs under a row lock on the outlet's cursor, in one statement per outlet, and their
publication is asked for after commit. So per outlet seq starts at 1 with no gaps and no
repeats, in commit order, whatever the number of concurrent writers; the cursor stays locked
only from that last step to the commit, not for the whole transaction, which lets writers at
one outlet overlap; and an event row is written once, complete. A rolled-back transaction
leaves no event and no hole.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ContextDecorator
from typing import Any, Protocol

from django.db import connection, transaction
from django.utils import timezone

from pos import counters, metrics
from pos.models import StreamCursor, StreamEvent
from pos.rows import Table, fetchall, statement
from pos.streams.wire import by_outlet, data_text

logger = logging.getLogger(__name__)

EVENT_NAMES = frozenset(
    {
        "order.created",
        "order.status_changed",
        "order.updated",
        "ticket.created",
        "ticket.updated",
        "ticket.bumped",
        "ticket.recalled",
        "ticket.voided",
        "product.availability_changed",
        "payment.created",
        "payment.succeeded",
        "payment.failed",
        "payment.expired",
        "payment.refunded",
    }
)


class OutletLike(Protocol):
    id: uuid.UUID
    tenant_id: uuid.UUID


Reaction = Callable[[StreamEvent], None]
_reactions: dict[str, list[Reaction]] = defaultdict(list)


def on_event(name: str, reaction: Reaction) -> None:
    """Register ``reaction(event)`` to run inside the transaction that emits ``name``.

    Call from ``AppConfig.ready()`` of the app that depends on the emitting one: orders knows
    nothing of kitchens, yet confirming an order fires its tickets in the same transaction.
    """
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event name {name!r}")
    if reaction not in _reactions[name]:
        _reactions[name].append(reaction)


class _OutboxState:
    """Per connection (so per thread): open ``outbox.atomic`` depth and unfinished events."""

    __slots__ = ("depth", "pending")

    def __init__(self) -> None:
        self.depth = 0
        self.pending: list[_Emitted] = []


def _state() -> _OutboxState:
    state = getattr(connection, "_outbox_state", None)
    if state is None:
        state = connection._outbox_state = _OutboxState()
    return state


class _OutboxAtomic(ContextDecorator):
    def __init__(self, savepoint: bool = True) -> None:
        self.savepoint = savepoint

    def _recreate_cm(self) -> _OutboxAtomic:
        # One per call: a decorated function nests, runs in threads.
        return type(self)(self.savepoint)

    def __enter__(self) -> _OutboxAtomic:
        self._atomic = transaction.atomic(savepoint=self.savepoint)
        self._atomic.__enter__()
        _state().depth += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        state = _state()
        state.depth -= 1
        if state.depth == 0:
            pending, state.pending = state.pending, []
            if exc_type is None:
                try:
                    _finish(pending)
                except BaseException as error:
                    self._atomic.__exit__(type(error), error, error.__traceback__)
                    raise
        self._atomic.__exit__(exc_type, exc, tb)


def atomic(function: Callable | None = None, *, savepoint: bool = True):
    """``transaction.atomic`` for code that emits events: ``@outbox.atomic``,
    ``@outbox.atomic()`` or ``with outbox.atomic():`` (the default database: the outbox's).

    The outermost block finishes its events (seqs, commit time, publication after commit) as it
    ends without error, still inside the transaction; nested blocks, and plain
    ``transaction.atomic`` blocks inside it, leave that to the outermost one. State lives on the
    connection (so per thread), never on a decorator.

    ``savepoint=False`` (as for ``transaction.atomic``): nested, the block sets no savepoint,
    two round trips fewer; an error escaping it dooms the whole transaction. For code that
    runs inside its caller's change and whose failure must fail that change (a reaction).
    """
    block = _OutboxAtomic(savepoint)
    return block(function) if function is not None else block


_EVENTS = Table(StreamEvent, "e")


def _advance_cursor(outlet_id: uuid.UUID, count: int) -> int:
    """Add ``count`` to the outlet's cursor and return its new value; the updated row stays
    locked until commit, which is what makes seqs gapless and in commit order."""
    return counters.increment(StreamCursor, field="last_seq", by=count, outlet_id=outlet_id)


class _Emitted:
    """The on-commit callback each ``emit`` registers: it does nothing when called, but Django
    drops it if the savepoint it was registered in rolls back, and that is how ``_finish``
    knows which events were taken back (the event is not in the database until then)."""

    __slots__ = ("event",)

    def __init__(self, event: StreamEvent) -> None:
        self.event = event

    def __call__(self) -> None:
        pass


def _surviving(pending: list[_Emitted]) -> list[StreamEvent]:
    """The events of ``pending`` that no rolled-back savepoint took back, in emission order.

    Django keeps a transaction's on-commit callbacks in ``connection.run_on_commit`` and
    removes those registered inside a savepoint when it rolls back (the same list its
    ``TestCase.captureOnCommitCallbacks`` reads); the outbox tests roll savepoints back around
    events, so a change there fails them."""
    registered = {id(callback) for _, callback, _ in connection.run_on_commit}
    return [emitted.event for emitted in pending if id(emitted) in registered]


_MAX_CACHED_ROWS = 8  # statements for up to this many events per outlet are kept (pos.rows)


def _insert_numbered_sql(count: int) -> str:
    """The cursor advanced by ``count`` and ``count`` events inserted with the seqs it frees:
    a data-modifying ``WITH`` whose ``INSERT`` takes nothing when the outlet has no cursor
    row yet. The event's values come as a ``VALUES`` list, each cast to its column's type
    (an all-NULL column would otherwise be text); their ``seq`` is the event's position."""
    quote = connection.ops.quote_name
    fields = _EVENTS.insert_fields
    names = [quote(field.column) for field in fields]
    cursors, events = quote(StreamCursor._meta.db_table), quote(StreamEvent._meta.db_table)
    last, seq = quote("last_seq"), quote(StreamEvent._meta.get_field("seq").column)
    chosen = ", ".join(
        f"advanced.{last} - %s + v.{name}" if name == seq else f"v.{name}" for name in names
    )
    row = "(" + ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in fields) + ")"
    return (  # names and types come from the models' meta; every value is a parameter
        f"WITH advanced AS (UPDATE {cursors} SET {last} = {last} + %s "  # noqa: S608
        f"WHERE {quote(StreamCursor._meta.pk.column)} = %s RETURNING {last}) "
        f"INSERT INTO {events} ({', '.join(names)}) SELECT {chosen} "
        f"FROM advanced, (VALUES {', '.join(row for _ in range(count))}) AS v({', '.join(names)}) "
        f"RETURNING {quote(StreamEvent._meta.pk.column)}, {seq}"
    )


def _data_index() -> int:
    return _EVENTS.insert_fields.index(StreamEvent._meta.get_field("data"))


def _insert_numbered(outlet_id: uuid.UUID, group: list[StreamEvent]) -> bool:
    """PostgreSQL: advance the outlet's cursor and insert ``group`` with its seqs in one
    statement, since every writing transaction pays for this round trip (and a row written
    once, complete, costs the database less than a row inserted and then numbered). False,
    with nothing changed, where it cannot serve: not PostgreSQL, or no cursor row yet."""
    if connection.vendor != "postgresql":
        return False
    count = len(group)
    if count <= _MAX_CACHED_ROWS:
        sql = statement(f"outbox.insert_numbered.{count}", lambda: _insert_numbered_sql(count))
    else:
        sql = _insert_numbered_sql(count)
    for position, event in enumerate(group, start=1):
        event.seq = position  # sent as the position; the statement adds the cursor to it
    params: list[Any] = [
        count, StreamCursor._meta.pk.get_db_prep_value(outlet_id, connection), count
    ]
    data = _data_index()
    for event, values in zip(group, _EVENTS.prepared(group), strict=True):
        values[data] = event.data_text  # the text emit dumped; cast to jsonb by the statement
        params += values
    rows = fetchall(sql, params)
    if not rows:
        for event in group:
            event.seq = None
        return False
    key_of = {seq: key for key, seq in rows}
    first = min(key_of)
    for position, event in enumerate(group):
        event.seq = first + position
        _EVENTS.stored(event, key_of[event.seq])
    return True


def _finish(pending: list[_Emitted]) -> None:
    """Insert the surviving pending events with their seqs and commit time; ask for their
    publication after commit."""
    events = _surviving(pending)
    if not events:
        return
    now = timezone.now()
    for event in events:
        event.created_at = now
    for outlet_id, group in by_outlet(events):
        if not _insert_numbered(outlet_id, group):  # SQLite, or the outlet's first events
            last = _advance_cursor(outlet_id, len(group))
            for seq, event in enumerate(group, start=last - len(group) + 1):
                event.seq = seq
            _EVENTS.insert_many(group)
    for event in events:
        metrics.events_emitted.labels(event=event.name).inc()
    _schedule_publication(events)



def emit(
    *,
    outlet: OutletLike,
    name: str,
    data: dict[str, Any],
    order_id: uuid.UUID | str | None = None,
    station_id: uuid.UUID | str | None = None,
) -> StreamEvent:
    """Write event ``name`` for ``outlet``. Call inside the ``outbox.atomic`` block of the change.

    ``data`` is the whole current object as its output serializer renders it. ``order_id`` and
    ``station_id`` are routing keys the sockets filter on (the order a ticket or payment
    belongs to; the station of a ticket). The returned event has its ``seq`` (and its commit
    time as ``created_at``) once the outermost ``outbox.atomic`` block has ended.
    """
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event name {name!r}")
    state = _state()
    if state.depth == 0:
        raise RuntimeError("emit() must run inside outbox.atomic, with the change it reports")
    text = data_text(data)  # dumped once: the row and the publication reuse the text
    event = StreamEvent(
        tenant_id=outlet.tenant_id,
        outlet_id=outlet.id,
        seq=None,
        name=name,
        data=json.loads(text),  # plain JSON, as it reads back
        order_id=order_id,
        station_id=station_id,
    )
    event.data_text = text
    emitted = _Emitted(event)
    transaction.on_commit(emitted)  # a rolled-back savepoint takes it back (_surviving)
    state.pending.append(emitted)
    for reaction in list(_reactions.get(name, ())):
        reaction(event)
    return event


def _schedule_publication(events: list[StreamEvent]) -> None:
    from django.conf import settings

    from pos.streams.publisher import publish_after_commit

    if settings.OUTBOX_SKIP_ON_COMMIT_PUBLISH:
        return  # fault-test hook: behave as a process that died right after commit
    transaction.on_commit(lambda: publish_after_commit(events))
