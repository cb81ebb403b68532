"""Midtrans Core API adapter: QRIS and GoPay charges, status checks, cancel, refund, and
verification of Midtrans' HTTP notifications.

Protocol facts used here (Midtrans documentation, Core API):

- Every call authenticates with HTTP Basic, the server key as user name, empty password.
- ``POST /v2/charge`` creates the transaction; our payment id is Midtrans' ``order_id``.
  ``gross_amount`` is a whole number of rupiah. ``custom_expiry`` makes Midtrans expire the
  QR when ours does, so a customer can never pay a QR we already gave up on.
- ``GET /v2/<order_id>/status``, ``POST /v2/<order_id>/cancel``,
  ``POST /v2/<order_id>/refund`` (``refund_key`` makes retries refund once).
- Answers carry their own ``status_code`` string ("200", "201", "404", "412"...) besides
  the HTTP status.
- A notification is authentic when its ``signature_key`` equals
  SHA-512(order_id + status_code + gross_amount + server key), hex.
- ``transaction_status``: ``settlement`` and ``capture`` (unless the fraud check says
  ``challenge``) mean paid; ``deny``, ``cancel`` and ``failure`` failed; ``expire`` expired;
  ``pending`` and the refund statuses change nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from payments.gateways.base import (
    Charge,
    ChargeRefused,
    GatewayError,
    InvalidSignature,
    MalformedNotification,
    Notification,
    PaymentGateway,
    PaymentRef,
    RemoteStatus,
    signatures_match,
)

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0

STATUS_MAP: dict[str, str | None] = {
    "settlement": "succeeded",
    "capture": "succeeded",
    "deny": "failed",
    "cancel": "failed",
    "failure": "failed",
    "expire": "expired",
    "pending": None,
    "authorize": None,
    "refund": None,
    "partial_refund": None,
    "chargeback": None,
    "partial_chargeback": None,
}

_SIGNED_FIELDS = ("order_id", "status_code", "gross_amount", "signature_key")


def map_transaction_status(transaction_status: str, fraud_status: str | None) -> str | None:
    """The payment status a Midtrans ``transaction_status`` means (None: no change)."""
    if transaction_status == "capture" and fraud_status == "challenge":
        return None  # held for manual review at Midtrans: not money yet
    return STATUS_MAP.get(transaction_status)


def signature_for(*, order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    raw = f"{order_id}{status_code}{gross_amount}{server_key}".encode()
    return hashlib.sha512(raw).hexdigest()


class MidtransGateway(PaymentGateway):
    name = "midtrans"

    def __init__(
        self,
        *,
        server_key: str | None = None,
        base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._server_key = settings.MIDTRANS_SERVER_KEY if server_key is None else server_key
        self._base_url = (base_url or settings.MIDTRANS_BASE_URL).rstrip("/")
        self._transport = transport

    def __repr__(self) -> str:  # never show the key, even in a traceback's locals
        return f"<MidtransGateway {self._base_url}>"

    # --- HTTP -------------------------------------------------------------------------------
    def _client(self) -> httpx.Client:
        if not self._server_key:
            raise GatewayError("MIDTRANS_SERVER_KEY is not set")
        return httpx.Client(
            base_url=self._base_url,
            auth=httpx.BasicAuth(self._server_key, ""),
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            timeout=TIMEOUT_S,
            transport=self._transport,
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call; returns the JSON answer whatever its ``status_code``.

        Raises ``GatewayError`` when the network fails, on HTTP 5xx and 401, or when the
        answer is not a JSON object. Other HTTP errors still carry Midtrans' JSON answer,
        which the caller reads.
        """
        try:
            with self._client() as client:
                response = client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise GatewayError(f"Midtrans {method} {path} failed: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 401:
            raise GatewayError(f"Midtrans {method} {path} answered HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise GatewayError(f"Midtrans {method} {path} answered non-JSON") from exc
        if not isinstance(data, dict):
            raise GatewayError(f"Midtrans {method} {path} answered an unexpected shape")
        if response.status_code == 404 and "status_code" not in data:
            data["status_code"] = "404"
        return data

    # --- interface --------------------------------------------------------------------------
    def create_charge(self, *, payment: PaymentRef, expires_at: datetime) -> Charge:
        gross = _whole_rupiah(payment.amount)
        seconds = max(60, int((expires_at - timezone.now()).total_seconds()))
        body: dict[str, Any] = {
            "transaction_details": {"order_id": str(payment.id), "gross_amount": gross},
            "custom_expiry": {"expiry_duration": seconds, "unit": "second"},
        }
        if payment.method == "qris":
            body["payment_type"] = "qris"
            body["qris"] = {"acquirer": "gopay"}
        elif payment.method == "ewallet":
            body["payment_type"] = "gopay"
        else:
            raise ChargeRefused(f"Midtrans does not take {payment.method} here.", field="method")
        data = self._call("POST", "/v2/charge", body)
        if data.get("status_code") != "201" or not data.get("transaction_id"):
            raise GatewayError(
                f"Midtrans refused the charge: {data.get('status_code')} "
                f"{data.get('status_message', '')}".strip()
            )
        qr = data.get("qr_string") or _action_url(data, "deeplink-redirect") or _action_url(
            data, "generate-qr-code"
        )
        if not qr:
            raise GatewayError("Midtrans answered the charge without a QR string or link")
        return Charge(qr_string=qr, provider_ref=str(data["transaction_id"]))

    def parse_webhook(self, *, raw_body: bytes, headers: Mapping[str, str]) -> Notification:
        try:
            body = json.loads(raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidSignature("body is not JSON, so it carries no signature") from exc
        if not isinstance(body, dict) or not all(
            isinstance(body.get(name), str) for name in _SIGNED_FIELDS
        ):
            raise InvalidSignature("signature_key or a signed field is missing")
        if not self._server_key:
            raise InvalidSignature("MIDTRANS_SERVER_KEY is not set")
        expected = signature_for(
            order_id=body["order_id"],
            status_code=body["status_code"],
            gross_amount=body["gross_amount"],
            server_key=self._server_key,
        )
        if not signatures_match(body["signature_key"], expected):
            raise InvalidSignature("signature_key does not match")

        errors: dict[str, list[str]] = {}
        amount = _decimal(body["gross_amount"])
        if amount is None:
            errors["gross_amount"] = ["Not a decimal amount."]
        transaction_status = body.get("transaction_status")
        if not isinstance(transaction_status, str) or not transaction_status:
            errors["transaction_status"] = ["Required."]
        transaction_id = body.get("transaction_id")
        if not isinstance(transaction_id, str) or not transaction_id:
            errors["transaction_id"] = ["Required."]
        if errors:
            raise MalformedNotification(errors)
        # Midtrans sends one notification per status change and may repeat it: the
        # transaction and the status it reports identify the event.
        return Notification(
            event_id=f"{transaction_id}:{transaction_status}",
            payment_id=body["order_id"],
            status=map_transaction_status(transaction_status, body.get("fraud_status")),
            amount=amount,
            provider_ref=transaction_id,
            payload={k: v for k, v in body.items() if k != "signature_key"},
        )

    def fetch_status(self, *, payment: PaymentRef) -> RemoteStatus:
        data = self._call("GET", f"/v2/{payment.id}/status")
        return _remote_status(data)

    def cancel(self, *, payment: PaymentRef) -> RemoteStatus:
        data = self._call("POST", f"/v2/{payment.id}/cancel")
        if data.get("status_code") == "412":
            # "cannot modify the status": it already moved on (paid, most likely). Ask.
            return self.fetch_status(payment=payment)
        if data.get("status_code") == "404":
            # Never reached Midtrans (or already purged): nothing can pay it any more.
            return RemoteStatus(status="failed")
        if data.get("status_code") != "200":
            raise GatewayError(f"Midtrans refused the cancel: {data.get('status_code')}")
        return _remote_status(data)

    def refund(
        self, *, payment: PaymentRef, refund_id: uuid.UUID, amount: Decimal, reason: str
    ) -> None:
        body = {
            "refund_key": str(refund_id),
            "amount": _whole_rupiah(amount),
            "reason": reason[:255],
        }
        data = self._call("POST", f"/v2/{payment.id}/refund", body)
        if data.get("status_code") != "200":
            raise GatewayError(
                f"Midtrans refused the refund: {data.get('status_code')} "
                f"{data.get('status_message', '')}".strip()
            )


def _remote_status(data: dict[str, Any]) -> RemoteStatus:
    if data.get("status_code") == "404":
        return RemoteStatus(status=None)
    transaction_status = data.get("transaction_status")
    if not isinstance(transaction_status, str):
        raise GatewayError(
            f"Midtrans answered without a transaction_status: {data.get('status_code')}"
        )
    return RemoteStatus(
        status=map_transaction_status(transaction_status, data.get("fraud_status")),
        amount=_decimal(data.get("gross_amount")),
        provider_ref=str(data.get("transaction_id") or ""),
    )


def _action_url(data: dict[str, Any], name: str) -> str:
    for action in data.get("actions") or ():
        if isinstance(action, dict) and action.get("name") == name:
            return str(action.get("url") or "")
    return ""


def _whole_rupiah(amount: Decimal) -> int:
    if amount != amount.to_integral_value():
        raise ChargeRefused("Midtrans takes whole rupiah amounts only.", field="amount")
    return int(amount)


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None
