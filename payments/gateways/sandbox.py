"""The sandbox gateway: a stand-in for a real QR gateway, for development and demos.

It makes a QR payload, keeps what "the customer" did in a small ledger in the cache (so the
status-polling task has a remote side to ask), and signs its webhooks like a real gateway
would: HMAC-SHA256 over the raw body, hex, in the ``X-Signature`` header, keyed by the
``PAYMENTS_SANDBOX_SECRET`` setting. Body::

    {"event_id": "...", "payment": "<payment id>", "status": "succeeded"|"failed",
     "amount": "45000.00"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.cache import cache

from payments.gateways.base import (
    Charge,
    GatewayError,
    InvalidSignature,
    MalformedNotification,
    Notification,
    PaymentGateway,
    PaymentRef,
    RemoteStatus,
    signatures_match,
)

SIGNATURE_HEADER = "X-Signature"
WEBHOOK_STATUSES = frozenset({"succeeded", "failed"})
# Long enough for any QR TTL and a few retries of the polling task.
LEDGER_TTL_S = 24 * 3600


def _ledger_key(payment_id: uuid.UUID | str) -> str:
    return f"payments:sandbox:{payment_id}"


class SandboxGateway(PaymentGateway):
    name = "sandbox"
    supports_simulation = True

    def __init__(self, secret: str | None = None) -> None:
        self._secret = settings.PAYMENTS_SANDBOX_SECRET if secret is None else secret

    # --- signing ----------------------------------------------------------------------------
    def sign(self, raw_body: bytes) -> str:
        if not self._secret:
            raise InvalidSignature("PAYMENTS_SANDBOX_SECRET is not set")
        return hmac.new(self._secret.encode(), raw_body, hashlib.sha256).hexdigest()

    def notification_for(
        self, *, payment: PaymentRef, status: str, amount: Decimal | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers of the webhook the sandbox sends when "the customer"
        pays (``succeeded``) or gives up (``failed``); also records it in the ledger."""
        if status not in WEBHOOK_STATUSES:
            raise ValueError(f"sandbox webhooks carry succeeded or failed, not {status!r}")
        paid = payment.amount if amount is None else amount
        body = json.dumps(
            {
                "event_id": f"sbx_evt_{uuid.uuid4().hex}",
                "payment": str(payment.id),
                "status": status,
                "amount": f"{paid:.2f}",
            },
            separators=(",", ":"),
        ).encode()
        headers = {SIGNATURE_HEADER: self.sign(body)}
        self._record(payment.id, status=status, amount=paid)
        return body, headers

    # --- ledger -----------------------------------------------------------------------------
    # The sandbox keeps its "remote" state in the cache; the cache being unreachable is the
    # sandbox gateway being unreachable, which callers already handle as GatewayError.
    def _record(self, payment_id: uuid.UUID, *, status: str, amount: Decimal) -> None:
        try:
            cache.set(
                _ledger_key(payment_id),
                {"status": status, "amount": f"{amount:.2f}"},
                LEDGER_TTL_S,
            )
        except Exception as exc:
            raise GatewayError("the sandbox gateway's ledger is unreachable") from exc

    def _recorded(self, payment_id: uuid.UUID) -> dict[str, Any] | None:
        try:
            return cache.get(_ledger_key(payment_id))
        except Exception as exc:
            raise GatewayError("the sandbox gateway's ledger is unreachable") from exc

    # --- interface --------------------------------------------------------------------------
    def create_charge(self, *, payment: PaymentRef, expires_at: datetime) -> Charge:
        ref = f"sbx_{payment.id.hex}"
        self._record(payment.id, status="pending", amount=payment.amount)
        qr = (
            f"sandbox-qris://pay?ref={ref}&amount={payment.amount:.2f}"
            f"&method={payment.method}&expires={int(expires_at.timestamp())}"
        )
        return Charge(qr_string=qr, provider_ref=ref)

    def parse_webhook(self, *, raw_body: bytes, headers: Mapping[str, str]) -> Notification:
        given = headers.get(SIGNATURE_HEADER) or ""
        expected = self.sign(raw_body)
        if not given or not signatures_match(given, expected):
            raise InvalidSignature("signature does not match the body")
        try:
            body = json.loads(raw_body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedNotification({"body": ["Not valid JSON."]}) from exc
        if not isinstance(body, dict):
            raise MalformedNotification({"body": ["Expected a JSON object."]})
        errors: dict[str, list[str]] = {}
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id or len(event_id) > 200:
            errors["event_id"] = ["A non-empty string of at most 200 characters is required."]
        payment_id = body.get("payment")
        if not isinstance(payment_id, str) or not payment_id:
            errors["payment"] = ["A payment id is required."]
        status = body.get("status")
        if status not in WEBHOOK_STATUSES:
            errors["status"] = ['Must be "succeeded" or "failed".']
        amount = _decimal(body.get("amount"))
        if amount is None:
            errors["amount"] = ["A decimal amount is required."]
        if errors:
            raise MalformedNotification(errors)
        return Notification(
            event_id=event_id,
            payment_id=payment_id,
            status=status,
            amount=amount,
            payload=json.loads(raw_body),
        )

    def fetch_status(self, *, payment: PaymentRef) -> RemoteStatus:
        recorded = self._recorded(payment.id)
        if not recorded or recorded["status"] not in WEBHOOK_STATUSES:
            return RemoteStatus(status=None)
        return RemoteStatus(status=recorded["status"], amount=Decimal(recorded["amount"]))

    def cancel(self, *, payment: PaymentRef) -> RemoteStatus:
        recorded = self._recorded(payment.id)
        if recorded and recorded["status"] == "succeeded":
            return RemoteStatus(status="succeeded", amount=Decimal(recorded["amount"]))
        self._record(payment.id, status="failed", amount=payment.amount)
        return RemoteStatus(status="failed", amount=payment.amount)

    def refund(
        self, *, payment: PaymentRef, refund_id: uuid.UUID, amount: Decimal, reason: str
    ) -> None:
        # The sandbox holds no money: a refund is accepted as asked.
        return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None
