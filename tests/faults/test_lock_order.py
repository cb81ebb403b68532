"""Two cashiers' transactions touching the same product must wait for each other, not deadlock.

Every event-writing transaction holds its outlet's stream cursor row from ``emit`` to COMMIT.
PostgreSQL checks Django's foreign keys at COMMIT (they are DEFERRABLE INITIALLY DEFERRED),
taking a KEY SHARE lock on each referenced row *after* the cursor lock. A transaction that
locks such a row FOR UPDATE and then emits waits for the cursor the other one holds, while
the other one's COMMIT waits for that row: PostgreSQL aborts one of them ("deadlock
detected", a 500 to the cashier). The fault runs first met it as 500s on order confirmation
with two server processes; these tests reproduce it step by step.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import close_old_connections, connection, transaction

from catalog.models import Product
from catalog.services import product_set_availability
from orders.models import Order
from orders.services import order_create, order_transition
from tenants.models import Outlet

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _items(product_ids):
    return [{"product": pid, "quantity": 1, "modifiers": [], "note": ""} for pid in product_ids]


def _run_against_open_creation(restaurant, contender) -> dict:
    """Create an order and hold its transaction open (cursor locked, FK checks pending) while
    ``contender`` runs in another connection; then commit. Returns each side's outcome."""
    outlet = Outlet.objects.get(pk=restaurant.outlet_id)
    outcome: dict[str, object] = {}
    emitted = threading.Event()
    contender_started = threading.Event()

    def create() -> None:
        try:
            with transaction.atomic():
                order_create(actor=None, outlet=outlet, type="takeaway",
                             items=_items(restaurant.product_ids))
                emitted.set()
                contender_started.wait(5)
                time.sleep(0.5)  # let the contender lock its rows and queue on the cursor
            outcome["create"] = "committed"
        except Exception as exc:
            outcome["create"] = exc
        finally:
            connection.close()

    def contend() -> None:
        emitted.wait(5)
        contender_started.set()
        try:
            contender()
            outcome["contender"] = "committed"
        except Exception as exc:
            outcome["contender"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=create), threading.Thread(target=contend)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    close_old_connections()
    return outcome


@pytest.mark.timeout(60)
def test_confirm_while_another_order_with_the_same_product_commits(restaurant):
    outlet = Outlet.objects.get(pk=restaurant.outlet_id)
    waiting = order_create(actor=None, outlet=outlet, type="takeaway",
                           items=_items(restaurant.product_ids))

    outcome = _run_against_open_creation(
        restaurant,
        lambda: order_transition(order_id=waiting.pk, to_status="confirmed", system=True),
    )

    assert outcome == {"create": "committed", "contender": "committed"}
    assert Order.objects.get(pk=waiting.pk).status == "confirmed"
    assert Order.objects.filter(outlet_id=restaurant.outlet_id).count() == 2


@pytest.mark.timeout(60)
def test_availability_change_while_an_order_of_that_product_commits(restaurant):
    product = Product.objects.get(pk=restaurant.product_ids[0])

    outcome = _run_against_open_creation(
        restaurant,
        lambda: product_set_availability(product=product, is_available=False),
    )

    assert outcome == {"create": "committed", "contender": "committed"}
    assert Product.objects.get(pk=product.pk).is_available is False
