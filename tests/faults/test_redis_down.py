"""While Redis is down, the REST API and new sockets keep working.

The design needs Redis for speed only: events go through the outbox in PostgreSQL, and
sockets catch up from the log. So with Redis stopped, a cashier must still be able to create,
confirm and pay an order, and a screen must still be able to connect and get its snapshot
(rate limits, which live in Redis, are then not enforced rather than failing the request).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.sync.client import connect

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _socket_snapshot(server, restaurant) -> str:
    """The type of the first frame on a new orders socket, or how it failed."""
    url = (f"{server.ws_url}/ws/orders/{restaurant.outlet_id}/"
           f"?token={restaurant.cashier_token}")
    try:
        with connect(url, open_timeout=5, close_timeout=2, proxy=None) as ws:
            return json.loads(ws.recv(timeout=10))["type"]
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]


@pytest.mark.timeout(90)
def test_rest_and_new_sockets_work_while_redis_is_down(restaurant, start_servers, own_redis):
    (server,) = start_servers(1)
    auth = {"Authorization": f"Bearer {restaurant.manager_token}"}
    items = [{"product": p, "quantity": 1} for p in restaurant.product_ids]

    own_redis.stop()
    time.sleep(0.5)
    outcome = {}
    with httpx.Client(base_url=server.base_url, headers=auth, timeout=20) as http:
        created = http.post("/api/orders/", json={"outlet": restaurant.outlet_id,
                                                  "type": "takeaway", "items": items})
        outcome["create order"] = created.status_code
        order = created.json() if created.status_code == 201 else {"id": "none", "total": "1"}
        outcome["confirm order"] = http.patch(f"/api/orders/{order['id']}/status/",
                                              json={"status": "confirmed"}).status_code
        outcome["pay cash"] = http.post("/api/payments/", json={
            "order": order["id"], "method": "cash", "amount": order["total"],
            "tendered": order["total"]}).status_code
    outcome["open orders socket"] = _socket_snapshot(server, restaurant)
    own_redis.start()

    assert outcome == {"create order": 201, "confirm order": 200, "pay cash": 201,
                       "open orders socket": "snapshot"}
