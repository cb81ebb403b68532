"""``/ws/kitchen/<outlet>/``: access, snapshot, station filter, commands and their idempotency."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from asgi import application
from kds import services
from kds.models import Ticket
from pos.models import StreamEvent
from tests.factories import access_token
from tests.kds.conftest import fired, line, state

pytestmark = pytest.mark.django_db(transaction=True)

afired = database_sync_to_async(fired)
astate = database_sync_to_async(state)


def socket(user, outlet_id, query: str = "") -> WebsocketCommunicator:
    qs = f"token={access_token(user)}" if user is not None else ""
    if query:
        qs = f"{qs}&{query}" if qs else query
    return WebsocketCommunicator(application, f"/ws/kitchen/{outlet_id}/?{qs}")


async def receive(comm, timeout: float = 3.0) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def connected(user, outlet_id, query: str = ""):
    comm = socket(user, outlet_id, query)
    ok, _ = await comm.connect()
    assert ok
    return comm


async def closed_with(comm) -> int:
    message = await comm.receive_output(timeout=3)
    assert message["type"] == "websocket.close"
    return message["code"]


@database_sync_to_async
def event_count(outlet) -> int:
    return StreamEvent.objects.filter(outlet_id=outlet.pk).count()


# --- access ---------------------------------------------------------------------------------
async def test_access_close_codes(world, kitchen):
    cases = [
        (None, world.outlet.pk, "", 4401),
        (world.other_owner, world.outlet.pk, "", 4404),  # another tenant's outlet
        (world.kitchen, "not-a-uuid", "", 4404),
        (world.kitchen, "00000000-0000-0000-0000-000000000000", "", 4404),
        (world.kitchen, world.outlet2.pk, "", 4403),  # same tenant, not assigned
        (world.kitchen, world.outlet.pk, f"station={kitchen.line.pk}", 4404),  # outlet2's
        (world.kitchen, world.outlet.pk, "station=garbage", 4404),
    ]
    for user, outlet_id, query, code in cases:
        comm = socket(user, outlet_id, query)
        await comm.connect()
        assert await closed_with(comm) == code, (user, outlet_id, query)


# --- snapshot and filtering -----------------------------------------------------------------
async def test_snapshot_holds_open_tickets_all_day_and_thresholds(world, kitchen):
    _, a = await afired(world.outlet, line(kitchen.salad, 2), line(kitchen.cola))
    _, b = await afired(world.outlet, line(kitchen.salad))
    await database_sync_to_async(services.ticket_bump)(ticket_id=b["Kitchen"].pk)
    comm = await connected(world.kitchen, world.outlet.pk)
    snapshot = await receive(comm)
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == await event_count(world.outlet)
    assert snapshot["station"] is None
    assert {t["id"] for t in snapshot["tickets"]} == {str(a["Kitchen"].pk), str(a["Bar"].pk)}
    assert snapshot["all_day"] == [
        {"product": str(kitchen.salad.pk), "name": "Salad", "quantity": 2},
        {"product": str(kitchen.cola.pk), "name": "Cola", "quantity": 1},
    ]
    assert snapshot["thresholds"] == {"warn_after_s": world.outlet.kds_warn_after_s,
                                      "late_after_s": world.outlet.kds_late_after_s}
    assert {s["name"] for s in snapshot["stations"]} == {"Kitchen", "Grill", "Bar", "Expo"}
    await comm.disconnect()

    comm = await connected(world.kitchen, world.outlet.pk, f"station={kitchen.bar.pk}")
    snapshot = await receive(comm)
    assert snapshot["station"] == str(kitchen.bar.pk)
    assert [t["id"] for t in snapshot["tickets"]] == [str(a["Bar"].pk)]
    assert snapshot["all_day"] == [
        {"product": str(kitchen.cola.pk), "name": "Cola", "quantity": 1},
    ]
    await comm.disconnect()


async def test_station_socket_gets_only_its_tickets_expo_gets_all(world, kitchen):
    bar = await connected(world.kitchen, world.outlet.pk, f"station={kitchen.bar.pk}")
    expo = await connected(world.kitchen, world.outlet.pk)
    await receive(bar)
    await receive(expo)
    await afired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    got = await receive(bar)
    assert (got["event"], got["data"]["station"]) == ("ticket.created", str(kitchen.bar.pk))
    assert await bar.receive_nothing(timeout=0.5)  # neither Kitchen's ticket nor order.*
    names = [(await receive(expo))["event"] for _ in range(2)]
    assert names == ["ticket.created", "ticket.created"]
    assert await expo.receive_nothing(timeout=0.3)
    await bar.disconnect()
    await expo.disconnect()


async def test_other_outlets_tickets_do_not_arrive(world, kitchen):
    comm = await connected(world.owner, world.outlet.pk)
    await receive(comm)
    await afired(world.outlet2, line(kitchen.salad))
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


# --- commands -------------------------------------------------------------------------------
async def test_bump_command_acks_with_the_seq_of_its_event(world, kitchen):
    _, tickets = await afired(world.outlet, line(kitchen.salad))
    ticket = tickets["Kitchen"]
    comm = await connected(world.kitchen, world.outlet.pk)
    await receive(comm)
    await comm.send_json_to({"type": "bump", "ticket": str(ticket.pk), "request_id": "r1"})
    messages = [await receive(comm) for _ in range(2)]
    ack = next(m for m in messages if m["type"] == "ack")
    event = next(m for m in messages if m["type"] == "event")
    assert ack == {"type": "ack", "request_id": "r1", "seq": event["seq"]}
    assert event["event"] == "ticket.bumped"
    assert event["data"]["id"] == str(ticket.pk)
    await comm.disconnect()


async def test_same_request_id_twice_gives_the_same_ack_and_one_event(world, kitchen):
    _, tickets = await afired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    item = await database_sync_to_async(lambda: tickets["Kitchen"].items.get())()
    comm = await connected(world.kitchen, world.outlet.pk, f"station={kitchen.kitchen.pk}")
    await receive(comm)
    command = {"type": "item_status", "item": str(item.pk), "status": "cooking",
               "request_id": "abc"}
    await comm.send_json_to(command)
    first = [await receive(comm) for _ in range(2)]
    ack = next(m for m in first if m["type"] == "ack")
    count = await event_count(world.outlet)
    await comm.send_json_to(command)
    assert await receive(comm) == ack
    assert await comm.receive_nothing(timeout=0.5)
    assert await event_count(world.outlet) == count
    await comm.disconnect()

    # The same user on a new socket (a screen that reconnected) gets the first answer too.
    comm = await connected(world.kitchen, world.outlet.pk, f"station={kitchen.kitchen.pk}")
    await receive(comm)
    await comm.send_json_to(command)
    assert await receive(comm) == ack
    assert await event_count(world.outlet) == count
    # Reusing the id for another command is refused.
    await comm.send_json_to({**command, "status": "done"})
    error = await receive(comm)
    assert (error["type"], error["code"], error["request_id"]) == (
        "error", "request_id_reused", "abc",
    )
    assert await event_count(world.outlet) == count
    await comm.disconnect()


async def test_recall_command_and_refusal(world, kitchen):
    _, tickets = await afired(world.outlet, line(kitchen.salad))
    ticket = tickets["Kitchen"]
    comm = await connected(world.kitchen, world.outlet.pk, f"station={kitchen.kitchen.pk}")
    await receive(comm)
    before = await astate(ticket)
    await comm.send_json_to({"type": "recall", "ticket": str(ticket.pk), "request_id": 1})
    error = await receive(comm)
    assert error == {"type": "error", "request_id": 1, "code": "invalid_transition",
                     "message": error["message"]}
    assert await astate(ticket) == before
    await database_sync_to_async(services.ticket_bump)(ticket_id=ticket.pk)
    bumped = await receive(comm)
    assert bumped["event"] == "ticket.bumped"
    # Without a ticket, a station socket recalls its station's last bumped one.
    await comm.send_json_to({"type": "recall", "request_id": 2})
    messages = [await receive(comm) for _ in range(2)]
    event = next(m for m in messages if m["type"] == "event")
    assert event["event"] == "ticket.recalled"
    assert next(m for m in messages if m["type"] == "ack")["seq"] == event["seq"]
    status = await database_sync_to_async(
        lambda: Ticket.objects.values_list("status", flat=True).get(pk=ticket.pk)
    )()
    assert status == "open"
    await comm.disconnect()


async def test_commands_on_other_outlets_or_tenants_are_not_found(world, kitchen):
    _, own2 = await afired(world.outlet2, line(kitchen.salad))
    owner_comm = await connected(world.owner, world.outlet.pk)
    await receive(owner_comm)
    # The owner sees outlet2, but this socket follows outlet: not found, nothing changes.
    before = await astate(own2["Line"])
    await owner_comm.send_json_to({"type": "bump", "ticket": str(own2["Line"].pk),
                                   "request_id": "x"})
    error = await receive(owner_comm)
    assert (error["type"], error["code"]) == ("error", "not_found")
    assert await astate(own2["Line"]) == before
    await owner_comm.disconnect()

    _, own = await afired(world.outlet, line(kitchen.salad))
    other = await connected(world.other_owner, world.other_outlet.pk)
    await receive(other)
    before = await astate(own["Kitchen"])
    item = await database_sync_to_async(lambda: own["Kitchen"].items.get())()
    for command in (
        {"type": "bump", "ticket": str(own["Kitchen"].pk), "request_id": "y"},
        {"type": "item_status", "item": str(item.pk), "status": "done", "request_id": "z"},
        {"type": "bump", "ticket": "garbage", "request_id": "w"},
    ):
        await other.send_json_to(command)
        error = await receive(other)
        assert (error["type"], error["code"]) == ("error", "not_found")
    assert await astate(own["Kitchen"]) == before
    await other.disconnect()


async def test_cashier_watches_but_cannot_command(world, kitchen):
    _, tickets = await afired(world.outlet, line(kitchen.salad))
    comm = await connected(world.cashier, world.outlet.pk)
    await receive(comm)
    before = await astate(tickets["Kitchen"])
    await comm.send_json_to({"type": "bump", "ticket": str(tickets["Kitchen"].pk),
                             "request_id": "c1"})
    error = await receive(comm)
    assert (error["type"], error["code"], error["request_id"]) == (
        "error", "permission_denied", "c1",
    )
    assert await astate(tickets["Kitchen"]) == before
    await comm.disconnect()


async def test_malformed_commands_get_errors_and_the_socket_stays_up(world, kitchen):
    _, tickets = await afired(world.outlet, line(kitchen.salad))
    comm = await connected(world.kitchen, world.outlet.pk)
    await receive(comm)
    for command, code in [
        ({"type": "bump", "ticket": str(tickets["Kitchen"].pk)}, "invalid_message"),
        ({"type": "item_status", "item": "x", "status": "queued", "request_id": "m"},
         "validation_error"),
        ({"type": "shout", "request_id": "n"}, "unknown_type"),
    ]:
        await comm.send_json_to(command)
        error = await receive(comm)
        assert (error["type"], error["code"]) == ("error", code)
    await comm.send_json_to({"type": "ping"})
    assert (await receive(comm))["type"] == "pong"
    assert (await astate(tickets["Kitchen"]))[0] == "open"
    await comm.disconnect()


async def test_availability_changes_reach_kitchen_sockets(world, kitchen):
    comm = await connected(world.kitchen, world.outlet.pk, f"station={kitchen.bar.pk}")
    await receive(comm)

    @database_sync_to_async
    def announce():
        from pos.streams import outbox

        with outbox.atomic():
            outbox.emit(outlet=world.outlet, name="product.availability_changed",
                        data={"id": str(kitchen.cola.pk), "is_available": False})

    await announce()
    event = await receive(comm)
    assert event["event"] == "product.availability_changed"
    await comm.disconnect()


async def test_since_replay_keeps_the_station_filter(world, kitchen):
    comm = await connected(world.kitchen, world.outlet.pk, f"station={kitchen.bar.pk}")
    start = (await receive(comm))["seq"]
    await comm.disconnect()
    _, tickets = await afired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    await database_sync_to_async(services.ticket_bump)(ticket_id=tickets["Kitchen"].pk)
    await database_sync_to_async(services.ticket_bump)(ticket_id=tickets["Bar"].pk)
    comm = await connected(world.kitchen, world.outlet.pk,
                           f"station={kitchen.bar.pk}&since={start}")
    replayed = [await receive(comm) for _ in range(2)]
    assert [(e["event"], e["data"]["id"]) for e in replayed] == [
        ("ticket.created", str(tickets["Bar"].pk)),
        ("ticket.bumped", str(tickets["Bar"].pk)),
    ]
    assert replayed[0]["seq"] < replayed[1]["seq"]
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()
