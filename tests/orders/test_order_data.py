"""``orders.serializers.order_data``: the event payload of an order, by a shared serializer."""

from __future__ import annotations

import threading

import pytest

from orders import serializers
from orders.selectors import order_with_items
from orders.serializers import OrderSerializer, order_data
from tests.orders.conftest import item, make_order

pytestmark = pytest.mark.django_db


def test_order_data_renders_each_order_as_a_new_serializer_would(world, menu):
    burger = make_order(world.outlet, [
        item(menu.burger, 2, [menu.large, menu.cheese], note="no onion"), item(menu.tea),
    ])
    fries = make_order(world.outlet, [item(menu.fries, 3)], status="confirmed")
    for order in (burger, fries, burger):  # one serializer renders them in turn
        fresh = order_with_items(order.pk)
        assert order_data(fresh) == dict(OrderSerializer(fresh).data)
    shared = serializers._order_renderer.serializer
    assert isinstance(shared, OrderSerializer)
    order_data(order_with_items(fries.pk))
    assert serializers._order_renderer.serializer is shared  # built once


def test_threads_share_the_serializer_and_get_their_own_orders(world, menu, monkeypatch):
    serializers._order_renderer.reset()  # the threads race to build it
    orders = [order_with_items(make_order(world.outlet, [item(menu.tea, n)]).pk)
              for n in (1, 2, 3, 4)]
    expected = [dict(OrderSerializer(order).data) for order in orders]
    results: dict[int, list] = {}
    start = threading.Barrier(len(orders))

    def render(index: int) -> None:
        start.wait()
        results[index] = [order_data(orders[index]) for _ in range(50)]

    threads = [threading.Thread(target=render, args=(i,)) for i in range(len(orders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for index, rendered in results.items():
        assert all(data == expected[index] for data in rendered)
    assert len(results) == len(orders)
