"""The stream consumer base: snapshot, since replay, reset, live order, gaps, bad frames."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from pos.models import StreamEvent
from pos.streams import publisher
from pos.streams.relay import relay_unpublished
from tests.streams.helpers import awrite_events, communicator, receive, receive_events

pytestmark = pytest.mark.django_db(transaction=True)


async def connected(user, outlet, query=""):
    comm = communicator(user, outlet, query)
    ok, _ = await comm.connect()
    assert ok
    return comm


async def assert_closed_with(comm, code):
    message = await comm.receive_output(timeout=3)
    assert message == {"type": "websocket.close", "code": code}


async def test_no_token_is_4401(world):
    comm = communicator(None, world.outlet)
    await comm.connect()
    await assert_closed_with(comm, 4401)


async def test_garbage_token_is_4401(world):
    from channels.testing import WebsocketCommunicator

    from tests.streams.helpers import application

    comm = WebsocketCommunicator(application, f"/ws/probe/{world.outlet.id}/?token=garbage")
    await comm.connect()
    await assert_closed_with(comm, 4401)


async def test_other_tenants_outlet_is_4404_and_unassigned_outlet_4403(world):
    comm = communicator(world.other_owner, world.outlet)
    await comm.connect()
    await assert_closed_with(comm, 4404)
    comm = communicator(world.cashier, world.outlet2)  # same tenant, not assigned
    await comm.connect()
    await assert_closed_with(comm, 4403)


async def test_snapshot_then_live_events_in_order(world):
    await awrite_events(world.outlet, 2)
    comm = await connected(world.cashier, world.outlet)
    snapshot = await receive(comm)
    assert snapshot == {"type": "snapshot", "seq": 2, "probe": True}
    await awrite_events(world.outlet, 3)
    events = await receive_events(comm, 3)
    assert [e["seq"] for e in events] == [3, 4, 5]
    assert events[0]["type"] == "event"
    assert events[0]["event"] == "order.updated"
    assert events[0]["outlet"] == str(world.outlet.id)
    assert events[0]["data"] == {"n": 0}
    assert events[0]["at"].endswith("Z")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_other_outlets_events_do_not_arrive(world):
    comm = await connected(world.owner, world.outlet)
    await receive(comm)
    await awrite_events(world.outlet2, 2)
    await awrite_events(world.outlet, 1)
    event = await receive(comm)
    assert (event["outlet"], event["seq"]) == (str(world.outlet.id), 1)
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_since_replays_exactly_the_missed_events_then_goes_live(world):
    await awrite_events(world.outlet, 5)
    comm = await connected(world.cashier, world.outlet, "since=2")
    replayed = await receive_events(comm, 3)
    assert [e["seq"] for e in replayed] == [3, 4, 5]
    assert all(e["type"] == "event" for e in replayed)
    await awrite_events(world.outlet, 1)
    assert (await receive(comm))["seq"] == 6
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_since_equal_to_current_sends_nothing_until_new_events(world):
    await awrite_events(world.outlet, 2)
    comm = await connected(world.cashier, world.outlet, "since=2")
    assert await comm.receive_nothing(timeout=0.3)
    await awrite_events(world.outlet, 1)
    assert (await receive(comm))["seq"] == 3
    await comm.disconnect()


@pytest.mark.parametrize("since", ["99", "-5", "abc"])
async def test_since_ahead_of_the_log_or_unusable_gets_a_reset_snapshot(world, since):
    await awrite_events(world.outlet, 2)
    comm = await connected(world.cashier, world.outlet, f"since={since}")
    snapshot = await receive(comm)
    assert snapshot["type"] == "snapshot"
    assert snapshot["reset"] is True
    assert snapshot["seq"] == 2
    await comm.disconnect()


async def test_since_older_than_the_kept_log_gets_a_reset_snapshot(world):
    await awrite_events(world.outlet, 6)
    await database_sync_to_async(
        lambda: StreamEvent.objects.filter(outlet_id=world.outlet.id, seq__lte=3).delete()
    )()
    comm = await connected(world.cashier, world.outlet, "since=1")
    snapshot = await receive(comm)
    assert (snapshot["type"], snapshot["reset"], snapshot["seq"]) == ("snapshot", True, 6)
    await comm.disconnect()
    comm = await connected(world.cashier, world.outlet, "since=3")  # 4.. still kept
    assert [e["seq"] for e in await receive_events(comm, 3)] == [4, 5, 6]
    await comm.disconnect()


async def test_a_dropped_live_message_is_filled_from_the_log(world):
    comm = await connected(world.cashier, world.outlet)
    await receive(comm)
    await awrite_events(world.outlet, 1)
    await awrite_events(world.outlet, 2, publish=False)  # lost on the live path
    await awrite_events(world.outlet, 1)  # its arrival reveals the gap
    events = await receive_events(comm, 4)
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [e["data"]["n"] for e in events] == [0, 0, 1, 0]
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_relay_republication_is_not_delivered_twice(world):
    comm = await connected(world.cashier, world.outlet)
    await receive(comm)
    await awrite_events(world.outlet, 2, publish=False)
    await awrite_events(world.outlet, 1)
    assert [e["seq"] for e in await receive_events(comm, 3)] == [1, 2, 3]
    assert await asyncio.to_thread(publisher.flush_marks)  # seq 3's mark, as after a moment
    assert await database_sync_to_async(relay_unpublished)(older_than_s=0) == 2
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_watchdog_delivers_a_lost_last_event(world, monkeypatch):
    from pos.streams import hub

    monkeypatch.setattr(hub, "WATCHDOG_INTERVAL_S", 0.2)
    comm = await connected(world.cashier, world.outlet)
    await receive(comm)
    await awrite_events(world.outlet, 1, publish=False)  # no later event reveals the gap
    event = await receive(comm, timeout=3)
    assert event["seq"] == 1
    await comm.disconnect()


async def test_events_committed_during_connect_are_neither_lost_nor_repeated(world):
    await awrite_events(world.outlet, 3)
    comms = []
    writer = asyncio.ensure_future(awrite_events(world.outlet, 20))
    for _ in range(3):
        comms.append(await connected(world.cashier, world.outlet, "since=0"))
        await asyncio.sleep(0.01)
    await writer
    for comm in comms:
        seqs = [e["seq"] for e in await receive_events(comm, 23)]
        assert seqs == list(range(1, 24))
        assert await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()


async def test_filtered_socket_still_fills_gaps_and_skips_other_orders(world):
    import uuid

    mine, other = uuid.uuid4(), uuid.uuid4()
    comm = await connected(world.cashier, world.outlet, f"only={mine}")
    await receive(comm)
    await awrite_events(world.outlet, 1, order_id=other)
    await awrite_events(world.outlet, 1, order_id=mine, publish=False)
    await awrite_events(world.outlet, 1, order_id=other)
    await awrite_events(world.outlet, 1, order_id=mine)
    events = await receive_events(comm, 2)
    assert [e["seq"] for e in events] == [2, 4]
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_ping_answers_with_the_current_seq(world):
    await awrite_events(world.outlet, 4)
    comm = await connected(world.cashier, world.outlet)
    await receive(comm)
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    assert await receive(comm) == {"type": "pong", "seq": 4}
    await comm.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "malformed_json"),
        ("[1, 2]", "invalid_message"),
        ('{"no": "type"}', "invalid_message"),
        ('{"type": 7}', "invalid_message"),
        ('{"type": "launch_rockets"}', "unknown_type"),
        ("[" * 100_000 + "]" * 100_000, "frame_too_large"),
        ('{"type": "x", "pad": "' + "a" * (64 * 1024) + '"}', "frame_too_large"),
        ("[" * 5000 + "]" * 5000, "invalid_message"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_usable(world, frame, code):
    comm = await connected(world.cashier, world.outlet)
    await receive(comm)
    await comm.send_to(text_data=frame)
    error = await receive(comm)
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    await comm.send_to(bytes_data=b"\xff\xfe")
    assert (await receive(comm))["code"] == "malformed_json"
    await comm.send_to(text_data='{"type": "ping"}')
    assert (await receive(comm))["type"] == "pong"
    await awrite_events(world.outlet, 1)
    assert (await receive(comm))["seq"] == 1
    await comm.disconnect()


async def test_two_sockets_share_one_hub_subscription(world):
    from pos.streams.hub import get_hub

    a = await connected(world.cashier, world.outlet)
    b = await connected(world.owner, world.outlet)
    await receive(a)
    await receive(b)
    hub = get_hub()
    assert len(hub.outlets[str(world.outlet.id)].subscribers) == 2
    await awrite_events(world.outlet, 1)
    assert (await receive(a))["seq"] == 1
    assert (await receive(b))["seq"] == 1
    await a.disconnect()
    await b.disconnect()
    assert str(world.outlet.id) not in hub.outlets


async def test_an_idle_socket_still_receives_after_fifteen_seconds(world):
    # redis-py 8 with channels-redis 4.3 kills idle layer receivers after ~5 s
    # (channels_redis#422); this pins that our stack does not.
    comm = await connected(world.cashier, world.outlet)
    await receive(comm)
    await asyncio.sleep(15)
    await awrite_events(world.outlet, 1)
    assert (await receive(comm, timeout=5))["seq"] == 1
    await comm.disconnect()


async def test_a_flood_of_client_messages_closes_with_4429(world, settings):
    settings.WS_MESSAGES_PER_SECOND = 1
    settings.WS_MESSAGE_BURST = 5
    comm = await connected(world.cashier, world.outlet)
    await receive(comm)
    for _ in range(5):
        await comm.send_to(text_data='{"type": "ping"}')
        assert (await receive(comm))["type"] == "pong"
    await comm.send_to(text_data='{"type": "ping"}')
    assert (await receive(comm))["code"] == "rate_limited"
    assert await comm.receive_output(timeout=3) == {"type": "websocket.close", "code": 4429}


async def test_too_many_connections_per_minute_close_with_4429(world, settings):
    settings.WS_CONNECTS_PER_MINUTE = 2
    for _ in range(2):
        comm = await connected(world.cashier, world.outlet)
        assert (await receive(comm))["type"] == "snapshot"
        await comm.disconnect()
    comm = communicator(world.cashier, world.outlet)
    await comm.connect()
    await assert_closed_with(comm, 4429)
    other = await connected(world.owner, world.outlet)  # counted per user
    assert (await receive(other))["type"] == "snapshot"
    await other.disconnect()
