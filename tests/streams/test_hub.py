"""The process hub without a server: ``fetch_after`` does one log read per outlet at a time and
no read a waiting socket can do without (every screen connecting after a restart catches up
from its snapshot's seq); events reach sockets in seq order across writers; hand-outs are
timed."""

from __future__ import annotations

import asyncio
import time

import pytest

from pos import metrics
from pos.streams import hub as hub_module
from pos.streams.hub import OutletStream, StreamHub


class FakeLog:
    """The outlet's log; each read waits for ``release`` so that callers pile up behind it."""

    def __init__(self, seqs: list[int]) -> None:
        self.seqs = seqs
        self.reads: list[int] = []
        self.release = asyncio.Event()

    async def read(self, outlet_id: str, after: int) -> list[dict]:
        self.reads.append(after)
        await self.release.wait()
        return [{"seq": seq, "text": f"e{seq}"} for seq in self.seqs if seq > after]


@pytest.fixture
def log(monkeypatch):
    fake = FakeLog([1, 2, 3])
    monkeypatch.setattr(hub_module, "database_sync_to_async", lambda _function: fake.read)
    return fake


def following(outlet_id: str, *screens, hub: StreamHub | None = None,
              recent_size: int = 100) -> StreamHub:
    """A hub (``hub``, or a new one) with ``screens`` following ``outlet_id``, as ``subscribe``
    leaves it, without a channel layer."""
    hub = hub or StreamHub()
    stream = hub.outlets.setdefault(outlet_id, OutletStream(recent_size))
    stream.subscribers.update(screens)
    return hub


async def settle():
    for _ in range(10):
        await asyncio.sleep(0)


async def test_callers_waiting_on_a_read_that_found_the_end_do_not_read_again(log):
    hub = following("o")
    first = asyncio.ensure_future(hub.fetch_after("o", 3))
    await settle()
    # These asked while the first read was already running: one of them must read again.
    waiting = [asyncio.ensure_future(hub.fetch_after("o", after)) for after in (3, 3, 4, 3)]
    await settle()
    log.release.set()
    assert await first == []
    assert await asyncio.gather(*waiting) == [[], [], [], []]
    assert log.reads == [3, 3]


async def test_a_caller_behind_the_end_a_read_found_still_reads(log):
    hub = following("o")
    first = asyncio.ensure_future(hub.fetch_after("o", 3))
    await settle()
    behind = asyncio.ensure_future(hub.fetch_after("o", 1))
    log.release.set()
    assert await first == []
    assert [m["seq"] for m in await behind] == [2, 3]
    assert log.reads == [3, 1]


async def test_a_caller_that_asked_after_the_read_began_reads_itself(log):
    hub = following("o")
    log.release.set()
    assert await hub.fetch_after("o", 3) == []
    log.seqs.append(4)  # committed after that read
    assert [m["seq"] for m in await hub.fetch_after("o", 3)] == [4]
    assert log.reads == [3, 3]


async def test_a_read_that_returned_events_marks_the_end_at_the_last(log):
    hub = following("o", recent_size=1)  # keeps seq 3 only: seq 1 must come from the log
    first = asyncio.ensure_future(hub.fetch_after("o", 0))
    await settle()
    waiting = [asyncio.ensure_future(hub.fetch_after("o", after)) for after in (0, 3, 3)]
    await settle()
    log.release.set()
    assert [m["seq"] for m in await first] == [1, 2, 3]
    results = await asyncio.gather(*waiting)
    assert [m["seq"] for m in results[0]] == [1, 2, 3]  # not helped by the first read
    assert results[1:] == [[], []]  # the second read found the log ending at 3
    assert log.reads == [0, 0]


class Recorder:
    """A subscriber that records what the hub hands it."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.seqs: list[int] = []
        self.handed: list[int] = []  # how many messages each hand-out carried

    def deliver_many(self, messages: list[dict], frames: bytes | None = None) -> None:
        self.seqs.extend(message["seq"] for message in messages)
        self.handed.append(len(messages))

    def request_catch_up(self) -> None:
        pass

    def catch_up_if_behind(self, settled_seq: int) -> None:
        pass


def _message(seq: int) -> dict:
    return {"outlet": "o", "seq": seq, "text": f"e{seq}", "name": "order.updated"}


async def test_events_published_out_of_order_by_two_writers_are_handed_out_in_order():
    screen = Recorder()
    hub = following("o", screen)
    for seq in (1, 3, 4, 2, 5, 7, 6):
        hub.dispatch_many([_message(seq)])
    assert screen.seqs == [1, 2, 3, 4, 5, 6, 7]
    assert not hub.outlets["o"].held and hub.outlets["o"].release_timer is None
    assert hub.recent("o", 3)["text"] == "e3"


async def test_a_gap_that_stays_open_is_released_after_the_wait(monkeypatch):
    monkeypatch.setattr(hub_module, "REORDER_WAIT_S", 0.02)
    screen = Recorder()
    hub = following("o", screen)
    hub.dispatch_many([_message(1)])
    hub.dispatch_many([_message(3)])  # 2 was lost (or is late): 3 waits for it...
    hub.dispatch_many([_message(4)])
    assert screen.seqs == [1]
    await asyncio.sleep(0.05)
    assert screen.seqs == [1, 3, 4]  # ...then goes on; the socket fills 2 from the log
    hub.dispatch_many([_message(2)])  # a late arrival (a relay re-publication) is handed out too
    hub.dispatch_many([_message(5)])
    assert screen.seqs == [1, 3, 4, 2, 5]
    assert not hub.outlets["o"].held


async def test_each_hand_out_is_timed_once():
    def handouts() -> float:
        return next(
            sample.value
            for sample in metrics.fanout_handout.collect()[0].samples
            if sample.name.endswith("_count")
        )

    screens = [Recorder(), Recorder()]
    hub = following("o", *screens)
    before = handouts()
    for seq in (1, 2, 3):
        hub.dispatch_many([_message(seq)])
    assert handouts() == before + 3  # once per event, not per socket
    assert all(screen.seqs == [1, 2, 3] for screen in screens)


async def test_a_transactions_events_are_handed_out_together_and_in_order():
    screen = Recorder()
    hub = following("o", screen)
    hub.dispatch_many([_message(1)])
    hub.dispatch_many([{"type": "stream.events", "outlet": "o",
                        "messages": [_message(2), _message(3), _message(4)]}])
    assert screen.seqs == [1, 2, 3, 4]
    assert screen.handed == [1, 3]  # one hand-out for the transaction's three
    assert hub.recent("o", 4)["text"] == "e4"


async def test_a_batch_after_a_gap_waits_and_is_handed_out_with_the_missing_event():
    screen = Recorder()
    hub = following("o", screen)
    hub.dispatch_many([_message(1)])
    hub.dispatch_many([{"type": "stream.events", "outlet": "o",
                        "messages": [_message(3), _message(4)]}])
    assert screen.seqs == [1] and hub.outlets["o"].release_timer is not None
    hub.dispatch_many([_message(2)])  # the other writer's event, published a little later
    assert screen.seqs == [1, 2, 3, 4] and screen.handed == [1, 3]
    assert not hub.outlets["o"].held and hub.outlets["o"].release_timer is None


async def test_messages_received_together_are_handed_out_together_in_seq_order():
    screen, other = Recorder(), Recorder()
    hub = following("o", screen)
    following("p", other, hub=hub)
    hub.dispatch_many([_message(2), {**_message(1), "outlet": "p"}, _message(1), _message(3)])
    assert screen.seqs == [1, 2, 3] and screen.handed == [3]
    assert other.seqs == [1] and other.handed == [1]


class QueueLayer:
    """A channel layer whose receive hands out what the test puts in ``queue``."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    async def receive(self, channel: str) -> dict:
        return await self.queue.get()

    async def group_discard(self, group: str, channel: str) -> None:
        pass


async def _running_hub(screen: Recorder) -> tuple[QueueLayer, list[asyncio.Task]]:
    """A hub whose reader and dispatcher run on ``QueueLayer``, with ``screen`` subscribed."""
    hub = following("o", screen)
    hub.layer, hub.channel = QueueLayer(), "hub.test!x"
    tasks = [asyncio.create_task(hub._read_loop()), asyncio.create_task(hub._dispatch_loop())]
    return hub.layer, tasks


async def test_a_hub_that_keeps_up_hands_out_each_message_as_it_arrives():
    screen = Recorder()
    layer, tasks = await _running_hub(screen)
    try:
        for seq in (1, 2, 3):
            await layer.queue.put({**_message(seq), "published": time.time()})
            await asyncio.sleep(0.002)
            assert screen.seqs[-1] == seq  # no wait for company
        assert screen.handed == [1, 1, 1]
    finally:
        for task in tasks:
            task.cancel()


async def test_a_hub_that_is_behind_hands_out_what_arrives_meanwhile_together():
    screen = Recorder()
    layer, tasks = await _running_hub(screen)
    try:
        late = time.time() - 1.0  # published a second ago: the process is behind
        await layer.queue.put({**_message(1), "published": late})
        await asyncio.sleep(0)
        await layer.queue.put({**_message(2), "published": late})
        await layer.queue.put({**_message(3), "published": late})
        await asyncio.sleep(hub_module.GATHER_S * 4)
        assert screen.seqs == [1, 2, 3] and screen.handed == [3]
    finally:
        for task in tasks:
            task.cancel()


async def test_an_outlet_no_local_socket_follows_is_read_from_the_log_and_not_kept(log):
    hub = StreamHub()
    log.release.set()
    assert [m["seq"] for m in await hub.fetch_after("o", 1)] == [2, 3]
    assert "o" not in hub.outlets and hub.recent("o", 2) is None


async def test_the_last_socket_leaving_drops_the_outlet_and_its_wait():
    screen = Recorder()
    hub = following("o", screen)
    hub.layer = QueueLayer()
    hub.dispatch_many([_message(1)])
    hub.dispatch_many([_message(3)])  # waits for 2
    timer = hub.outlets["o"].release_timer
    await hub.unsubscribe("o", screen)
    assert "o" not in hub.outlets and timer.cancelled()
    await asyncio.sleep(hub_module.REORDER_WAIT_S * 2)
    assert screen.seqs == [1]  # 3 was never handed to anyone


async def test_callers_behind_a_read_find_its_events_in_memory(log):
    hub = following("o")
    first = asyncio.ensure_future(hub.fetch_after("o", 0))
    await settle()
    waiting = asyncio.ensure_future(hub.fetch_after("o", 0))
    await settle()
    log.release.set()
    assert [m["seq"] for m in await first] == [1, 2, 3]
    assert await waiting is None  # look in the recent events again
    assert hub.recent("o", 1)["seq"] == 1
    assert log.reads == [0]
