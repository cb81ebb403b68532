"""``POST /api/payments/webhook/<provider>/`` and the sandbox ``simulate`` endpoint: every
case of CONTRACT.md section 6, each refusal checked to change nothing."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from orders.models import Order
from payments import services
from payments.models import Payment, WebhookEvent
from pos.models import StreamEvent
from tests.factories import client_for
from tests.payments.conftest import (
    TOTAL,
    event_names,
    make_order,
    pay_body,
    post_webhook,
    sandbox_webhook,
)


@pytest.fixture
def pending(plain_world, order) -> Payment:
    body = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "qris", TOTAL), format="json"
    ).json()
    return Payment.objects.get(pk=body["id"])


def _state(payment) -> tuple:
    payment.refresh_from_db()
    order = Order.objects.get(pk=payment.order_id)
    return (payment.status, order.payment_status, order.paid_amount, order.version,
            WebhookEvent.objects.count(), StreamEvent.objects.count())


def test_signed_webhook_settles_the_payment_and_the_order(plain_world, pending):
    body, signature = sandbox_webhook(pending.id)
    response = post_webhook(client_for(None), body, signature)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "applied", "payment": str(pending.id),
                               "payment_status": "succeeded"}
    pending.refresh_from_db()
    assert pending.status == "succeeded" and pending.settled_at is not None
    order = Order.objects.get(pk=pending.order_id)
    assert (order.payment_status, order.paid_amount) == ("paid", TOTAL)
    assert event_names(plain_world.outlet) == ["payment.created", "payment.succeeded"]
    event = WebhookEvent.objects.get()
    assert (event.provider, event.event_id, event.outcome) == ("sandbox", "evt-1", "applied")


def test_failed_webhook_releases_the_reserved_amount(plain_world, pending):
    body, signature = sandbox_webhook(pending.id, status="failed")
    assert post_webhook(client_for(None), body, signature).status_code == 200
    pending.refresh_from_db()
    assert pending.status == "failed"
    assert Order.objects.get(pk=pending.order_id).payment_status == "unpaid"
    assert event_names(plain_world.outlet)[-1] == "payment.failed"
    again = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(pending.order, "card", TOTAL), format="json"
    )
    assert again.status_code == 201


@pytest.mark.parametrize("signature", [None, "", "0" * 64, "not-hex"])
def test_bad_or_missing_signature_is_401_and_changes_nothing(plain_world, pending, signature):
    body, _ = sandbox_webhook(pending.id)
    before = _state(pending)
    response = post_webhook(client_for(None), body, signature)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert _state(pending) == before


def test_signature_over_another_body_or_with_another_secret_is_401(plain_world, pending):
    body, signature = sandbox_webhook(pending.id)
    tampered = body.replace(b'"succeeded"', b'"failed"   ')
    before = _state(pending)
    assert post_webhook(client_for(None), tampered, signature).status_code == 401
    _, wrong_key = sandbox_webhook(pending.id, secret="someone-elses-secret")
    assert post_webhook(client_for(None), body, wrong_key).status_code == 401
    assert _state(pending) == before


def test_webhook_needs_no_jwt_and_ignores_one(plain_world, pending):
    body, signature = sandbox_webhook(pending.id)
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    assert post_webhook(client, body, signature).status_code == 200


def test_replayed_event_id_is_200_and_changes_once(plain_world, pending):
    body, signature = sandbox_webhook(pending.id)
    client = client_for(None)
    assert post_webhook(client, body, signature).json()["status"] == "applied"
    after_first = _state(pending)
    replay = post_webhook(client, body, signature)
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert _state(pending) == after_first
    assert event_names(plain_world.outlet) == ["payment.created", "payment.succeeded"]


def test_a_final_payment_never_changes(plain_world, pending):
    client = client_for(None)
    body, signature = sandbox_webhook(pending.id, status="failed", event_id="e-fail")
    post_webhook(client, body, signature)
    before = _state(pending)
    body, signature = sandbox_webhook(pending.id, status="succeeded", event_id="e-late")
    response = post_webhook(client, body, signature)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "payment": str(pending.id),
                               "payment_status": "failed"}
    status, pay_status, paid, version, webhooks, stream = _state(pending)
    assert (status, pay_status, paid, version, stream) == (*before[:4], before[5])
    assert webhooks == before[4] + 1  # recorded, so its replay is a duplicate
    assert WebhookEvent.objects.get(event_id="e-late").outcome == "ignored"


def test_late_webhook_for_an_expired_payment_changes_nothing_and_is_flagged(
    plain_world, pending, caplog
):
    Payment.objects.filter(pk=pending.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.payments_expire_due() == 1
    before = _state(pending)
    assert before[0] == "expired"
    body, signature = sandbox_webhook(pending.id)
    with caplog.at_level(logging.INFO, logger="payments.webhooks"):
        response = post_webhook(client_for(None), body, signature)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert _state(pending)[:4] == before[:4]
    assert _state(pending)[5] == before[5]
    flagged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert flagged and flagged[0].payment == str(pending.id)
    assert "late success" in flagged[0].getMessage()


def test_amount_mismatch_is_400_and_changes_nothing(plain_world, pending):
    before = _state(pending)
    for amount in ("99999.99", "100000.01", "1"):
        body, signature = sandbox_webhook(pending.id, amount=amount, event_id=f"e-{amount}")
        response = post_webhook(client_for(None), body, signature)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "amount_mismatch"
    assert _state(pending) == before
    # Equal amounts written differently are equal.
    body, signature = sandbox_webhook(pending.id, amount="100000")
    assert post_webhook(client_for(None), body, signature).json()["status"] == "applied"


def test_unknown_payment_is_404_and_changes_nothing(plain_world, pending):
    before = _state(pending)
    for payment_id in ("00000000-0000-0000-0000-000000000000", "nonsense"):
        body, signature = sandbox_webhook(payment_id)
        response = post_webhook(client_for(None), body, signature)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert _state(pending) == before


def test_a_payment_of_another_provider_is_unknown_to_this_one(plain_world, order):
    card = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "card", "10.00"), format="json"
    ).json()
    body, signature = sandbox_webhook(card["id"], amount="10.00")
    assert post_webhook(client_for(None), body, signature).status_code == 404


def test_unknown_provider_is_404(plain_world, pending):
    body, signature = sandbox_webhook(pending.id)
    response = post_webhook(client_for(None), body, signature, provider="paypal")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"payment": "x", "status": "succeeded", "amount": "1"}).encode(),
        json.dumps({"event_id": "e", "payment": "x", "status": "paid", "amount": "1"}).encode(),
        json.dumps({"event_id": "e", "payment": "x", "status": "failed", "amount": "x"}).encode(),
    ],
)
def test_signed_but_malformed_body_is_400(plain_world, pending, payload):
    import hashlib
    import hmac

    from django.conf import settings

    signature = hmac.new(settings.PAYMENTS_SANDBOX_SECRET.encode(), payload,
                         hashlib.sha256).hexdigest()
    before = _state(pending)
    response = post_webhook(client_for(None), payload, signature)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert _state(pending) == before


@override_settings(PAYMENTS_SANDBOX_SECRET="")
def test_without_a_secret_no_webhook_is_trusted(plain_world, pending):
    body, signature = sandbox_webhook(pending.id, secret="tests-sandbox-secret")
    before = _state(pending)
    assert post_webhook(client_for(None), body, signature).status_code == 401
    assert _state(pending) == before


def test_every_outcome_is_logged_with_the_payment_id_and_never_the_secret(
    plain_world, pending, caplog
):
    client = client_for(None)
    body, signature = sandbox_webhook(pending.id)
    bad_amount, bad_amount_sig = sandbox_webhook(pending.id, amount="1.00", event_id="e2")
    with caplog.at_level(logging.INFO, logger="payments.webhooks"):
        post_webhook(client, bad_amount, bad_amount_sig)
        post_webhook(client, body, signature)
        post_webhook(client, body, signature)
        post_webhook(client, body, "0" * 64)
    records = [r for r in caplog.records if r.name == "payments.webhooks"]
    outcomes = [r.outcome for r in records]
    assert outcomes == ["amount_mismatch", "applied", "duplicate", "invalid_signature"]
    assert all(r.payment == str(pending.id) for r in records[:3])
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in records)
    assert "tests-sandbox-secret" not in text
    assert signature not in text


# --- races ----------------------------------------------------------------------------------
def _race(calls) -> list:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_racing_webhooks_change_the_payment_once(plain_world):
    order = make_order(plain_world.outlet)
    created = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "qris", TOTAL), format="json"
    ).json()
    deliveries = [sandbox_webhook(created["id"], event_id=f"evt-{i}") for i in range(4)]
    # The same event delivered twice at once, and three different events for one payment.
    deliveries.append(deliveries[0])
    results = _race([
        lambda b=body, s=sig: services.payment_webhook_receive(
            provider="sandbox", raw_body=b, headers={"X-Signature": s}
        )
        for body, sig in deliveries
    ])
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["applied", "duplicate", "ignored", "ignored", "ignored"]
    assert event_names(plain_world.outlet) == ["payment.created", "payment.succeeded"]
    assert Order.objects.get(pk=order.pk).paid_amount == TOTAL
    assert WebhookEvent.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_webhook_racing_the_expiry_task_settles_once(plain_world):
    order = make_order(plain_world.outlet)
    created = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "qris", TOTAL), format="json"
    ).json()
    Payment.objects.filter(pk=created["id"]).update(expires_at=timezone.now())
    body, signature = sandbox_webhook(created["id"])
    _race([
        lambda: services.payment_webhook_receive(
            provider="sandbox", raw_body=body, headers={"X-Signature": signature}
        ),
        services.payments_expire_due,
    ])
    final = Payment.objects.get(pk=created["id"]).status
    assert final in ("succeeded", "expired")
    assert event_names(plain_world.outlet) == ["payment.created", f"payment.{final}"]


# --- simulate -------------------------------------------------------------------------------
def test_simulate_sends_a_signed_webhook_through_the_same_path(plain_world, pending):
    response = client_for(plain_world.cashier).post(
        f"/api/payments/{pending.id}/simulate/", {"status": "succeeded"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["delivered"], body["webhook"]) == (True, "applied")
    assert body["payment"]["status"] == "succeeded"
    event = WebhookEvent.objects.get()
    assert (event.provider, event.outcome) == ("sandbox", "applied")
    assert event.payload["payment"] == str(pending.id)
    # Simulating again sends a new event, which a final payment ignores.
    again = client_for(plain_world.cashier).post(
        f"/api/payments/{pending.id}/simulate/", {"status": "failed"}, format="json"
    )
    assert again.json()["webhook"] == "ignored"
    pending.refresh_from_db()
    assert pending.status == "succeeded"


def test_simulate_is_sandbox_only_and_scoped(plain_world, order, pending, other_order):
    card = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(make_order(plain_world.outlet), "card", "1.00"),
        format="json",
    ).json()
    response = client_for(plain_world.cashier).post(
        f"/api/payments/{card['id']}/simulate/", {"status": "succeeded"}, format="json"
    )
    assert response.status_code == 404
    foreign = client_for(plain_world.other_owner).post(
        f"/api/payments/{pending.id}/simulate/", {"status": "succeeded"}, format="json"
    )
    assert foreign.status_code == 404
    kitchen = client_for(plain_world.kitchen).post(
        f"/api/payments/{pending.id}/simulate/", {"status": "succeeded"}, format="json"
    )
    assert kitchen.status_code == 403
    bad = client_for(plain_world.cashier).post(
        f"/api/payments/{pending.id}/simulate/", {"status": "expired"}, format="json"
    )
    assert bad.status_code == 400
    pending.refresh_from_db()
    assert pending.status == "pending"
    assert WebhookEvent.objects.count() == 0


def test_simulate_without_a_sandbox_secret_is_refused_and_changes_nothing(plain_world, pending):
    with override_settings(PAYMENTS_SANDBOX_SECRET=""):
        response = client_for(plain_world.cashier).post(
            f"/api/payments/{pending.id}/simulate/", {"status": "succeeded"}, format="json"
        )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "gateway_error"
    pending.refresh_from_db()
    assert pending.status == "pending"
    # Nothing was recorded as paid in the sandbox either: polling finds nothing.
    assert services.payments_poll_pending(now=pending.created_at + timedelta(minutes=2)) == 0
