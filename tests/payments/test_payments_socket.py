"""``/ws/payments/<order_id>/``: snapshot for late joiners, live payment events of that order
only, and who may connect."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from asgi import application
from orders.services import order_transition
from payments import services
from tests.factories import access_token
from tests.payments.conftest import TOTAL, make_order, sandbox_webhook

pytestmark = pytest.mark.django_db(transaction=True)


def socket(user, order_id, query: str = "") -> WebsocketCommunicator:
    qs = f"token={access_token(user)}" if user is not None else ""
    if query:
        qs = f"{qs}&{query}"
    return WebsocketCommunicator(application, f"/ws/payments/{order_id}/?{qs}")


async def receive(comm, timeout: float = 3.0) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def assert_closed_with(comm, code: int) -> None:
    await comm.connect()
    assert await comm.receive_output(timeout=3) == {"type": "websocket.close", "code": code}


@database_sync_to_async
def pay(user, order, method: str, amount, **extra):
    return services.payment_create(actor=user, order_id=order.id, method=method,
                                   amount=amount, **extra)


@database_sync_to_async
def deliver(payment, status="succeeded", event_id="evt-1"):
    body, signature = sandbox_webhook(payment.id, status=status, amount=payment.amount,
                                      event_id=event_id)
    return services.payment_webhook_receive(provider="sandbox", raw_body=body,
                                            headers={"X-Signature": signature})


@database_sync_to_async
def new_order(outlet):
    return make_order(outlet)


@database_sync_to_async
def transition(order, to_status):
    return order_transition(order_id=order.id, to_status=to_status, system=True)


async def test_late_joiner_sees_the_payment_in_the_snapshot(plain_world):
    order = await new_order(plain_world.outlet)
    payment = await pay(plain_world.cashier, order, "qris", TOTAL)
    await deliver(payment)
    comm = socket(plain_world.cashier, order.id)
    assert (await comm.connect())[0]
    snapshot = await receive(comm)
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] >= 3
    assert snapshot["order"] == str(order.id)
    assert (snapshot["payment_status"], snapshot["paid_amount"], snapshot["total"]) == (
        "paid", "100000.00", "100000.00"
    )
    assert [(p["id"], p["status"]) for p in snapshot["payments"]] == [
        (str(payment.id), "succeeded")
    ]
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_live_payment_events_of_this_order_only(plain_world):
    order = await new_order(plain_world.outlet)
    neighbour = await new_order(plain_world.outlet)
    comm = socket(plain_world.cashier, order.id)
    assert (await comm.connect())[0]
    snapshot = await receive(comm)
    assert (snapshot["payment_status"], snapshot["payments"]) == ("unpaid", [])

    await pay(plain_world.cashier, neighbour, "card", "5.00")  # another order: filtered out
    payment = await pay(plain_world.cashier, order, "qris", TOTAL)
    created = await receive(comm)
    assert (created["type"], created["event"]) == ("event", "payment.created")
    assert created["data"]["id"] == str(payment.id)
    assert created["data"]["status"] == "pending"
    assert created["seq"] > snapshot["seq"]

    await deliver(payment)
    succeeded = await receive(comm)
    assert succeeded["event"] == "payment.succeeded"
    assert succeeded["data"]["order_payment"]["payment_status"] == "paid"
    assert succeeded["seq"] > created["seq"] + 1  # order.updated in between is not sent

    await transition(order, "cancelled")
    status_changed = await receive(comm)
    assert status_changed["event"] == "order.status_changed"
    assert status_changed["data"]["id"] == str(order.id)
    await transition(neighbour, "cancelled")
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_since_replays_missed_payment_events(plain_world):
    order = await new_order(plain_world.outlet)
    comm = socket(plain_world.manager, order.id)
    assert (await comm.connect())[0]
    seen = (await receive(comm))["seq"]
    await comm.disconnect()
    payment = await pay(plain_world.cashier, order, "cash", TOTAL, tendered=TOTAL)
    comm = socket(plain_world.manager, order.id, f"since={seen}")
    assert (await comm.connect())[0]
    names = [(await receive(comm))["event"] for _ in range(2)]
    assert names == ["payment.created", "payment.succeeded"]
    assert payment.status == "succeeded"
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_owner_and_super_admin_may_follow(plain_world):
    order = await new_order(plain_world.outlet2)  # the owner has every outlet
    for user in (plain_world.owner, plain_world.super_admin, plain_world.manager2):
        comm = socket(user, order.id)
        assert (await comm.connect())[0]
        assert (await receive(comm))["type"] == "snapshot"
        await comm.disconnect()


async def test_refusals(plain_world):
    order = await new_order(plain_world.outlet)
    outlet2_order = await new_order(plain_world.outlet2)
    foreign = await new_order(plain_world.other_outlet)
    await assert_closed_with(socket(None, order.id), 4401)
    await assert_closed_with(socket(plain_world.other_owner, order.id), 4404)
    await assert_closed_with(socket(plain_world.cashier, foreign.id), 4404)
    await assert_closed_with(socket(plain_world.cashier,
                                    "00000000-0000-0000-0000-000000000000"), 4404)
    await assert_closed_with(socket(plain_world.cashier, "not-an-id"), 4404)
    await assert_closed_with(socket(plain_world.kitchen, order.id), 4403)
    await assert_closed_with(socket(plain_world.cashier, outlet2_order.id), 4403)
