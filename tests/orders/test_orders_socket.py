"""/ws/orders/<outlet_id>/: access, snapshot of active orders, live events, since replay."""

from __future__ import annotations

import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from asgi import application
from orders.selectors import active_orders_for_outlet
from orders.serializers import OrderSerializer
from orders.services import order_transition
from pos.streams import outbox
from pos.streams.log import last_seq
from tests.factories import access_token, client_for
from tests.orders.conftest import item, make_order, order_body

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(user, outlet_id, query: str = "") -> WebsocketCommunicator:
    qs = f"token={access_token(user)}" if user is not None else ""
    if query:
        qs = f"{qs}&{query}" if qs else query
    return WebsocketCommunicator(application, f"/ws/orders/{outlet_id}/?{qs}")


async def receive(comm) -> dict:
    return json.loads(await comm.receive_from(timeout=5))


async def closed_with(comm) -> int:
    await comm.connect()
    message = await comm.receive_output(timeout=3)
    assert message["type"] == "websocket.close"
    return message["code"]


async def test_no_or_bad_token_is_4401(world):
    assert await closed_with(communicator(None, world.outlet.id)) == 4401
    bad = WebsocketCommunicator(application, f"/ws/orders/{world.outlet.id}/?token=nope")
    assert await closed_with(bad) == 4401


async def test_other_tenants_outlet_looks_like_an_unknown_one_4404(world):
    assert await closed_with(communicator(world.other_owner, world.outlet.id)) == 4404
    assert await closed_with(communicator(world.other_cashier, world.outlet.id)) == 4404
    assert await closed_with(communicator(world.cashier, uuid.uuid4())) == 4404
    assert await closed_with(communicator(world.cashier, "abc-def")) == 4404


async def test_same_tenant_outlet_not_assigned_is_4403(world):
    assert await closed_with(communicator(world.cashier, world.outlet2.id)) == 4403
    assert await closed_with(communicator(world.kitchen, world.outlet2.id)) == 4403
    assert await closed_with(communicator(world.manager, world.outlet2.id)) == 4403


@pytest.mark.parametrize("who", ["owner", "super_admin", "manager2"])
async def test_owner_super_admin_and_assigned_staff_connect(world, who):
    comm = communicator(getattr(world, who), world.outlet2.id)
    connected, _ = await comm.connect()
    assert connected
    assert (await receive(comm))["type"] == "snapshot"
    await comm.disconnect()


@database_sync_to_async
def _orders_in_every_status(world, menu):
    active = [make_order(world.outlet, [item(menu.tea)], status=s)
              for s in ("draft", "pending", "confirmed", "ready", "served")]
    for status in ("completed", "cancelled"):
        make_order(world.outlet, [item(menu.tea)], status=status)
    make_order(world.outlet2, [item(menu.tea)])  # another outlet of the same tenant
    return active


async def test_snapshot_holds_the_active_orders_of_this_outlet(world, menu):
    active = await _orders_in_every_status(world, menu)
    expected = await database_sync_to_async(
        lambda: json.loads(json.dumps(
            OrderSerializer(active_orders_for_outlet(world.outlet.id), many=True).data
        ))
    )()
    comm = communicator(world.cashier, world.outlet.id)
    await comm.connect()
    snapshot = await receive(comm)
    assert snapshot["type"] == "snapshot"
    assert "reset" not in snapshot
    assert [o["id"] for o in snapshot["orders"]] == [str(o.id) for o in active]
    assert snapshot["orders"] == expected
    assert snapshot["orders"][0]["items"][0]["name"] == "Tea"
    # The snapshot's seq is the outlet's last one: every event so far is in it.
    last = await database_sync_to_async(last_seq)(world.outlet.id)
    assert snapshot["seq"] == last
    await comm.disconnect()


async def test_live_order_created_after_a_rest_create(world, menu):
    comm = communicator(world.cashier, world.outlet.id)
    await comm.connect()
    snapshot = await receive(comm)
    assert snapshot == {"type": "snapshot", "seq": 0, "orders": []}

    response = await database_sync_to_async(
        lambda: client_for(world.cashier).post(
            "/api/orders/", order_body(world.outlet, [item(menu.tea, 2)]), format="json"
        )
    )()
    assert response.status_code == 201
    event = await receive(comm)
    assert (event["type"], event["event"], event["seq"]) == ("event", "order.created", 1)
    assert event["outlet"] == str(world.outlet.id)
    assert event["data"] == response.json()

    await database_sync_to_async(
        lambda: order_transition(
            order_id=response.json()["id"], to_status="confirmed", actor=world.cashier
        )
    )()
    changed = await receive(comm)
    assert (changed["event"], changed["seq"]) == ("order.status_changed", 2)
    assert (changed["data"]["from"], changed["data"]["to"]) == ("pending", "confirmed")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


@database_sync_to_async
def _emit(outlet, name, data):
    with outbox.atomic():
        event = outbox.emit(outlet=outlet, name=name, data=data)
    return event.seq


async def test_forwards_order_payment_and_availability_events_only(world):
    comm = communicator(world.cashier, world.outlet.id)
    await comm.connect()
    await receive(comm)
    await _emit(world.outlet, "ticket.created", {"n": 1})
    await _emit(world.outlet, "payment.succeeded", {"n": 2})
    await _emit(world.outlet, "ticket.bumped", {"n": 3})
    await _emit(world.outlet, "product.availability_changed", {"n": 4})
    await _emit(world.outlet, "order.updated", {"n": 5})
    got = [await receive(comm) for _ in range(3)]
    assert [(e["seq"], e["event"]) for e in got] == [
        (2, "payment.succeeded"), (4, "product.availability_changed"), (5, "order.updated")
    ]
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_since_replays_missed_events_without_a_snapshot(world, menu):
    @database_sync_to_async
    def history():
        first = make_order(world.outlet, [item(menu.tea)])  # seq 1
        make_order(world.outlet, [item(menu.tea)])  # seq 2
        order_transition(order_id=first.id, to_status="confirmed", actor=world.cashier)  # 3
        return first

    first = await history()
    comm = communicator(world.cashier, world.outlet.id, "since=1")
    await comm.connect()
    replayed = [await receive(comm) for _ in range(2)]
    assert [(e["type"], e["seq"], e["event"]) for e in replayed] == [
        ("event", 2, "order.created"), ("event", 3, "order.status_changed")
    ]
    assert replayed[1]["data"]["id"] == str(first.id)
    assert await comm.receive_nothing(timeout=0.3)

    await database_sync_to_async(
        lambda: order_transition(order_id=first.id, to_status="cancelled", actor=world.cashier)
    )()
    live = await receive(comm)
    assert (live["seq"], live["data"]["to"]) == (4, "cancelled")
    await comm.disconnect()


async def test_another_tenants_orders_never_reach_the_socket(world, menu):
    comm = communicator(world.cashier, world.outlet.id)
    await comm.connect()
    await receive(comm)

    @database_sync_to_async
    def foreign_order():
        from tests import factories

        product = factories.make_product(world.other_tenant)
        make_order(world.other_outlet, [item(product)])

    await foreign_order()
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()
