"""Every write to orders: creation, status transitions, payment totals.

Each service runs in one transaction and emits its event (``order.created``,
``order.status_changed``, ``order.updated``) inside it, after the order row is saved, so the
reactions other apps register on those events (the kitchen fires tickets on
``to == "confirmed"``) see the new state and commit or roll back with it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied

from catalog.models import Product
from catalog.selectors import products_for_sale
from orders import lifecycle, pricing
from orders.models import Order, OrderItem, OrderNumberCounter, OrderStatus, OrderType
from orders.models import PaymentStatus as PS
from orders.selectors import (
    ITEM_ROWS,
    ORDER_ROWS,
    item_columns,
    item_joins,
    item_order,
    order_with_items,
    set_items,
    with_written_items,
)
from orders.serializers import order_data
from pos import counters
from pos.api_errors import (
    DomainValidationError,
    InsufficientStock,
    InvalidTransition,
    VersionConflict,
)
from pos.audit import audit_record
from pos.ids import parse_uuid
from pos.permissions import CASHIER, MANAGEMENT_ROLES, user_has_role
from pos.rows import Table, fetchall, lock_clause, statement
from pos.streams import outbox
from pos.streams.outbox import emit
from tenants.models import Outlet, User
from tenants.selectors import user_can_access_outlet

# CONTRACT.md section 2: who may create and transition orders (kitchen only reads them; its
# own status changes come through the kitchen's system path).
ORDER_WRITER_ROLES = frozenset(MANAGEMENT_ROLES | {CASHIER})

NUMBER_PREFIX = "A-"

# Statuses in which the kitchen has the order: cancelling from one of them is audited.
FIRED_STATUSES = frozenset(
    {OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.SERVED}
)


# --- helpers --------------------------------------------------------------------------------
def business_date_for(outlet: Outlet, moment: datetime | None = None) -> date:
    """The outlet's local calendar day at ``moment`` (now by default)."""
    moment = moment or timezone.now()
    try:
        zone = ZoneInfo(outlet.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC  # a bad zone name must not stop the till
    return moment.astimezone(zone).date()


def _next_order_number(outlet_id: uuid.UUID, business_date: date) -> int:
    """Increment the outlet's counter for the day; the row stays locked until commit."""
    return counters.increment(
        OrderNumberCounter, field="last_number", outlet=outlet_id, business_date=business_date
    )


def format_order_number(n: int) -> str:
    """``A-0042``: four digits at least, more once a day passes 9999 orders."""
    return f"{NUMBER_PREFIX}{n:04d}"


def _require_writer(actor: User, outlet: Outlet) -> None:
    if not user_has_role(actor, ORDER_WRITER_ROLES):
        raise PermissionDenied("Your role does not allow changing orders.")
    if not user_can_access_outlet(actor, outlet):
        raise PermissionDenied("You are not assigned to this outlet.")


# --- creation -------------------------------------------------------------------------------
def _priced_items(
    outlet: Outlet, items: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Check every requested item against the tenant's menu and snapshot name and prices.

    Raises ``DomainValidationError`` with ``details = {"items": {"<index>": {field: [...]}}}``
    naming only the items in error, the layout DRF uses for errors of a nested list.
    """
    if not items:
        raise DomainValidationError(
            "An order needs at least one item.", details={"items": ["This list may not be empty."]}
        )
    product_ids = {parse_uuid(item.get("product")) for item in items} - {None}
    products = products_for_sale(outlet.tenant_id, product_ids)

    errors: dict[str, dict[str, list[str]]] = {}
    priced: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        item_errors: dict[str, list[str]] = {}
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 999:
            item_errors["quantity"] = ["Ensure this is an integer from 1 to 999."]
        product = products.get(parse_uuid(item.get("product")))
        if product is None:
            item_errors["product"] = ["Unknown product."]
        elif not product.is_available:
            item_errors["product"] = [f"{product.name} is not available."]
        chosen: list[Any] = []
        if product is not None:
            chosen, modifier_errors = _chosen_options(product, item.get("modifiers") or ())
            if modifier_errors:
                item_errors["modifiers"] = modifier_errors
        if item_errors:
            errors[str(index)] = item_errors
            continue
        deltas = [option.price_delta for option in chosen]
        priced.append(
            {
                "product": product,
                "name": product.name,
                "unit_price": product.price,
                "quantity": quantity,
                "modifiers": [
                    {"id": str(o.pk), "name": o.name, "price_delta": str(o.price_delta)}
                    for o in chosen
                ],
                "note": str(item.get("note") or ""),
                "total": pricing.item_total(product.price, deltas, quantity),
            }
        )
    if errors:
        raise DomainValidationError(
            "Invalid input: some items cannot be ordered.", details={"items": errors}
        )
    return priced


def _chosen_options(product: Product, requested: Iterable[Any]) -> tuple[list[Any], list[str]]:
    """The options picked for ``product`` and the problems found, in the product's order.

    Rules: each id is an option of one of the product's modifier groups, none twice, and every
    group gets between ``min_select`` and ``max_select`` options (so a group with
    ``min_select > 0`` must be answered even when the request names none of its options).
    """
    groups = list(product.modifier_groups.all())
    by_id = {option.pk: (group, option) for group in groups for option in group.options.all()}
    problems: list[str] = []
    seen: set[uuid.UUID] = set()
    picked: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for raw in requested:
        option_id = parse_uuid(raw)
        if option_id is None or option_id not in by_id:
            problems.append(f"Unknown modifier option {raw} for {product.name}.")
            continue
        if option_id in seen:
            problems.append(f"Modifier option {raw} is chosen twice.")
            continue
        seen.add(option_id)
        group, option = by_id[option_id]
        picked[group.pk].append(option)
    for group in groups:
        count = len(picked[group.pk])
        if count < group.min_select:
            problems.append(
                f"{group.name}: choose at least {group.min_select} option(s)."
            )
        elif count > group.max_select:
            problems.append(f"{group.name}: choose at most {group.max_select} option(s).")
    chosen = [option for group in groups for option in picked[group.pk]]
    return chosen, problems


@outbox.atomic
def order_create(
    *,
    actor: User | None,
    outlet: Outlet,
    type: str,
    items: Sequence[Mapping[str, Any]],
    table: str = "",
    customer_name: str = "",
    note: str = "",
    status: str = OrderStatus.PENDING,
) -> Order:
    """Create an order with its items and emit ``order.created``.

    ``items`` are mappings ``{"product": id, "quantity": 1..999, "modifiers": [option ids],
    "note": str}``. Products and options must be the outlet's tenant's; products available;
    option choices within each modifier group's min/max. Names and prices are snapshots.
    ``actor`` is the user creating the order (a cashier, manager, owner or super admin who
    works at ``outlet``); ``None`` means the system itself (demo data, imports): no role check.
    Returns the order with its items prefetched.
    """
    if actor is not None:
        _require_writer(actor, outlet)
    field_errors: dict[str, list[str]] = {}
    if type not in OrderType.values:
        field_errors["type"] = [f'"{type}" is not a valid choice.']
    if status not in lifecycle.INITIAL_STATUSES:
        field_errors["status"] = ['A new order is "pending" or "draft".']
    if field_errors:
        raise DomainValidationError("Invalid input.", details=field_errors)
    priced = _priced_items(outlet, items)
    totals = pricing.order_totals(
        item_totals=[line["total"] for line in priced],
        service_charge_rate=outlet.service_charge_rate,
        tax_rate=outlet.tax_rate,
    )
    business_date = business_date_for(outlet)
    number = format_order_number(_next_order_number(outlet.pk, business_date))
    # The order and its items in two statements built once (pos.rows): every sale runs them.
    order = ORDER_ROWS.insert(Order(
        tenant_id=outlet.tenant_id,
        outlet=outlet,
        number=number,
        business_date=business_date,
        status=status,
        type=type,
        table=table,
        customer_name=customer_name,
        note=note,
        subtotal=totals.subtotal,
        service_charge_amount=totals.service_charge_amount,
        discount_amount=totals.discount_amount,
        tax_amount=totals.tax_amount,
        total=totals.total,
        created_by=actor,
    ))
    lines = ITEM_ROWS.insert_many([
        OrderItem(
            tenant_id=outlet.tenant_id,
            order=order,
            product=line["product"],
            name=line["name"],
            unit_price=line["unit_price"],
            quantity=line["quantity"],
            modifiers=line["modifiers"],
            note=line["note"],
            total=line["total"],
            position=position,
        )
        for position, line in enumerate(priced)
    ])
    # Everything just written is in memory as it was stored (ids and timestamps are set in
    # Python, money is already rounded to the columns' 2 places), so render it without reading
    # the order and its items back.
    order = with_written_items(order, lines)
    emit(outlet=outlet, name="order.created", data=order_data(order), order_id=order.pk)
    return order


# --- stock ----------------------------------------------------------------------------------
def _lock_products(
    product_ids: Iterable[uuid.UUID], *, tracked_only: bool = False
) -> dict[uuid.UUID, Product]:
    """Lock the products' rows in id order: every locker takes them in the same order, so two
    confirmations sharing products wait for each other instead of deadlocking.

    The lock is ``FOR NO KEY UPDATE``: only the stock column changes, so a concurrent insert
    of an order item pointing at the product (its foreign-key check takes ``KEY SHARE`` at
    commit) is not blocked, and cannot deadlock against us while we wait for another lock.
    """
    rows = Product.objects.select_for_update(no_key=True).filter(
        pk__in=sorted(set(product_ids))
    )
    if tracked_only:
        rows = rows.filter(track_stock=True)  # untracked products need no lock at all
    return {product.pk: product for product in rows.order_by("pk")}


def _take_stock(order: Order) -> bool:
    """Take stock for the order's lines of ``track_stock`` products and mark those lines.

    Raises ``InsufficientStock`` (nothing taken) if any product is short. Returns whether any
    stock was taken. Precondition: the order row is locked and its items prefetched
    (``_locked_order(..., items=True, product_tracks_stock=True)``); the marks are set on those
    instances too, so they stay true to the rows.
    """
    lines = [item for item in order.items.all() if item.product_id is not None]
    if not any(item.product_tracks_stock for item in lines):
        # None of the products tracked stock when the items were read: nothing to lock or
        # take. A product that starts tracking it since then does so as if after our commit
        # (we write none of its row). If one did track it, the flags are read again below,
        # under the lock, as the one that counts.
        return False
    products = _lock_products((item.product_id for item in lines), tracked_only=True)
    taken = [
        item for item in lines
        if item.product_id in products and products[item.product_id].track_stock
    ]
    needed: dict[uuid.UUID, int] = defaultdict(int)
    for item in taken:
        needed[item.product_id] += item.quantity
    short = [
        {
            "product": str(product_id),
            "name": products[product_id].name,
            "requested": quantity,
            "available": products[product_id].stock_quantity,
        }
        for product_id, quantity in sorted(needed.items())
        if products[product_id].stock_quantity < quantity
    ]
    if short:
        names = ", ".join(entry["name"] for entry in short)
        raise InsufficientStock(f"Not enough stock for {names}.", details={"products": short})
    for product_id, quantity in needed.items():
        Product.objects.filter(pk=product_id).update(
            stock_quantity=F("stock_quantity") - quantity
        )
    OrderItem.objects.filter(pk__in=[item.pk for item in taken]).update(stock_taken=True)
    for item in taken:
        item.stock_taken = True
    return bool(taken)


def _return_stock(order: Order) -> None:
    """Give back exactly what ``_take_stock`` took. Precondition: the order row is locked and
    its items prefetched (``_locked_order(..., items=True)``); their marks are cleared on those
    instances too."""
    lines = [
        item for item in order.items.all() if item.stock_taken and item.product_id is not None
    ]
    needed: dict[uuid.UUID, int] = defaultdict(int)
    for item in lines:
        needed[item.product_id] += item.quantity
    _lock_products(needed)
    for product_id, quantity in needed.items():
        Product.objects.filter(pk=product_id).update(
            stock_quantity=F("stock_quantity") + quantity
        )
    order.items.filter(stock_taken=True).update(stock_taken=False)
    for item in order.items.all():
        item.stock_taken = False


# --- transitions ----------------------------------------------------------------------------
_OUTLET_ROWS = Table(Outlet, "u")


def _locked_order(order_id: uuid.UUID | str, *, items: bool = False,
                  product_tracks_stock: bool = False) -> Order:
    """The order with its outlet, the order's row locked (not the outlet's) until commit;
    with ``items``, its items too, read in the same statement and stored as
    ``prefetch_related("items")`` stores them (``set_items``); with ``product_tracks_stock``
    each item also carries ``product_tracks_stock``, its product's ``track_stock`` as read
    then (unlocked; None without a product).

    Plain SQL built once (``pos.rows``): every status change and payment runs it, and the
    queryset it stands for (``select_for_update(no_key=True, of=("self",))
    .select_related("outlet")`` and the items' prefetch) cost more to compile than to run."""
    pk = parse_uuid(order_id)
    if pk is None:
        raise NotFound()
    stock = items and product_tracks_stock
    name = "orders.locked_order" + (".items" if items else "") + (".stock" if stock else "")
    sql = statement(name, lambda: (
        f"SELECT {ORDER_ROWS.columns}, {_OUTLET_ROWS.columns}"  # noqa: S608
        + (f", {item_columns(product_tracks_stock=stock)}" if items else "")
        + f" FROM {ORDER_ROWS.table} INNER JOIN {_OUTLET_ROWS.table} "
        f"ON {_OUTLET_ROWS.column('id')} = {ORDER_ROWS.column('outlet')}"
        + (f" LEFT OUTER JOIN {ITEM_ROWS.table} "
           f"ON {ITEM_ROWS.column('order')} = {ORDER_ROWS.column('id')}"
           f"{item_joins(product_tracks_stock=stock)}" if items else "")
        + f" WHERE {ORDER_ROWS.column('id')} = %s"
        + (f" ORDER BY {item_order()}" if items else "")
        + f" {lock_clause(ORDER_ROWS.alias)}"
    ))
    rows = fetchall(sql, [ORDER_ROWS.param("id", pk)])
    if not rows:
        raise NotFound()
    order = ORDER_ROWS.instance(rows[0])
    order.outlet = _OUTLET_ROWS.instance(rows[0], ORDER_ROWS.width)
    if items:
        set_items(order, rows, start=ORDER_ROWS.width + _OUTLET_ROWS.width,
                  product_tracks_stock=stock)
    return order


@outbox.atomic
def order_transition(
    *,
    order_id: uuid.UUID | str,
    to_status: str,
    actor: User | None = None,
    expected_version: int | None = None,
    system: bool = False,
) -> Order:
    """Move an order along the status machine and emit ``order.status_changed``.

    Locks the order row. ``expected_version`` (the client's ``If-Match``) must equal the
    current version, else ``VersionConflict``. An edge not in the machine is
    ``InvalidTransition``; ``ready -> preparing`` is an edge only with ``system=True``.

    ``system=False`` (REST): ``actor`` is required and must be allowed to change orders at the
    order's outlet; cancelling from preparing, ready or served needs a manager, owner or
    super admin (``PermissionDenied`` otherwise). ``system=True`` is the kitchen's path
    (ticket started, last ticket bumped, recall): no role checks (the calling service did
    them), and asking for the status the order already has returns it unchanged, with no
    event, so kitchen reactions may be repeated safely.

    Confirming takes stock of ``track_stock`` products (``InsufficientStock`` and nothing
    changes if short); cancelling gives it back. Every change bumps ``version``.
    Returns the order with its items prefetched.
    """
    if not system and actor is None:
        raise ValueError("order_transition needs an actor unless system=True")
    # The order and its items in one statement (and, to take stock on a confirmation, whether
    # their products track it): stock is taken from and given back to these very instances,
    # which keep their rows' marks, so the saved order renders as it is.
    order = _locked_order(order_id, items=True,
                          product_tracks_stock=to_status == OrderStatus.CONFIRMED)
    if not system:
        _require_writer(actor, order.outlet)
    if expected_version is not None and expected_version != order.version:
        raise VersionConflict(
            f"The order is at version {order.version}, not {expected_version}; reload it.",
            details={"current_version": order.version},
        )
    if to_status not in OrderStatus.values:
        raise DomainValidationError(
            "Invalid input.", details={"status": [f'"{to_status}" is not a valid status.']}
        )
    from_status = order.status
    if system and to_status == from_status:
        return order
    if not lifecycle.is_allowed(from_status, to_status, system=system):
        raise InvalidTransition(
            f"An order cannot go from {from_status} to {to_status}.",
            details={"from": from_status, "to": to_status},
        )
    if (
        not system
        and to_status == OrderStatus.CANCELLED
        and from_status in lifecycle.CANCEL_NEEDS_MANAGER_FROM
        and not user_has_role(actor, MANAGEMENT_ROLES)
    ):
        raise PermissionDenied(
            f"Cancelling a {from_status} order needs a manager or the owner."
        )

    takes_stock = to_status == OrderStatus.CONFIRMED and not order.stock_taken
    if takes_stock:
        order.stock_taken = _take_stock(order)
    elif to_status == OrderStatus.CANCELLED and order.stock_taken:
        _return_stock(order)
        order.stock_taken = False
    order.status = to_status
    order.version += 1  # the row is locked: no one else can have moved it
    ORDER_ROWS.update(order, ("status", "version", "stock_taken", "updated_at"))

    # What was saved is what the instance and its items hold: render them without reading again.
    data = order_data(order)
    data["from"] = from_status
    data["to"] = to_status
    emit(outlet=order.outlet, name="order.status_changed", data=data, order_id=order.pk)
    if to_status == OrderStatus.CANCELLED and from_status in FIRED_STATUSES:
        _audit_cancelled_after_fire(order, data, actor=actor, from_status=from_status)
    return order


def _audit_cancelled_after_fire(
    order: Order, data: Mapping[str, Any], *, actor: User | None, from_status: str
) -> None:
    """Record a cancellation of food the kitchen already had (owners review these).
    Precondition: inside ``order_transition``'s transaction, after the order was saved."""
    audit_record(
        actor=actor,
        action="order.cancelled_after_fire",
        target_type="order",
        target_id=order.pk,
        tenant_id=order.tenant_id,
        outlet_id=order.outlet_id,
        details={
            "number": order.number,
            "from": from_status,
            "total": order.total,
            "paid_amount": order.paid_amount,
            "items": [
                {"name": line["name"], "quantity": line["quantity"], "total": line["total"]}
                for line in data["items"]
            ],
        },
    )


# --- payments -------------------------------------------------------------------------------
def payment_status_for(*, total: Decimal, paid: Decimal, refunded: Decimal) -> str:
    """The payment status for these amounts (first matching rule wins).

    - nothing paid: ``unpaid``;
    - something refunded: ``refunded`` once the refunds reach what was paid, else
      ``partially_refunded``;
    - ``paid`` once the payments reach the total, else ``partially_paid``.
    """
    if paid <= 0:
        return PS.UNPAID
    if refunded > 0:
        return PS.REFUNDED if refunded >= paid else PS.PARTIALLY_REFUNDED
    return PS.PAID if paid >= total else PS.PARTIALLY_PAID


@outbox.atomic
def order_set_payment_totals(
    *, order_id: uuid.UUID | str, paid_amount: Decimal, refunded_amount: Decimal
) -> Order:
    """Store what the payments of an order add up to and emit ``order.updated``.

    ``paid_amount`` is the sum of every payment that ever succeeded (refunded ones included);
    ``refunded_amount`` the sum refunded; so ``0 <= refunded_amount <= paid_amount``
    (``DomainValidationError`` otherwise). Locks the order row; recomputes
    ``payment_status`` (see ``payment_status_for``) and bumps ``version``. Calling it with the
    amounts the order already has changes nothing and emits nothing.
    Returns the order with its items prefetched.
    """
    paid = pricing.round_money(Decimal(paid_amount))
    refunded = pricing.round_money(Decimal(refunded_amount))
    if paid < 0 or refunded < 0 or refunded > paid:
        raise DomainValidationError(
            "Payment totals must satisfy 0 <= refunded <= paid.",
            details={"paid_amount": str(paid), "refunded_amount": str(refunded)},
        )
    order = _locked_order(order_id)
    if order.paid_amount == paid and order.refunded_amount == refunded:
        return order_with_items(order.pk)
    order.paid_amount = paid
    order.refunded_amount = refunded
    order.payment_status = payment_status_for(total=order.total, paid=paid, refunded=refunded)
    order.version = F("version") + 1
    order.save(
        update_fields=["paid_amount", "refunded_amount", "payment_status", "version",
                       "updated_at"]
    )
    order = order_with_items(order.pk)
    emit(outlet=order.outlet, name="order.updated", data=order_data(order), order_id=order.pk)
    return order
