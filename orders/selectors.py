"""Order reads, scoped to the outlets the caller may see, shaped for ``OrderSerializer``."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from catalog.models import Product
from orders.lifecycle import ACTIVE_STATUSES
from orders.models import Order, OrderItem
from pos.ids import parse_uuid
from pos.prefetch import set_prefetched
from pos.rows import Table, fetchall, statement
from tenants.models import User
from tenants.selectors import outlets_visible_to

ITEM_ORDER = ("position", "id")


def _items(queryset: QuerySet[OrderItem] | None = None) -> Prefetch:
    queryset = OrderItem.objects.all() if queryset is None else queryset
    return Prefetch("items", queryset=queryset.order_by(*ITEM_ORDER))


def _shaped(qs: QuerySet[Order]) -> QuerySet[Order]:
    """What ``OrderSerializer`` reads: the items in one extra query, nothing per row."""
    return qs.prefetch_related(_items())


def orders_visible_to(user: User) -> QuerySet[Order]:
    """Orders of the outlets ``user`` works at (all of the tenant for an owner; all for a
    super admin), newest first."""
    return _shaped(Order.objects.filter(outlet__in=outlets_visible_to(user)))


def order_for_user(user: User, order_id) -> Order | None:
    """The order if ``user`` may see it, else None: unknown, malformed and another tenant's
    ids look the same."""
    pk = parse_uuid(order_id)
    if pk is None:
        return None
    return orders_visible_to(user).filter(pk=pk).first()


def active_orders_for_outlet(outlet_id) -> QuerySet[Order]:
    """Orders of the outlet not yet completed or cancelled, oldest first (the screen order).

    Precondition: the caller already checked that its user may see the outlet.
    """
    pk = parse_uuid(outlet_id)
    if pk is None:
        return Order.objects.none()
    return _shaped(
        Order.objects.filter(outlet_id=pk, status__in=ACTIVE_STATUSES).order_by("created_at", "id")
    )


def order_with_items(order_id) -> Order:
    """One order with its items, unscoped: for services that already hold the order.

    Precondition: the caller resolved ``order_id`` through a scoped lookup or created it.
    """
    return _shaped(Order.objects.select_related("outlet")).get(pk=order_id)


# Rows read and written with SQL built once (pos.rows), for the statements every order write
# runs; the services use them too.
ORDER_ROWS = Table(Order, "o")
ITEM_ROWS = Table(OrderItem, "i")
_PRODUCT_ROWS = Table(Product, "p")


def with_items(order: Order, *, product_tracks_stock: bool = False) -> Order:
    """``order``, an instance the caller holds (and has saved), given its items as
    ``OrderSerializer`` reads them: one query, instead of reading the order again.

    With ``product_tracks_stock``, each item also carries ``product_tracks_stock``, its
    product's ``track_stock`` as read in that same query (unlocked; None without a product).

    Plain SQL built once (``pos.rows``): every status change runs it, and the prefetch it
    stands for cost more to compile than to run. The items are stored where
    ``prefetch_related("items")`` stores them, each holding ``order`` as its order.
    """
    name = "orders.items_with_stock" if product_tracks_stock else "orders.items"
    sql = statement(name, lambda: (
        f"SELECT {ITEM_ROWS.columns}"  # noqa: S608
        + (f", {_PRODUCT_ROWS.column('track_stock')}" if product_tracks_stock else "")
        + f" FROM {ITEM_ROWS.table}"
        + (f" LEFT OUTER JOIN {_PRODUCT_ROWS.table} ON {_PRODUCT_ROWS.column('id')} = "
           f"{ITEM_ROWS.column('product')}" if product_tracks_stock else "")
        + f" WHERE {ITEM_ROWS.column('order')} = %s ORDER BY "
        + ", ".join(ITEM_ROWS.column(field) for field in ITEM_ORDER)
    ))
    items = []
    for row in fetchall(sql, [ITEM_ROWS.param("order", order.pk)]):
        item = ITEM_ROWS.instance(row)
        if product_tracks_stock:
            item.product_tracks_stock = _PRODUCT_ROWS.value("track_stock", row[ITEM_ROWS.width])
        item.order = order
        items.append(item)
    set_prefetched(order, "items", items, ordering=ITEM_ORDER)
    return order


def with_written_items(order: Order, items: Iterable[OrderItem]) -> Order:
    """``order`` given ``items`` as its prefetched items, in the order ``with_items`` reads
    them, without a query: for the service that has just created the order and its items
    (all of them, saved, each holding what its row holds)."""
    set_prefetched(order, "items", items, ordering=ITEM_ORDER)
    return order
