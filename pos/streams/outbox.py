"""The one event path: ``emit`` writes an outbox row inside the caller's transaction.

Code that emits runs in ``outbox.atomic`` (``transaction.atomic`` that also finishes the events
emitted inside it). ``emit`` stores the event at once, without its seq, and runs the reactions
other apps registered for its name (inside the same transaction: they commit or roll back with
the change). When the outermost ``outbox.atomic`` block ends, just before the transaction can
commit, the events that survived (a rolled-back savepoint takes its events with it) get the
outlet's next seqs under a row lock on the outlet's cursor, and their publication is asked for
after commit. So per outlet seq starts at 1 with no gaps and no repeats, in commit order,
whatever the number of concurrent writers; and the cursor stays locked only from that last
step to the commit, not for the whole transaction, which lets writers at one outlet overlap.
A rolled-back transaction leaves no event and no hole.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ContextDecorator
from typing import Any, Protocol

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from pos import counters, metrics
from pos.models import StreamCursor, StreamEvent
from pos.rows import Table, statement
from pos.streams.wire import by_outlet

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
        self.pending: list[StreamEvent] = []


def _state() -> _OutboxState:
    state = getattr(connection, "_outbox_state", None)
    if state is None:
        state = connection._outbox_state = _OutboxState()
    return state


class _OutboxAtomic(ContextDecorator):
    def _recreate_cm(self) -> _OutboxAtomic:
        return type(self)()  # one per call: a decorated function nests, runs in threads

    def __enter__(self) -> _OutboxAtomic:
        self._atomic = transaction.atomic()
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


def atomic(function: Callable | None = None):
    """``transaction.atomic`` for code that emits events: ``@outbox.atomic``,
    ``@outbox.atomic()`` or ``with outbox.atomic():`` (the default database: the outbox's).

    The outermost block finishes its events (seqs, commit time, publication after commit) as it
    ends without error, still inside the transaction; nested blocks, and plain
    ``transaction.atomic`` blocks inside it, leave that to the outermost one. State lives on the
    connection (so per thread), never on a decorator.
    """
    return _OutboxAtomic()(function) if function is not None else _OutboxAtomic()


def _advance_cursor(outlet_id: uuid.UUID, count: int) -> int:
    """Add ``count`` to the outlet's cursor and return its new value; the updated row stays
    locked until commit, which is what makes seqs gapless and in commit order."""
    return counters.increment(StreamCursor, field="last_seq", by=count, outlet_id=outlet_id)


def _advance_and_number_sql() -> str:
    quote = connection.ops.quote_name
    cursors, events = quote(StreamCursor._meta.db_table), quote(StreamEvent._meta.db_table)
    last, key, seq = quote("last_seq"), quote(StreamEvent._meta.pk.column), quote("seq")
    return (  # names come from the models' meta; every value is a parameter
        f"WITH advanced AS (UPDATE {cursors} SET {last} = {last} + %s "  # noqa: S608
        f"WHERE {quote(StreamCursor._meta.pk.column)} = %s RETURNING {last}), "
        f"numbered AS (UPDATE {events} AS e SET {seq} = advanced.{last} - %s + v.position, "
        f"{quote('created_at')} = %s FROM advanced, "
        f"unnest(%s::bigint[]) WITH ORDINALITY AS v(id, position) "
        f"WHERE e.{key} = v.id RETURNING e.{key}) "
        f"SELECT advanced.{last}, ARRAY(SELECT {key} FROM numbered) FROM advanced"
    )


def _advance_and_number(
    outlet_id: uuid.UUID, group: list[StreamEvent], now: Any
) -> tuple[int, set[int]] | None:
    """PostgreSQL: ``_advance_cursor`` and ``_number`` in one statement (a data-modifying
    ``WITH``), since every writing transaction pays for this round trip. Returns the cursor's
    new value and the ids of the rows that exist, or None where the statement cannot serve:
    not PostgreSQL, or the outlet has no cursor row yet (nothing was changed then)."""
    if connection.vendor != "postgresql":
        return None
    sql = statement("outbox.advance_and_number", _advance_and_number_sql)
    count = len(group)
    params = [
        count,
        StreamCursor._meta.pk.get_db_prep_value(outlet_id, connection),
        count,
        StreamEvent._meta.get_field("created_at").get_db_prep_value(now, connection),
        [event.pk for event in group],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0], set(row[1])


def _number(group: list[StreamEvent], first: int, now: Any) -> set[int]:
    """Give ``group`` the seqs ``first``, ``first + 1``, ... and commit time ``now``; returns
    the ids of the rows that exist (a rolled-back savepoint took the others)."""
    quote = connection.ops.quote_name
    meta = StreamEvent._meta
    cases = " ".join("WHEN %s THEN %s" for _ in group)
    table, key = quote(meta.db_table), quote(meta.pk.column)
    ids = ", ".join("%s" for _ in group)
    sql = (  # names come from the model's meta; every value is a parameter
        f"UPDATE {table} SET {quote('seq')} = CASE {key} {cases} END, "  # noqa: S608
        f"{quote('created_at')} = %s WHERE {key} IN ({ids}) RETURNING {key}"
    )
    params: list[Any] = []
    for seq, event in enumerate(group, start=first):
        params += [event.pk, seq]
    params.append(meta.get_field("created_at").get_db_prep_value(now, connection))
    params += [event.pk for event in group]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _finish(pending: list[StreamEvent]) -> None:
    """Give the surviving pending events their seqs and commit time; ask for publication."""
    if not pending:
        return
    # SQLite hands the id of a row a savepoint rolled back to the next insert: of two pending
    # events with one id, only the later can still exist.
    last_with_id = {event.pk: index for index, event in enumerate(pending)}
    pending = [event for index, event in enumerate(pending) if last_with_id[event.pk] == index]
    now = timezone.now()
    finished: list[StreamEvent] = []
    for outlet_id, group in by_outlet(pending):
        numbered = _advance_and_number(outlet_id, group, now)
        if numbered is None:  # SQLite, or the outlet's first events: two statements
            last = _advance_cursor(outlet_id, len(group))
            alive = _number(group, last - len(group) + 1, now)
        else:
            last, alive = numbered
        first = last - len(group) + 1
        if len(alive) < len(group):
            # Rare: a savepoint rolled back with some of them. Number the survivors again,
            # without holes, and give the cursor back what they do not use (still locked).
            group = [event for event in group if event.pk in alive]
            if group:
                _number(group, first, now)
            StreamCursor.objects.filter(pk=outlet_id).update(
                last_seq=first + len(group) - 1
            )
        for seq, event in enumerate(group, start=first):
            event.seq = seq
            event.created_at = now
        finished.extend(group)
    if not finished:
        return
    for event in finished:
        metrics.events_emitted.labels(event=event.name).inc()
    _schedule_publication(finished)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


_EVENTS = Table(StreamEvent, "e")


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
    event = _EVENTS.insert(  # every write inserts events: SQL built once (pos.rows)
        StreamEvent(
            tenant_id=outlet.tenant_id,
            outlet_id=outlet.id,
            seq=None,
            name=name,
            data=_jsonable(data),
            order_id=order_id,
            station_id=station_id,
            created_at=timezone.now(),
        )
    )
    state.pending.append(event)
    for reaction in list(_reactions.get(name, ())):
        reaction(event)
    return event


def _schedule_publication(events: list[StreamEvent]) -> None:
    from django.conf import settings

    from pos.streams.publisher import publish_after_commit

    if settings.OUTBOX_SKIP_ON_COMMIT_PUBLISH:
        return  # fault-test hook: behave as a process that died right after commit
    transaction.on_commit(lambda: publish_after_commit(events))
