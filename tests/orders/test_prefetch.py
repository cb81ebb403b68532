"""pos.prefetch: rows a service holds, stored where a prefetch would put them."""

from __future__ import annotations

from orders.models import Order, OrderItem
from orders.selectors import ITEM_ORDER
from pos.prefetch import set_prefetched
from tests.orders.conftest import item, make_order


def test_stored_rows_answer_without_a_query_in_the_given_order(
    world, menu, django_assert_num_queries
):
    lines = [item(menu.fries), item(menu.tea), item(menu.burger, 1, [menu.small])]
    order = make_order(world.outlet, lines)
    rows = list(OrderItem.objects.filter(order=order))
    fresh = Order.objects.get(pk=order.pk)
    with django_assert_num_queries(0):
        set_prefetched(fresh, "items", reversed(rows), ordering=ITEM_ORDER)
        listed = list(fresh.items.all())
    assert [line.pk for line in listed] == [line.pk for line in rows]  # sorted by position
    assert all(a is b for a, b in zip(listed, sorted(rows, key=lambda r: r.position),
                                      strict=True))


def test_chaining_onto_stored_rows_reads_only_the_instances_own(world, menu):
    # The queryset stands for instance.items: a filter chained onto it keeps the relation's
    # filter (left deferred while nobody chains), so another order's items never show up.
    order = make_order(world.outlet, [item(menu.fries, 2), item(menu.tea)])
    other = make_order(world.outlet, [item(menu.fries, 5)])
    fresh = Order.objects.get(pk=order.pk)
    set_prefetched(fresh, "items", OrderItem.objects.filter(order=order), ordering=ITEM_ORDER)
    chained = fresh.items.filter(product=menu.fries)
    assert [line.order_id for line in chained] == [order.pk]
    assert [line.quantity for line in chained] == [2]
    assert other.items.count() == 1


def test_storing_again_replaces_what_was_stored(world, menu, django_assert_num_queries):
    order = make_order(world.outlet, [item(menu.fries), item(menu.tea)])
    rows = list(OrderItem.objects.filter(order=order))
    fresh = Order.objects.get(pk=order.pk)
    set_prefetched(fresh, "items", rows, ordering=ITEM_ORDER)
    with django_assert_num_queries(0):
        set_prefetched(fresh, "items", rows[:1], ordering=ITEM_ORDER)
        assert [line.pk for line in fresh.items.all()] == [rows[0].pk]
