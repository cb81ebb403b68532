"""Where an item is cooked: the routing rules of one outlet, resolved in memory.

Precedence, per outlet:

1. a prep station listing the product;
2. a prep station listing the product's category, else the one listing its nearest ancestor;
3. the outlet's default prep station.

The database lets a product (and a category) be listed by at most one station per outlet, so
each step has at most one answer. An outlet without any prep station has nowhere to send food:
``route`` then answers ``None`` and firing refuses the confirmation (409 ``no_station``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from catalog.models import Category
from kds.models import Station, StationCategory, StationKind, StationProduct
from pos.rows import Table, fetchall, statement
from pos.streams.outbox import OutletLike


class RoutingRule(StrEnum):
    PRODUCT = "product"
    CATEGORY = "category"
    ANCESTOR = "ancestor"
    DEFAULT = "default"
    NONE = "none"  # the outlet has no prep station


@dataclass(frozen=True)
class Route:
    station: Station | None
    rule: RoutingRule


@dataclass(frozen=True)
class RoutingTable:
    """One outlet's routing, loaded with a fixed number of queries whatever the menu size."""

    stations: dict[uuid.UUID, Station]
    by_product: dict[uuid.UUID, uuid.UUID]
    by_category: dict[uuid.UUID, uuid.UUID]
    parent_of: dict[uuid.UUID, uuid.UUID | None]
    default_station_id: uuid.UUID | None

    @classmethod
    def for_outlet(cls, outlet: OutletLike) -> RoutingTable:
        """Load ``outlet``'s routing (any object with the outlet's ``id`` and ``tenant_id``)."""
        return cls._load(outlet, _prep_stations(outlet))

    @classmethod
    def _load(cls, outlet: OutletLike, stations: dict[uuid.UUID, Station]) -> RoutingTable:
        """The table over ``stations`` (the outlet's prep ones), reading only rules that can
        matter: without a prep station there are none to read, and without a category rule
        the category tree is never walked (the walk only looks for listed categories)."""
        if not stations:
            return cls(stations, {}, {}, {}, None)
        by_product = dict(
            StationProduct.objects.filter(
                outlet_id=outlet.id, station_id__in=stations
            ).values_list("product_id", "station_id")
        )
        by_category = dict(
            StationCategory.objects.filter(
                outlet_id=outlet.id, station_id__in=stations
            ).values_list("category_id", "station_id")
        )
        parent_of = (
            dict(
                Category.objects.filter(tenant_id=outlet.tenant_id).values_list("id", "parent_id")
            )
            if by_category
            else {}
        )
        default = next((s.id for s in stations.values() if s.is_default), None)
        return cls(stations, by_product, by_category, parent_of, default)

    def route(self, product_id: uuid.UUID | None, category_id: uuid.UUID | None) -> Route:
        """The station an item of ``product_id`` (in ``category_id``) goes to, and why."""
        if product_id is not None and product_id in self.by_product:
            return Route(self.stations[self.by_product[product_id]], RoutingRule.PRODUCT)
        node, seen, rule = category_id, set(), RoutingRule.CATEGORY
        while node is not None and node not in seen:  # `seen` guards a corrupted cyclic tree
            if node in self.by_category:
                return Route(self.stations[self.by_category[node]], rule)
            seen.add(node)
            node, rule = self.parent_of.get(node), RoutingRule.ANCESTOR
        if self.default_station_id is not None:
            return Route(self.stations[self.default_station_id], RoutingRule.DEFAULT)
        if self.stations:
            # Services keep a default while any prep station exists; if one was removed behind
            # their back (admin, raw SQL), the oldest prep station still gets the food.
            oldest = min(self.stations.values(), key=lambda s: (s.created_at, s.id))
            return Route(oldest, RoutingRule.DEFAULT)
        return Route(None, RoutingRule.NONE)


_STATION_ROWS = Table(Station, "s")


def _prep_stations(outlet: OutletLike) -> dict[uuid.UUID, Station]:
    """The outlet's prep stations by id, in the model's order (name, id). Every confirmation
    reads them: SQL built once (``pos.rows``)."""
    rows = _STATION_ROWS
    sql = statement("kds.prep_stations", lambda: (
        f"SELECT {rows.columns} FROM {rows.table} WHERE {rows.column('outlet')} = %s "  # noqa: S608
        f"AND {rows.column('kind')} = %s ORDER BY {rows.column('name')}, {rows.column('id')}"
    ))
    found = [rows.instance(row)
             for row in fetchall(sql, [rows.param("outlet", outlet.id), StationKind.PREP.value])]
    return {station.id: station for station in found}


def prep_stations_for(
    outlet: OutletLike, items: Sequence[tuple[uuid.UUID | None, uuid.UUID | None]]
) -> list[Station | None]:
    """The station each ``(product_id, category_id)`` of ``items`` is cooked at, as
    ``RoutingTable.route`` answers it (None: the outlet has no prep station).

    Firing needs the stations, not the rules that chose them. With one prep station every rule
    can only name that station (rules list prep stations only, and it is the default or the
    oldest), so its routing is not read: one query instead of four for the common kitchen.
    """
    stations = _prep_stations(outlet)
    if len(stations) <= 1:
        only = next(iter(stations.values()), None)
        return [only] * len(items)
    table = RoutingTable._load(outlet, stations)
    return [table.route(product_id, category_id).station for product_id, category_id in items]
