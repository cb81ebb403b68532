"""The outbox: gapless per-outlet seq, atomic with the change, relayed when publication is lost."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pos.models import StreamCursor, StreamEvent
from pos.streams import outbox, publisher
from pos.streams.relay import prune_events, relay_unpublished
from pos.streams.wire import group_for_outlet, messages_of
from tests.streams.helpers import write_events


def seqs_of(outlet) -> list[int]:
    return list(
        StreamEvent.objects.filter(outlet_id=outlet.id)
        .order_by("seq")
        .values_list("seq", flat=True)
    )


def test_seq_starts_at_one_and_counts_per_outlet(world):
    assert write_events(world.outlet, 3) == [1, 2, 3]
    assert write_events(world.outlet2, 2) == [1, 2]
    assert write_events(world.outlet, 1) == [4]
    event = StreamEvent.objects.get(outlet_id=world.outlet.id, seq=4)
    assert event.tenant_id == world.tenant.id
    assert event.name == "order.updated"
    assert event.data == {"n": 0}


@pytest.mark.django_db(transaction=True)
def test_emit_refuses_outside_a_transaction(world):
    with pytest.raises(RuntimeError):
        outbox.emit(outlet=world.outlet, name="order.updated", data={})
    assert StreamEvent.objects.count() == 0


def test_emit_refuses_a_plain_atomic_block(world):
    # Nothing would number the event before commit: refused, and nothing is written.
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.emit(outlet=world.outlet, name="order.updated", data={})
    assert StreamEvent.objects.count() == 0


def test_unknown_event_name_is_refused(world):
    with pytest.raises(ValueError), outbox.atomic():
        outbox.emit(outlet=world.outlet, name="order.exploded", data={})
    assert StreamEvent.objects.count() == 0


def test_rolled_back_transaction_leaves_no_event_and_no_hole(world):
    write_events(world.outlet, 2)
    with pytest.raises(ZeroDivisionError), outbox.atomic():
        outbox.emit(outlet=world.outlet, name="order.updated", data={"doomed": True})
        1 / 0  # noqa: B018 - the change fails after its event was written
    assert seqs_of(world.outlet) == [1, 2]
    assert write_events(world.outlet, 1) == [3]


def test_seq_and_commit_time_are_given_as_the_outermost_block_ends(world):
    before = timezone.now()
    with outbox.atomic():
        first = outbox.emit(outlet=world.outlet, name="order.updated", data={"n": 1})
        with outbox.atomic():  # nested: leaves the numbering to the outer block
            second = outbox.emit(outlet=world.outlet, name="order.updated", data={"n": 2})
        assert (first.seq, second.seq) == (None, None)
        assert StreamCursor.objects.filter(pk=world.outlet.id).count() == 0  # not locked yet
        marked = timezone.now()
    assert (first.seq, second.seq) == (1, 2)
    assert first.created_at == second.created_at >= marked >= before
    rows = StreamEvent.objects.filter(outlet_id=world.outlet.id).order_by("seq")
    assert [(e.seq, e.data, e.created_at) for e in rows] == [
        (1, {"n": 1}, first.created_at), (2, {"n": 2}, first.created_at)]
    assert StreamCursor.objects.get(pk=world.outlet.id).last_seq == 2


def test_rolled_back_savepoint_takes_its_events_and_leaves_no_hole(world):
    with outbox.atomic():
        kept = outbox.emit(outlet=world.outlet, name="order.updated", data={"n": "kept"})
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            outbox.emit(outlet=world.outlet, name="order.updated", data={"n": "lost"})
            1 / 0  # noqa: B018
        with pytest.raises(ZeroDivisionError), outbox.atomic():
            outbox.emit(outlet=world.outlet2, name="order.updated", data={"n": "lost too"})
            1 / 0  # noqa: B018
        after = outbox.emit(outlet=world.outlet, name="order.updated", data={"n": "after"})
    assert (kept.seq, after.seq) == (1, 2)
    assert list(StreamEvent.objects.values_list("outlet_id", "seq", "data")) == [
        (world.outlet.id, 1, {"n": "kept"}), (world.outlet.id, 2, {"n": "after"})]
    assert write_events(world.outlet2, 1) == [1]  # its stream has no hole either


def test_rolled_back_savepoint_between_events_of_a_stream_with_history(world):
    # The outlet has a cursor, so numbering takes its one-statement path; the event between
    # the survivors is gone, and they are numbered again without the hole it would leave.
    write_events(world.outlet, 2)
    with outbox.atomic():
        kept = outbox.emit(outlet=world.outlet, name="order.updated", data={"n": "kept"})
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            outbox.emit(outlet=world.outlet, name="order.updated", data={"n": "lost"})
            1 / 0  # noqa: B018
        after = outbox.emit(outlet=world.outlet, name="order.updated", data={"n": "after"})
    assert (kept.seq, after.seq) == (3, 4)
    rows = StreamEvent.objects.filter(outlet_id=world.outlet.id, seq__gt=2).order_by("seq")
    assert [(e.seq, e.data) for e in rows] == [(3, {"n": "kept"}), (4, {"n": "after"})]
    assert StreamCursor.objects.get(pk=world.outlet.id).last_seq == 4
    assert write_events(world.outlet, 1) == [5]


def test_a_stream_with_history_is_numbered_in_one_statement(world):
    # Every writing transaction pays for numbering: once the outlet's cursor exists, advancing
    # it and numbering the rows is one round trip (a data-modifying WITH on PostgreSQL).
    assert connection.vendor == "postgresql"  # the suite's database, as in production
    write_events(world.outlet, 1)
    with CaptureQueriesContext(connection) as queries, outbox.atomic():
        first = outbox.emit(outlet=world.outlet, name="order.updated", data={"n": 1})
        second = outbox.emit(outlet=world.outlet, name="order.updated", data={"n": 2})
    statements = [q["sql"] for q in queries.captured_queries]
    touching_cursor = [sql for sql in statements if StreamCursor._meta.db_table in sql]
    assert len(touching_cursor) == 1
    assert StreamEvent._meta.db_table in touching_cursor[0]  # the same statement numbers
    assert (first.seq, second.seq) == (2, 3)
    assert first.created_at == second.created_at
    assert list(
        StreamEvent.objects.filter(outlet_id=world.outlet.id).order_by("seq")
        .values_list("seq", "data", "created_at")
    )[1:] == [(2, {"n": 1}, first.created_at), (3, {"n": 2}, first.created_at)]
    assert StreamCursor.objects.get(pk=world.outlet.id).last_seq == 3


def test_event_rows_are_written_once_complete_one_statement_per_outlet(world):
    # Each outlet's events are inserted with their seqs as the block ends: no row is written
    # without its seq and numbered afterwards. More events than the statements kept per size
    # (pos.streams.outbox._MAX_CACHED_ROWS), routing keys null in some rows and set in others.
    assert connection.vendor == "postgresql"
    write_events(world.outlet, 1)
    write_events(world.outlet2, 1)
    order_id, station_id = uuid.uuid4(), uuid.uuid4()
    with CaptureQueriesContext(connection) as queries, outbox.atomic():
        many = [
            outbox.emit(outlet=world.outlet, name="order.updated", data={"n": n},
                        order_id=order_id if n % 2 else None)
            for n in range(outbox._MAX_CACHED_ROWS + 2)
        ]
        other = outbox.emit(outlet=world.outlet2, name="ticket.created", data={"t": 1},
                            order_id=order_id, station_id=station_id)
        assert StreamEvent.objects.count() == 2  # the two earlier events: nothing written yet
    table = StreamEvent._meta.db_table
    writes = [q["sql"] for q in queries.captured_queries if table in q["sql"]
              and "SELECT COUNT" not in q["sql"]]
    assert len(writes) == 2
    assert all(sql.lstrip().startswith("WITH") and "INSERT INTO" in sql for sql in writes)
    assert [e.seq for e in many] == list(range(2, outbox._MAX_CACHED_ROWS + 4))
    assert other.seq == 2
    stored = {e.pk: e for e in StreamEvent.objects.filter(seq__gt=1)}
    assert len(stored) == len(many) + 1
    for event in [*many, other]:
        row = stored[event.pk]  # the key read back belongs to the row with that seq
        assert (row.outlet_id, row.seq, row.name, row.data, row.order_id, row.station_id,
                row.created_at, row.published_at) == (
            event.outlet_id, event.seq, event.name, event.data, event.order_id,
            event.station_id, event.created_at, None)
    assert StreamCursor.objects.get(pk=world.outlet.id).last_seq == outbox._MAX_CACHED_ROWS + 3


def test_a_block_without_savepoint_sets_none_and_its_failure_fails_the_change(world):
    write_events(world.outlet, 1)
    with (CaptureQueriesContext(connection) as queries, outbox.atomic(),
          outbox.atomic(savepoint=False)):
        inner = outbox.emit(outlet=world.outlet, name="ticket.created", data={"n": 1})
    # One savepoint, the outer block's (the test runs in a transaction); none of the inner's.
    savepoints = [q for q in queries.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == 1
    assert inner.seq == 2

    @outbox.atomic(savepoint=False)
    def failing_reaction():
        outbox.emit(outlet=world.outlet, name="ticket.created", data={"n": "doomed"})
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError), outbox.atomic():
        outbox.emit(outlet=world.outlet, name="order.updated", data={"n": "doomed too"})
        with pytest.raises(ZeroDivisionError):
            failing_reaction()
        # No savepoint to go back to: the change cannot carry on without the reaction.
        assert connection.needs_rollback
        raise ZeroDivisionError
    assert seqs_of(world.outlet) == [1, 2]
    assert write_events(world.outlet, 1) == [3]


def test_outbox_block_inside_a_rolled_back_transaction_leaves_nothing(world):
    write_events(world.outlet, 1)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        with outbox.atomic():  # numbered as it ends, inside the outer transaction...
            event = outbox.emit(outlet=world.outlet, name="order.updated", data={})
        assert event.seq == 2
        1 / 0  # noqa: B018 - ...which then fails: the rows and the cursor roll back
    assert seqs_of(world.outlet) == [1]
    assert StreamCursor.objects.get(pk=world.outlet.id).last_seq == 1
    assert write_events(world.outlet, 1) == [2]


def test_events_of_several_outlets_in_one_transaction(world):
    write_events(world.outlet2, 3)
    with outbox.atomic():
        a1 = outbox.emit(outlet=world.outlet, name="order.updated", data={})
        b = outbox.emit(outlet=world.outlet2, name="order.updated", data={})
        a2 = outbox.emit(outlet=world.outlet, name="order.updated", data={})
    assert (a1.seq, a2.seq, b.seq) == (1, 2, 4)


def test_decorated_function_numbers_its_events(world):
    @outbox.atomic
    def change(n):
        return [outbox.emit(outlet=world.outlet, name="order.updated", data={}) for _ in range(n)]

    @outbox.atomic()
    def outer():
        return change(2) + change(1)

    assert [e.seq for e in change(2)] == [1, 2]
    assert [e.seq for e in outer()] == [3, 4, 5]


def test_reactions_run_inside_the_emitting_transaction(world):
    seen = []

    def reaction(event):
        seen.append((event.name, event.seq))
        assert connection.in_atomic_block
        outbox.emit(outlet=world.outlet, name="ticket.created", data={"from": event.name})

    outbox.on_event("order.created", reaction)
    try:
        with pytest.raises(RuntimeError), outbox.atomic():
            outbox.emit(outlet=world.outlet, name="order.created", data={})
            raise RuntimeError("the change fails")
        assert seqs_of(world.outlet) == []  # the reaction's event rolled back too
        with outbox.atomic():
            outbox.emit(outlet=world.outlet, name="order.created", data={})
    finally:
        outbox._reactions["order.created"].remove(reaction)
    # Reactions see the event before it is numbered; their events follow it in the log.
    assert seen == [("order.created", None), ("order.created", None)]
    assert list(
        StreamEvent.objects.filter(outlet_id=world.outlet.id).values_list("seq", "name", "data")
    ) == [(1, "order.created", {}), (2, "ticket.created", {"from": "order.created"})]


@pytest.mark.django_db(transaction=True)
@override_settings(OUTBOX_SKIP_ON_COMMIT_PUBLISH=True)
def test_writers_at_one_outlet_overlap_until_numbering(world):
    """The cursor is locked only from numbering to commit: a transaction that emitted and is
    still working does not hold up another writer at the same outlet, and seqs follow
    commit order."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrency needs a server database")
    emitted, release = threading.Event(), threading.Event()
    result = {}

    def slow_writer():
        try:
            with outbox.atomic():
                event = outbox.emit(outlet=world.outlet, name="order.updated", data={"w": "slow"})
                emitted.set()
                release.wait(10)  # the rest of a long change
            result["slow"] = event.seq
        finally:
            connection.close()

    slow = threading.Thread(target=slow_writer)
    slow.start()
    try:
        assert emitted.wait(10)
        started = time.monotonic()
        assert write_events(world.outlet, 2, publish=None) == [1, 2]  # not blocked by slow
        assert time.monotonic() - started < 5
    finally:
        release.set()
        slow.join(20)
    assert result["slow"] == 3
    assert list(StreamEvent.objects.order_by("seq").values_list("seq", "data")) == [
        (1, {"n": 0}), (2, {"n": 1}), (3, {"w": "slow"})]


@pytest.mark.django_db(transaction=True)
@override_settings(OUTBOX_SKIP_ON_COMMIT_PUBLISH=True)
def test_concurrent_writers_get_gapless_unique_seqs(world):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency needs a server database")
    writers, per_writer = 6, 25
    barrier = threading.Barrier(writers)
    errors = []

    def writer(outlet):
        try:
            barrier.wait()
            write_events(outlet, per_writer, publish=None)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=writer, args=(world.outlet if i % 2 else world.outlet2,))
        for i in range(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    expected = list(range(1, writers // 2 * per_writer + 1))
    assert seqs_of(world.outlet) == expected
    assert seqs_of(world.outlet2) == expected
    assert StreamCursor.objects.get(pk=world.outlet.id).last_seq == expected[-1]


@pytest.mark.django_db(transaction=True)
@override_settings(OUTBOX_SKIP_ON_COMMIT_PUBLISH=True)
def test_concurrent_first_events_create_the_cursor_once(world):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency needs a server database")
    barrier = threading.Barrier(4)

    def writer():
        barrier.wait()
        write_events(world.outlet, 1, publish=None)
        connection.close()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seqs_of(world.outlet) == [1, 2, 3, 4]


@pytest.mark.django_db(transaction=True)
def test_on_commit_publication_marks_events_published(world):
    write_events(world.outlet, 2)
    assert publisher.flush_marks()
    assert not StreamEvent.objects.filter(published_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_marks_are_written_after_the_commit_returns_and_together(world, monkeypatch):
    # The committing thread publishes and leaves the marks to the marker thread, which
    # writes the marks of the commits of the next MARK_LINGER_S in one statement.
    monkeypatch.setattr(publisher, "MARK_LINGER_S", 30.0)
    batches = []
    real_mark = publisher._mark_published
    monkeypatch.setattr(publisher, "_mark_published",
                        lambda ids: (batches.append(sorted(ids)), real_mark(ids)))
    write_events(world.outlet, 3)
    assert StreamEvent.objects.filter(published_at__isnull=True).count() == 3  # not yet
    assert batches == []
    assert publisher.flush_marks()  # no lingering once someone waits for them
    ids = sorted(StreamEvent.objects.filter(outlet_id=world.outlet.id).values_list("pk", flat=True))
    assert batches == [ids]
    assert not StreamEvent.objects.filter(published_at__isnull=True).exists()
    assert relay_unpublished(older_than_s=0) == 0  # nothing for the relay to send again


@pytest.mark.django_db(transaction=True)
def test_marks_added_while_the_marker_lingers_or_writes_are_written_unasked(world, monkeypatch):
    # Commits during a linger join its batch; commits during a write are the next batch's.
    # Neither wakes the marker thread (a commit wakes only an idle one), and no flush is
    # needed for either to be written.
    monkeypatch.setattr(publisher, "MARK_LINGER_S", 0.4)
    batches, writing, go_on = [], threading.Event(), threading.Event()
    real_mark = publisher._mark_published

    def mark(ids):
        batches.append(sorted(ids))
        if len(batches) == 1:
            writing.set()
            go_on.wait(10)  # a slow first write
        real_mark(ids)

    monkeypatch.setattr(publisher, "_mark_published", mark)
    write_events(world.outlet, 1)
    time.sleep(0.1)
    write_events(world.outlet, 1)  # the marker lingers over the first: joins its batch
    assert writing.wait(5)
    write_events(world.outlet, 2)  # the marker writes: the next batch
    go_on.set()
    deadline = time.monotonic() + 5
    while StreamEvent.objects.filter(published_at__isnull=True).exists():
        assert time.monotonic() < deadline, "marks left unwritten"
        time.sleep(0.05)
    ids = sorted(StreamEvent.objects.filter(outlet_id=world.outlet.id).values_list("pk", flat=True))
    assert batches == [ids[:2], ids[2:]]


@pytest.mark.django_db(transaction=True)
def test_a_failed_batch_of_marks_leaves_the_events_to_the_relay(world, monkeypatch):
    calls = []

    def failing(ids):
        calls.append(list(ids))
        raise RuntimeError("database went away")

    monkeypatch.setattr(publisher, "_mark_published", failing)
    write_events(world.outlet, 2)
    assert publisher.flush_marks()  # the batch was handled: tried twice, then given up
    assert len(calls) == 2
    monkeypatch.undo()
    assert StreamEvent.objects.filter(published_at__isnull=True).count() == 2
    assert relay_unpublished(older_than_s=0) == 2  # published again, and marked at once
    assert not StreamEvent.objects.filter(published_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_relay_publishes_what_on_commit_publication_lost(world):
    # A layer instance of the test's own: receiving on the shared one from a throwaway event
    # loop would leave its receive state bound to that loop for the next test's hub.
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channel = async_to_sync(layer.new_channel)("probe.")
    async_to_sync(layer.group_add)(group_for_outlet(world.outlet.id), channel)
    try:
        write_events(world.outlet, 3, publish=False)  # the process "died" after commit
        assert StreamEvent.objects.filter(published_at__isnull=True).count() == 3
        assert relay_unpublished(older_than_s=3600) == 0  # too fresh for the relay
        assert relay_unpublished(older_than_s=0) == 3
        assert not StreamEvent.objects.filter(published_at__isnull=True).exists()
        message = async_to_sync(layer.receive)(channel)  # one group send for the three
        assert [m["seq"] for m in messages_of(message)] == [1, 2, 3]
        assert relay_unpublished(older_than_s=0) == 0  # nothing left: running twice is safe
    finally:
        async_to_sync(layer.group_discard)(group_for_outlet(world.outlet.id), channel)


def test_relay_management_command(world):
    from django.core.management import call_command

    write_events(world.outlet, 2, publish=False)
    call_command("outbox_relay", "--older-than", "0")
    assert not StreamEvent.objects.filter(published_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_prune_keeps_recent_and_unpublished_events(world):
    write_events(world.outlet, 3)
    write_events(world.outlet, 1, publish=False)
    assert publisher.flush_marks()  # seqs 1 to 3 marked published
    old = timezone.now() - timedelta(days=8)
    StreamEvent.objects.filter(seq__in=[1, 2, 4]).update(created_at=old)
    assert prune_events(retention_days=7) == 2  # seq 4 is unpublished: the relay needs it
    assert seqs_of(world.outlet) == [3, 4]
    assert StreamCursor.objects.get(pk=world.outlet.id).last_seq == 4


@override_settings(OUTBOX_SKIP_ON_COMMIT_PUBLISH=True)
def test_event_ids_are_plain_json(world):
    order_id = uuid.uuid4()
    with outbox.atomic():
        event = outbox.emit(
            outlet=world.outlet,
            name="order.updated",
            data={"id": order_id, "at": timezone.now(), "total": Decimal("1.50")},
            order_id=order_id,
        )
    event.refresh_from_db()
    assert event.data["id"] == str(order_id)
    assert event.data["total"] == "1.50"
    assert event.order_id == order_id
