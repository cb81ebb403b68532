"""The periodic tasks: QR expiry and status polling (webhooks get lost), with the sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from orders.models import Order
from payments import services, tasks
from payments.models import Payment
from tests.factories import client_for
from tests.payments.conftest import event_names, pay_body


@pytest.fixture
def qr(plain_world, order) -> Payment:
    body = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "qris", "60000.00"), format="json"
    ).json()
    return Payment.objects.get(pk=body["id"])


def _simulate_lost_webhook(world, payment, status="succeeded"):
    response = client_for(world.cashier).post(
        f"/api/payments/{payment.id}/simulate/", {"status": status, "deliver": False},
        format="json",
    )
    assert response.json()["delivered"] is False


def test_task_names_match_the_beat_schedule():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks.payments_expire.name in scheduled
    assert tasks.payments_poll_pending.name in scheduled


def test_expiry_expires_only_pending_payments_past_their_deadline(plain_world, order, qr):
    card = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "card", "10000.00"), format="json"
    ).json()
    assert services.payments_expire_due(now=qr.expires_at - timedelta(seconds=1)) == 0
    assert Payment.objects.get(pk=qr.pk).status == "pending"

    assert services.payments_expire_due(now=qr.expires_at) == 1
    qr.refresh_from_db()
    assert qr.status == "expired" and qr.settled_at is not None
    assert Payment.objects.get(pk=card["id"]).status == "succeeded"
    assert event_names(plain_world.outlet) == [
        "payment.created", "payment.created", "payment.succeeded", "payment.expired",
    ]
    # The expired QR's amount is free again.
    again = client_for(plain_world.cashier).post(
        "/api/payments/", pay_body(order, "card", "90000.00"), format="json"
    )
    assert again.status_code == 201
    assert services.payments_expire_due(now=qr.expires_at + timedelta(hours=1)) == 0


def test_expiry_task_runs_with_the_real_clock(plain_world, qr):
    Payment.objects.filter(pk=qr.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.payments_expire() == 1
    assert tasks.payments_expire() == 0
    assert Payment.objects.get(pk=qr.pk).status == "expired"
    assert Order.objects.get(pk=qr.order_id).payment_status == "unpaid"


def test_expiry_records_a_payment_made_just_before_the_deadline(plain_world, qr):
    _simulate_lost_webhook(plain_world, qr)
    assert services.payments_expire_due(now=qr.expires_at) == 1
    assert Payment.objects.get(pk=qr.pk).status == "succeeded"
    assert Order.objects.get(pk=qr.order_id).paid_amount == qr.amount
    assert event_names(plain_world.outlet)[-1] == "payment.succeeded"


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_polling_applies_what_the_gateway_says_after_a_minute(plain_world, qr, status):
    _simulate_lost_webhook(plain_world, qr, status)
    created = qr.created_at
    assert services.payments_poll_pending(now=created + timedelta(seconds=30)) == 0
    assert Payment.objects.get(pk=qr.pk).status == "pending"
    assert services.payments_poll_pending(now=created + timedelta(seconds=61)) == 1
    assert Payment.objects.get(pk=qr.pk).status == status
    assert services.payments_poll_pending(now=created + timedelta(seconds=120)) == 0
    assert event_names(plain_world.outlet) == ["payment.created", f"payment.{status}"]


def test_polling_leaves_a_payment_the_customer_has_not_paid(plain_world, qr):
    assert services.payments_poll_pending(now=qr.created_at + timedelta(seconds=61)) == 0
    assert Payment.objects.get(pk=qr.pk).status == "pending"
    assert event_names(plain_world.outlet) == ["payment.created"]


def test_poll_task_runs_with_the_real_clock(plain_world, qr):
    _simulate_lost_webhook(plain_world, qr)
    Payment.objects.filter(pk=qr.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert tasks.payments_poll_pending() == 1
    assert Payment.objects.get(pk=qr.pk).status == "succeeded"
