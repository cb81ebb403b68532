"""The embedded default, end to end: no DATABASE_URL, no REDIS_URL, as `make run` starts it.

A real daphne process on a fresh SQLite file with the in-memory channel layer: the demo seed
loads, a cashier's confirmed order reaches the kitchen socket, and a bump turns it ready on
the orders socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest
import websockets

from tests.liveserver import ROOT, ServerProcess

pytestmark = [pytest.mark.embedded, pytest.mark.e2e, pytest.mark.timeout(180)]


def embedded_env(var_dir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"POS_VAR_DIR": str(var_dir), "DJANGO_DEBUG": "", "PYTHONUNBUFFERED": "1"})
    env.pop("DJANGO_SECRET_KEY", None)  # the embedded mode needs none
    return env


def manage(var_dir, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=embedded_env(var_dir),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class EmbeddedServer(ServerProcess):
    def _env(self) -> dict[str, str]:
        return embedded_env(self.var_dir)


@pytest.fixture
def embedded(tmp_path):
    manage(tmp_path, "migrate", "--noinput")
    first = manage(tmp_path, "seed_demo")
    second = manage(tmp_path, "seed_demo")
    server = EmbeddedServer(database_url="", redis_url=None, server="daphne")
    server.var_dir = tmp_path
    server.start()
    yield server, first, second
    server.stop()


def login(base: str, username: str, password: str) -> dict:
    response = httpx.post(f"{base}/api/auth/token/",
                          json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def test_embedded_mode_serves_the_whole_flow(embedded):
    server, first_seed, second_seed = embedded
    assert "demo-cashier" in first_seed and "/kds/" in first_seed
    assert "everything was already there" in second_seed  # the seed is idempotent
    base = server.base_url
    assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
    assert httpx.get(f"{base}/kds/").status_code == 200
    assert httpx.get(f"{base}/api/docs/").status_code == 200

    cashier = login(base, "demo-cashier", "warung-cashier-2026")
    kitchen = login(base, "demo-kitchen", "warung-kitchen-2026")
    outlet = cashier["user"]["outlets"][0]
    headers = {"Authorization": f"Bearer {cashier['access']}"}
    products = httpx.get(f"{base}/api/products/", headers=headers,
                         params={"page_size": 200}).json()["results"]
    plain = next(p for p in products if not p["modifier_groups"] and p["is_available"])

    async def flow():
        kitchen_ws = await websockets.connect(
            f"{server.ws_url}/ws/kitchen/{outlet}/?token={kitchen['access']}")
        orders_ws = await websockets.connect(
            f"{server.ws_url}/ws/orders/{outlet}/?token={cashier['access']}")
        async with kitchen_ws, orders_ws:
            assert json.loads(await kitchen_ws.recv())["type"] == "snapshot"
            assert json.loads(await orders_ws.recv())["type"] == "snapshot"
            async with httpx.AsyncClient(base_url=base, headers=headers) as client:
                created = await client.post("/api/orders/", json={
                    "outlet": outlet, "type": "takeaway", "customer_name": "Rina",
                    "items": [{"product": plain["id"], "quantity": 2}],
                })
                assert created.status_code == 201, created.text
                order = created.json()
                confirmed = await client.patch(f"/api/orders/{order['id']}/status/",
                                               json={"status": "confirmed"})
                assert confirmed.status_code == 200, confirmed.text

            ticket_event = await next_event(kitchen_ws, "ticket.created")
            ticket = ticket_event["data"]
            assert ticket["order"] == order["id"]
            assert ticket["items"][0]["quantity"] == 2
            await kitchen_ws.send(json.dumps(
                {"type": "bump", "ticket": ticket["id"], "request_id": "r-1"}))
            ack = await next_of_type(kitchen_ws, "ack")
            assert ack["request_id"] == "r-1" and ack["seq"] > ticket_event["seq"]
            while True:
                event = await next_event(orders_ws, "order.status_changed")
                if event["data"]["to"] == "ready":
                    break
            assert event["data"]["id"] == order["id"]

    asyncio.run(asyncio.wait_for(flow(), 60))


async def next_of_type(ws, kind: str) -> dict:
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == kind:
            return message


async def next_event(ws, name: str) -> dict:
    while True:
        message = await next_of_type(ws, "event")
        if message["event"] == name:
            return message
