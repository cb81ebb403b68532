"""Refunds: partial and full, the order's payment status arithmetic, permissions, tenancy,
and ``Idempotency-Key``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import Order
from payments.models import Payment, Refund
from pos.models import StreamEvent
from tests.factories import client_for
from tests.payments.conftest import TOTAL, event_names, make_order, pay_body


@pytest.fixture
def paid(plain_world, order) -> Payment:
    body = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "card", TOTAL), format="json"
    ).json()
    return Payment.objects.get(pk=body["id"])


def _snapshot(payment) -> tuple:
    payment.refresh_from_db()
    order = Order.objects.get(pk=payment.order_id)
    return (payment.status, payment.refunded_amount, order.payment_status, order.paid_amount,
            order.refunded_amount, Refund.objects.count(), StreamEvent.objects.count())


def test_partial_then_full_refund(plain_world, paid):
    client = client_for(plain_world.manager)
    response = client.post(f"/api/payments/{paid.id}/refund/",
                           {"amount": "30000.00", "reason": "cold soup"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["reason"]) == ("30000.00", "cold soup")
    assert body["created_by"] == str(plain_world.manager.id)
    assert body["payment"]["status"] == "succeeded"
    assert body["payment"]["refunded_amount"] == "30000.00"
    assert body["payment"]["order_payment"]["payment_status"] == "partially_refunded"
    order = Order.objects.get(pk=paid.order_id)
    assert (order.payment_status, order.paid_amount, order.refunded_amount) == (
        "partially_refunded", TOTAL, Decimal("30000.00")
    )
    refunded_event = StreamEvent.objects.get(name="payment.refunded")
    assert refunded_event.data == body["payment"]

    # Without an amount: everything not refunded yet.
    rest = client.post(f"/api/payments/{paid.id}/refund/", {}, format="json")
    assert rest.status_code == 201
    assert rest.json()["amount"] == "70000.00"
    assert rest.json()["payment"]["status"] == "refunded"
    order.refresh_from_db()
    assert (order.payment_status, order.refunded_amount) == ("refunded", TOTAL)
    assert event_names(plain_world.outlet) == [
        "payment.created", "payment.succeeded", "payment.refunded", "payment.refunded",
    ]


def test_refund_above_what_is_left_is_400_and_changes_nothing(plain_world, paid):
    client = client_for(plain_world.owner)
    client.post(f"/api/payments/{paid.id}/refund/", {"amount": "90000.00"}, format="json")
    before = _snapshot(paid)
    for amount in ("10000.01", "0.00", "-1.00"):
        response = client.post(f"/api/payments/{paid.id}/refund/", {"amount": amount},
                               format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert "amount" in response.json()["error"]["details"]
    assert _snapshot(paid) == before


def test_only_succeeded_payments_can_be_refunded(plain_world, order):
    client = client_for(plain_world.cashier)
    pending = client.post("/api/payments/", pay_body(order, "qris", "10.00"),
                          format="json").json()
    card = client.post("/api/payments/", pay_body(order, "card", "20.00"), format="json").json()
    manager = client_for(plain_world.manager)
    manager.post(f"/api/payments/{card['id']}/refund/", {}, format="json")  # fully refunded
    for payment_id in (pending["id"], card["id"]):
        payment = Payment.objects.get(pk=payment_id)
        before = _snapshot(payment)
        response = manager.post(f"/api/payments/{payment_id}/refund/", {"amount": "1.00"},
                                format="json")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "invalid_transition"
        assert _snapshot(payment) == before


@pytest.mark.parametrize("role", ["owner", "manager", "super_admin"])
def test_managers_owners_and_admins_refund(plain_world, paid, role):
    response = client_for(plain_world.user(role)).post(
        f"/api/payments/{paid.id}/refund/", {"amount": "1.00"}, format="json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_cashier_and_kitchen_cannot_refund(plain_world, paid, role):
    before = _snapshot(paid)
    response = client_for(plain_world.user(role)).post(
        f"/api/payments/{paid.id}/refund/", {"amount": "1.00"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert _snapshot(paid) == before


def test_refund_of_a_payment_the_manager_cannot_see_is_404(plain_world, paid):
    before = _snapshot(paid)
    for user in (plain_world.manager2, plain_world.other_owner):
        response = client_for(user).post(f"/api/payments/{paid.id}/refund/",
                                         {"amount": "1.00"}, format="json")
        assert response.status_code == 404
    assert _snapshot(paid) == before


def test_refund_idempotency_key(plain_world, paid):
    client = client_for(plain_world.manager)
    first = client.post(f"/api/payments/{paid.id}/refund/", {"amount": "5000.00"},
                        format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    again = client.post(f"/api/payments/{paid.id}/refund/", {"amount": "5000.00"},
                        format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Refund.objects.count() == 1
    reused = client.post(f"/api/payments/{paid.id}/refund/", {"amount": "6000.00"},
                         format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert reused.status_code == 422
    paid.refresh_from_db()
    assert paid.refunded_amount == Decimal("5000.00")


def test_split_payments_and_refunds_add_up_on_the_order(plain_world):
    order = make_order(plain_world.outlet, Decimal("150000.00"))
    cashier, manager = client_for(plain_world.cashier), client_for(plain_world.manager)
    cash = cashier.post("/api/payments/", pay_body(order, "cash", "50000.00",
                                                   tendered="50000.00"), format="json").json()
    cashier.post("/api/payments/", pay_body(order, "card", "100000.00"), format="json")
    manager.post(f"/api/payments/{cash['id']}/refund/", {"amount": "20000.00"}, format="json")
    order.refresh_from_db()
    assert (order.paid_amount, order.refunded_amount, order.payment_status) == (
        Decimal("150000.00"), Decimal("20000.00"), "partially_refunded"
    )
    # Refunded money is owed again: the balance is total - (paid - refunded).
    over = cashier.post("/api/payments/", pay_body(order, "card", "20000.01"), format="json")
    assert over.status_code == 400
    assert cashier.post("/api/payments/", pay_body(order, "card", "20000.00"),
                        format="json").status_code == 201
