"""A small menu for order tests, and helpers to build request bodies."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import pytest

from pos.models import StreamEvent
from pos.streams import outbox
from tests import factories


@pytest.fixture(autouse=True)
def _orders_alone(monkeypatch):
    """Test orders on their own: no reactions other apps registered (the kitchen fires tickets
    on confirmation and refuses an outlet without a prep station; its tests cover that)."""
    monkeypatch.setattr(outbox, "_reactions", defaultdict(list))


@dataclass
class Menu:
    burger: object  # 25000.00, a required "size" group (min 1, max 1) and optional extras
    fries: object  # 12000.00, tracks stock (10 left)
    tea: object  # 8000.00, no modifiers
    size: object
    extras: object
    small: object  # size option, +0.00
    large: object  # size option, +5000.00
    cheese: object  # extras option, +4000.00
    bacon: object  # extras option, +6000.00
    egg: object  # extras option, +3000.00


@pytest.fixture
def menu(world) -> Menu:
    t = world.tenant
    size = factories.make_modifier_group(
        t, options=(("Small", "0.00"), ("Large", "5000.00")), min_select=1, max_select=1
    )
    extras = factories.make_modifier_group(
        t,
        options=(("Cheese", "4000.00"), ("Bacon", "6000.00"), ("Egg", "3000.00")),
        min_select=0,
        max_select=2,
    )
    burger = factories.make_product(t, name="Burger", price=Decimal("25000.00"))
    burger.modifier_groups.set([size, extras])
    fries = factories.make_product(
        t, name="Fries", price=Decimal("12000.00"), track_stock=True, stock_quantity=10
    )
    tea = factories.make_product(t, name="Tea", price=Decimal("8000.00"))
    opts = {o.name: o for g in (size, extras) for o in g.options.all()}
    return Menu(
        burger=burger, fries=fries, tea=tea, size=size, extras=extras,
        small=opts["Small"], large=opts["Large"], cheese=opts["Cheese"],
        bacon=opts["Bacon"], egg=opts["Egg"],
    )


def item(product, quantity: int = 1, modifiers=(), note: str = "") -> dict:
    return {
        "product": str(product.id),
        "quantity": quantity,
        "modifiers": [str(m.id) for m in modifiers],
        "note": note,
    }


def order_body(outlet, items, **extra) -> dict:
    body = {"outlet": str(outlet.id), "type": "dine_in", "table": "7", "items": items}
    body.update(extra)
    return body


def events(outlet, name: str | None = None) -> list[StreamEvent]:
    qs = StreamEvent.objects.filter(outlet_id=outlet.id).order_by("seq")
    if name is not None:
        qs = qs.filter(name=name)
    return list(qs)


# The path the machine walks from pending to each status (system path: no role checks).
_PATH = ["confirmed", "preparing", "ready", "served", "completed"]


def make_order(outlet, items, *, status: str = "pending", actor=None):
    """An order created through the service and walked to ``status``.

    ``items`` are ``item(...)`` dicts; ``status`` may be any status but ``cancelled`` reached
    from pending (use the service for other cancellations).
    """
    from orders.services import order_create, order_transition

    start = "draft" if status == "draft" else "pending"
    order = order_create(actor=actor, outlet=outlet, type="dine_in", items=items, status=start)
    if status in ("draft", "pending"):
        return order
    if status == "cancelled":
        return order_transition(order_id=order.id, to_status="cancelled", system=True)
    for step in _PATH[: _PATH.index(status) + 1]:
        order = order_transition(order_id=order.id, to_status=step, system=True)
    return order
