"""Publication: the committing thread sends through the Redis layer's blocking connections;
any other layer is used from a loop that keeps its connections, never one per commit."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

from pos import metrics
from pos.models import StreamEvent
from pos.streams import outbox, publisher, wire
from pos.streams.channel_layer import RedisChannelLayer
from pos.streams.wire import BATCH_TYPE, MESSAGE_TYPE, group_for_outlet
from tests.streams.helpers import communicator, receive, write_events

pytestmark = pytest.mark.django_db(transaction=True)


def _publisher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pos-publisher"]


@pytest.fixture
def loop_path(monkeypatch):
    """Publication as for a layer that cannot send from a thread (the in-memory one, a
    Sentinel-backed Redis): through an event loop."""
    monkeypatch.setattr(RedisChannelLayer, "can_send_blocking", property(lambda self: False))


def test_the_committing_thread_sends_itself_without_any_loop(world, monkeypatch):
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channel = async_to_sync(layer.new_channel)("probe.")
    async_to_sync(layer.group_add)(group_for_outlet(world.outlet.id), channel)

    def no_loop(coroutine):
        coroutine.close()
        raise AssertionError("publication went through an event loop")

    monkeypatch.setattr(publisher, "run_on_a_loop", no_loop)
    senders = []
    real_send = RedisChannelLayer.group_send_blocking

    def spy(self, group, message):
        senders.append(threading.current_thread())
        return real_send(self, group, message)

    monkeypatch.setattr(RedisChannelLayer, "group_send_blocking", spy)
    try:
        write_events(world.outlet, 2)
        worker = threading.Thread(target=lambda: write_events(world.outlet, 1))
        worker.start()
        worker.join(30)
        assert [async_to_sync(layer.receive)(channel)["seq"] for _ in range(3)] == [1, 2, 3]
    finally:
        async_to_sync(layer.group_discard)(group_for_outlet(world.outlet.id), channel)
    assert senders == [threading.current_thread(), threading.current_thread(), worker]
    assert publisher.flush_marks()
    assert not StreamEvent.objects.filter(published_at__isnull=True).exists()


def test_a_failed_blocking_send_leaves_the_events_to_the_relay(world, monkeypatch):
    def down(self, group, message):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(RedisChannelLayer, "group_send_blocking", down)
    failures = metrics.publish_failures._value.get()
    assert write_events(world.outlet, 2) == [1, 2]  # two transactions, committed all the same
    assert metrics.publish_failures._value.get() == failures + 2
    assert publisher.flush_marks()
    assert StreamEvent.objects.filter(published_at__isnull=True).count() == 2


def test_threads_without_a_loop_share_one_long_lived_publisher_loop(world, loop_path):
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channel = async_to_sync(layer.new_channel)("probe.")
    async_to_sync(layer.group_add)(group_for_outlet(world.outlet.id), channel)
    loops = set()
    real_loop = publisher._publisher_loop.loop

    def spy():
        loop = real_loop()
        loops.add(loop)
        return loop

    publisher._publisher_loop.loop = spy
    try:
        write_events(world.outlet, 2)  # on-commit publication, from this (loop-less) thread

        def elsewhere():
            write_events(world.outlet, 1)

        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join(30)
        assert [async_to_sync(layer.receive)(channel)["seq"] for _ in range(3)] == [1, 2, 3]
    finally:
        publisher._publisher_loop.loop = real_loop
        async_to_sync(layer.group_discard)(group_for_outlet(world.outlet.id), channel)
    assert len(loops) == 1  # three commits, two threads, one loop
    assert next(iter(loops)).is_running()
    assert len(_publisher_threads()) == 1
    assert publisher.flush_marks()
    assert not StreamEvent.objects.filter(published_at__isnull=True).exists()


async def test_a_thread_of_a_process_serving_sockets_publishes_on_the_serving_loop(
    world, loop_path
):
    """The embedded mode's schedule thread has no loop of its own: its publications go to
    the loop that holds the sockets (the in-memory layer must only be used from there)."""
    comm = communicator(world.owner, world.outlet)
    connected, _ = await comm.connect()
    assert connected
    assert (await receive(comm))["type"] == "snapshot"
    serving = asyncio.get_running_loop()
    used = []
    real_send = publisher.send_events

    async def spy(events):
        used.append(asyncio.get_running_loop())
        return await real_send(events)

    publisher.send_events = spy
    try:
        seqs = []
        writer = threading.Thread(target=lambda: seqs.extend(write_events(world.outlet, 1)))
        await asyncio.get_running_loop().run_in_executor(None, _start_and_join, writer)
        event = await receive(comm)
    finally:
        publisher.send_events = real_send
        await comm.disconnect()
    assert seqs == [1] and event["seq"] == 1
    assert used == [serving]
    assert await asyncio.to_thread(publisher.flush_marks)
    assert await database_sync_to_async(
        StreamEvent.objects.filter(published_at__isnull=True).count)() == 0


def _start_and_join(thread: threading.Thread) -> None:
    thread.start()
    thread.join(30)


def test_a_transactions_events_go_out_as_one_message_per_outlet(world, monkeypatch):
    monkeypatch.setattr(wire, "BATCH_MAX_EVENTS", 2)
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channels = {}
    for outlet in (world.outlet, world.outlet2):
        channels[outlet.pk] = async_to_sync(layer.new_channel)("probe.")
        async_to_sync(layer.group_add)(group_for_outlet(outlet.id), channels[outlet.pk])
    try:
        with outbox.atomic():
            for outlet in (world.outlet, world.outlet2, world.outlet, world.outlet):
                outbox.emit(outlet=outlet, name="order.updated", data={})

        def received(outlet, count):
            return [async_to_sync(layer.receive)(channels[outlet.pk]) for _ in range(count)]

        first, second = received(world.outlet, 2)
        assert first["type"] == BATCH_TYPE and [m["seq"] for m in first["messages"]] == [1, 2]
        assert second["type"] == MESSAGE_TYPE and second["seq"] == 3  # over the batch size
        [other] = received(world.outlet2, 1)
        assert other["type"] == MESSAGE_TYPE and other["seq"] == 1
        assert publisher.flush_marks()
        assert not StreamEvent.objects.filter(published_at__isnull=True).exists()
    finally:
        for outlet in (world.outlet, world.outlet2):
            async_to_sync(layer.group_discard)(group_for_outlet(outlet.id), channels[outlet.pk])
