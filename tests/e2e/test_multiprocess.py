"""Two real server processes sharing PostgreSQL and Redis: an order changed through one
reaches the sockets of the other, every event once and in order.

Screens subscribe on process A (and one on B, the local path); orders are created and walked
through their lifecycle with REST on process B, several at once; the sockets must receive
exactly the events the outlet's log holds (``GET /api/events/``), in seq order, each once,
and nothing of another tenant's outlet.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect

from kds.services import station_create
from tenants.models import Role
from tests import factories

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ORDERS_SOCKET_EVENTS = ("order.", "payment.", "product.availability_changed")
LIFECYCLE = ("confirmed", "preparing", "ready", "served", "completed")


def _shop():
    tenant = factories.make_tenant()
    outlet = factories.make_outlet(tenant)
    station_create(outlet=outlet, name="Kitchen")  # confirming fires tickets to it
    cashier = factories.make_user(Role.CASHIER, tenant, [outlet])
    products = [factories.make_product(tenant) for _ in range(2)]
    return outlet, cashier, products


async def _open(server, outlet, token):
    socket = await connect(f"{server.ws_url}/ws/orders/{outlet.pk}/?token={token}",
                           open_timeout=10)
    first = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert first["type"] == "snapshot"
    return socket, first["seq"]


async def _walk_order(http: httpx.AsyncClient, outlet, products, *, cancel: bool) -> None:
    """One order through REST: created, then every status to completed (or cancelled)."""
    body = {
        "outlet": str(outlet.pk),
        "type": "dine_in",
        "table": "4",
        "items": [{"product": str(p.pk), "quantity": 1, "modifiers": []} for p in products],
    }
    response = await http.post("/api/orders/", json=body)
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    for status in ("cancelled",) if cancel else LIFECYCLE:
        response = await http.patch(f"/api/orders/{order_id}/status/", json={"status": status})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status


async def _logged_events(http: httpx.AsyncClient, outlet, since: int) -> list[dict]:
    """The outlet's log after ``since`` as the events API pages it, filtered as the socket."""
    events: list[dict] = []
    url = f"/api/events/?outlet={outlet.pk}&since={since}&limit=50"
    while url:
        response = await http.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        events.extend(page["results"])
        url = page["next"]
    return [e for e in events if e["event"].startswith(ORDERS_SOCKET_EVENTS)]


async def _receive_until(socket, last_seq: int, timeout: float = 30.0) -> list[dict]:
    received: list[dict] = []
    async with asyncio.timeout(timeout):
        while not received or received[-1]["seq"] < last_seq:
            message = json.loads(await socket.recv())
            if message["type"] == "event":
                received.append(message)
    return received


@pytest.fixture
def shops(transactional_db):
    """Our outlet and another tenant's, each with a cashier, products and a prep station."""
    return _shop(), _shop()


async def test_events_committed_through_one_process_reach_sockets_on_another(
    server_factory, shops
):
    (outlet, cashier, products), (other_outlet, other_cashier, other_products) = shops
    token, other_token = await sync_to_async(
        lambda: (factories.access_token(cashier), factories.access_token(other_cashier))
    )()
    process_a = server_factory()
    process_b = server_factory()

    screens_a = [await _open(process_a, outlet, token) for _ in range(3)]
    screen_b = await _open(process_b, outlet, token)
    screens = [*screens_a, screen_b]
    start_seq = screens[0][1]
    assert all(seq == start_seq for _, seq in screens)

    auth = {"Authorization": f"Bearer {token}"}
    other_auth = {"Authorization": f"Bearer {other_token}"}
    async with (
        httpx.AsyncClient(base_url=process_b.base_url, headers=auth, timeout=30) as http_b,
        httpx.AsyncClient(base_url=process_b.base_url, headers=other_auth, timeout=30) as other,
        httpx.AsyncClient(base_url=process_a.base_url, headers=auth, timeout=30) as http_a,
    ):
        # Four orders at once, one of them cancelled, and another tenant's order meanwhile.
        await asyncio.gather(
            *(_walk_order(http_b, outlet, products, cancel=(n == 3)) for n in range(4)),
            _walk_order(other, other_outlet, other_products, cancel=False),
        )
        expected = await _logged_events(http_a, outlet, start_seq)

    # 3 walked orders x 6 events + 1 cancelled x 2 events, all on the orders socket.
    assert len(expected) == 3 * 6 + 2
    assert [e["seq"] for e in expected] == sorted({e["seq"] for e in expected})
    last_seq = expected[-1]["seq"]
    try:
        for socket, _ in screens:
            received = await _receive_until(socket, last_seq)
            # Every event once, in order, exactly as logged; nothing of the other outlet.
            assert [e["seq"] for e in received] == [e["seq"] for e in expected]
            assert received == expected
            assert {e["outlet"] for e in received} == {str(outlet.pk)}
            # And nothing more arrives afterwards (no late duplicate from another path).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(socket.recv(), 1.0)
    finally:
        for socket, _ in screens:
            await socket.close()
