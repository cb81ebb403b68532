"""Payment reads, scoped to the outlets the caller may see, shaped for ``PaymentSerializer``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from orders.models import Order
from payments.models import COLLECTED_STATUSES, ZERO, Payment, PaymentStatus
from pos.ids import parse_uuid
from pos.permissions import KITCHEN, user_role
from tenants.models import User
from tenants.selectors import outlets_visible_to, user_is_super_admin

# Roles that may see payments at all (CONTRACT.md section 2: kitchen has no access).
PAYMENT_READER_ROLES = frozenset({"super_admin", "owner", "manager", "cashier"})


def _shaped(qs: QuerySet[Payment]) -> QuerySet[Payment]:
    """What ``PaymentSerializer`` reads: the order's totals come with the row (one query)."""
    return qs.select_related("order")


def payments_visible_to(user: User) -> QuerySet[Payment]:
    """Payments of the outlets ``user`` works at, newest first. Kitchen staff see none."""
    if user_role(user) not in PAYMENT_READER_ROLES:
        return Payment.objects.none()
    return _shaped(Payment.objects.filter(outlet__in=outlets_visible_to(user)))


def payment_for_user(user: User, payment_id) -> Payment | None:
    """The payment if ``user`` may see it, else None (unknown, malformed and another
    tenant's ids look the same)."""
    pk = parse_uuid(payment_id)
    if pk is None:
        return None
    return payments_visible_to(user).filter(pk=pk).first()


def payments_of_order(order_id) -> QuerySet[Payment]:
    """Every payment of one order, oldest first.

    Precondition: the caller already checked that its user may see the order.
    """
    return _shaped(Payment.objects.filter(order_id=order_id)).order_by("created_at", "id")


def payment_with_order(payment_id) -> Payment:
    """One payment, unscoped, shaped for the serializer and for ``emit`` (the outlet): for
    services that hold it already."""
    return Payment.objects.select_related("order__outlet").get(pk=payment_id)


@dataclass(frozen=True)
class OrderPaymentSums:
    """What the payments of one order add up to."""

    collected: Decimal  # every payment that succeeded, refunded ones included
    refunded: Decimal
    pending: Decimal  # reserved by QR / e-wallet payments still waiting for the customer

    @property
    def net_paid(self) -> Decimal:
        return self.collected - self.refunded


def order_payment_sums(order_id) -> OrderPaymentSums:
    """Sums over the order's payments. Read under the order row lock to decide on them."""
    sums = Payment.objects.filter(order_id=order_id).aggregate(
        collected=Sum("amount", filter=Q(status__in=COLLECTED_STATUSES)),
        refunded=Sum("refunded_amount", filter=Q(status__in=COLLECTED_STATUSES)),
        pending=Sum("amount", filter=Q(status=PaymentStatus.PENDING)),
    )
    return OrderPaymentSums(
        collected=sums["collected"] or ZERO,
        refunded=sums["refunded"] or ZERO,
        pending=sums["pending"] or ZERO,
    )


# --- the payments socket --------------------------------------------------------------------
@dataclass(frozen=True)
class StreamOrderAccess:
    """The order a ``/ws/payments/<order_id>/`` socket follows, or why it may not."""

    order: Order | None = None
    close_code: int | None = None


def order_for_payment_stream(user: User, order_id) -> StreamOrderAccess:
    """4404 for an unknown order or another tenant's; 4403 for kitchen staff and for an order
    of the user's tenant at an outlet the user does not work at."""
    pk = parse_uuid(order_id)
    if pk is None or not user.is_authenticated:
        return StreamOrderAccess(close_code=4404)
    orders = Order.objects.select_related("outlet")
    if not user_is_super_admin(user):
        if user.tenant_id is None:
            return StreamOrderAccess(close_code=4404)
        orders = orders.filter(tenant_id=user.tenant_id)
    order = orders.filter(pk=pk).first()
    if order is None:
        return StreamOrderAccess(close_code=4404)
    if user_role(user) == KITCHEN or user_role(user) not in PAYMENT_READER_ROLES:
        return StreamOrderAccess(close_code=4403)
    if not outlets_visible_to(user).filter(pk=order.outlet_id).exists():
        return StreamOrderAccess(close_code=4403)
    return StreamOrderAccess(order=order)


def order_payment_snapshot_source(order_id) -> tuple[Order, list[Payment]]:
    """The order and its payments, for the socket snapshot.

    Precondition: the socket already authorised its user for this order.
    """
    order = Order.objects.get(pk=order_id)
    return order, list(payments_of_order(order_id))


# --- the periodic tasks ---------------------------------------------------------------------
def payment_ids_due_for_expiry(*, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    """Pending gateway payments whose QR lifetime is over, oldest deadline first."""
    return list(
        Payment.objects.filter(status=PaymentStatus.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:limit]
    )


def payment_ids_to_poll(
    *, now: datetime, created_before: datetime, limit: int = 200
) -> list[uuid.UUID]:
    """Pending gateway payments older than ``created_before`` and not yet due to expire
    (those the expiry task handles), oldest first."""
    return list(
        Payment.objects.filter(
            status=PaymentStatus.PENDING,
            created_at__lte=created_before,
            expires_at__gt=now,
        )
        .exclude(provider="")
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
