"""Every write to payments: creation, gateway webhooks, reconciliation, cancel, refunds.

Rules every service here follows:

- **Lock order**: the order row first, then the payment row. Every path that changes a
  payment (create, webhook, expiry, polling, cancel, refund) takes them in that order, so two
  of them racing on one order wait for each other instead of deadlocking.
- **A payment leaves ``pending`` once.** The services re-read the status under the lock and
  change nothing if it is already final; only a refund moves ``succeeded`` further.
- **The order follows in the same transaction**: after each change the order's
  ``paid_amount``/``refunded_amount`` are recomputed from its payments and stored through
  ``orders.services.order_set_payment_totals`` (which emits ``order.updated``); then the
  ``payment.*`` event is emitted with the payment as ``PaymentSerializer`` renders it.
- **No row lock is held across a call to a gateway**, except for refunds (see
  ``payment_refund``). A network call can take seconds; the kitchen and the other tills must
  not wait for it.

Money arithmetic (all ``Decimal``): the order's remaining balance is
``total - (collected - refunded) - pending``, where ``collected`` sums the payments that
succeeded (fully refunded ones included), ``refunded`` their refunds, and ``pending`` the QR and
e-wallet payments still waiting for the customer. Pending payments reserve their amount, so a
cashier cannot start a second QR (or take cash) for money a first QR may still bring in; cancel
the QR (``payment_cancel``) to release it at once, or let it expire.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied

from orders.models import Order, OrderStatus
from orders.selectors import order_for_user
from orders.services import order_set_payment_totals
from payments import selectors
from payments.gateways import (
    ChargeRefused,
    GatewayError,
    InvalidSignature,
    MalformedNotification,
    PaymentGateway,
    PaymentRef,
    RemoteStatus,
    UnknownGateway,
    get_gateway,
)
from payments.models import (
    GATEWAY_METHODS,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    WebhookEvent,
)
from payments.serializers import CENT, PaymentSerializer
from pos.api_errors import ApiError, DomainValidationError, InvalidTransition
from pos.audit import audit_record
from pos.ids import parse_uuid
from pos.permissions import CASHIER, MANAGEMENT_ROLES, user_has_role
from pos.streams import outbox
from pos.streams.outbox import emit
from tenants.models import User

logger = logging.getLogger("payments")
webhook_logger = logging.getLogger("payments.webhooks")

# CONTRACT.md section 2.
PAYMENT_WRITER_ROLES = frozenset(MANAGEMENT_ROLES | {CASHIER})
REFUND_ROLES = MANAGEMENT_ROLES

# A webhook that has not come after this long may be lost: the polling task asks the gateway.
POLL_AFTER = timedelta(seconds=60)

_EVENT_FOR_STATUS = {
    PaymentStatus.SUCCEEDED: "payment.succeeded",
    PaymentStatus.FAILED: "payment.failed",
    PaymentStatus.EXPIRED: "payment.expired",
}


class InvalidSignatureError(ApiError):
    status_code = 401
    default_code = "invalid_signature"
    default_detail = "The webhook signature is missing or does not match."


class AmountMismatch(ApiError):
    default_code = "amount_mismatch"
    default_detail = "The webhook amount differs from the payment's amount."


class GatewayUnavailable(ApiError):
    status_code = 502
    default_code = "gateway_error"
    default_detail = "The payment gateway could not be reached; try again."


# --- helpers --------------------------------------------------------------------------------


def _ref(payment: Payment) -> PaymentRef:
    return PaymentRef(
        id=payment.pk, method=payment.method, amount=payment.amount,
        provider_ref=payment.provider_ref,
    )


def _locked_order(order_id) -> Order:
    # of=("self",): lock the order only, not the joined outlet.
    return (
        Order.objects.select_for_update(no_key=True, of=("self",))
        .select_related("outlet")
        .get(pk=order_id)
    )


def _lock_payment(payment_id, *, provider: str | None = None) -> Payment | None:
    """Lock the payment's order, then the payment (the lock order of this module).

    Returns None for an unknown id (or one of another provider). Call inside a transaction.
    """
    pk = parse_uuid(payment_id)
    if pk is None:
        return None
    rows = Payment.objects.filter(pk=pk)
    if provider is not None:
        rows = rows.filter(provider=provider)
    # A payment never moves to another order, so reading its order id unlocked is safe.
    order_id = rows.values_list("order_id", flat=True).first()
    if order_id is None:
        return None
    _locked_order(order_id)
    return Payment.objects.select_for_update(no_key=True, of=("self",)).get(pk=pk)


def _sync_order(order_id) -> Order:
    """Store the order's payment totals as its payments now add up (same transaction)."""
    sums = selectors.order_payment_sums(order_id)
    return order_set_payment_totals(
        order_id=order_id, paid_amount=sums.collected, refunded_amount=sums.refunded
    )


def _emit(payment_id, name: str) -> Payment:
    payment = selectors.payment_with_order(payment_id)
    emit(
        outlet=payment.order.outlet,
        name=name,
        data=PaymentSerializer(payment).data,
        order_id=payment.order_id,
    )
    return payment


def _check_payable(order: Order, amount: Decimal) -> None:
    """Refuse a payment the order cannot take (400, nothing changes)."""
    if order.status == OrderStatus.CANCELLED:
        raise DomainValidationError(
            "A cancelled order takes no payments.",
            details={"order": ["This order is cancelled."]},
        )
    sums = selectors.order_payment_sums(order.pk)
    remaining = order.total - sums.net_paid - sums.pending
    if amount > remaining:
        remaining = max(remaining, Decimal("0")).quantize(CENT)
        raise DomainValidationError(
            f"The amount is above the order's remaining balance of {remaining}.",
            details={
                "amount": [f"At most {remaining} remains to be paid."],
                "remaining": [str(remaining)],
            },
        )


def _settle(payment: Payment, status: str, *, provider_ref: str = "") -> Payment:
    """Move a locked pending payment to a final status; update the order; emit."""
    payment.status = status
    payment.settled_at = timezone.now()
    fields = ["status", "settled_at", "updated_at"]
    if provider_ref and not payment.provider_ref:
        payment.provider_ref = provider_ref
        fields.append("provider_ref")
    payment.save(update_fields=fields)
    _sync_order(payment.order_id)
    return _emit(payment.pk, _EVENT_FOR_STATUS[status])


def _gateway(name: str) -> PaymentGateway:
    try:
        return get_gateway(name)
    except UnknownGateway as exc:
        # Only a misconfiguration gets here (payments store names of known adapters).
        logger.error("no gateway adapter named %r", name)
        raise GatewayUnavailable("This payment gateway is not available.") from exc


# --- creation -------------------------------------------------------------------------------
def payment_create(
    *,
    actor: User,
    order_id: uuid.UUID | str,
    method: str,
    amount: Decimal,
    tendered: Decimal | None = None,
    reference: str = "",
) -> Payment:
    """Take a payment for an order the actor may see (400 ``validation_error`` otherwise).

    Cash and card succeed at once (cash: ``tendered >= amount``, ``change_due`` is the
    difference). QRIS and e-wallet are charged through the default gateway and stay
    ``pending`` until its webhook (or the polling task) says what happened, or until they
    expire ``PAYMENT_QR_TTL`` seconds later. An amount above the order's remaining balance
    is refused (400) and nothing is written.

    Not one transaction on purpose: the gateway is asked for its QR before the order row is
    locked, then the balance is checked again under the lock and the payment inserted. A
    charge refused at that second check is cancelled at the gateway (best effort; it also
    expires there by itself).
    """
    if not user_has_role(actor, PAYMENT_WRITER_ROLES):
        raise PermissionDenied("Your role does not take payments.")
    order = order_for_user(actor, order_id)
    if order is None:
        raise DomainValidationError(
            "Invalid input: unknown order.", details={"order": ["Unknown order."]}
        )
    amount = Decimal(amount).quantize(CENT)
    if method not in PaymentMethod.values:
        raise DomainValidationError(details={"method": [f'"{method}" is not a valid method.']})
    if method == PaymentMethod.CASH:
        if tendered is None or Decimal(tendered) < amount:
            raise DomainValidationError(details={"tendered": ["Must be at least the amount."]})
        tendered = Decimal(tendered).quantize(CENT)
    else:
        tendered = None

    if method not in GATEWAY_METHODS:
        return _payment_insert(
            actor=actor, order_id=order.pk, payment_id=uuid.uuid4(), method=method,
            amount=amount, tendered=tendered, reference=reference,
        )

    gateway = _gateway(settings.PAYMENTS_DEFAULT_PROVIDER)
    _check_payable(order, amount)  # cheap early refusal, before the gateway makes a QR
    payment_id = uuid.uuid4()
    expires_at = timezone.now() + timedelta(seconds=settings.PAYMENT_QR_TTL)
    ref = PaymentRef(id=payment_id, method=method, amount=amount)
    try:
        charge = gateway.create_charge(payment=ref, expires_at=expires_at)
    except ChargeRefused as exc:
        raise DomainValidationError(str(exc), details={exc.field: [str(exc)]}) from exc
    except GatewayError as exc:
        logger.warning(
            "gateway charge failed",
            extra={"payment": str(payment_id), "provider": gateway.name, "error": str(exc)},
        )
        raise GatewayUnavailable() from exc
    try:
        return _payment_insert(
            actor=actor, order_id=order.pk, payment_id=payment_id, method=method,
            amount=amount, tendered=None, reference=reference, provider=gateway.name,
            provider_ref=charge.provider_ref, qr_string=charge.qr_string, expires_at=expires_at,
        )
    except Exception:
        try:
            gateway.cancel(payment=ref)
        except GatewayError:
            logger.warning("could not cancel an unused charge; it expires by itself",
                           extra={"payment": str(payment_id), "provider": gateway.name})
        raise


@outbox.atomic
def _payment_insert(
    *,
    actor: User,
    order_id: uuid.UUID,
    payment_id: uuid.UUID,
    method: str,
    amount: Decimal,
    tendered: Decimal | None,
    reference: str,
    provider: str = "",
    provider_ref: str = "",
    qr_string: str = "",
    expires_at: datetime | None = None,
) -> Payment:
    order = _locked_order(order_id)
    _check_payable(order, amount)
    immediate = method not in GATEWAY_METHODS
    payment = Payment.objects.create(
        id=payment_id,
        tenant_id=order.tenant_id,
        outlet_id=order.outlet_id,
        order=order,
        method=method,
        amount=amount,
        status=PaymentStatus.SUCCEEDED if immediate else PaymentStatus.PENDING,
        provider=provider,
        provider_ref=provider_ref,
        qr_string=qr_string,
        expires_at=expires_at,
        tendered=tendered,
        change_due=(tendered - amount) if tendered is not None else None,
        reference=reference,
        created_by=actor,
        settled_at=timezone.now() if immediate else None,
    )
    if immediate:
        _sync_order(order.pk)
    payment = _emit(payment.pk, "payment.created")
    if immediate:
        payment = _emit(payment.pk, "payment.succeeded")
    logger.info(
        "payment created",
        extra={"payment": str(payment.pk), "order": str(order.pk), "method": method,
               "status": payment.status},
    )
    return payment


# --- webhooks -------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookResult:
    """``applied``: the payment changed; ``ignored``: processed, nothing to change (final
    payment, or a notice that changes nothing); ``duplicate``: this event id was processed
    before."""

    outcome: str
    payment_id: uuid.UUID
    status: str


@outbox.atomic
def payment_webhook_receive(
    *, provider: str, raw_body: bytes, headers: Mapping[str, str]
) -> WebhookResult:
    """Process one gateway webhook exactly as received (raw body, headers).

    - unknown provider: ``NotFound``; bad or missing signature: 401 ``invalid_signature``;
      verified but malformed body: 400 ``validation_error``; unknown payment (or another
      provider's): ``NotFound``; amount different from the payment's: 400
      ``amount_mismatch``. None of these changes anything.
    - the same ``(provider, event_id)`` again: ``duplicate``, nothing changes. The check is
      the unique constraint on ``WebhookEvent``, inserted in a savepoint: two deliveries
      racing both try, one wins.
    - a final payment is never changed (``ignored``), whatever the webhook says.

    Every outcome is logged with the payment id; never the signature or a secret.
    """
    try:
        gateway = get_gateway(provider)
    except UnknownGateway as exc:
        webhook_logger.warning("webhook for an unknown provider", extra={"provider": provider})
        raise NotFound("Unknown payment provider.") from exc
    try:
        notice = gateway.parse_webhook(raw_body=raw_body, headers=headers)
    except InvalidSignature as exc:
        webhook_logger.warning(
            "webhook refused: invalid signature",
            extra={"provider": provider, "outcome": "invalid_signature", "reason": str(exc)},
        )
        raise InvalidSignatureError() from exc
    except MalformedNotification as exc:
        details = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        webhook_logger.warning(
            "webhook refused: malformed body",
            extra={"provider": provider, "outcome": "validation_error"},
        )
        raise DomainValidationError("Invalid webhook body.", details=details) from exc

    log_extra = {"provider": provider, "payment": notice.payment_id, "event_id": notice.event_id}
    payment = _lock_payment(notice.payment_id, provider=provider)
    if payment is None:
        webhook_logger.warning("webhook refused: unknown payment",
                               extra={**log_extra, "outcome": "not_found"})
        raise NotFound("Unknown payment.")
    if notice.amount != payment.amount:
        webhook_logger.warning(
            "webhook refused: amount mismatch",
            extra={**log_extra, "outcome": "amount_mismatch", "expected": str(payment.amount),
                   "received": str(notice.amount)},
        )
        raise AmountMismatch(
            f"The webhook says {notice.amount}, the payment is for {payment.amount}.",
            details={"amount": [f"Expected {payment.amount}."]},
        )

    applies = payment.status == PaymentStatus.PENDING and notice.status is not None
    try:
        with transaction.atomic():  # savepoint: a replay must not poison the transaction
            WebhookEvent.objects.create(
                tenant_id=payment.tenant_id,
                provider=provider,
                event_id=notice.event_id,
                payment=payment,
                outcome="applied" if applies else "ignored",
                payload=notice.payload,
            )
    except IntegrityError:
        webhook_logger.info("webhook replay ignored", extra={**log_extra, "outcome": "duplicate"})
        return WebhookResult("duplicate", payment.pk, payment.status)

    if not applies:
        if notice.status == PaymentStatus.SUCCEEDED and payment.status in (
            PaymentStatus.FAILED, PaymentStatus.EXPIRED
        ):
            # Money the gateway took for a payment we no longer wait for: someone has to
            # give it back (gateway dashboard), since final payments never change here.
            webhook_logger.warning(
                "late success for a payment no longer pending; reconcile at the gateway",
                extra={**log_extra, "outcome": "ignored", "payment_status": payment.status},
            )
        else:
            webhook_logger.info(
                "webhook ignored",
                extra={**log_extra, "outcome": "ignored", "payment_status": payment.status,
                       "notified": notice.status or "no_change"},
            )
        return WebhookResult("ignored", payment.pk, payment.status)

    payment = _settle(payment, notice.status, provider_ref=notice.provider_ref)
    webhook_logger.info(
        "webhook applied",
        extra={**log_extra, "outcome": "applied", "payment_status": payment.status},
    )
    return WebhookResult("applied", payment.pk, payment.status)


def payment_simulate(
    *, actor: User, payment_id: uuid.UUID | str, status: str, deliver: bool = True
) -> WebhookResult | None:
    """Sandbox only: "the customer" pays (``succeeded``) or gives up (``failed``).

    The sandbox records it in its ledger and, with ``deliver``, sends its signed webhook
    through the very code path real webhooks take (``payment_webhook_receive``). With
    ``deliver=False`` the webhook is "lost": the polling task finds the payment later.
    Returns the webhook's result (None when not delivered). A payment the actor cannot see
    or not made through the sandbox is ``NotFound``.
    """
    payment = selectors.payment_for_user(actor, payment_id)
    if payment is None or not user_has_role(actor, PAYMENT_WRITER_ROLES):
        raise NotFound()
    try:
        gateway = get_gateway(payment.provider) if payment.provider else None
    except UnknownGateway:
        gateway = None
    if gateway is None or not gateway.supports_simulation:
        raise NotFound("Only sandbox payments can be simulated.")
    try:
        raw_body, headers = gateway.notification_for(payment=_ref(payment), status=status)
    except InvalidSignature as exc:
        logger.error("the sandbox cannot sign: PAYMENTS_SANDBOX_SECRET is not set")
        raise GatewayUnavailable("The sandbox gateway has no signing secret configured.") from exc
    if not deliver:
        logger.info("sandbox webhook withheld", extra={"payment": str(payment.pk),
                                                       "notified": status})
        return None
    return payment_webhook_receive(provider=gateway.name, raw_body=raw_body, headers=headers)


# --- reconciliation (expiry, polling, cancel) -----------------------------------------------
def payment_remote_status(*, payment_id: uuid.UUID | str) -> RemoteStatus | None:
    """Ask the payment's gateway what became of it; None if it cannot tell us now.

    Outside any transaction (a network call). Failures are logged, never raised: the
    periodic tasks simply try again on their next run.
    """
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or not payment.provider:
        return None
    try:
        return get_gateway(payment.provider).fetch_status(payment=_ref(payment))
    except (GatewayError, UnknownGateway) as exc:
        logger.warning(
            "gateway status check failed",
            extra={"payment": str(payment.pk), "provider": payment.provider, "error": str(exc)},
        )
        return None


@outbox.atomic
def payment_reconcile(
    *,
    payment_id: uuid.UUID | str,
    remote: RemoteStatus | None,
    now: datetime,
    expire_due: bool,
) -> Payment | None:
    """Bring a pending payment in line with what its gateway said (``remote``), and expire
    it if ``expire_due`` and its ``expires_at`` has passed.

    A final payment is returned unchanged. A remote status whose amount differs from the
    payment's is not applied (logged). Returns the payment, or None for an unknown id.
    """
    payment = _lock_payment(payment_id)
    if payment is None:
        return None
    if payment.status != PaymentStatus.PENDING:
        return payment
    extra = {"payment": str(payment.pk), "provider": payment.provider}
    target = remote.status if remote is not None else None
    if target is not None and remote.amount is not None and remote.amount != payment.amount:
        logger.error(
            "gateway status amount differs from the payment's; not applied",
            extra={**extra, "received": str(remote.amount), "expected": str(payment.amount)},
        )
        target = None
    if target is not None:
        logger.info("payment reconciled from gateway status", extra={**extra, "to": target})
        return _settle(payment, target, provider_ref=remote.provider_ref)
    if expire_due and payment.expires_at is not None and payment.expires_at <= now:
        logger.info("payment expired", extra=extra)
        return _settle(payment, PaymentStatus.EXPIRED)
    return payment


def payments_expire_due(*, now: datetime | None = None) -> int:
    """Expire pending QR / e-wallet payments past ``expires_at``; returns how many changed.

    Each payment gets a last status check first: a payment made just before its deadline
    whose webhook was lost is recorded as succeeded, not expired. Idempotent.
    """
    now = now or timezone.now()
    changed = 0
    for payment_id in selectors.payment_ids_due_for_expiry(now=now):
        remote = payment_remote_status(payment_id=payment_id)
        before = Payment.objects.filter(pk=payment_id).values_list("status", flat=True).first()
        payment = payment_reconcile(payment_id=payment_id, remote=remote, now=now,
                                    expire_due=True)
        if payment is not None and payment.status != before:
            changed += 1
    return changed


def payments_poll_pending(*, now: datetime | None = None) -> int:
    """Ask the gateway about payments pending for over ``POLL_AFTER`` (webhooks get lost);
    returns how many changed. Idempotent."""
    now = now or timezone.now()
    changed = 0
    for payment_id in selectors.payment_ids_to_poll(now=now, created_before=now - POLL_AFTER):
        remote = payment_remote_status(payment_id=payment_id)
        if remote is None or remote.status is None:
            continue
        payment = payment_reconcile(payment_id=payment_id, remote=remote, now=now,
                                    expire_due=False)
        if payment is not None and payment.status != PaymentStatus.PENDING:
            changed += 1
    return changed


def payment_cancel(*, actor: User, payment_id: uuid.UUID | str) -> Payment:
    """Void a pending QR / e-wallet payment so its amount is free again.

    The gateway is told first, so the customer can no longer pay it; if the customer paid
    before the cancel reached the gateway, the payment becomes ``succeeded`` instead of
    ``failed`` (the answer says which). Anything but a pending payment: 409
    ``invalid_transition``, nothing changes.
    """
    payment = selectors.payment_for_user(actor, payment_id)
    if payment is None or not user_has_role(actor, PAYMENT_WRITER_ROLES):
        raise NotFound()
    if payment.status != PaymentStatus.PENDING or not payment.provider:
        raise InvalidTransition(
            f"Only a pending payment can be cancelled; this one is {payment.status}.",
            details={"from": payment.status, "to": PaymentStatus.FAILED},
        )
    gateway = _gateway(payment.provider)
    try:
        remote = gateway.cancel(payment=_ref(payment))
    except GatewayError as exc:
        logger.warning("gateway cancel failed",
                       extra={"payment": str(payment.pk), "error": str(exc)})
        raise GatewayUnavailable() from exc
    if remote.status != PaymentStatus.SUCCEEDED:
        remote = RemoteStatus(status=PaymentStatus.FAILED, provider_ref=remote.provider_ref)
    result = payment_reconcile(payment_id=payment.pk, remote=remote, now=timezone.now(),
                               expire_due=False)
    logger.info("payment cancel", extra={"payment": str(payment.pk), "status": result.status})
    return selectors.payment_with_order(result.pk)


# --- refunds --------------------------------------------------------------------------------
@outbox.atomic
def payment_refund(
    *,
    actor: User,
    payment_id: uuid.UUID | str,
    amount: Decimal | None = None,
    reason: str = "",
) -> Refund:
    """Give back part or all of a succeeded payment (managers, owners, super admins).

    ``amount`` defaults to everything not refunded yet and may not exceed it (400). Only a
    ``succeeded`` payment can be refunded (409 ``invalid_transition``); the last refund that
    reaches its amount makes it ``refunded``. A gateway payment is refunded at the gateway
    too, with the refund id as the gateway's idempotency key.

    The order and payment rows stay locked while the gateway is asked: refunds are rare, and
    a second refund must see the first before it is checked, or more than was paid could go
    back. If the gateway refuses, nothing is written (502 ``gateway_error``).
    """
    visible = selectors.payment_for_user(actor, payment_id)
    if visible is None:
        raise NotFound()
    if not user_has_role(actor, REFUND_ROLES):
        raise PermissionDenied("Only a manager or the owner can refund.")
    payment = _lock_payment(visible.pk)
    if payment.status != PaymentStatus.SUCCEEDED:
        raise InvalidTransition(
            f"Only a succeeded payment can be refunded; this one is {payment.status}.",
            details={"from": payment.status, "to": PaymentStatus.REFUNDED},
        )
    refundable = payment.amount - payment.refunded_amount
    amount = refundable if amount is None else Decimal(amount).quantize(CENT)
    if amount <= 0 or amount > refundable:
        raise DomainValidationError(
            f"At most {refundable} of this payment can be refunded.",
            details={"amount": [f"At most {refundable} can be refunded."]},
        )
    refund_id = uuid.uuid4()
    if payment.provider:
        gateway = _gateway(payment.provider)
        try:
            gateway.refund(payment=_ref(payment), refund_id=refund_id, amount=amount,
                           reason=reason)
        except ChargeRefused as exc:
            raise DomainValidationError(str(exc), details={exc.field: [str(exc)]}) from exc
        except GatewayError as exc:
            logger.warning("gateway refund failed",
                           extra={"payment": str(payment.pk), "error": str(exc)})
            raise GatewayUnavailable() from exc
    refund = Refund.objects.create(
        id=refund_id, tenant_id=payment.tenant_id, payment=payment, amount=amount,
        reason=reason, created_by=actor,
    )
    payment.refunded_amount += amount
    if payment.refunded_amount == payment.amount:
        payment.status = PaymentStatus.REFUNDED
    payment.save(update_fields=["refunded_amount", "status", "updated_at"])
    _sync_order(payment.order_id)
    refund.payment = _emit(payment.pk, "payment.refunded")
    audit_record(
        actor=actor,
        action="payment.refunded",
        target_type="payment",
        target_id=payment.pk,
        tenant_id=payment.tenant_id,
        outlet_id=payment.outlet_id,
        details={
            "refund": refund.pk,
            "amount": amount,
            "reason": reason,
            "method": payment.method,
            "payment_amount": payment.amount,
            "refunded_total": payment.refunded_amount,
            "order": payment.order_id,
            "order_number": refund.payment.order.number,
        },
    )
    logger.info("payment refunded", extra={"payment": str(payment.pk), "refund": str(refund.pk),
                                           "amount": str(amount)})
    return refund
