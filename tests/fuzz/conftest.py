"""Data for the bad-input tests: the demo restaurant with orders, tickets and payments in every
state, a second tenant with the same, and a fingerprint of the tables bad input must not touch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from catalog.models import Category, ModifierGroup, Product
from kds import services as kds_services
from kds.models import Station, Ticket, TicketItem
from orders.models import Order, OrderItem
from orders.services import order_create, order_transition
from payments import services as payment_services
from payments.models import Payment, Refund, WebhookEvent
from pos.models import IdempotencyRecord, StreamCursor, StreamEvent
from pos.streams import publisher
from tenants.models import Outlet, Role, Tenant, User
from tests import factories


@dataclass
class Seeded:
    tenant: Tenant
    outlet: Outlet
    users: dict[str, User]  # role -> user of the demo tenant
    orders: list[Order]
    payments: dict[str, Payment]  # "cash", "qris" (pending), "other" (another tenant's)
    other_outlet: Outlet
    other_owner: User
    ids: dict[str, list[str]] = field(default_factory=dict)  # path resource -> real ids


def _lines(products, count: int) -> list[dict]:
    return [{"product": p.pk, "quantity": 1 + i % 3, "modifiers": [], "note": ""}
            for i, p in enumerate(products[:count])]


def _plain_products(tenant) -> list[Product]:
    """Products an order may take without choosing modifiers."""
    return [p for p in Product.objects.filter(tenant=tenant, is_available=True)
            .prefetch_related("modifier_groups").order_by("sku")
            if all(g.min_select == 0 for g in p.modifier_groups.all())
            and (not p.track_stock or p.stock_quantity >= 50)]


def _orders(outlet, products, actor) -> list[Order]:
    orders = []
    for step in ("pending", "confirmed", "preparing", "cancelled", "draft", "confirmed"):
        order = order_create(actor=None, outlet=outlet, type="dine_in", table="5",
                             items=_lines(products, 3),
                             status="draft" if step == "draft" else "pending")
        if step in ("confirmed", "preparing", "cancelled"):
            order = order_transition(order_id=order.pk, to_status="confirmed", system=True)
        if step in ("preparing", "cancelled"):
            order = order_transition(order_id=order.pk, to_status=step, actor=actor)
        orders.append(order)
    return orders


@pytest.fixture
def seeded(transactional_db, settings) -> Seeded:
    settings.PAYMENTS_DEFAULT_PROVIDER = "sandbox"
    call_command("seed_demo", stdout=StringIO())
    tenant = Tenant.objects.get(users__username="demo-owner")
    outlet = Outlet.objects.filter(tenant=tenant).order_by("name").first()
    users = {role: User.objects.get(tenant=tenant, role=role)
             for role in (Role.OWNER, Role.MANAGER, Role.CASHIER, Role.KITCHEN)}
    products = _plain_products(tenant)
    assert len(products) >= 3, "the demo menu needs products without required modifiers"
    orders = _orders(outlet, products, users[Role.MANAGER])
    cashier = users[Role.CASHIER]
    cash = payment_services.payment_create(actor=cashier, order_id=orders[1].pk, method="cash",
                                           amount=Decimal("1000.00"),
                                           tendered=Decimal("5000.00"))
    qris = payment_services.payment_create(actor=cashier, order_id=orders[0].pk, method="qris",
                                           amount=Decimal("2000.00"))

    other_tenant = factories.make_tenant()
    other_outlet = factories.make_outlet(other_tenant)
    other_owner = factories.make_user(Role.OWNER, other_tenant)
    other_category = factories.make_category(other_tenant)
    other_products = [factories.make_product(other_tenant, other_category) for _ in range(3)]
    factories.make_modifier_group(other_tenant)
    kds_services.station_create(outlet=other_outlet, name="Kitchen", is_default=True)
    other_orders = _orders(other_outlet, other_products, other_owner)
    other_payment = payment_services.payment_create(
        actor=other_owner, order_id=other_orders[1].pk, method="cash",
        amount=Decimal("1000.00"), tendered=Decimal("1000.00"),
    )

    seeded = Seeded(tenant=tenant, outlet=outlet, users=users, orders=orders,
                    payments={"cash": cash, "qris": qris, "other": other_payment},
                    other_outlet=other_outlet, other_owner=other_owner)

    def ids(model, **filters) -> list[str]:
        return [str(pk) for pk in model.objects.filter(**filters).values_list("pk", flat=True)]

    both = {"tenant__in": [tenant, other_tenant]}
    seeded.ids = {
        "tenants": [str(tenant.pk), str(other_tenant.pk)],
        "outlets": ids(Outlet, **both),
        "users": ids(User, **both),
        "categories": ids(Category, **both),
        "products": ids(Product, **both),
        "modifier-groups": ids(ModifierGroup, **both),
        "stations": ids(Station, **both),
        "orders": ids(Order, **both),
        "payments": ids(Payment, **both),
        "kds/tickets": ids(Ticket, **both),
        "kds/ticket-items": ids(TicketItem, **both),
        "kds/stations": ids(Station, **both),
    }
    return seeded


#: Tables whose rows a refused request must leave exactly as they were.
WATCHED = (Order, OrderItem, Ticket, TicketItem, Payment, Refund, WebhookEvent, StreamEvent,
           StreamCursor, IdempotencyRecord, Product, Station)


def fingerprint(models=WATCHED) -> dict[str, list[tuple]]:
    """Every row of the watched tables, as tuples of all concrete fields, in pk order.

    The published marks of events this process committed earlier (the seed's) are written
    first: the marker thread writes them a moment after their commit, and a mark landing
    between two fingerprints is not a change a request made. A request that emitted an event
    still shows: its row is new."""
    publisher.flush_marks()
    result = {}
    for model in models:
        names = [f.attname for f in model._meta.concrete_fields]
        result[model._meta.label] = list(model.objects.order_by("pk").values_list(*names))
    return result
