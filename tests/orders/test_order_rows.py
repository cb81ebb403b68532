"""``pos.rows``: what plain SQL reads and writes is what the ORM reads and writes, and the
order status change that uses it locks what the queryset it replaced locked."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import signals
from django.utils import timezone

from catalog.models import Product
from orders import services
from orders.models import Order, OrderItem
from pos.models import StreamEvent
from pos.rows import Table, lock_clause, statement
from pos.streams import outbox
from tenants.models import Outlet
from tests.orders.conftest import item, make_order
from tests.orders.test_order_service_renders import fields

pytestmark = pytest.mark.django_db


def read(table: Table, pk):
    sql = f"SELECT {table.columns} FROM {table.table} WHERE {table.column('id')} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [table.model._meta.pk.get_db_prep_value(pk, connection)])
        return table.instance(cursor.fetchone())


@pytest.fixture
def order(world, menu):
    # Decimals with places to keep, a note with quotes and newlines, a nullable product.
    world.outlet.service_charge_rate = Decimal("0.075")
    world.outlet.save()
    return make_order(world.outlet, [item(menu.burger, 2, [menu.large, menu.bacon],
                                          note='"hot"\nnow'), item(menu.fries, 3)],
                      status="confirmed", actor=world.cashier)


def test_instances_read_with_sql_are_what_a_queryset_reads(order):
    order_item = order.items.first()
    event = StreamEvent.objects.filter(order_id=order.pk).order_by("seq").last()
    cases = [(Table(Order, "o"), order.pk), (Table(Outlet, "u"), order.outlet_id),
             (Table(OrderItem, "i"), order_item.pk), (Table(StreamEvent, "e"), event.pk),
             (Table(Product, "p"), order_item.product_id)]
    for table, pk in cases:
        got = read(table, pk)
        assert fields(got) == fields(table.model.objects.get(pk=pk)), table.model
        assert got._state.adding is False and got._state.db == "default"
    assert isinstance(read(Table(StreamEvent, "e"), event.pk).data, dict)


def test_one_column_is_converted_as_its_field_reads_it(order):
    table = Table(Product, "p")
    sql = f"SELECT {table.column('track_stock')}, {table.column('price')} FROM {table.table}"
    with connection.cursor() as cursor:
        cursor.execute(sql + f" WHERE {table.column('id')} = %s",
                       [Product._meta.pk.get_db_prep_value(order.items.last().product_id,
                                                           connection)])
        track, price = cursor.fetchone()
    assert table.value("track_stock", track) is True
    assert table.value("price", price) == Decimal("12000.00")


def test_update_saves_the_named_fields_and_stamps_auto_now(order):
    before = Order.objects.get(pk=order.pk)
    order.status, order.version, order.note = "preparing", order.version + 1, "not saved"
    Table(Order, "o").update(order, ("status", "version", "updated_at"))
    after = Order.objects.get(pk=order.pk)
    assert (after.status, after.version, after.note) == ("preparing", before.version + 1, "")
    assert after.updated_at == order.updated_at > before.updated_at


def test_updating_a_row_that_is_gone_raises_and_writes_nothing(order):
    ghost = Order.objects.get(pk=order.pk)
    ghost.pk, ghost.status = uuid.uuid4(), "cancelled"
    before = list(Order.objects.order_by("pk").values_list("pk", "status", "version"))
    with pytest.raises(DatabaseError), transaction.atomic():
        Table(Order, "o").update(ghost, ("status",))
    assert list(Order.objects.order_by("pk").values_list("pk", "status", "version")) == before


def test_insert_reads_back_the_generated_key(order):
    event = StreamEvent(tenant_id=order.tenant_id, outlet_id=order.outlet_id, seq=None,
                        name="order.updated", data={"id": str(order.pk), "n": "1.50"},
                        order_id=order.pk, station_id=None, created_at=timezone.now())
    Table(StreamEvent, "e").insert(event)
    assert event.pk is not None and event._state.adding is False
    stored = StreamEvent.objects.get(pk=event.pk)
    assert event.data == stored.data  # jsonb keeps its own key order
    event.data = stored.data
    assert fields(event) == fields(stored)


def test_statements_are_built_once_per_backend():
    built = []
    first = statement("tests.once", lambda: built.append(1) or "SELECT 1")
    again = statement("tests.once", lambda: built.append(2) or "SELECT 2")
    assert (first, again, built) == ("SELECT 1", "SELECT 1", [1])


def test_models_written_with_sql_have_no_save_signal_receivers():
    """``Table`` writes without sending pre_save/post_save: a receiver added to one of these
    models would silently not run for the order status changes and events."""
    for model in (Order, OrderItem, Outlet, Product, StreamEvent):
        for signal in (signals.pre_save, signals.post_save):
            assert not signal.has_listeners(model), (model, signal)


def test_items_read_with_stock_marks_carry_the_product_and_the_order(order, menu):
    order = services._locked_order(order.pk, items=True, product_tracks_stock=True)
    lines = list(order.items.all())
    assert [line.product_tracks_stock for line in lines] == [False, True]
    assert all(line.order is order for line in lines)
    assert [line.pk for line in lines] == list(
        OrderItem.objects.filter(order=order).order_by("position", "id").values_list("pk",
                                                                                    flat=True))


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_lock_clause_locks_only_the_named_rows():
    assert lock_clause("o") == "FOR NO KEY UPDATE OF o"


@pytest.mark.django_db(transaction=True)
def test_a_status_change_holds_the_order_row_not_the_outlet_row(world, menu, monkeypatch):
    """While one status change is inside its transaction, another writer cannot lock the
    order row, yet can lock the outlet's (an outlet's other orders go on)."""
    if not connection.features.has_select_for_update:
        pytest.skip("the database has no row locks")
    monkeypatch.setattr(outbox, "_reactions", {})
    target = make_order(world.outlet, [item(menu.tea)], actor=world.cashier)
    inside, release = threading.Event(), threading.Event()
    original = services._require_writer  # runs once the order is locked

    def held(actor, outlet):
        inside.set()
        release.wait(10)
        return original(actor, outlet)

    monkeypatch.setattr(services, "_require_writer", held)
    failures: list[BaseException] = []

    def change():
        try:
            services.order_transition(order_id=target.pk, to_status="confirmed",
                                      actor=world.cashier)
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=change)
    thread.start()
    try:
        assert inside.wait(10)
        with transaction.atomic():
            Outlet.objects.select_for_update(nowait=True).get(pk=world.outlet.pk)
        with pytest.raises(DatabaseError), transaction.atomic():
            Order.objects.select_for_update(nowait=True).get(pk=target.pk)
    finally:
        release.set()
        thread.join(10)
    assert not failures
    assert Order.objects.get(pk=target.pk).status == "confirmed"
