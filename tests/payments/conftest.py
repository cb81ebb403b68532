"""Orders to pay, request helpers and event readers for payment tests.

The outlets of ``world`` get zero tax and service rates here, so an order of one 100000.00
product totals exactly 100000.00 and the payment arithmetic in the tests reads plainly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from django.conf import settings

from orders.models import Order
from pos.models import StreamEvent
from tenants.models import Outlet
from tests import factories

TOTAL = Decimal("100000.00")


@pytest.fixture
def plain_world(world):
    Outlet.objects.filter(tenant__in=[world.tenant, world.other_tenant]).update(
        tax_rate=Decimal("0"), service_charge_rate=Decimal("0")
    )
    for outlet in (world.outlet, world.outlet2, world.other_outlet):
        outlet.refresh_from_db()
    return world


def make_order(outlet, total: Decimal = TOTAL, *, status: str = "pending") -> Order:
    """An order of ``outlet`` (zero rates) whose total is ``total``."""
    from orders.services import order_create, order_transition

    product = factories.make_product(outlet.tenant, price=total)
    order = order_create(
        actor=None, outlet=outlet, type="takeaway",
        items=[{"product": product.id, "quantity": 1, "modifiers": [], "note": ""}],
    )
    if status == "cancelled":
        order = order_transition(order_id=order.id, to_status="cancelled", system=True)
    assert order.total == total
    return order


@pytest.fixture
def order(plain_world) -> Order:
    return make_order(plain_world.outlet)


@pytest.fixture
def other_order(plain_world) -> Order:
    return make_order(plain_world.other_outlet)


def pay_body(order, method: str, amount, **extra) -> dict:
    body = {"order": str(order.id), "method": method, "amount": str(amount)}
    body.update({k: str(v) for k, v in extra.items()})
    return body


def events(outlet, prefix: str = "") -> list[StreamEvent]:
    return [
        e for e in StreamEvent.objects.filter(outlet_id=outlet.id).order_by("seq")
        if e.name.startswith(prefix)
    ]


def event_names(outlet, prefix: str = "payment.") -> list[str]:
    return [e.name for e in events(outlet, prefix)]


def sandbox_webhook(payment_id, status: str = "succeeded", amount="100000.00",
                    event_id: str = "evt-1", secret: str | None = None) -> tuple[bytes, str]:
    """A sandbox webhook body and its signature, built independently of the adapter."""
    body = json.dumps(
        {"event_id": event_id, "payment": str(payment_id), "status": status,
         "amount": str(amount)}
    ).encode()
    key = (secret or settings.PAYMENTS_SANDBOX_SECRET).encode()
    return body, hmac.new(key, body, hashlib.sha256).hexdigest()


def post_webhook(client, body: bytes, signature: str | None, provider: str = "sandbox"):
    headers = {"HTTP_X_SIGNATURE": signature} if signature is not None else {}
    return client.post(
        f"/api/payments/webhook/{provider}/", data=body, content_type="application/json",
        **headers,
    )
