"""Redis (channel layer and cache) restarted in the middle of a stream of order changes.

Two server processes share PostgreSQL and a Redis of the test's own. While orders change
through REST on both, Redis is killed and, three seconds later, started again empty: every
group membership and queued message is gone. The sockets stay open; the hubs rejoin their
groups, and what the layer lost reaches the sockets from the log.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.checker import report, worst_latency
from tests.faults.harness import FaultRun

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

REDIS_DOWN_S = 3.0


@pytest.mark.timeout(150)
async def test_redis_restart_loses_nothing(restaurant, start_servers, own_redis):
    run = FaultRun(restaurant, start_servers(2))
    run.add_clients(orders=3, kitchen=3)
    await run.connect()
    # No payments here: their rate limit lives in Redis and fails with it (a bug that
    # test_redis_down.py pins down); this test is about delivery.
    run.add_drivers(workers=4, pay_ratio=0.0)
    run.start_drivers()

    await run.wait_events(250, timeout=60)
    fault_start = time.time()
    await asyncio.to_thread(own_redis.restart, down_for=REDIS_DOWN_S)
    fault_end = time.time()
    await run.wait_events(await run.last_seq() + 250, timeout=60)
    log = await run.finish()

    result = report(
        "redis_restart", run.clients, log,
        recovery_s=worst_latency(run.clients, committed_from=fault_start,
                                 committed_to=fault_end + 1.0),
        extra={"redis_down_s": REDIS_DOWN_S},
    )
    result.record()
    assert run.server_errors() == []
    result.assert_clean()
    # Events committed while Redis was down waited for the watchdog (2 s ticks), not longer.
    assert result.recovery_s < 8.0
