"""``/ws/payments/<order_id>/``: one order's payments, for the tablet at the till.

The socket follows the order's outlet stream and forwards only that order's ``payment.*`` and
``order.status_changed`` events. Its snapshot is the order's payment status with every
payment, so a tablet that connects after the customer paid sees it at once.
"""

from __future__ import annotations

from typing import Any

from payments.selectors import order_for_payment_stream, order_payment_snapshot_source
from payments.serializers import PaymentSerializer
from pos.streams.consumers import Access, StreamConsumer


class PaymentsStreamConsumer(StreamConsumer):
    stream_name = "payments"
    order_id: str | None = None

    def authorize(self, user) -> Access:
        access = order_for_payment_stream(user, self.scope["url_route"]["kwargs"]["order_id"])
        if access.order is None:
            return Access.refuse(access.close_code)
        self.order_id = str(access.order.pk)
        return Access(outlet_id=str(access.order.outlet_id))

    def accepts(self, name: str, order_id: str | None, station_id: str | None) -> bool:
        return order_id == self.order_id and (
            name.startswith("payment.") or name == "order.status_changed"
        )

    def snapshot(self) -> dict[str, Any]:
        order, payments = order_payment_snapshot_source(self.order_id)
        return {
            "order": str(order.pk),
            "status": order.status,
            "payment_status": order.payment_status,
            "total": f"{order.total:.2f}",
            "paid_amount": f"{order.paid_amount:.2f}",
            "refunded_amount": f"{order.refunded_amount:.2f}",
            "payments": PaymentSerializer(payments, many=True).data,
        }
