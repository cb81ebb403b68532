"""A client that stops reading while the stream goes on.

One kitchen screen stops reading its socket (small TCP buffers on both ends, so the server
soon cannot write to it) while hundreds of events go by. The server keeps a bounded buffer per
socket: past ``WS_SEND_QUEUE_LIMIT`` it drops the buffer and marks the socket for a refill
from the log, so its memory does not grow with the backlog; the other screens, on the same
process, keep receiving in real time; and when the slow screen reads again it gets every
event it missed, once, in order, from the log, on the same connection.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.faults.checker import fetch_log, forwards, report, worst_latency
from tests.faults.harness import FaultRun, metric

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

QUEUE_LIMIT = 20
SEND_BUFFER = 16 * 1024  # bytes; see tight_server.py
STALLED_EVENTS = 400


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.timeout(150)
async def test_a_stalled_reader_is_bounded_and_recovers_by_replay(restaurant, start_servers):
    servers = start_servers(2, sndbuf=SEND_BUFFER, WS_SEND_QUEUE_LIMIT=str(QUEUE_LIMIT))
    run = FaultRun(restaurant, servers)
    others = run.add_clients(orders=2, kitchen=2)
    (slow,) = run.add_clients(orders=0, kitchen=1, chooser=run.prefer(0),
                              receive_buffer=4096, max_queue=1)
    await run.connect()
    run.add_drivers(workers=4)
    run.start_drivers()
    await run.wait_events(60, timeout=60)

    pid = servers[0].proc.pid
    rss = [_rss_mb(pid)]
    slow.stop_reading()
    stalled_at = time.time()
    target = await run.last_seq() + STALLED_EVENTS
    while await run.last_seq() < target:
        rss.append(_rss_mb(pid))
        await asyncio.sleep(0.5)
    resumed_at = time.time()
    received_while_stalled = len(slow.received)
    log = await fetch_log(servers[1].base_url, restaurant.manager_token, restaurant.outlet_id)
    owed = [e.seq for e in log if e.seq > slow.start_seq and forwards("kitchen", e)]
    slow.resume_reading()
    caught_up = await slow.wait_for_seq(owed[-1], timeout=30)
    recovery = time.time() - resumed_at
    await run.wait_events(target + 100, timeout=60)  # and it follows live again
    log = await run.finish()

    resyncs = metric(servers[0].base_url, "pos_socket_resyncs_total")
    result = report(
        "slow_client", run.clients, log, recovery_s=recovery,
        extra={
            "stalled_events": STALLED_EVENTS,
            "missed_while_stalled": len(owed) - received_while_stalled,
            "resyncs": int(resyncs),
            "rss_growth_mb": round(max(rss) - rss[0], 1),
            "others_worst_latency_s": round(
                worst_latency(others, committed_from=stalled_at, committed_to=resumed_at), 2),
        },
    )
    result.record()
    assert run.server_errors() == []
    # The stall was real: most of what went by was not read meanwhile...
    assert result.extra["missed_while_stalled"] > STALLED_EVENTS // 4
    # ...the server dropped that socket's buffer rather than growing it...
    assert resyncs >= 1
    assert result.extra["rss_growth_mb"] < 40
    # ...the other screens were not held up by it...
    assert result.extra["others_worst_latency_s"] < 2.0
    # ...and the slow screen caught up on the same connection, from the log.
    assert caught_up
    assert len(slow.sessions) == 1
    result.assert_clean()
