"""The Midtrans adapter against recorded answers at the HTTP boundary (no network), and the
payment flow end to end with Midtrans as the configured gateway."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from orders.models import Order
from payments import gateways, services
from payments.gateways import (
    ChargeRefused,
    GatewayError,
    InvalidSignature,
    MalformedNotification,
    PaymentRef,
)
from payments.gateways.midtrans import MidtransGateway
from payments.models import Payment, Refund, WebhookEvent
from tests.factories import client_for
from tests.payments import midtrans_recordings as rec
from tests.payments.conftest import TOTAL, event_names, pay_body, post_webhook
from tests.payments.midtrans_mock import RecordedMidtrans, fill

SERVER_KEY = "SB-Mid-server-TEST-not-a-real-key"
BASE = "https://api.sandbox.midtrans.com"


def _ref(amount="100000.00", method="qris") -> PaymentRef:
    return PaymentRef(id=uuid.uuid4(), method=method, amount=Decimal(amount))


def _gateway(mock: RecordedMidtrans, ref: PaymentRef | None = None) -> MidtransGateway:
    if ref is not None:
        mock.values.update(order_id=str(ref.id), amount=f"{ref.amount:.2f}")
    return MidtransGateway(server_key=SERVER_KEY, base_url=BASE, transport=mock.transport)


def notification(order_id: str, amount: str, *, server_key: str = SERVER_KEY,
                 **overrides) -> bytes:
    """A notification signed as Midtrans documents it (computed here independently)."""
    body = fill(rec.NOTIFICATION_SETTLEMENT, order_id=order_id, amount=amount)
    body.update(overrides)
    raw = f"{body['order_id']}{body['status_code']}{body['gross_amount']}{server_key}"
    body["signature_key"] = hashlib.sha512(raw.encode()).hexdigest()
    return json.dumps(body).encode()


# --- adapter: charges -----------------------------------------------------------------------
def test_qris_charge_request_and_answer():
    mock = RecordedMidtrans().on("POST", "/v2/charge", rec.QRIS_CHARGE_CREATED)
    ref = _ref()
    charge = _gateway(mock, ref).create_charge(
        payment=ref, expires_at=timezone.now() + timedelta(minutes=15)
    )
    assert charge.qr_string.startswith("00020101021226")
    assert charge.provider_ref == "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908"
    (request,) = mock.requests
    assert str(request.url) == f"{BASE}/v2/charge"
    expected_auth = base64.b64encode(f"{SERVER_KEY}:".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    assert request.headers["Accept"] == "application/json"
    body = mock.json_of(0)
    assert body["payment_type"] == "qris"
    assert body["qris"] == {"acquirer": "gopay"}
    assert body["transaction_details"] == {"order_id": str(ref.id), "gross_amount": 100000}
    assert body["custom_expiry"]["unit"] == "second"
    assert 890 <= body["custom_expiry"]["expiry_duration"] <= 900


def test_ewallet_charge_is_gopay_and_carries_the_deeplink():
    mock = RecordedMidtrans().on("POST", "/v2/charge", rec.GOPAY_CHARGE_CREATED)
    ref = _ref(method="ewallet")
    charge = _gateway(mock, ref).create_charge(
        payment=ref, expires_at=timezone.now() + timedelta(minutes=15)
    )
    assert mock.json_of(0)["payment_type"] == "gopay"
    assert charge.qr_string.startswith("https://simulator.sandbox.midtrans.com/gopay/")


@pytest.mark.parametrize("recording", [rec.CHARGE_DUPLICATE_ORDER_ID, rec.UNAUTHORIZED,
                                       (503, {"status_message": "down"})])
def test_refused_or_failed_charge_is_a_gateway_error(recording):
    mock = RecordedMidtrans().on("POST", "/v2/charge", recording)
    ref = _ref()
    with pytest.raises(GatewayError) as caught:
        _gateway(mock, ref).create_charge(payment=ref, expires_at=timezone.now())
    assert SERVER_KEY not in str(caught.value)


def test_network_failure_is_a_gateway_error():
    def unreachable(request):
        raise httpx.ConnectError("connection refused", request=request)

    gateway = MidtransGateway(server_key=SERVER_KEY, base_url=BASE,
                              transport=httpx.MockTransport(unreachable))
    with pytest.raises(GatewayError):
        gateway.fetch_status(payment=_ref())


def test_fractional_rupiah_is_refused_before_any_request():
    mock = RecordedMidtrans().on("POST", "/v2/charge", rec.QRIS_CHARGE_CREATED)
    ref = _ref("100.50")
    with pytest.raises(ChargeRefused):
        _gateway(mock, ref).create_charge(payment=ref, expires_at=timezone.now())
    assert mock.requests == []


def test_no_server_key_means_no_call():
    gateway = MidtransGateway(server_key="", base_url=BASE,
                              transport=RecordedMidtrans().transport)
    with pytest.raises(GatewayError):
        gateway.create_charge(payment=_ref(), expires_at=timezone.now())
    assert SERVER_KEY not in repr(MidtransGateway(server_key=SERVER_KEY, base_url=BASE))


# --- adapter: status, cancel, refund --------------------------------------------------------
@pytest.mark.parametrize(
    ("recording", "status"),
    [
        (rec.STATUS_SETTLEMENT, "succeeded"),
        (rec.STATUS_PENDING, None),
        (rec.STATUS_EXPIRE, "expired"),
        (rec.STATUS_NOT_FOUND, None),
    ],
)
def test_status_check_maps_the_transaction_status(recording, status):
    ref = _ref()
    mock = RecordedMidtrans().on("GET", f"/v2/{ref.id}/status", recording)
    remote = _gateway(mock, ref).fetch_status(payment=ref)
    assert remote.status == status
    assert mock.requests[0].method == "GET"
    if recording is rec.STATUS_SETTLEMENT:
        assert remote.amount == Decimal("100000.00")
        assert remote.provider_ref == "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908"


def test_cancel_and_cancel_after_the_customer_paid():
    ref = _ref()
    mock = RecordedMidtrans().on("POST", f"/v2/{ref.id}/cancel", rec.CANCEL_OK)
    assert _gateway(mock, ref).cancel(payment=ref).status == "failed"
    late = (
        RecordedMidtrans()
        .on("POST", f"/v2/{ref.id}/cancel", rec.CANCEL_TOO_LATE)
        .on("GET", f"/v2/{ref.id}/status", rec.STATUS_SETTLEMENT)
    )
    assert _gateway(late, ref).cancel(payment=ref).status == "succeeded"
    assert [r.method for r in late.requests] == ["POST", "GET"]


def test_refund_request_and_refusal():
    ref = _ref()
    refund_id = uuid.uuid4()
    mock = RecordedMidtrans().on("POST", f"/v2/{ref.id}/refund", rec.REFUND_OK)
    mock.values.update(refund="25000", refund_key=str(refund_id))
    _gateway(mock, ref).refund(payment=ref, refund_id=refund_id, amount=Decimal("25000.00"),
                               reason="cold soup")
    assert mock.json_of(0) == {"refund_key": str(refund_id), "amount": 25000,
                               "reason": "cold soup"}
    refused = RecordedMidtrans().on("POST", f"/v2/{ref.id}/refund", rec.REFUND_REFUSED)
    with pytest.raises(GatewayError):
        _gateway(refused, ref).refund(payment=ref, refund_id=refund_id,
                                      amount=Decimal("1.00"), reason="")


# --- adapter: notifications -----------------------------------------------------------------
def test_notification_signature_is_checked_per_the_documentation():
    gateway = MidtransGateway(server_key=SERVER_KEY, base_url=BASE)
    order_id = str(uuid.uuid4())
    notice = gateway.parse_webhook(raw_body=notification(order_id, "100000.00"), headers={})
    assert notice.payment_id == order_id
    assert notice.status == "succeeded"
    assert notice.amount == Decimal("100000.00")
    assert notice.event_id == "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908:settlement"
    assert "signature_key" not in notice.payload

    for raw in (
        notification(order_id, "100000.00", server_key="another-key"),
        notification(order_id, "100000.00")
        .replace(b'"gross_amount": "100000.00"', b'"gross_amount": "1.00"'),
        json.dumps(fill(rec.NOTIFICATION_SETTLEMENT, order_id=order_id,
                        amount="1.00")).encode(),  # no signature_key at all
        b"not json",
    ):
        with pytest.raises(InvalidSignature):
            gateway.parse_webhook(raw_body=raw, headers={})
    with pytest.raises(InvalidSignature):
        MidtransGateway(server_key="", base_url=BASE).parse_webhook(
            raw_body=notification(order_id, "100000.00"), headers={}
        )


@pytest.mark.parametrize(
    ("transaction_status", "fraud_status", "expected"),
    [
        ("settlement", "accept", "succeeded"),
        ("capture", "accept", "succeeded"),
        ("capture", "challenge", None),
        ("pending", "accept", None),
        ("deny", "deny", "failed"),
        ("cancel", "accept", "failed"),
        ("failure", None, "failed"),
        ("expire", "accept", "expired"),
        ("refund", "accept", None),
        ("partial_refund", "accept", None),
    ],
)
def test_notification_status_mapping(transaction_status, fraud_status, expected):
    gateway = MidtransGateway(server_key=SERVER_KEY, base_url=BASE)
    raw = notification(str(uuid.uuid4()), "5000.00", transaction_status=transaction_status,
                       fraud_status=fraud_status)
    notice = gateway.parse_webhook(raw_body=raw, headers={})
    assert notice.status == expected
    assert notice.event_id.endswith(f":{transaction_status}")


def test_signed_notification_without_transaction_fields_is_malformed():
    gateway = MidtransGateway(server_key=SERVER_KEY, base_url=BASE)
    raw = notification(str(uuid.uuid4()), "5000.00", transaction_status="", transaction_id="")
    with pytest.raises(MalformedNotification):
        gateway.parse_webhook(raw_body=raw, headers={})


# --- end to end with Midtrans as the gateway ------------------------------------------------
@pytest.fixture
def midtrans(monkeypatch):
    mock = RecordedMidtrans()
    monkeypatch.setitem(
        gateways.GATEWAYS, "midtrans",
        lambda: MidtransGateway(server_key=SERVER_KEY, base_url=BASE, transport=mock.transport),
    )
    with override_settings(PAYMENTS_DEFAULT_PROVIDER="midtrans", MIDTRANS_SERVER_KEY=SERVER_KEY):
        yield mock


@pytest.fixture
def midtrans_payment(plain_world, order, midtrans) -> Payment:
    midtrans.on("POST", "/v2/charge", rec.QRIS_CHARGE_CREATED)
    midtrans.values["amount"] = "100000.00"
    response = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "qris", TOTAL), format="json"
    )
    assert response.status_code == 201, response.content
    payment = Payment.objects.get(pk=response.json()["id"])
    midtrans.values["order_id"] = str(payment.id)
    return payment


def test_qris_payment_through_midtrans_then_its_notification(plain_world, midtrans_payment,
                                                             midtrans):
    payment = midtrans_payment
    assert (payment.provider, payment.status) == ("midtrans", "pending")
    assert payment.provider_ref == "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908"
    assert midtrans.json_of(0)["transaction_details"]["order_id"] == str(payment.id)

    client = client_for(None)
    forged = notification(str(payment.id), "100000.00", server_key="guess")
    response = client.post("/api/payments/webhook/midtrans/", data=forged,
                           content_type="application/json")
    assert response.status_code == 401
    assert Payment.objects.get(pk=payment.pk).status == "pending"

    genuine = notification(str(payment.id), "100000.00")
    first = client.post("/api/payments/webhook/midtrans/", data=genuine,
                        content_type="application/json")
    assert first.status_code == 200
    assert first.json()["status"] == "applied"
    again = client.post("/api/payments/webhook/midtrans/", data=genuine,
                        content_type="application/json")
    assert again.json()["status"] == "duplicate"
    assert Order.objects.get(pk=payment.order_id).payment_status == "paid"
    assert event_names(plain_world.outlet) == ["payment.created", "payment.succeeded"]


def test_midtrans_pending_notification_changes_nothing(plain_world, midtrans_payment):
    raw = notification(str(midtrans_payment.id), "100000.00", transaction_status="pending",
                       status_code="201")
    response = client_for(None).post("/api/payments/webhook/midtrans/", data=raw,
                                     content_type="application/json")
    assert response.json()["status"] == "ignored"
    assert Payment.objects.get(pk=midtrans_payment.pk).status == "pending"
    assert WebhookEvent.objects.get().outcome == "ignored"


def test_midtrans_amount_mismatch_is_400(plain_world, midtrans_payment):
    raw = notification(str(midtrans_payment.id), "90000.00")
    response = post_webhook(client_for(None), raw, None, provider="midtrans")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "amount_mismatch"
    assert Payment.objects.get(pk=midtrans_payment.pk).status == "pending"
    assert WebhookEvent.objects.count() == 0


def test_poll_task_finds_a_payment_whose_notification_was_lost(plain_world, midtrans_payment,
                                                               midtrans):
    midtrans.on("GET", f"/v2/{midtrans_payment.id}/status", rec.STATUS_SETTLEMENT)
    now = timezone.now()
    # Younger than a minute: not polled yet.
    assert services.payments_poll_pending(now=now) == 0
    assert not any(r.url.path.endswith("/status") for r in midtrans.requests)
    assert services.payments_poll_pending(now=now + timedelta(seconds=61)) == 1
    payment = Payment.objects.get(pk=midtrans_payment.pk)
    assert payment.status == "succeeded"
    assert Order.objects.get(pk=payment.order_id).payment_status == "paid"
    # Running it again changes nothing and asks nobody.
    asked = len(midtrans.requests)
    assert services.payments_poll_pending(now=now + timedelta(seconds=120)) == 0
    assert len(midtrans.requests) == asked
    assert event_names(plain_world.outlet) == ["payment.created", "payment.succeeded"]


def test_poll_leaves_a_still_pending_payment_alone(plain_world, midtrans_payment, midtrans):
    midtrans.on("GET", f"/v2/{midtrans_payment.id}/status", rec.STATUS_PENDING)
    assert services.payments_poll_pending(now=timezone.now() + timedelta(seconds=61)) == 0
    assert Payment.objects.get(pk=midtrans_payment.pk).status == "pending"
    assert event_names(plain_world.outlet) == ["payment.created"]


def test_poll_does_not_apply_a_status_for_another_amount(plain_world, midtrans_payment,
                                                         midtrans):
    midtrans.on("GET", f"/v2/{midtrans_payment.id}/status", rec.STATUS_SETTLEMENT)
    midtrans.values["amount"] = "1.00"
    assert services.payments_poll_pending(now=timezone.now() + timedelta(seconds=61)) == 0
    assert Payment.objects.get(pk=midtrans_payment.pk).status == "pending"


def test_expiry_asks_midtrans_last_and_expires_even_when_it_is_down(plain_world, order,
                                                                    midtrans_payment, midtrans):
    midtrans.on("GET", f"/v2/{midtrans_payment.id}/status", (503, {"status_message": "down"}))
    later = midtrans_payment.expires_at + timedelta(seconds=1)
    assert services.payments_expire_due(now=later) == 1
    assert Payment.objects.get(pk=midtrans_payment.pk).status == "expired"
    assert event_names(plain_world.outlet) == ["payment.created", "payment.expired"]


def test_refund_of_a_midtrans_payment_goes_to_midtrans_first(plain_world, midtrans_payment,
                                                             midtrans):
    post_webhook(client_for(None), notification(str(midtrans_payment.id), "100000.00"), None,
                 provider="midtrans")
    midtrans.on("POST", f"/v2/{midtrans_payment.id}/refund", rec.REFUND_OK)
    response = client_for(plain_world.manager).post(
        f"/api/payments/{midtrans_payment.id}/refund/", {"amount": "25000.00"}, format="json"
    )
    assert response.status_code == 201, response.content
    refund = Refund.objects.get()
    sent = json.loads(midtrans.requests[-1].content)
    assert sent == {"refund_key": str(refund.id), "amount": 25000, "reason": ""}

    midtrans.on("POST", f"/v2/{midtrans_payment.id}/refund", rec.REFUND_REFUSED)
    refused = client_for(plain_world.manager).post(
        f"/api/payments/{midtrans_payment.id}/refund/", {"amount": "1000.00"}, format="json"
    )
    assert refused.status_code == 502
    assert refused.json()["error"]["code"] == "gateway_error"
    assert Refund.objects.count() == 1
    assert Payment.objects.get(pk=midtrans_payment.pk).refunded_amount == Decimal("25000.00")
