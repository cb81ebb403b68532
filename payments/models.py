"""Payments against orders, their refunds, and the gateway webhooks already processed.

Rules the database holds, so no code path can break them:

- a payment's amount is positive and its refunded part lies between 0 and the amount;
- a cash payment was tendered at least its amount, and its change is the difference;
- a gateway reference is unique per provider;
- a provider's event id is processed once (``WebhookEvent``: the insert is the check).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from orders.models import Order
from tenants.models import Outlet, Tenant

ZERO = Decimal("0.00")


class PaymentMethod(models.TextChoices):
    CASH = "cash", "Cash"
    CARD = "card", "Card"
    QRIS = "qris", "QRIS"
    EWALLET = "ewallet", "E-wallet"


# Methods settled at the counter (no gateway), and those that go through a gateway.
IN_PERSON_METHODS = frozenset({PaymentMethod.CASH, PaymentMethod.CARD})
GATEWAY_METHODS = frozenset({PaymentMethod.QRIS, PaymentMethod.EWALLET})


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    REFUNDED = "refunded", "Refunded"


# A payment leaves ``pending`` once and for all: a webhook never changes a final payment.
# ``succeeded -> refunded`` is the only later change, made by a full refund.
FINAL_STATUSES = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.EXPIRED, PaymentStatus.REFUNDED}
)
# Payments whose money was received (a fully refunded one was received, then given back).
COLLECTED_STATUSES = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED})


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=14, decimal_places=2, **kwargs)


class Payment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    outlet = models.ForeignKey(Outlet, on_delete=models.PROTECT, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=16, choices=PaymentMethod.choices)
    amount = _money()
    status = models.CharField(max_length=16, choices=PaymentStatus.choices,
                              default=PaymentStatus.PENDING)
    # Gateway adapter name ("sandbox", "midtrans"); empty for cash and card.
    provider = models.CharField(max_length=32, blank=True, default="")
    # The gateway's own id of the transaction, once it gave one.
    provider_ref = models.CharField(max_length=128, blank=True, default="")
    qr_string = models.TextField(blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    tendered = _money(null=True, blank=True)
    change_due = _money(null=True, blank=True)
    # Card terminal slip number, or any note the cashier keys in.
    reference = models.CharField(max_length=128, blank=True, default="")
    refunded_amount = _money(default=ZERO)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When the payment left ``pending`` (succeeded, failed or expired).
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payment_refunded_range",
            ),
            models.CheckConstraint(
                condition=~Q(method=PaymentMethod.CASH)
                | (
                    Q(tendered__gte=F("amount"))
                    & Q(change_due=F("tendered") - F("amount"))
                ),
                name="payment_cash_tendered_covers_amount",
            ),
            models.CheckConstraint(
                condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(method__in=PaymentMethod.values), name="payment_method_valid"
            ),
            models.UniqueConstraint(
                fields=("provider", "provider_ref"),
                condition=~Q(provider_ref=""),
                name="payment_provider_ref_unique",
            ),
        ]
        indexes = [
            models.Index(fields=("order", "status"), name="payment_order_status"),
            # The expiry and polling tasks scan pending gateway payments.
            models.Index(
                fields=("expires_at",),
                condition=Q(status="pending"),
                name="payment_pending_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class Refund(models.Model):
    """Money given back on a succeeded payment; several partial refunds may add up to it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = _money()
    reason = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} of {self.payment_id}"


class WebhookEvent(models.Model):
    """A gateway notification already processed: its (provider, event_id) is inserted once.

    The unique constraint is the replay check. Inserting it in the transaction that applies
    the notification makes "processed" and "applied" one atomic fact.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=200)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="webhook_events")
    # What the notification asked for and what it did: "applied" or "ignored".
    outcome = models.CharField(max_length=16)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("received_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("provider", "event_id"), name="webhook_event_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"
