"""``StreamHub.fetch_after``: one log read per outlet at a time, and no read a waiting socket
can do without (every screen connecting after a restart catches up from its snapshot's seq)."""

from __future__ import annotations

import asyncio

import pytest

from pos.streams import hub as hub_module
from pos.streams.hub import StreamHub


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


async def settle():
    for _ in range(10):
        await asyncio.sleep(0)


async def test_callers_waiting_on_a_read_that_found_the_end_do_not_read_again(log):
    hub = StreamHub()
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
    hub = StreamHub()
    first = asyncio.ensure_future(hub.fetch_after("o", 3))
    await settle()
    behind = asyncio.ensure_future(hub.fetch_after("o", 1))
    log.release.set()
    assert await first == []
    assert [m["seq"] for m in await behind] == [2, 3]
    assert log.reads == [3, 1]


async def test_a_caller_that_asked_after_the_read_began_reads_itself(log):
    hub = StreamHub()
    log.release.set()
    assert await hub.fetch_after("o", 3) == []
    log.seqs.append(4)  # committed after that read
    assert [m["seq"] for m in await hub.fetch_after("o", 3)] == [4]
    assert log.reads == [3, 3]


async def test_a_read_that_returned_events_marks_the_end_at_the_last(log):
    hub = StreamHub()
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
