"""Every kitchen write: stations and their routing, firing, bump, recall, item status, priority.

Lock order, the same on every path so two of them never wait on each other: the order row
first, then its ticket rows, then item rows. The confirmation and cancellation reactions run
inside ``orders.services.order_transition``, which already holds the order; the kitchen
actions lock it themselves before the ticket.

Every change to a ticket emits one ``ticket.*`` event, whose ``data`` is ``TicketSerializer``
output and whose routing keys are the ticket's order and station. Services that a kitchen
socket command calls return a ``TicketChange``, so the command can be acknowledged with the
seq of the event it produced.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Category, Product
from kds import selectors
from kds.models import (
    Station,
    StationCategory,
    StationKind,
    StationProduct,
    Ticket,
    TicketItem,
    TicketItemStatus,
    TicketPriority,
    TicketStatus,
)
from kds.routing_rules import prep_stations_for
from kds.serializers import ticket_data
from orders.models import Order, OrderItem, OrderStatus
from orders.selectors import ITEM_ROWS, ORDER_ROWS
from orders.services import order_transition
from pos.api_errors import ApiError, Conflict, DomainValidationError, InvalidTransition
from pos.audit import audit_record
from pos.models import StreamEvent
from pos.rows import Table, fetchall, fetchone, statement
from pos.streams import outbox
from pos.streams.outbox import OutletLike, emit
from tenants.models import Outlet, User


@dataclass(frozen=True)
class TicketChange:
    """A ticket after a change, and the event that reported it (None: nothing changed)."""

    ticket: Ticket
    event: StreamEvent | None


class NotFoundError(ApiError):
    status_code = 404
    default_code = "not_found"
    default_detail = "Not found."


# --- stations -------------------------------------------------------------------------------
def _lock_outlet(outlet_id: uuid.UUID) -> Outlet:
    """Serialise station writes of one outlet (the default swap reads then writes)."""
    return Outlet.objects.select_for_update(no_key=True).get(pk=outlet_id)


def _checked_ids(model, tenant_id: uuid.UUID, ids: Iterable[uuid.UUID], field: str) -> list:
    """``ids`` without repeats, if all are rows of ``model`` in the tenant (400 otherwise)."""
    wanted = list(dict.fromkeys(ids))
    found = set(
        model.objects.filter(tenant_id=tenant_id, pk__in=wanted).values_list("pk", flat=True)
    )
    unknown = [str(pk) for pk in wanted if pk not in found]
    if unknown:
        raise DomainValidationError(
            f"Unknown {field}: {', '.join(unknown)}.",
            details={field: [f"Unknown id {pk}." for pk in unknown]},
        )
    return wanted


def _check_not_routed_elsewhere(
    through, *, outlet: Outlet, station_id: uuid.UUID | None, field: str, ids: list
) -> None:
    """400 when one of ``ids`` is already listed by another station of the outlet."""
    column = "category_id" if field == "categories" else "product_id"
    taken = (
        through.objects.filter(outlet=outlet, **{f"{column}__in": ids})
        .exclude(station_id=station_id)
        .select_related("station")
    )
    clashes = [f"{getattr(row, column)} is already routed to station {row.station.name!r}."
               for row in taken]
    if clashes:
        raise DomainValidationError(
            "Within one outlet, a product or category is routed to one station only.",
            details={field: clashes},
        )


def _set_routing(station: Station, category_ids: list | None, product_ids: list | None) -> None:
    through_defaults = {"tenant_id": station.tenant_id, "outlet_id": station.outlet_id}
    if category_ids is not None:
        station.categories.set(category_ids, through_defaults=through_defaults)
    if product_ids is not None:
        station.products.set(product_ids, through_defaults=through_defaults)


def _validate_station(
    *,
    outlet: Outlet,
    station_id: uuid.UUID | None,
    name: str,
    kind: str,
    is_default: bool,
    category_ids: Sequence[uuid.UUID] | None,
    product_ids: Sequence[uuid.UUID] | None,
) -> tuple[list | None, list | None]:
    errors: dict[str, list[str]] = {}
    if kind == StationKind.EXPO:
        if is_default:
            errors["is_default"] = ["Only a prep station can be the outlet's default."]
        if category_ids:
            errors["categories"] = ["An expo station receives no tickets; route to a prep one."]
        if product_ids:
            errors["products"] = ["An expo station receives no tickets; route to a prep one."]
    if (
        Station.objects.filter(outlet=outlet, name__iexact=name)
        .exclude(pk=station_id)
        .exists()
    ):
        errors["name"] = ["This outlet already has a station with this name."]
    if errors:
        raise DomainValidationError("Invalid station.", details=errors)
    categories = products = None
    if category_ids is not None:
        categories = _checked_ids(Category, outlet.tenant_id, category_ids, "categories")
        _check_not_routed_elsewhere(StationCategory, outlet=outlet, station_id=station_id,
                                    field="categories", ids=categories)
    if product_ids is not None:
        products = _checked_ids(Product, outlet.tenant_id, product_ids, "products")
        _check_not_routed_elsewhere(StationProduct, outlet=outlet, station_id=station_id,
                                    field="products", ids=products)
    return categories, products


def _save_station(save) -> None:
    """Run ``save``; a race past our checks lands on a constraint and still answers 400."""
    try:
        with transaction.atomic():
            save()
    except IntegrityError as exc:
        raise DomainValidationError(
            "The station conflicts with another one of the outlet; reload and retry.",
            details={"non_field_errors": [str(exc).splitlines()[0]]},
        ) from exc


@transaction.atomic
def station_create(
    *,
    outlet: Outlet,
    name: str,
    kind: str = StationKind.PREP,
    is_default: bool = False,
    category_ids: Sequence[uuid.UUID] = (),
    product_ids: Sequence[uuid.UUID] = (),
) -> Station:
    """Create a station in ``outlet`` with its routing.

    Precondition: the caller may manage ``outlet``. Ids must be the outlet's tenant's (400
    otherwise). Making it the default takes the flag from the previous default; the first prep
    station of an outlet becomes its default whatever ``is_default`` says, so an outlet with a
    prep station always has a default to catch unrouted items.
    """
    outlet = _lock_outlet(outlet.pk)
    categories, products = _validate_station(
        outlet=outlet, station_id=None, name=name, kind=kind, is_default=is_default,
        category_ids=category_ids, product_ids=product_ids,
    )
    current_default = Station.objects.filter(outlet=outlet, is_default=True).first()
    if kind == StationKind.PREP and current_default is None:
        is_default = True
    station = Station(tenant_id=outlet.tenant_id, outlet=outlet, name=name, kind=kind,
                      is_default=is_default)

    def save() -> None:
        if is_default and current_default is not None:
            Station.objects.filter(pk=current_default.pk).update(is_default=False)
        station.save()
        _set_routing(station, categories, products)

    _save_station(save)
    return selectors.station_with_routing(station.pk)


@transaction.atomic
def station_update(
    *,
    station_id: uuid.UUID,
    name: str | None = None,
    kind: str | None = None,
    is_default: bool | None = None,
    category_ids: Sequence[uuid.UUID] | None = None,
    product_ids: Sequence[uuid.UUID] | None = None,
) -> Station:
    """Change a station; ``None`` leaves a field as it is. Lists replace the routing.

    Precondition: the caller may manage the station's outlet. The default cannot be unset or
    turned into an expo station directly (400): make another prep station the default.
    """
    outlet_id = Station.objects.values_list("outlet_id", flat=True).get(pk=station_id)
    outlet = _lock_outlet(outlet_id)
    station = Station.objects.get(pk=station_id)
    new_name = name if name is not None else station.name
    new_kind = kind if kind is not None else station.kind
    new_default = is_default if is_default is not None else station.is_default
    if (
        new_kind == StationKind.PREP
        and not Station.objects.filter(outlet=outlet, is_default=True).exists()
    ):
        new_default = True  # an outlet with a prep station always has a default
    if station.is_default and (not new_default or new_kind != StationKind.PREP):
        field = "is_default" if not new_default else "kind"
        raise DomainValidationError(
            "The outlet needs a default prep station: make another prep station the default.",
            details={field: ["This station is the outlet's default prep station."]},
        )
    if new_kind == StationKind.EXPO and station.kind == StationKind.PREP:
        # An expo station routes nothing: its lists go with the change of kind, unless the
        # request also sends new (non-empty) ones, which validation refuses.
        category_ids = category_ids if category_ids is not None else []
        product_ids = product_ids if product_ids is not None else []
    categories, products = _validate_station(
        outlet=outlet, station_id=station.pk, name=new_name, kind=new_kind,
        is_default=new_default, category_ids=category_ids, product_ids=product_ids,
    )
    taking_default = new_default and not station.is_default
    station.name, station.kind, station.is_default = new_name, new_kind, new_default

    def save() -> None:
        if taking_default:
            Station.objects.filter(outlet=outlet, is_default=True).update(is_default=False)
        station.save(update_fields=["name", "kind", "is_default"])
        _set_routing(station, categories, products)

    _save_station(save)
    return selectors.station_with_routing(station.pk)


@transaction.atomic
def station_delete(*, station_id: uuid.UUID) -> None:
    """Delete a station that never received a ticket (409 ``station_in_use`` otherwise: its
    tickets are kitchen history). Deleting the default hands the flag to the oldest other prep
    station. Precondition: the caller may manage the station's outlet."""
    outlet_id = Station.objects.values_list("outlet_id", flat=True).get(pk=station_id)
    outlet = _lock_outlet(outlet_id)
    station = Station.objects.get(pk=station_id)
    if Ticket.objects.filter(station=station).exists():
        raise Conflict(
            "This station has tickets; rename it or move its routing instead of deleting it.",
            code="station_in_use",
        )
    was_default = station.is_default
    station.delete()
    if was_default:
        successor = (
            Station.objects.filter(outlet=outlet, kind=StationKind.PREP)
            .order_by("created_at", "id")
            .first()
        )
        if successor is not None:
            Station.objects.filter(pk=successor.pk).update(is_default=True)


# --- firing ---------------------------------------------------------------------------------
def _emit(ticket: Ticket, name: str, *, outlet: OutletLike) -> TicketChange:
    """Emit ``name`` for ``ticket``, shaped for ``TicketSerializer`` (items prefetched)."""
    event = emit(
        outlet=outlet,
        name=name,
        data=ticket_data(ticket),
        order_id=ticket.order_id,
        station_id=ticket.station_id,
    )
    return TicketChange(ticket=ticket, event=event)


def _emit_ticket(ticket_id: uuid.UUID, name: str) -> TicketChange:
    """Emit ``name`` for a ticket changed in place (``update()`` calls): read it back."""
    ticket = selectors.ticket_for_output(ticket_id)
    return _emit(ticket, name, outlet=ticket.outlet)


def _kitchen_modifiers(modifiers: list) -> list[dict]:
    """The kitchen needs what was chosen, not what it cost."""
    return [
        {"id": m.get("id"), "name": m.get("name")} for m in modifiers or [] if isinstance(m, dict)
    ]


@dataclass(frozen=True)
class _OutletRef:
    """The outlet as ``emit`` and the routing need it: its id and tenant, no row read."""

    id: uuid.UUID
    tenant_id: uuid.UUID


# Firing runs on every confirmation: its statements are SQL built once (pos.rows).
_TICKET_ROWS = Table(Ticket, "t")
_TICKET_ITEM_ROWS = Table(TicketItem, "ti")
_PRODUCT_ROWS = Table(Product, "p")
_ORDER_FIELDS = ("tenant", "outlet", "number", "type", "table", "customer_name")
_ITEM_FIELDS = ("id", "product", "name", "quantity", "modifiers", "note")


def _order_to_fire(order_id: uuid.UUID) -> dict:
    """The order's snapshot columns (``tenant_id``, ``outlet_id``, ``number``, ...) and
    ``fired``: whether it has tickets already."""
    sql = statement("kds.order_to_fire", lambda: (
        f"SELECT {ORDER_ROWS.select(_ORDER_FIELDS)}, EXISTS (SELECT 1 FROM "  # noqa: S608
        f"{_TICKET_ROWS.table} WHERE {_TICKET_ROWS.column('order')} = {ORDER_ROWS.column('id')}) "
        f"FROM {ORDER_ROWS.table} WHERE {ORDER_ROWS.column('id')} = %s"
    ))
    row = fetchone(sql, [ORDER_ROWS.param("id", order_id)])
    if row is None:
        raise Order.DoesNotExist("No such order.")
    values = ORDER_ROWS.values(_ORDER_FIELDS, row)
    order = {Order._meta.get_field(name).attname: value
             for name, value in zip(_ORDER_FIELDS, values, strict=True)}
    order["fired"] = bool(row[len(_ORDER_FIELDS)])
    return order


def _items_to_fire(order_id: uuid.UUID) -> list[dict]:
    """The order's items in order (``id``, ``product_id``, ``name``, ``quantity``,
    ``modifiers``, ``note``) with their product's ``category_id``. A deleted product leaves
    ``product_id`` null (SET_NULL): the outer join gives no category, and the item goes where
    an uncategorised one would."""
    sql = statement("kds.items_to_fire", lambda: (
        f"SELECT {ITEM_ROWS.select(_ITEM_FIELDS)}, {_PRODUCT_ROWS.column('category')} "  # noqa: S608
        f"FROM {ITEM_ROWS.table} LEFT OUTER JOIN {_PRODUCT_ROWS.table} "
        f"ON {_PRODUCT_ROWS.column('id')} = {ITEM_ROWS.column('product')} "
        f"WHERE {ITEM_ROWS.column('order')} = %s "
        f"ORDER BY {ITEM_ROWS.column('position')}, {ITEM_ROWS.column('id')}"
    ))
    rows = fetchall(sql, [ITEM_ROWS.param("order", order_id)])
    names = [OrderItem._meta.get_field(name).attname for name in _ITEM_FIELDS]
    return [
        {**dict(zip(names, ITEM_ROWS.values(_ITEM_FIELDS, row), strict=True)),
         "category_id": _PRODUCT_ROWS.value("category", row[len(_ITEM_FIELDS)])}
        for row in rows
    ]


@outbox.atomic(savepoint=False)  # its failure fails the confirmation: no savepoint to keep
def tickets_fire(*, order_id: uuid.UUID) -> list[TicketChange]:
    """Create the order's tickets, one per prep station its items route to; emit
    ``ticket.created`` for each.

    Call inside the transaction that confirms the order (it holds the order row). Fires once:
    an order that already has tickets gets none more (and the (order, station) constraint
    holds the rule if a check were ever bypassed). An outlet without any prep station cannot
    cook the order: 409 ``no_station``, and the confirmation rolls back with it.

    Runs on every confirmation, so it reads columns rather than models: the order's snapshot
    fields (and whether it has tickets) in one query, its items with their product's category
    in another, and renders each ticket from the objects it inserted; its statements are SQL
    built once.
    """
    order = _order_to_fire(order_id)
    if order["fired"]:
        return []
    items = _items_to_fire(order_id)
    if not items:
        return []
    outlet = _OutletRef(id=order["outlet_id"], tenant_id=order["tenant_id"])
    routes = prep_stations_for(outlet, [(i["product_id"], i["category_id"]) for i in items])
    by_station: dict[uuid.UUID, list[dict]] = {}
    stations: dict[uuid.UUID, Station] = {}
    for item, station in zip(items, routes, strict=True):
        if station is None:
            name = Outlet.objects.values_list("name", flat=True).get(pk=outlet.id)
            raise Conflict(
                f"Outlet {name!r} has no prep station to cook this order; "
                "create one (POST /api/stations/) before confirming orders.",
                code="no_station",
            )
        stations[station.pk] = station
        by_station.setdefault(station.pk, []).append(item)

    fired_at = timezone.now()
    tickets = [
        Ticket(
            tenant_id=outlet.tenant_id,
            outlet_id=outlet.id,
            station=station,
            order_id=order_id,
            order_number=order["number"],
            type=order["type"],
            table=order["table"],
            customer_name=order["customer_name"],
            fired_at=fired_at,
        )
        for station in sorted(stations.values(), key=lambda s: (s.name, str(s.pk)))
    ]
    items_of = {
        ticket.pk: [
            TicketItem(
                tenant_id=outlet.tenant_id,
                ticket=ticket,
                order_item_id=item["id"],
                product_id=item["product_id"],
                name=item["name"],
                quantity=item["quantity"],
                modifiers=_kitchen_modifiers(item["modifiers"]),
                note=item["note"],
                position=position,
            )
            for position, item in enumerate(by_station[ticket.station_id])
        ]
        for ticket in tickets
    }
    # One INSERT for the tickets and one for all their items, whatever the number of stations.
    _TICKET_ROWS.insert_many(tickets)
    _TICKET_ITEM_ROWS.insert_many([item for ticket in tickets for item in items_of[ticket.pk]])
    return [
        _emit(selectors.ticket_as_written(ticket, items_of[ticket.pk]), "ticket.created",
              outlet=outlet)
        for ticket in tickets
    ]


@outbox.atomic(savepoint=False)  # as tickets_fire: part of the cancellation
def tickets_void_for_order(*, order_id: uuid.UUID) -> list[TicketChange]:
    """Void the order's open tickets (and their items); emit ``ticket.voided`` for each.

    Call inside the transaction that cancels the order. Done tickets stay done: that food was
    cooked, and the prep metrics count it.
    """
    ids = list(
        Ticket.objects.select_for_update(no_key=True)
        .filter(order_id=order_id, status=TicketStatus.OPEN)
        .order_by("fired_at", "id")
        .values_list("id", flat=True)
    )
    if not ids:
        return []
    TicketItem.objects.filter(ticket_id__in=ids).update(status=TicketItemStatus.VOIDED)
    Ticket.objects.filter(pk__in=ids).update(status=TicketStatus.VOIDED, updated_at=timezone.now())
    return [_emit_ticket(pk, "ticket.voided") for pk in ids]


def tickets_on_order_status_changed(event: StreamEvent) -> None:
    """Reaction to ``order.status_changed`` (registered in ``KdsConfig.ready``): confirmed
    fires the tickets, cancelled voids the open ones. Runs inside the order's transaction."""
    order_id = event.order_id or event.data.get("id")
    to_status = event.data.get("to")
    if order_id is None:
        return
    if to_status == OrderStatus.CONFIRMED:
        tickets_fire(order_id=order_id)
    elif to_status == OrderStatus.CANCELLED:
        tickets_void_for_order(order_id=order_id)


# --- kitchen actions ------------------------------------------------------------------------
def _lock_ticket(ticket_id: uuid.UUID) -> tuple[Order, Ticket]:
    """Lock the ticket's order, then the ticket (the lock order of the module docstring)."""
    order_id = Ticket.objects.filter(pk=ticket_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFoundError("No such ticket.")
    order = Order.objects.select_for_update(no_key=True).get(pk=order_id)
    ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)
    return order, ticket


def _order_to(order: Order, to_status: str, actor: User | None) -> None:
    order_transition(order_id=order.pk, to_status=to_status, actor=actor, system=True)
    order.status = to_status


def _start_order(order: Order, actor: User | None) -> None:
    """The first item started (or a ticket bumped straight away) makes the order preparing."""
    if order.status == OrderStatus.CONFIRMED:
        _order_to(order, OrderStatus.PREPARING, actor)


@outbox.atomic
def ticket_item_set_status(
    *, item_id: uuid.UUID, status: str, actor: User | None = None
) -> TicketChange:
    """Move an item on: queued -> cooking -> done (queued -> done strikes it at once).

    Only on an open ticket; anything else is 409 ``invalid_transition`` and changes nothing.
    Emits ``ticket.updated``; the first item started moves a confirmed order to preparing.
    Precondition: the caller may act on the item's ticket.
    """
    ticket_id = TicketItem.objects.filter(pk=item_id).values_list("ticket_id", flat=True).first()
    if ticket_id is None:
        raise NotFoundError("No such ticket item.")
    order, ticket = _lock_ticket(ticket_id)
    item = TicketItem.objects.select_for_update(no_key=True).get(pk=item_id)
    allowed = {
        TicketItemStatus.QUEUED: {TicketItemStatus.COOKING, TicketItemStatus.DONE},
        TicketItemStatus.COOKING: {TicketItemStatus.DONE},
    }
    if ticket.status != TicketStatus.OPEN:
        raise InvalidTransition(f"The ticket is {ticket.status}; its items can no longer change.")
    if status not in allowed.get(item.status, set()):
        raise InvalidTransition(f"An item cannot go from {item.status} to {status}.")
    item.status = status
    item.save(update_fields=["status"])
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now())
    change = _emit_ticket(ticket.pk, "ticket.updated")
    _start_order(order, actor)
    return change


@outbox.atomic
def ticket_bump(*, ticket_id: uuid.UUID, actor: User | None = None) -> TicketChange:
    """Bump an open ticket: its items done, ``bumped_at`` now, status done; emit
    ``ticket.bumped``. When every ticket of the order is done, the order becomes ready.

    409 ``invalid_transition`` (nothing changes) unless the ticket is open. Precondition: the
    caller may act on the ticket.
    """
    order, ticket = _lock_ticket(ticket_id)
    if ticket.status != TicketStatus.OPEN:
        raise InvalidTransition(f"The ticket is {ticket.status}; only an open ticket is bumped.")
    TicketItem.objects.filter(ticket=ticket).exclude(status=TicketItemStatus.VOIDED).update(
        status=TicketItemStatus.DONE
    )
    ticket.status, ticket.bumped_at = TicketStatus.DONE, timezone.now()
    ticket.save(update_fields=["status", "bumped_at", "updated_at"])
    change = _emit_ticket(ticket.pk, "ticket.bumped")
    _start_order(order, actor)
    still_open = Ticket.objects.filter(order=order, status=TicketStatus.OPEN).exists()
    if not still_open and order.status == OrderStatus.PREPARING:
        _order_to(order, OrderStatus.READY, actor)
    return change


# Orders past these have left the kitchen: their tickets stay done.
_RECALLABLE_ORDER_STATUSES = frozenset(
    {OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY}
)


@outbox.atomic
def ticket_recall(*, ticket_id: uuid.UUID, actor: User | None = None) -> TicketChange:
    """Reopen the last bumped ticket of its station: status open, ``bumped_at`` cleared, its
    done items back to cooking; emit ``ticket.recalled``. A ready order goes back to preparing.

    409 ``invalid_transition`` (nothing changes) when the ticket is not done, is not the
    station's most recently bumped one, or its order was already served, completed or
    cancelled. Recalling again then reaches the ticket bumped before it. Precondition: the
    caller may act on the ticket.
    """
    order, ticket = _lock_ticket(ticket_id)
    if ticket.status != TicketStatus.DONE:
        raise InvalidTransition(f"The ticket is {ticket.status}; only a bumped one is recalled.")
    if selectors.last_bumped_ticket_id(ticket.station_id) != ticket.pk:
        raise InvalidTransition("Only the last ticket bumped at its station can be recalled.")
    if order.status not in _RECALLABLE_ORDER_STATUSES:
        raise InvalidTransition(f"The order is {order.status}; its tickets cannot be recalled.")
    TicketItem.objects.filter(ticket=ticket, status=TicketItemStatus.DONE).update(
        status=TicketItemStatus.COOKING
    )
    ticket.status, ticket.bumped_at = TicketStatus.OPEN, None
    ticket.save(update_fields=["status", "bumped_at", "updated_at"])
    change = _emit_ticket(ticket.pk, "ticket.recalled")
    audit_record(
        actor=actor, action="ticket.recalled", target_type="ticket", target_id=ticket.pk,
        tenant_id=ticket.tenant_id, outlet_id=ticket.outlet_id,
        details={"order": order.pk, "order_number": order.number,
                 "station": ticket.station_id, "order_status": order.status},
    )
    if order.status == OrderStatus.READY:
        _order_to(order, OrderStatus.PREPARING, actor)
    return change


@outbox.atomic
def station_recall_last(*, station_id: uuid.UUID, actor: User | None = None) -> TicketChange:
    """Recall the station's most recently bumped ticket (409 ``nothing_to_recall`` if none).
    Precondition: the caller may act on the station's tickets."""
    ticket_id = selectors.last_bumped_ticket_id(station_id)
    if ticket_id is None:
        raise Conflict("This station has no bumped ticket to recall.", code="nothing_to_recall")
    return ticket_recall(ticket_id=ticket_id, actor=actor)


@outbox.atomic
def ticket_set_priority(*, ticket_id: uuid.UUID, priority: str) -> TicketChange:
    """Set an open ticket's priority (``normal`` or ``rush``); emit ``ticket.updated``.

    The same priority again changes nothing and emits nothing. A ticket that is not open
    answers 409 ``invalid_transition``. Precondition: the caller may act on the ticket.
    """
    if priority not in TicketPriority.values:
        raise DomainValidationError(details={"priority": [f"Unknown priority {priority!r}."]})
    ticket = Ticket.objects.select_for_update(no_key=True).filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFoundError("No such ticket.")
    if ticket.status != TicketStatus.OPEN:
        raise InvalidTransition(f"The ticket is {ticket.status}; its priority is settled.")
    if ticket.priority == priority:
        return TicketChange(ticket=selectors.ticket_for_output(ticket.pk), event=None)
    ticket.priority = priority
    ticket.save(update_fields=["priority", "updated_at"])
    return _emit_ticket(ticket.pk, "ticket.updated")
