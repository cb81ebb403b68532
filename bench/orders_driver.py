"""Real order traffic for the service mode: orders walk their lifecycle through the services.

Each step is one service call (one transaction, its outbox rows included): ``order_create``
(``order.created``) or ``order_transition`` to the next status (``order.status_changed``;
confirming also fires a kitchen ticket, whose ``ticket.*`` event the orders socket does not
forward). A handful of orders are in flight at once and advance in turn, as at a till.
"""

from __future__ import annotations

from collections import deque

from orders.models import OrderStatus as S
from orders.services import order_create, order_transition
from tenants.models import Outlet, User

LIFECYCLE = (S.CONFIRMED, S.PREPARING, S.READY, S.SERVED, S.COMPLETED)


class OrderFlow:
    """Calls one service per ``step()``; keeps ``in_flight`` orders moving round-robin."""

    def __init__(self, *, outlet_id: str, user_id: str, products: list[str],
                 in_flight: int = 10) -> None:
        self.outlet = Outlet.objects.get(pk=outlet_id)
        self.actor = User.objects.get(pk=user_id)
        self.products = products
        self.in_flight = in_flight
        self.queue: deque[tuple[str, int]] = deque()  # (order id, index of its next status)
        self.created = self.transitions = self.completed = 0
        self.first_seq: int | None = None

    def step(self) -> None:
        if len(self.queue) < self.in_flight:
            self._create()
            return
        order_id, index = self.queue.popleft()
        try:
            order_transition(order_id=order_id, to_status=LIFECYCLE[index], actor=self.actor)
        except Exception:
            self.queue.append((order_id, index))  # rolled back: it will be tried again
            raise
        self.transitions += 1
        if index + 1 < len(LIFECYCLE):
            self.queue.append((order_id, index + 1))
        else:
            self.completed += 1

    def _create(self) -> None:
        items = [
            {"product": product, "quantity": n + 1, "modifiers": [], "note": ""}
            for n, product in enumerate(self.products)
        ]
        order = order_create(actor=self.actor, outlet=self.outlet, type="dine_in",
                             items=items, table="12", customer_name="Bench")
        self.created += 1
        self.queue.append((str(order.pk), 0))

    def summary(self) -> dict:
        return {"orders_created": self.created, "transitions": self.transitions,
                "orders_completed": self.completed}
