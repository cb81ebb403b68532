"""``/ws/orders/<outlet_id>/``: the cashier tablets' view of an outlet.

Receives ``order.*``, ``payment.*`` and ``product.availability_changed``; the snapshot holds
the outlet's active orders (neither completed nor cancelled), oldest first.
"""

from __future__ import annotations

from typing import Any

from orders.selectors import active_orders_for_outlet
from orders.serializers import OrderSerializer
from pos.streams.consumers import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    Access,
    StreamConsumer,
)
from tenants.selectors import outlet_for_user, outlet_in_user_tenant


class OrdersStreamConsumer(StreamConsumer):
    stream_name = "orders"

    def authorize(self, user) -> Access:
        outlet_id = self.scope["url_route"]["kwargs"]["outlet_id"]
        outlet = outlet_in_user_tenant(user, outlet_id)
        if outlet is None:
            return Access.refuse(CLOSE_NOT_FOUND)  # unknown and another tenant's look alike
        if outlet_for_user(user, outlet.pk) is None:
            return Access.refuse(CLOSE_FORBIDDEN)
        return Access(outlet_id=str(outlet.pk))

    def accepts(self, name: str, order_id: str | None, station_id: str | None) -> bool:
        return (
            name.startswith("order.")
            or name.startswith("payment.")
            or name == "product.availability_changed"
        )

    def snapshot(self) -> dict[str, Any]:
        orders = active_orders_for_outlet(self.subscription.outlet_id)
        return {"orders": OrderSerializer(orders, many=True).data}
