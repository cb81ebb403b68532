"""A kitchen for kitchen tests: a category tree, a menu, routed stations, order helpers.

Outlet ``world.outlet``::

    Food            -> (no station: default)      Drinks  -> Bar
      Mains         -> Grill                         Hot  -> (nearest ancestor: Bar)
        Steaks      -> (nearest ancestor: Grill)
    "Chef special" (in Steaks) is listed by Bar itself: product beats category.

Outlet ``world.outlet2`` has one default prep station, "Line", and no routing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from kds import services
from kds.models import Station, Ticket
from pos.models import StreamEvent
from tests import factories


@dataclass
class Kitchen:
    food: object
    mains: object
    steaks: object
    drinks: object
    hot: object
    salad: object  # Food -> default (Kitchen)
    burger: object  # Mains -> Grill
    steak: object  # Steaks -> Grill (ancestor)
    special: object  # Steaks, but listed by Bar
    cola: object  # Drinks -> Bar
    coffee: object  # Hot -> Bar (ancestor)
    kitchen: Station  # default prep of outlet
    grill: Station
    bar: Station
    expo: Station
    line: Station  # default prep of outlet2


@pytest.fixture
def kitchen(world) -> Kitchen:
    t = world.tenant
    food = factories.make_category(t, name="Food")
    mains = factories.make_category(t, parent=food, name="Mains")
    steaks = factories.make_category(t, parent=mains, name="Steaks")
    drinks = factories.make_category(t, name="Drinks")
    hot = factories.make_category(t, parent=drinks, name="Hot")
    salad = factories.make_product(t, food, name="Salad")
    burger = factories.make_product(t, mains, name="Burger")
    steak = factories.make_product(t, steaks, name="Steak", price=Decimal("90000.00"))
    special = factories.make_product(t, steaks, name="Chef special")
    cola = factories.make_product(t, drinks, name="Cola", price=Decimal("10000.00"))
    coffee = factories.make_product(t, hot, name="Coffee", price=Decimal("15000.00"))
    kitchen_station = services.station_create(outlet=world.outlet, name="Kitchen",
                                              is_default=True)
    grill = services.station_create(outlet=world.outlet, name="Grill", category_ids=[mains.pk])
    bar = services.station_create(
        outlet=world.outlet, name="Bar", category_ids=[drinks.pk], product_ids=[special.pk]
    )
    expo = services.station_create(outlet=world.outlet, name="Expo", kind="expo")
    line = services.station_create(outlet=world.outlet2, name="Line")
    return Kitchen(food, mains, steaks, drinks, hot, salad, burger, steak, special, cola,
                   coffee, kitchen_station, grill, bar, expo, line)


def line(product, quantity: int = 1, note: str = "") -> dict:
    return {"product": str(product.pk), "quantity": quantity, "modifiers": [], "note": note}


def make_order(outlet, *lines, table: str = "7", customer_name: str = ""):
    from orders.services import order_create

    return order_create(actor=None, outlet=outlet, type="dine_in", items=list(lines),
                        table=table, customer_name=customer_name)


def confirm(order, actor=None):
    from orders.services import order_transition

    return order_transition(order_id=order.pk, to_status="confirmed", actor=actor,
                            system=actor is None)


def transition(order, to_status: str, actor=None):
    from orders.services import order_transition

    return order_transition(order_id=order.pk, to_status=to_status, actor=actor,
                            system=actor is None)


def fired(outlet, *lines, **kw):
    """A confirmed order and its tickets by station name."""
    order = make_order(outlet, *lines, **kw)
    confirm(order)
    tickets = {t.station.name: t for t in Ticket.objects.filter(order=order)
               .select_related("station")}
    return order, tickets


def events(outlet, prefix: str = "") -> list[StreamEvent]:
    return list(
        StreamEvent.objects.filter(outlet_id=outlet.pk, name__startswith=prefix).order_by("seq")
    )


def state(ticket) -> tuple:
    """Everything a refused action must leave alone: the ticket, its items, its order, the log."""
    ticket = Ticket.objects.select_related("order").get(pk=ticket.pk)
    items = tuple(ticket.items.order_by("position").values_list("status", flat=True))
    return (
        ticket.status, ticket.priority, ticket.bumped_at, items,
        ticket.order.status, ticket.order.version,
        StreamEvent.objects.filter(outlet_id=ticket.outlet_id).count(),
    )
