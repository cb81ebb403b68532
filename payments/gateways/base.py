"""The one interface every payment gateway adapter implements.

An adapter turns the gateway's protocol into four plain questions the payment services ask:
create a charge (a QR or deeplink the customer pays), read and verify a webhook, look up a
payment's status (webhooks get lost), and cancel or refund. Adapters hold no database state and
never touch models: the services lock rows, decide and write. An adapter reads its secrets from
settings when it is built and never logs them, nor a signature.
"""

from __future__ import annotations

import abc
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar


def signatures_match(given: Any, expected_hex: str) -> bool:
    """Constant-time comparison of a received hex signature with the expected one.

    Compares bytes: ``hmac.compare_digest`` refuses non-ASCII text, and a forged header full
    of it must be a bad signature (401), not a crash.
    """
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(
        given.strip().lower().encode("utf-8", "surrogatepass"), expected_hex.encode("ascii")
    )


class GatewayError(Exception):
    """The gateway could not be reached or answered something unusable (retry later)."""


class ChargeRefused(Exception):
    """The gateway cannot take this charge as asked (amount format, method): a client error."""

    def __init__(self, message: str, *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.field = field


class InvalidSignature(Exception):
    """A webhook whose origin cannot be verified: missing or wrong signature, no secret set."""


class MalformedNotification(Exception):
    """A verified webhook whose body lacks what the contract requires."""


@dataclass(frozen=True)
class PaymentRef:
    """What an adapter needs to know about a payment (no model instance crosses the boundary)."""

    id: uuid.UUID
    method: str
    amount: Decimal
    provider_ref: str = ""


@dataclass(frozen=True)
class Charge:
    """A charge the gateway created: what the customer scans, and the gateway's own id."""

    qr_string: str
    provider_ref: str


@dataclass(frozen=True)
class RemoteStatus:
    """The gateway's view of a payment.

    ``status`` is the payment status it maps to (``succeeded``, ``failed``, ``expired``) or
    None when the gateway has nothing final to say (still pending, unknown to it, a refund
    notice). ``amount`` is what the gateway says the payment is for, when it says.
    """

    status: str | None
    amount: Decimal | None = None
    provider_ref: str = ""


@dataclass(frozen=True)
class Notification:
    """A verified webhook: which payment, what happened, and the id that makes it unique."""

    event_id: str
    payment_id: str
    status: str | None
    amount: Decimal
    provider_ref: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


class PaymentGateway(abc.ABC):
    """Base of the adapters. ``name`` is the ``provider`` stored on payments and the
    ``<provider>`` of the webhook URL."""

    name: ClassVar[str]
    #: Only the sandbox can be told to "pay" (``POST /api/payments/{id}/simulate/``).
    supports_simulation: ClassVar[bool] = False

    @abc.abstractmethod
    def create_charge(self, *, payment: PaymentRef, expires_at: datetime) -> Charge:
        """Ask the gateway for a charge valid until ``expires_at``.

        Raises ``ChargeRefused`` (the request can never work) or ``GatewayError``.
        Called outside any database transaction.
        """

    @abc.abstractmethod
    def parse_webhook(self, *, raw_body: bytes, headers: Mapping[str, str]) -> Notification:
        """Verify and read a webhook exactly as received.

        Raises ``InvalidSignature`` before anything of the body is trusted, and
        ``MalformedNotification`` for a verified body that misses required fields.
        """

    @abc.abstractmethod
    def fetch_status(self, *, payment: PaymentRef) -> RemoteStatus:
        """Ask the gateway what became of the payment. Raises ``GatewayError``."""

    @abc.abstractmethod
    def cancel(self, *, payment: PaymentRef) -> RemoteStatus:
        """Void a pending charge so it can no longer be paid; returns the resulting status
        (``succeeded`` if the customer paid first). Raises ``GatewayError``."""

    @abc.abstractmethod
    def refund(
        self, *, payment: PaymentRef, refund_id: uuid.UUID, amount: Decimal, reason: str
    ) -> None:
        """Give ``amount`` back to the payer. ``refund_id`` is stable across retries so the
        gateway refunds once. Raises ``GatewayError`` when the gateway did not accept it."""
