"""``POST /api/payments/`` and reads: every method, split bills, the balance arithmetic,
overpayment refusal, who may do what, and tenancy."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings

from orders.models import Order
from payments.models import Payment
from pos.models import StreamEvent
from tests.factories import client_for
from tests.payments.conftest import TOTAL, event_names, make_order, pay_body


def _order_row(order) -> Order:
    return Order.objects.get(pk=order.pk)


def test_cash_succeeds_at_once_with_change_due(plain_world, order):
    response = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "cash", "100000.00", tendered="150000.00"),
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["method"] == "cash"
    assert body["amount"] == "100000.00"
    assert body["tendered"] == "150000.00"
    assert body["change_due"] == "50000.00"
    assert body["provider"] is None and body["qr_string"] is None and body["expires_at"] is None
    assert body["order"] == str(order.id)
    assert body["order_payment"] == {
        "payment_status": "paid", "total": "100000.00", "paid_amount": "100000.00",
        "refunded_amount": "0.00", "balance_due": "0.00",
    }
    row = _order_row(order)
    assert (row.payment_status, row.paid_amount) == ("paid", Decimal("100000.00"))
    assert row.version == order.version + 1
    assert event_names(plain_world.outlet) == ["payment.created", "payment.succeeded"]
    succeeded = StreamEvent.objects.get(outlet_id=plain_world.outlet.id, name="payment.succeeded")
    assert succeeded.data == body  # the same serializer feeds REST and events
    assert succeeded.order_id == order.id
    updated = StreamEvent.objects.get(outlet_id=plain_world.outlet.id, name="order.updated")
    assert updated.seq < succeeded.seq  # the payment event carries the order's new totals


def test_card_succeeds_at_once_with_its_reference(plain_world, order):
    response = client_for(plain_world.manager).post(
        "/api/payments/", {**pay_body(order, "card", "40000.00"), "reference": "EDC-0042"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["reference"], body["change_due"]) == (
        "succeeded", "EDC-0042", None
    )
    assert _order_row(order).payment_status == "partially_paid"


@pytest.mark.parametrize("method", ["qris", "ewallet"])
def test_qr_methods_go_through_the_sandbox_and_stay_pending(plain_world, order, method):
    with override_settings(PAYMENT_QR_TTL=600):
        response = client_for(plain_world.cashier).post(
            "/api/payments/", pay_body(order, method, "100000.00"), format="json"
        )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    assert body["provider"] == "sandbox"
    assert body["qr_string"].startswith("sandbox-qris://pay?")
    assert "100000.00" in body["qr_string"]
    payment = Payment.objects.get(pk=body["id"])
    remaining = (payment.expires_at - payment.created_at).total_seconds()
    assert 595 <= remaining <= 601
    # Nothing is paid yet: the order stays unpaid and only payment.created was emitted.
    assert _order_row(order).payment_status == "unpaid"
    assert event_names(plain_world.outlet) == ["payment.created"]


def test_split_bill_payment_status_follows_each_payment(plain_world, order):
    client = client_for(plain_world.cashier)
    steps = [
        ("card", "30000.00", {}, "partially_paid", "30000.00"),
        ("cash", "45000.50", {"tendered": "50000.00"}, "partially_paid", "75000.50"),
        ("card", "24999.50", {}, "paid", "100000.00"),
    ]
    for method, amount, extra, status, paid in steps:
        response = client.post("/api/payments/", pay_body(order, method, amount, **extra),
                               format="json")
        assert response.status_code == 201, response.content
        row = _order_row(order)
        assert (row.payment_status, str(row.paid_amount)) == (status, paid)
        assert response.json()["order_payment"]["paid_amount"] == paid
    assert Payment.objects.get(method="cash").change_due == Decimal("4999.50")


def test_amount_above_the_remaining_balance_is_refused_and_changes_nothing(plain_world, order):
    client = client_for(plain_world.cashier)
    assert client.post("/api/payments/", pay_body(order, "card", "60000.00"),
                       format="json").status_code == 201
    before = (Payment.objects.count(), StreamEvent.objects.count(), _order_row(order).version)
    response = client.post("/api/payments/", pay_body(order, "card", "40000.01"), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "40000.00" in error["details"]["amount"][0]
    assert (Payment.objects.count(), StreamEvent.objects.count(),
            _order_row(order).version) == before
    # Exactly the remaining balance is fine.
    assert client.post("/api/payments/", pay_body(order, "card", "40000.00"),
                       format="json").status_code == 201


def test_a_pending_qr_reserves_its_amount(plain_world, order):
    client = client_for(plain_world.cashier)
    assert client.post("/api/payments/", pay_body(order, "qris", "70000.00"),
                       format="json").status_code == 201
    # A second QR (or cash) for money the first QR may still bring in is refused.
    response = client.post("/api/payments/", pay_body(order, "qris", "30000.01"), format="json")
    assert response.status_code == 400
    assert client.post(
        "/api/payments/", pay_body(order, "cash", "50000.00", tendered="50000.00"), format="json"
    ).status_code == 400
    assert Payment.objects.count() == 1
    assert client.post("/api/payments/", pay_body(order, "cash", "30000.00",
                                                  tendered="30000.00"),
                       format="json").status_code == 201


def test_cancelling_a_pending_qr_releases_its_amount(plain_world, order):
    client = client_for(plain_world.cashier)
    qr = client.post("/api/payments/", pay_body(order, "qris", TOTAL), format="json").json()
    response = client.post(f"/api/payments/{qr['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert event_names(plain_world.outlet) == ["payment.created", "payment.failed"]
    assert client.post("/api/payments/", pay_body(order, "card", TOTAL),
                       format="json").status_code == 201
    # Cancelling it again, or cancelling a card payment, is a 409 and changes nothing.
    card = Payment.objects.get(method="card")
    for payment_id in (qr["id"], card.id):
        again = client.post(f"/api/payments/{payment_id}/cancel/")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "invalid_transition"
    assert Payment.objects.get(pk=qr["id"]).status == "failed"
    assert card.status == "succeeded"


def test_cancel_of_a_qr_the_customer_already_paid_records_the_payment(plain_world, order):
    client = client_for(plain_world.cashier)
    qr = client.post("/api/payments/", pay_body(order, "qris", TOTAL), format="json").json()
    # The customer pays, the webhook is lost; the cashier then presses cancel.
    assert client.post(f"/api/payments/{qr['id']}/simulate/",
                       {"status": "succeeded", "deliver": False}, format="json").status_code == 200
    response = client.post(f"/api/payments/{qr['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert _order_row(order).payment_status == "paid"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"method": "cash", "amount": "100.00"}, "tendered"),
        ({"method": "cash", "amount": "100.00", "tendered": "99.99"}, "tendered"),
        ({"method": "card", "amount": "100.00", "tendered": "100.00"}, "tendered"),
        ({"method": "card", "amount": "0.00"}, "amount"),
        ({"method": "card", "amount": "-5.00"}, "amount"),
        ({"method": "card", "amount": "1.005"}, "amount"),
        ({"method": "card", "amount": "abc"}, "amount"),
        ({"method": "cheque", "amount": "100.00"}, "method"),
        ({"method": "card"}, "amount"),
    ],
)
def test_invalid_bodies_are_400_and_change_nothing(plain_world, order, body, field):
    response = client_for(plain_world.cashier).post(
        "/api/payments/", {"order": str(order.id), **body}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert Payment.objects.count() == 0
    assert event_names(plain_world.outlet) == []


def test_cancelled_order_takes_no_payment(plain_world):
    cancelled = make_order(plain_world.outlet, status="cancelled")
    response = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(cancelled, "card", "10.00"), format="json"
    )
    assert response.status_code == 400
    assert "order" in response.json()["error"]["details"]
    assert Payment.objects.count() == 0


def test_other_tenants_or_invisible_or_unknown_order_in_body_is_400(plain_world, order,
                                                                    other_order):
    outlet2_order = make_order(plain_world.outlet2)
    cases = [
        (plain_world.cashier, other_order),  # another tenant's
        (plain_world.other_owner, order),
        (plain_world.cashier, outlet2_order),  # same tenant, an outlet the cashier is not at
    ]
    for user, target in cases:
        response = client_for(user).post("/api/payments/", pay_body(target, "card", "1.00"),
                                         format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert "order" in response.json()["error"]["details"]
    unknown = client_for(plain_world.cashier).post(
        "/api/payments/",
        {"order": "00000000-0000-0000-0000-000000000000", "method": "card", "amount": "1.00"},
        format="json",
    )
    assert unknown.status_code == 400
    assert Payment.objects.count() == 0


def test_kitchen_has_no_access_at_all(plain_world, order):
    client = client_for(plain_world.kitchen)
    create = client.post("/api/payments/", pay_body(order, "card", "1.00"), format="json")
    assert create.status_code == 403
    assert create.json()["error"]["code"] == "permission_denied"
    assert client.get("/api/payments/").status_code == 403
    payment = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "card", "1.00"), format="json"
    ).json()
    assert client.get(f"/api/payments/{payment['id']}/").status_code == 403
    assert Payment.objects.count() == 1


def test_anonymous_is_401(plain_world, order):
    response = client_for(None).post("/api/payments/", pay_body(order, "card", "1.00"),
                                     format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_detail_and_list_are_scoped_to_tenant_and_outlets(plain_world, order, other_order):
    mine = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "card", "10.00"), format="json"
    ).json()
    theirs = client_for(plain_world.other_cashier).post(
        "/api/payments/", pay_body(other_order, "card", "10.00"), format="json"
    ).json()
    outlet2_payment = client_for(plain_world.manager2).post(
        "/api/payments/", pay_body(make_order(plain_world.outlet2), "card", "10.00"),
        format="json",
    ).json()

    cashier = client_for(plain_world.cashier)
    assert cashier.get(f"/api/payments/{mine['id']}/").json()["id"] == mine["id"]
    for hidden in (theirs["id"], outlet2_payment["id"], "00000000-0000-0000-0000-000000000000",
                   "not-a-uuid"):
        response = cashier.get(f"/api/payments/{hidden}/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    listed = cashier.get("/api/payments/").json()
    assert [p["id"] for p in listed["results"]] == [mine["id"]]
    assert set(listed) == {"results", "next", "previous"}
    # The filter by another tenant's order finds nothing rather than leaking it.
    assert cashier.get(f"/api/payments/?order={other_order.id}").json()["results"] == []

    owner_ids = {p["id"] for p in client_for(plain_world.owner).get("/api/payments/")
                 .json()["results"]}
    assert owner_ids == {mine["id"], outlet2_payment["id"]}
    admin_ids = {p["id"] for p in client_for(plain_world.super_admin).get("/api/payments/")
                 .json()["results"]}
    assert admin_ids == {mine["id"], theirs["id"], outlet2_payment["id"]}


def test_list_filters_by_order_and_status(plain_world, order):
    client = client_for(plain_world.cashier)
    second = make_order(plain_world.outlet)
    client.post("/api/payments/", pay_body(order, "card", "10.00"), format="json")
    qr = client.post("/api/payments/", pay_body(second, "qris", "10.00"), format="json").json()
    by_order = client.get(f"/api/payments/?order={second.id}").json()["results"]
    assert [p["id"] for p in by_order] == [qr["id"]]
    pending = client.get("/api/payments/?status=pending").json()["results"]
    assert [p["id"] for p in pending] == [qr["id"]]


def test_idempotency_key_replays_the_first_payment(plain_world, order):
    client = client_for(plain_world.cashier)
    body = pay_body(order, "cash", "100000.00", tendered="100000.00")
    first = client.post("/api/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1
    assert event_names(plain_world.outlet) == ["payment.created", "payment.succeeded"]
    other_body = client.post("/api/payments/", pay_body(order, "card", "1.00"), format="json",
                             HTTP_IDEMPOTENCY_KEY="k-1")
    assert other_body.status_code == 422
    assert other_body.json()["error"]["code"] == "idempotency_key_reused"
    assert Payment.objects.count() == 1


def test_gateway_failure_is_502_and_writes_nothing(plain_world, order, monkeypatch):
    from payments import gateways
    from payments.gateways.sandbox import SandboxGateway

    class Down(SandboxGateway):
        def create_charge(self, *, payment, expires_at):
            raise gateways.GatewayError("connection refused")

    monkeypatch.setitem(gateways.GATEWAYS, "sandbox", Down)
    response = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "qris", "10.00"), format="json"
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "gateway_error"
    assert Payment.objects.count() == 0
    assert event_names(plain_world.outlet) == []


def test_a_charge_outbid_by_another_till_is_refused_and_cancelled_at_the_gateway(
    plain_world, order, monkeypatch
):
    from payments import gateways
    from payments.gateways.sandbox import SandboxGateway
    from payments.services import payment_create

    cancelled = []

    class Slow(SandboxGateway):
        def create_charge(self, *, payment, expires_at):
            # While the gateway answers, another till takes the whole bill by card.
            payment_create(actor=plain_world.manager, order_id=order.id, method="card",
                           amount=TOTAL)
            return super().create_charge(payment=payment, expires_at=expires_at)

        def cancel(self, *, payment):
            cancelled.append(payment.id)
            return super().cancel(payment=payment)

    monkeypatch.setitem(gateways.GATEWAYS, "sandbox", Slow)
    response = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "qris", "50000.00"), format="json"
    )
    assert response.status_code == 400
    assert list(Payment.objects.values_list("method", flat=True)) == ["card"]
    assert len(cancelled) == 1


PAYMENT_FIELDS = {
    "id", "order", "outlet", "method", "amount", "status", "provider", "provider_ref",
    "qr_string", "expires_at", "tendered", "change_due", "reference", "refunded_amount",
    "created_by", "created_at", "updated_at", "settled_at", "order_payment",
}


def test_every_payment_event_carries_the_whole_payment(plain_world, order):
    from datetime import timedelta

    from payments.services import payments_expire_due

    cashier, manager = client_for(plain_world.cashier), client_for(plain_world.manager)
    cash = cashier.post("/api/payments/", pay_body(order, "cash", "10.00", tendered="20.00"),
                        format="json").json()
    failing = cashier.post("/api/payments/", pay_body(order, "qris", "10.00"),
                           format="json").json()
    cashier.post(f"/api/payments/{failing['id']}/simulate/", {"status": "failed"},
                 format="json")
    expiring = cashier.post("/api/payments/", pay_body(order, "ewallet", "10.00"),
                            format="json").json()
    expires_at = Payment.objects.get(pk=expiring["id"]).expires_at
    payments_expire_due(now=expires_at + timedelta(seconds=1))
    manager.post(f"/api/payments/{cash['id']}/refund/", {"amount": "5.00"}, format="json")

    seen = set()
    for event in StreamEvent.objects.filter(name__startswith="payment.").order_by("seq"):
        seen.add(event.name)
        assert set(event.data) == PAYMENT_FIELDS, event.name
        assert event.order_id == order.id
        assert event.data["order"] == str(order.id)
        for money in ("amount", "refunded_amount"):
            assert isinstance(event.data[money], str)
        assert set(event.data["order_payment"]) == {
            "payment_status", "total", "paid_amount", "refunded_amount", "balance_due",
        }
    assert seen == {"payment.created", "payment.succeeded", "payment.failed",
                    "payment.expired", "payment.refunded"}
