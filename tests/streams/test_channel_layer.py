"""``pos.streams.channel_layer.RedisChannelLayer``: channels-redis' group send rules in two
requests, from the event loop or, blocking, from a thread.

Runs against the Redis of ``REDIS_URL`` (CI has one), under a prefix of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer
from django.conf import settings
from redis import client as blocking_client
from redis import connection as blocking_connection
from redis.asyncio import client as redis_client

from pos.streams.channel_layer import RedisChannelLayer


@pytest.fixture
async def layers():
    """Our layer and channels-redis' own, on one prefix; flushed afterwards."""
    assert settings.REDIS_URL, "these tests need the Redis of REDIS_URL"
    options = {"hosts": [settings.REDIS_URL], "prefix": f"test-layer-{uuid.uuid4().hex}",
               "capacity": 2, "expiry": 60, "group_expiry": 3600}
    ours, theirs = RedisChannelLayer(**options), ChannelsRedisLayer(**options)
    try:
        yield ours, theirs
    finally:
        await ours.flush()
        await ours.close_pools()
        await theirs.close_pools()


async def _receive(layer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), 5)


async def test_every_member_gets_the_message_and_channels_redis_reads_it(layers):
    ours, theirs = layers
    local = await theirs.new_channel("hub.")  # a process channel, as the hub's
    plain = "plain.channel"
    for channel in (local, plain):
        await ours.group_add("outlet.x", channel)
    await ours.group_send("outlet.x", {"type": "stream.event", "seq": 1})
    assert await _receive(theirs, local) == {"type": "stream.event", "seq": 1}
    assert await _receive(theirs, plain) == {"type": "stream.event", "seq": 1}


async def test_a_channel_at_capacity_is_skipped_and_the_others_still_get_it(layers):
    ours, theirs = layers
    for channel in ("full.one", "free.one"):
        await ours.group_add("g", channel)
    for seq in (1, 2):
        await ours.send("full.one", {"type": "x", "seq": seq})  # capacity is 2
    await ours.group_send("g", {"type": "x", "seq": 3})
    assert [(await _receive(theirs, "full.one"))["seq"] for _ in range(2)] == [1, 2]
    assert (await _receive(theirs, "free.one"))["seq"] == 3
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(theirs.receive("full.one"), 0.3)  # 3 never went in


async def test_expired_messages_make_room_and_expired_members_are_dropped(layers):
    ours, theirs = layers
    connection = ours.connection(0)
    full = ours.prefix + "full.two"
    old = time.time() - 3600
    await connection.zadd(full, {b"stale-1": old, b"stale-2": old})  # expired, but counted
    await ours.group_add("g", "full.two")
    await ours.group_add("g", "gone.two")
    await connection.zadd(ours._group_key("g"), {b"gone.two": int(time.time()) - 7200})
    await ours.group_send("g", {"type": "x", "seq": 1})
    assert (await _receive(theirs, "full.two"))["seq"] == 1  # the stale ones were dropped
    assert await connection.zrange(ours._group_key("g"), 0, -1) == [b"full.two"]
    assert await connection.zcard(ours.prefix + "gone.two") == 0


async def test_a_group_with_no_members_is_a_no_op(layers):
    ours, _ = layers
    await ours.group_send("nobody.here", {"type": "x"})


@pytest.fixture
def requests(monkeypatch) -> list[str]:
    """The commands sent to Redis from now on, in order."""
    sent: list[str] = []
    real_execute = redis_client.Redis.execute_command

    async def counting(self, *args, **options):
        sent.append(str(args[0]))
        return await real_execute(self, *args, **options)

    monkeypatch.setattr(redis_client.Redis, "execute_command", counting)
    return sent


async def test_a_group_send_is_two_requests_to_redis(layers, requests, monkeypatch):
    ours, theirs = layers
    for channel in ("a.one", "b.one", await theirs.new_channel("hub.")):
        await ours.group_add("g", channel)
    requests.clear()  # the set-up's
    monkeypatch.setattr(redis_client.Pipeline, "execute", _refuse_pipelines)
    await ours.group_send("g", {"type": "x"})
    assert requests == ["EVAL", "EVAL"]


async def test_ping_opens_the_connection_with_one_request(layers, requests):
    ours, _ = layers
    await ours.ping()
    assert requests == ["PING"]


async def _refuse_pipelines(self, *args, **options):
    raise AssertionError("group_send should not need a pipeline")


async def test_a_blocking_group_send_follows_the_same_rules(layers):
    ours, theirs = layers
    local = await theirs.new_channel("hub.")
    for channel in (local, "full.three", "free.three"):
        await ours.group_add("g", channel)
    for seq in (1, 2):
        await ours.send("full.three", {"type": "x", "seq": seq})  # capacity is 2
    await asyncio.to_thread(ours.group_send_blocking, "g", {"type": "x", "seq": 3})
    assert (await _receive(theirs, local))["seq"] == 3
    assert (await _receive(theirs, "free.three"))["seq"] == 3
    assert [(await _receive(theirs, "full.three"))["seq"] for _ in range(2)] == [1, 2]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(theirs.receive("full.three"), 0.3)  # 3 never went in
    await asyncio.to_thread(ours.group_send_blocking, "nobody.here", {"type": "x"})


async def test_a_blocking_group_send_is_two_requests_on_kept_connections(layers, monkeypatch):
    ours, theirs = layers
    await ours.group_add("g", await theirs.new_channel("hub."))
    sent: list[str] = []
    real_execute = blocking_client.Redis.execute_command

    def counting(self, *args, **options):
        sent.append(str(args[0]))
        return real_execute(self, *args, **options)

    monkeypatch.setattr(blocking_client.Redis, "execute_command", counting)
    await asyncio.to_thread(ours.ping_blocking)
    assert sent == ["PING"]
    connects = []
    real_connect = blocking_connection.Connection._connect  # opens a socket
    monkeypatch.setattr(blocking_connection.Connection, "_connect",
                        lambda self: (connects.append(self), real_connect(self))[1])
    for _ in range(3):
        await asyncio.to_thread(ours.group_send_blocking, "g", {"type": "x"})
    assert sent == ["PING", *["EVAL", "EVAL"] * 3]
    assert connects == []  # the connection the ping opened, kept between sends
    assert ours.can_send_blocking
    assert not RedisChannelLayer(
        hosts=[{"master_name": "m", "sentinels": [("127.0.0.1", 26379)]}]
    ).can_send_blocking
