"""Gateway adapters and their registry.

``get_gateway(name)`` builds the adapter for a provider name (as stored on payments and used in
``/api/payments/webhook/<provider>/``); ``default_gateway()`` the one new QR and e-wallet
payments use (setting ``PAYMENTS_DEFAULT_PROVIDER``). To add a gateway, implement
``payments.gateways.base.PaymentGateway`` and add its class to ``GATEWAYS`` (docs/payments.md).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

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
)
from payments.gateways.midtrans import MidtransGateway
from payments.gateways.sandbox import SandboxGateway

__all__ = [
    "GATEWAYS",
    "Charge",
    "ChargeRefused",
    "GatewayError",
    "InvalidSignature",
    "MalformedNotification",
    "Notification",
    "PaymentGateway",
    "PaymentRef",
    "RemoteStatus",
    "UnknownGateway",
    "default_gateway",
    "get_gateway",
]

# Provider name -> factory. Adapters are built per use, so settings changes apply at once.
GATEWAYS: dict[str, Callable[[], PaymentGateway]] = {
    SandboxGateway.name: SandboxGateway,
    MidtransGateway.name: MidtransGateway,
}


class UnknownGateway(LookupError):
    """No adapter of that name."""


def get_gateway(name: str) -> PaymentGateway:
    factory = GATEWAYS.get(name)
    if factory is None:
        raise UnknownGateway(name)
    return factory()


def default_gateway() -> PaymentGateway:
    return get_gateway(settings.PAYMENTS_DEFAULT_PROVIDER)
