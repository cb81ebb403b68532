"""What ``order_create`` and ``order_transition`` render from the objects they wrote is what a
fresh read of the order renders: the event data byte for byte, and the returned order field by
field (items prefetched). And they do it in a bounded number of statements."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder

from catalog.models import Product
from orders import services
from orders.models import Order, OrderItem
from orders.selectors import order_with_items
from orders.serializers import order_data
from tests import factories
from tests.orders.conftest import item, make_order
from tests.streams.helpers import record_emits

pytestmark = pytest.mark.django_db


@pytest.fixture
def emitted(monkeypatch) -> list[tuple[str, str]]:
    """``(name, data as JSON)`` of every event the order services emit, as they handed it over."""
    return record_emits(monkeypatch, services)


def fresh_json(order_id, **extra) -> str:
    return json.dumps({**order_data(order_with_items(order_id)), **extra}, cls=DjangoJSONEncoder)


def fields(obj) -> list[tuple[str, str]]:
    """Every column's value as the instance holds it (``repr``: Decimal('45000') is not
    Decimal('45000.00'), a str is not a UUID). A choice given as its enum member
    (``OrderStatus.PENDING``, a model default) is a ``str`` equal to the value, and is taken as
    that ``str``: it renders, compares and hashes as the value."""
    return [(f.attname, _shown(getattr(obj, f.attname))) for f in obj._meta.concrete_fields]


def _shown(value) -> str:
    return repr(str(value) if isinstance(value, str) else value)


def assert_same_as_fresh_read(order: Order, django_assert_num_queries) -> None:
    """``order`` as returned by a service: its items prefetched, and it and its items hold what
    their rows hold."""
    with django_assert_num_queries(0):
        items = list(order.items.all())
        rendered = json.dumps(order_data(order), cls=DjangoJSONEncoder)
    fresh = order_with_items(order.pk)
    assert rendered == fresh_json(order.pk)
    assert fields(order) == fields(fresh)
    assert [fields(line) for line in items] == [fields(line) for line in fresh.items.all()]


def transition_as_fresh_read(order: Order, from_status: str, to_status: str, actor, emitted,
                             django_assert_num_queries) -> Order:
    """Move ``order`` on through the service; its one event and the order it returns are what
    a fresh read renders."""
    changed = services.order_transition(order_id=order.pk, to_status=to_status, actor=actor)
    assert emitted == [
        ("order.status_changed", fresh_json(order.pk, **{"from": from_status, "to": to_status}))
    ]
    assert_same_as_fresh_read(changed, django_assert_num_queries)
    return changed


@pytest.fixture
def rich_outlet(world):
    """Rates whose products need rounding (half-up) on the service charge and the tax."""
    world.outlet.service_charge_rate = Decimal("0.075")
    world.outlet.tax_rate = Decimal("0.11")
    world.outlet.save()
    return world.outlet


def rich_items(menu) -> list[dict]:
    # Prices given without decimals: the database stores (and reads back) 2 places.
    soup = factories.make_product(menu.tea.tenant, name="Soup", price=Decimal("45000"))
    tracked = factories.make_product(
        menu.tea.tenant, name="Ice cream", price=Decimal("12345.5"), track_stock=True,
        stock_quantity=50,
    )
    return [
        item(menu.burger, 2, [menu.large, menu.bacon, menu.cheese], note="no onion, well done"),
        item(soup, 3, note="hot ✓ «extra» \"spicy\"\nsecond line"),
        item(menu.tea),
        item(menu.burger, 1, [menu.small]),
        item(tracked, 4),
        item(menu.fries, 2, note=""),
    ]


def test_created_event_and_order_are_a_fresh_read_byte_for_byte(
    world, menu, rich_outlet, emitted, django_assert_num_queries
):
    order = services.order_create(
        actor=world.cashier, outlet=rich_outlet, type="takeaway", items=rich_items(menu),
        table="T9", customer_name="Ana María", note="birthday",
    )

    assert [name for name, _ in emitted] == ["order.created"]
    assert emitted[0][1] == fresh_json(order.pk)
    assert_same_as_fresh_read(order, django_assert_num_queries)
    data = json.loads(emitted[0][1])
    # The case is what it claims to be: several lines, options, notes, charge and tax.
    assert len(data["items"]) == 6
    assert data["items"][0]["modifiers"][0]["price_delta"] == "5000.00"
    assert data["items"][1]["unit_price"] == "45000.00"
    assert data["items"][1]["note"].endswith("second line")
    assert data["service_charge_amount"] != "0.00" and data["tax_amount"] != "0.00"


def test_a_draft_of_one_line_is_a_fresh_read_too(world, menu, emitted, django_assert_num_queries):
    order = services.order_create(
        actor=None, outlet=world.outlet, type="dine_in", items=[item(menu.tea)], status="draft"
    )
    assert emitted == [("order.created", fresh_json(order.pk))]
    assert_same_as_fresh_read(order, django_assert_num_queries)


@pytest.mark.parametrize("tracked", [True, False], ids=["with-stock", "no-stock"])
def test_confirm_event_and_order_are_a_fresh_read(
    world, menu, rich_outlet, emitted, django_assert_num_queries, tracked
):
    items = rich_items(menu) if tracked else [item(menu.tea, 2), item(menu.burger, 1, [menu.large])]
    order = make_order(rich_outlet, items)
    emitted.clear()

    confirmed = transition_as_fresh_read(order, "pending", "confirmed", world.cashier, emitted,
                                         django_assert_num_queries)
    assert confirmed.stock_taken is tracked
    marked = {line.name for line in confirmed.items.all() if line.stock_taken}
    assert marked == ({"Ice cream", "Fries"} if tracked else set())
    if tracked:
        assert Product.objects.get(name="Ice cream").stock_quantity == 46
        assert Product.objects.get(pk=menu.fries.pk).stock_quantity == 8


def test_cancel_after_confirm_returns_stock_and_is_a_fresh_read(
    world, menu, rich_outlet, emitted, django_assert_num_queries
):
    order = make_order(rich_outlet, rich_items(menu), status="confirmed")
    assert OrderItem.objects.filter(order=order, stock_taken=True).count() == 2
    emitted.clear()

    cancelled = transition_as_fresh_read(order, "confirmed", "cancelled", world.manager, emitted,
                                         django_assert_num_queries)
    assert not any(line.stock_taken for line in cancelled.items.all())
    assert cancelled.stock_taken is False
    assert Product.objects.get(name="Ice cream").stock_quantity == 50
    assert Product.objects.get(pk=menu.fries.pk).stock_quantity == 10


def test_a_repeated_system_transition_returns_the_order_as_read(
    world, menu, django_assert_num_queries
):
    order = make_order(world.outlet, [item(menu.fries, 2)], status="preparing")
    again = services.order_transition(order_id=order.pk, to_status="preparing", system=True)
    assert again.version == order.version
    assert_same_as_fresh_read(again, django_assert_num_queries)


# Bounds on the statements the order services issue themselves, inside the test's transaction
# (the savepoint of ``outbox.atomic`` included). The event is recorded, not written: what the
# outbox spends on it is the outbox's business, and changes with it.
# order_create: the actor's outlet check, the products with their modifier groups and options
# (one query), the counter (one UPDATE ... RETURNING) and the order and its items inserted.
# Reading the counter back, the menu in three queries (as it once did), or the order and its
# items after writing them, goes past it.
CREATE_MAX_QUERIES = 7
# Confirming: the order locked with its items (and their products' stock flags) in one
# statement, the actor's outlet check, the tracked products locked, their stock, the items'
# marks, the order saved. Reading the items on their own, or a second time, goes past it.
CONFIRM_MAX_QUERIES = 8
# Confirming an order none of whose products track stock locks no product either.
CONFIRM_UNTRACKED_MAX_QUERIES = 5


@pytest.fixture
def unwritten_events(monkeypatch) -> list[str]:
    names: list[str] = []
    monkeypatch.setattr(services, "emit", lambda *, name, **kwargs: names.append(name))
    return names


def test_create_statements_are_bounded(
    world, menu, unwritten_events, django_assert_max_num_queries
):
    make_order(world.outlet, [item(menu.tea)])  # the day's counter exists
    lines = [
        item(menu.burger, 2, [menu.large, menu.egg], note="x"), item(menu.fries), item(menu.tea)
    ]
    with django_assert_max_num_queries(CREATE_MAX_QUERIES):
        order = services.order_create(
            actor=world.cashier, outlet=world.outlet, type="dine_in", items=lines
        )
    assert unwritten_events == ["order.created", "order.created"]
    assert order.number == "A-0002"
    assert OrderItem.objects.filter(order=order).count() == 3


def test_confirm_statements_are_bounded(
    world, menu, unwritten_events, django_assert_max_num_queries
):
    order = make_order(world.outlet, [item(menu.fries, 2), item(menu.tea), item(menu.fries)])
    with django_assert_max_num_queries(CONFIRM_MAX_QUERIES):
        services.order_transition(order_id=order.pk, to_status="confirmed", actor=world.cashier)
    assert unwritten_events == ["order.created", "order.status_changed"]
    assert Product.objects.get(pk=menu.fries.pk).stock_quantity == 7


def test_confirm_without_tracked_products_locks_none(
    world, menu, unwritten_events, django_assert_max_num_queries
):
    order = make_order(world.outlet, [item(menu.tea, 2), item(menu.burger, 1, [menu.small])])
    with django_assert_max_num_queries(CONFIRM_UNTRACKED_MAX_QUERIES) as captured:
        confirmed = services.order_transition(
            order_id=order.pk, to_status="confirmed", actor=world.cashier
        )
    assert not any('FROM "catalog_product"' in q["sql"] for q in captured.captured_queries)
    assert confirmed.stock_taken is False
    assert Order.objects.get(pk=order.pk).status == "confirmed"


def test_a_product_tracking_stock_since_the_order_was_placed_is_taken_from(world, menu):
    order = make_order(world.outlet, [item(menu.tea, 3)])
    Product.objects.filter(pk=menu.tea.pk).update(track_stock=True, stock_quantity=5)
    confirmed = services.order_transition(
        order_id=order.pk, to_status="confirmed", actor=world.cashier
    )
    assert confirmed.stock_taken is True
    assert [line.stock_taken for line in confirmed.items.all()] == [True]
    assert Product.objects.get(pk=menu.tea.pk).stock_quantity == 2
