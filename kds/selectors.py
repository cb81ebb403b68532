"""Kitchen reads, scoped to the outlets the caller may see, shaped for the kitchen serializers.

Functions taking a ``user`` scope by it (another tenant's row is simply absent, so lookups
answer 404 as for a missing one). Functions taking only an ``outlet_id`` serve callers that
already checked access (the kitchen socket after ``kitchen_socket_access``, services).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet, Sum
from django.utils import timezone

from catalog.models import Product
from kds.models import (
    Station,
    StationKind,
    Ticket,
    TicketItem,
    TicketItemStatus,
    TicketStatus,
)
from kds.routing_rules import RoutingTable
from kds.serializers import TicketSerializer
from pos.api_errors import DomainValidationError
from pos.ids import parse_uuid
from pos.prefetch import set_prefetched
from pos.streams.consumers import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND
from tenants.models import Outlet, User
from tenants.selectors import outlet_for_user, outlet_in_user_tenant, outlets_visible_to

OPEN_ITEM_STATUSES = (TicketItemStatus.QUEUED, TicketItemStatus.COOKING)


# --- stations -------------------------------------------------------------------------------
def _shaped_stations(qs: QuerySet[Station]) -> QuerySet[Station]:
    return qs.prefetch_related("categories", "products")


def stations_visible_to(user: User) -> QuerySet[Station]:
    """Stations of the outlets ``user`` works at (every outlet of the tenant for an owner)."""
    return _shaped_stations(Station.objects.filter(outlet__in=outlets_visible_to(user)))


def station_for_user(user: User, station_id: Any) -> Station | None:
    pk = parse_uuid(station_id)
    if pk is None:
        return None
    return stations_visible_to(user).filter(pk=pk).first()


def station_with_routing(station_id: uuid.UUID) -> Station:
    """One station with what ``StationSerializer`` reads. Precondition: access was checked."""
    return _shaped_stations(Station.objects.select_related("outlet")).get(pk=station_id)


def stations_of_outlet(outlet_id: uuid.UUID | str) -> list[Station]:
    return list(Station.objects.filter(outlet_id=outlet_id).order_by("name", "id"))


def route_preview(outlet: Outlet, product_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Where each product would be cooked at ``outlet`` and which rule decided it.

    Products must be the outlet's tenant's: others (and unknown ids) raise a 400 with the
    per-item layout ``{"items": [{"product": [...]}, {}, ...]}``.
    """
    products = {
        p.pk: p
        for p in Product.objects.filter(tenant_id=outlet.tenant_id, pk__in=set(product_ids))
    }
    errors = [{} if pk in products else {"product": ["Unknown product."]} for pk in product_ids]
    if any(errors):
        raise DomainValidationError("Invalid input: unknown product.", details={"items": errors})
    routing = RoutingTable.for_outlet(outlet)
    rows = []
    for pk in product_ids:
        route = routing.route(pk, products[pk].category_id)
        rows.append(
            {
                "product": str(pk),
                "station": str(route.station.pk) if route.station else None,
                "station_name": route.station.name if route.station else None,
                "rule": route.rule.value,
            }
        )
    return rows


# --- tickets --------------------------------------------------------------------------------
TICKET_ITEM_ORDER = ("position", "id")


def _shaped_tickets(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """What ``TicketSerializer`` and the event path read, in two queries whatever the count."""
    return qs.select_related("outlet").prefetch_related(
        Prefetch("items", queryset=TicketItem.objects.order_by(*TICKET_ITEM_ORDER))
    )


def tickets_visible_to(
    user: User,
    *,
    outlet_id: uuid.UUID | None = None,
    station_id: uuid.UUID | None = None,
    status: str | None = None,
) -> QuerySet[Ticket]:
    """Tickets of the outlets ``user`` works at, oldest fired first, optionally filtered."""
    qs = Ticket.objects.filter(outlet__in=outlets_visible_to(user))
    if outlet_id is not None:
        qs = qs.filter(outlet_id=outlet_id)
    if station_id is not None:
        qs = qs.filter(station_id=station_id)
    if status is not None:
        qs = qs.filter(status=status)
    return _shaped_tickets(qs).order_by("fired_at", "id")


def ticket_for_user(user: User, ticket_id: Any) -> Ticket | None:
    pk = parse_uuid(ticket_id)
    if pk is None:
        return None
    return tickets_visible_to(user).filter(pk=pk).first()


def ticket_item_for_user(user: User, item_id: Any) -> TicketItem | None:
    pk = parse_uuid(item_id)
    if pk is None:
        return None
    return (
        TicketItem.objects.filter(pk=pk, ticket__outlet__in=outlets_visible_to(user))
        .select_related("ticket")
        .first()
    )


def ticket_for_output(ticket_id: uuid.UUID) -> Ticket:
    """A ticket as its serializer renders it (fresh items). Precondition: access was checked."""
    return _shaped_tickets(Ticket.objects.all()).get(pk=ticket_id)


def ticket_as_written(ticket: Ticket, items: list[TicketItem]) -> Ticket:
    """``ticket``, just inserted, shaped for ``TicketSerializer`` from what was written.

    ``items`` are all of its items, as inserted: they become the ticket's ``items`` as
    ``_shaped_tickets`` prefetches them, so the serializer reads no row. Firing renders every
    new ticket this way: reading it back cost two queries per ticket and rebuilt the very
    objects it had just saved. After an update, use ``ticket_for_output``.
    """
    set_prefetched(ticket, "items", items, ordering=TICKET_ITEM_ORDER)
    return ticket


def open_tickets(outlet_id: uuid.UUID | str, station_id: uuid.UUID | str | None = None
                 ) -> QuerySet[Ticket]:
    """Open tickets of an outlet (of one station if given), oldest fired first."""
    qs = Ticket.objects.filter(outlet_id=outlet_id, status=TicketStatus.OPEN)
    if station_id is not None:
        qs = qs.filter(station_id=station_id)
    return _shaped_tickets(qs).order_by("fired_at", "id")


def last_bumped_ticket_id(station_id: uuid.UUID) -> uuid.UUID | None:
    """The ticket a recall at this station reopens: the most recently bumped done one."""
    return (
        Ticket.objects.filter(station_id=station_id, status=TicketStatus.DONE)
        .order_by("-bumped_at", "-id")
        .values_list("id", flat=True)
        .first()
    )


# --- all-day --------------------------------------------------------------------------------
def all_day(outlet_id: uuid.UUID | str, station_id: uuid.UUID | str | None = None
            ) -> list[dict[str, Any]]:
    """Quantities still to cook, per product: items queued or cooking on open tickets.

    Rows are ``{"product", "name", "quantity"}``, largest quantity first. Items whose product
    was deleted since (``product`` null) are grouped by their name.
    """
    qs = TicketItem.objects.filter(
        ticket__outlet_id=outlet_id,
        ticket__status=TicketStatus.OPEN,
        status__in=OPEN_ITEM_STATUSES,
    )
    if station_id is not None:
        qs = qs.filter(ticket__station_id=station_id)
    rows = (
        qs.values("product_id", "name")
        .annotate(quantity=Sum("quantity"))
        .order_by("-quantity", "name", "product_id")
    )
    # Two snapshots of one product may differ in name (renamed between orders): one row each
    # would split the count, so merge by product, keeping the name of its largest group.
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        key = row["product_id"] or ("name", row["name"])
        entry = merged.get(key)
        if entry is None:
            merged[key] = {
                "product": str(row["product_id"]) if row["product_id"] else None,
                "name": row["name"],
                "quantity": row["quantity"],
            }
        else:
            entry["quantity"] += row["quantity"]
    return sorted(merged.values(), key=lambda r: (-r["quantity"], r["name"]))


# --- the kitchen socket ---------------------------------------------------------------------
@dataclass(frozen=True)
class KitchenAccess:
    outlet: Outlet | None = None
    station_id: uuid.UUID | None = None
    close_code: int | None = None


def kitchen_socket_access(user: User, outlet_id: Any, station_id: Any) -> KitchenAccess:
    """Whether ``user`` may follow the outlet's kitchen stream (optionally one station's).

    4404: unknown outlet, another tenant's, or a station that is not this outlet's;
    4403: an outlet of the user's tenant the user does not work at.
    """
    outlet = outlet_in_user_tenant(user, outlet_id)
    if outlet is None:
        return KitchenAccess(close_code=CLOSE_NOT_FOUND)
    if outlet_for_user(user, outlet.pk) is None:
        return KitchenAccess(close_code=CLOSE_FORBIDDEN)
    station_pk = None
    if station_id not in (None, ""):
        station_pk = parse_uuid(station_id)
        if station_pk is None or not Station.objects.filter(pk=station_pk, outlet=outlet).exists():
            return KitchenAccess(close_code=CLOSE_NOT_FOUND)
    return KitchenAccess(outlet=outlet, station_id=station_pk)


def kitchen_snapshot(outlet_id: uuid.UUID | str, station_id: uuid.UUID | str | None
                     ) -> dict[str, Any]:
    """The state a kitchen screen starts from (see docs/kitchen-protocol.md).

    Precondition: the caller checked access (``kitchen_socket_access``). Call inside the
    snapshot transaction so the state matches the seq read with it.
    """
    outlet = Outlet.objects.get(pk=outlet_id)
    stations = stations_of_outlet(outlet.pk)
    return {
        "tickets": TicketSerializer(open_tickets(outlet.pk, station_id), many=True).data,
        "all_day": all_day(outlet.pk, station_id),
        "thresholds": {
            "warn_after_s": outlet.kds_warn_after_s,
            "late_after_s": outlet.kds_late_after_s,
        },
        "station": str(station_id) if station_id else None,
        "stations": [
            {"id": str(s.pk), "name": s.name, "kind": s.kind, "is_default": s.is_default}
            for s in stations
        ],
    }


# --- metrics --------------------------------------------------------------------------------
def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL ``percentile_cont``).

    ``sorted_values`` ascending; ``fraction`` in [0, 1]. None for no values.
    """
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(sorted_values[low])
    weight = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * weight


def outlet_zone(outlet: Outlet) -> zoneinfo.ZoneInfo | dt.tzinfo:
    """The outlet's time zone; UTC if its name is not a known zone (never fail a report)."""
    try:
        return zoneinfo.ZoneInfo(outlet.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def local_day_bounds(outlet: Outlet, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of ``day`` in the outlet's time zone, as aware datetimes."""
    tz = outlet_zone(outlet)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def kitchen_metrics(outlet: Outlet, day: dt.date) -> dict[str, Any]:
    """Per prep station, the tickets fired on ``day`` (outlet time), voided ones left out.

    ``tickets``: fired that day; ``bumped``: of those, done; ``p50_prep_s``/``p90_prep_s``:
    percentiles of ``bumped_at - fired_at`` over the done ones; ``late``: done ones whose prep
    took strictly longer than the outlet's ``kds_late_after_s``.
    """
    start, end = local_day_bounds(outlet, day)
    rows = (
        Ticket.objects.filter(outlet=outlet, fired_at__gte=start, fired_at__lt=end)
        .exclude(status=TicketStatus.VOIDED)
        .values_list("station_id", "status", "fired_at", "bumped_at")
    )
    counts: dict[uuid.UUID, int] = {}
    durations: dict[uuid.UUID, list[float]] = {}
    for station_id, status, fired_at, bumped_at in rows:
        counts[station_id] = counts.get(station_id, 0) + 1
        if status == TicketStatus.DONE:
            durations.setdefault(station_id, []).append((bumped_at - fired_at).total_seconds())
    stations = [
        s for s in stations_of_outlet(outlet.pk) if s.kind == StationKind.PREP or s.pk in counts
    ]
    late_after = outlet.kds_late_after_s
    result = []
    for station in stations:
        values = sorted(durations.get(station.pk, []))
        p50, p90 = percentile(values, 0.5), percentile(values, 0.9)
        result.append(
            {
                "station": str(station.pk),
                "name": station.name,
                "tickets": counts.get(station.pk, 0),
                "bumped": len(values),
                "p50_prep_s": round(p50, 3) if p50 is not None else None,
                "p90_prep_s": round(p90, 3) if p90 is not None else None,
                "late": sum(1 for v in values if v > late_after),
            }
        )
    return {
        "outlet": str(outlet.pk),
        "date": day.isoformat(),
        "timezone": str(outlet_zone(outlet)),
        "late_after_s": late_after,
        "stations": result,
    }


def outlet_today(outlet: Outlet) -> dt.date:
    """Today's date in the outlet's time zone."""
    return timezone.now().astimezone(outlet_zone(outlet)).date()
