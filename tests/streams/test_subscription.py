"""The per-socket hot path, without a server: in-step sends, paused sockets, overflow."""

from __future__ import annotations

import asyncio

import pytest

from pos import metrics
from pos.streams.hub import RecentEvents
from pos.streams.subscription import Subscription, finish_suspended
from pos.streams.wire import frames_of, text_frame


def message(seq: int, name: str = "order.updated", order: str | None = None) -> dict:
    return {"seq": seq, "name": name, "order": order, "station": None, "text": f"e{seq}"}


class FakeSocket:
    """Records frames; while ``paused`` is unset, a send suspends as a paused transport does."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.paused = asyncio.Event()
        self.paused.set()
        self.closed_with = None

    async def base_send(self, event: dict) -> None:
        await self.paused.wait()
        self.frames.append(event["text"])

    def accepts(self, name, order_id, station_id) -> bool:
        return order_id != "other"

    async def close(self, code=None) -> None:
        self.closed_with = code


class FakeSource:
    """Recent events and a log, as the hub offers them."""

    def __init__(self, log: list[dict]) -> None:
        self.recent_events = RecentEvents(3)
        self.log = log
        self.log_reads = 0

    def recent(self, outlet_id, seq):
        return self.recent_events.by_seq.get(seq)

    async def fetch_after(self, outlet_id, after):
        self.log_reads += 1
        await asyncio.sleep(0)
        return [m for m in self.log if m["seq"] > after][:2]


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


async def test_in_step_events_are_sent_synchronously_without_a_writer():
    socket, source = FakeSocket(), FakeSource([])
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    for seq in (1, 2, 2, 3):  # a duplicate is dropped
        sub.deliver_many([message(seq)])
        assert sub.writer is None
    sub.deliver_many([message(4, order="other")])  # filtered out, but counted
    assert socket.frames == ["e1", "e2", "e3"]
    assert sub.last_seq == 4


class FramingSocket(FakeSocket):
    """A socket whose server takes prebuilt frames, except while ``paused`` is unset."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def send_frame(self, frame: bytes) -> bool:
        if not self.paused.is_set():
            return False
        self.written.append(frame)
        return True


async def test_prebuilt_frames_are_written_once_built_and_text_goes_through_send_otherwise():
    socket, source = FramingSocket(), FakeSource([])
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    first, second = message(1), message(2)
    sub.deliver_many([first])
    assert socket.written == [text_frame("e1")] and socket.frames == []
    assert first["frame"] is socket.written[0]  # built once, kept for the next socket
    socket.paused.clear()
    sub.deliver_many([second])  # refused: the server's send waits for the socket, in the writer
    assert sub.writer is not None and socket.frames == []
    socket.paused.set()
    await settle()
    assert socket.frames == ["e2"] and len(socket.written) == 1


async def test_a_transactions_events_go_out_in_one_write_of_what_the_socket_accepts():
    socket, source = FramingSocket(), FakeSource([])
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    sub.deliver_many([message(1), message(2, order="other"), message(3)])
    assert socket.written == [text_frame("e1") + text_frame("e3")]
    assert sub.last_seq == 3 and sub.writer is None


async def test_a_socket_taking_the_whole_batch_writes_the_frames_built_for_all_sockets():
    batch = [message(1), message(2, order="other"), message(3)]
    frames = frames_of(batch)
    everything, filtered = FramingSocket(), FramingSocket()
    filtered.accepts = lambda name, order_id, station_id: order_id != "other"
    everything.accepts = lambda name, order_id, station_id: True
    for socket in (everything, filtered):
        sub = Subscription(socket, FakeSource([]), "o", last_seq=0)
        sub.started = True
        sub.deliver_many(batch, frames)
    assert everything.written[0] is frames  # no join of its own
    assert filtered.written == [text_frame("e1") + text_frame("e3")]


async def test_a_batch_with_a_gap_sends_what_is_in_step_and_fills_the_gap_before_the_rest():
    socket, source = FramingSocket(), FakeSource([message(s) for s in range(1, 6)])
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    sub.deliver_many([message(1), message(1), message(2), message(4), message(5)])
    assert socket.written == [text_frame("e1") + text_frame("e2")]
    await settle()  # the writer reads 3 from the log, then sends 4 and 5
    assert socket.written[1:] == [text_frame("e3"), text_frame("e4"), text_frame("e5")]
    assert sub.last_seq == 5


async def test_a_batch_the_server_cannot_take_at_once_is_sent_in_order_before_later_events():
    socket, source = FakeSocket(), FakeSource([])
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    socket.paused.clear()
    sub.deliver_many([message(1), message(2), message(3)])
    sub.deliver_many([message(4)])
    assert socket.frames == [] and sub.writer is not None
    socket.paused.set()
    await settle()
    assert socket.frames == ["e1", "e2", "e3", "e4"]
    assert sub.writer is None


async def test_a_paused_socket_buffers_in_order_and_resumes():
    socket, source = FakeSocket(), FakeSource([])
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    socket.paused.clear()
    for seq in (1, 2, 3):
        sub.deliver_many([message(seq)])
    assert sub.writer is not None and socket.frames == []
    socket.paused.set()
    await settle()
    assert socket.frames == ["e1", "e2", "e3"]
    assert sub.writer is None


async def test_sends_that_find_the_socket_paused_are_counted():
    socket, source = FakeSocket(), FakeSource([])
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    before = metrics.socket_sends_suspended._value.get()
    sub.deliver_many([message(1)])  # in step: completes at once
    socket.paused.clear()
    sub.deliver_many([message(2)])  # suspends: its writer finishes it
    sub.deliver_many([message(3)])  # buffered behind it, not a suspended live send
    assert metrics.socket_sends_suspended._value.get() == before + 1
    socket.paused.set()
    await settle()
    assert socket.frames == ["e1", "e2", "e3"]


async def test_a_gap_is_filled_from_recent_events_then_the_log():
    log = [message(s) for s in range(1, 8)]
    socket, source = FakeSocket(), FakeSource(log)
    for seq in (4, 5):
        source.recent_events.add(message(seq))
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    sub.deliver_many([message(1)])
    sub.deliver_many([message(6)])  # 2..5 never came live
    await settle()
    assert socket.frames == ["e1", "e2", "e3", "e4", "e5", "e6"]
    assert source.log_reads == 1  # 2 and 3 from the log, 4 and 5 from memory


async def test_overflow_drops_the_buffer_and_catches_up(settings):
    settings.WS_SEND_QUEUE_LIMIT = 2
    log = [message(s) for s in range(1, 6)]
    socket, source = FakeSocket(), FakeSource(log)
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    socket.paused.clear()
    for m in log:
        sub.deliver_many([m])
    socket.paused.set()
    await settle()
    assert socket.frames == ["e1", "e2", "e3", "e4", "e5"]


async def test_the_watchdog_reads_the_log_only_for_events_not_sent_or_buffered():
    log = [message(s) for s in range(1, 6)]
    socket, source = FakeSocket(), FakeSource(log)
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    sub.deliver_many([message(1)])
    socket.paused.clear()
    for seq in (2, 3, 4):  # 2 suspends; 3 and 4 wait in the buffer
        sub.deliver_many([message(seq)])
    sub.catch_up_if_behind(4)  # behind its buffer, not behind the stream
    assert not sub.catch_up_needed
    socket.paused.set()
    await settle()
    assert socket.frames == ["e1", "e2", "e3", "e4"] and source.log_reads == 0
    sub.catch_up_if_behind(5)  # 5 was committed and never arrived
    await settle()
    assert socket.frames == ["e1", "e2", "e3", "e4", "e5"] and source.log_reads > 0


async def test_the_watchdog_lets_an_in_step_socket_be_and_catches_up_a_behind_one():
    log = [message(s) for s in range(1, 4)]
    socket, source = FakeSocket(), FakeSource(log)
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    sub.deliver_many([message(1), message(2)])
    sub.catch_up_if_behind(2)
    await settle()
    assert sub.writer is None and source.log_reads == 0
    sub.catch_up_if_behind(3)
    await settle()
    assert socket.frames == ["e1", "e2", "e3"] and sub.last_seq == 3


async def test_start_replays_before_going_live():
    log = [message(s) for s in range(1, 4)]
    socket, source = FakeSocket(), FakeSource(log)
    sub = Subscription(socket, source, "o", last_seq=1)
    sub.deliver_many([message(4)])  # live, before the replay point was set
    sub.start()
    await settle()
    assert socket.frames == ["e2", "e3", "e4"]


async def test_a_stopped_subscription_sends_nothing():
    socket, source = FakeSocket(), FakeSource([])
    sub = Subscription(socket, source, "o", last_seq=0)
    sub.started = True
    await sub.stop()
    sub.deliver_many([message(1)])
    sub.request_catch_up()
    await settle()
    assert socket.frames == []


async def test_finish_suspended_passes_results_and_errors_through():
    future = asyncio.get_running_loop().create_future()

    async def waits():
        return await future

    coro = waits()
    pending = coro.send(None)
    assert pending is future
    task = asyncio.ensure_future(finish_suspended(coro, pending))
    future.set_exception(ValueError("boom"))
    with pytest.raises(ValueError):
        await task
