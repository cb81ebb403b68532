"""Stock: taken on confirmation under row locks, given back on cancellation, never negative."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from catalog.models import Product
from orders.models import Order
from orders.services import order_transition
from pos.api_errors import InsufficientStock
from pos.models import StreamEvent
from tests import factories
from tests.orders.conftest import item, make_order


def stock(product) -> int:
    return Product.objects.values_list("stock_quantity", flat=True).get(pk=product.pk)


def _state(order):
    row = Order.objects.get(pk=order.pk)
    return row.status, row.version, row.stock_taken, StreamEvent.objects.count()


@pytest.mark.django_db
def test_confirm_takes_stock_of_tracked_products_only(world, menu, client_for):
    order = make_order(world.outlet, [item(menu.fries, 3), item(menu.tea, 2), item(menu.fries, 1)])
    response = client_for(world.cashier).patch(
        f"/api/orders/{order.id}/status/", {"status": "confirmed"}, format="json"
    )
    assert response.status_code == 200
    assert stock(menu.fries) == 6  # 10 - (3 + 1)
    assert stock(menu.tea) == 0  # untracked: untouched
    assert Order.objects.get(pk=order.pk).stock_taken is True


@pytest.mark.django_db
def test_short_stock_is_409_listing_the_products_and_nothing_changes(world, menu, client_for):
    pie = factories.make_product(
        world.tenant, name="Pie", track_stock=True, stock_quantity=1
    )
    order = make_order(world.outlet, [item(menu.fries, 11), item(pie, 1)])
    before = _state(order)
    response = client_for(world.cashier).patch(
        f"/api/orders/{order.id}/status/", {"status": "confirmed"}, format="json"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert error["details"]["products"] == [
        {"product": str(menu.fries.id), "name": "Fries", "requested": 11, "available": 10}
    ]
    assert _state(order) == before
    assert (stock(menu.fries), stock(pie)) == (10, 1)


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", ["confirmed", "preparing", "ready", "served"])
def test_cancel_gives_the_stock_back(world, menu, from_status):
    order = make_order(world.outlet, [item(menu.fries, 4)], status=from_status)
    assert stock(menu.fries) == 6
    cancelled = order_transition(order_id=order.id, to_status="cancelled", actor=world.manager)
    assert stock(menu.fries) == 10
    assert cancelled.stock_taken is False


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", ["draft", "pending"])
def test_cancel_before_confirmation_gives_nothing_back(world, menu, from_status):
    order = make_order(world.outlet, [item(menu.fries, 4)], status=from_status)
    order_transition(order_id=order.id, to_status="cancelled", actor=world.cashier)
    assert stock(menu.fries) == 10


@pytest.mark.django_db
def test_cancel_gives_back_only_what_was_taken(world, menu):
    tea_then_tracked = make_order(world.outlet, [item(menu.tea, 2), item(menu.fries, 1)],
                                  status="confirmed")
    Product.objects.filter(pk=menu.tea.pk).update(track_stock=True, stock_quantity=5)
    Product.objects.filter(pk=menu.fries.pk).update(track_stock=False)
    order_transition(order_id=tea_then_tracked.id, to_status="cancelled", actor=world.cashier)
    # Tea was untracked when confirmed: nothing to give back. Fries were taken: back they go.
    assert (stock(menu.tea), stock(menu.fries)) == (5, 10)


@pytest.mark.django_db
def test_recall_does_not_take_stock_twice(world, menu):
    order = make_order(world.outlet, [item(menu.fries, 4)], status="ready")
    order_transition(order_id=order.id, to_status="preparing", system=True)
    order_transition(order_id=order.id, to_status="ready", system=True)
    assert stock(menu.fries) == 6


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_confirmations_one_wins_one_is_refused(world, menu):
    """Two real transactions race for the last 6 portions: 4 + 4 cannot both fit."""
    first = make_order(world.outlet, [item(menu.fries, 4)])
    second = make_order(world.outlet, [item(menu.fries, 4)])
    Product.objects.filter(pk=menu.fries.pk).update(stock_quantity=6)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def confirm(order):
        try:
            barrier.wait()
            order_transition(order_id=order.id, to_status="confirmed", actor=world.cashier)
            outcomes[str(order.id)] = "confirmed"
        except InsufficientStock:
            outcomes[str(order.id)] = "insufficient_stock"
        except BaseException as exc:
            outcomes[str(order.id)] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm, args=(o,)) for o in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["confirmed", "insufficient_stock"]
    assert stock(menu.fries) == 2
    statuses = sorted(Order.objects.filter(pk__in=[first.pk, second.pk])
                      .values_list("status", "stock_taken"))
    assert statuses == [("confirmed", True), ("pending", False)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirmations_sharing_products_do_not_deadlock(world, menu):
    """Orders listing the same tracked products in opposite orders lock them in id order."""
    pie = factories.make_product(world.tenant, name="Pie", track_stock=True, stock_quantity=100)
    Product.objects.filter(pk=menu.fries.pk).update(stock_quantity=100)
    orders = [
        make_order(world.outlet, [item(menu.fries), item(pie)]) if n % 2 else
        make_order(world.outlet, [item(pie), item(menu.fries)])
        for n in range(8)
    ]
    barrier = threading.Barrier(len(orders))
    failures: list[str] = []

    def confirm(order):
        try:
            barrier.wait()
            order_transition(order_id=order.id, to_status="confirmed", actor=world.cashier)
        except BaseException as exc:
            failures.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm, args=(o,)) for o in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert (stock(menu.fries), stock(pie)) == (92, 92)
