"""Order reads, scoped to the outlets the caller may see, shaped for ``OrderSerializer``."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from catalog.models import Product
from orders.lifecycle import ACTIVE_STATUSES
from orders.models import Order, OrderItem
from pos.ids import parse_uuid
from pos.prefetch import set_prefetched
from pos.rows import Table
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


def item_columns(*, product_tracks_stock: bool = False) -> str:
    """The SELECT list of an order's items as ``OrderSerializer`` reads them (``i``), with their
    product's ``track_stock`` (``p``, joined by ``item_joins``) if asked."""
    stock = f", {_PRODUCT_ROWS.column('track_stock')}" if product_tracks_stock else ""
    return ITEM_ROWS.columns + stock


def item_joins(*, product_tracks_stock: bool = False) -> str:
    """What ``item_columns`` needs joined to the items, if anything."""
    if not product_tracks_stock:
        return ""
    return (f" LEFT OUTER JOIN {_PRODUCT_ROWS.table} "
            f"ON {_PRODUCT_ROWS.column('id')} = {ITEM_ROWS.column('product')}")


def item_order() -> str:
    """ORDER BY of the items: the order ``OrderSerializer`` renders them in."""
    return ", ".join(ITEM_ROWS.column(field) for field in ITEM_ORDER)


def set_items(order: Order, rows: Iterable[tuple], *, start: int = 0,
              product_tracks_stock: bool = False) -> Order:
    """Store the items in ``rows`` (from ``start``, as ``item_columns`` selects them, in
    ``item_order``) where ``prefetch_related("items")`` stores them, each holding ``order``
    as its order. A row without an item (an outer join, an order without items) is skipped."""
    items = []
    for row in rows:
        if row[start + ITEM_ROWS.key_index] is None:
            continue
        item = ITEM_ROWS.instance(row, start)
        if product_tracks_stock:
            item.product_tracks_stock = _PRODUCT_ROWS.value(
                "track_stock", row[start + ITEM_ROWS.width])
        item.order = order
        items.append(item)
    set_prefetched(order, "items", items, ordering=ITEM_ORDER, presorted=True)
    return order


def with_written_items(order: Order, items: Iterable[OrderItem]) -> Order:
    """``order`` given ``items`` as its prefetched items, in the order ``set_items`` stores
    them, without a query: for the service that has just created the order and its items
    (all of them, saved, each holding what its row holds)."""
    set_prefetched(order, "items", items, ordering=ITEM_ORDER)
    return order
