"""A server process killed with SIGKILL in the middle of the stream, then started again.

Its sockets drop without a closing handshake; their clients reconnect with ``since`` to
whichever process is up (the survivor, or the restarted one), and the requests the driver was
sending to it go to the survivor. Events the killed process committed but never published are
served from the log.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.checker import report, worst_latency
from tests.faults.harness import FaultRun

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

DOWN_S = 2.0


@pytest.mark.timeout(150)
async def test_sigkill_and_restart_loses_nothing(restaurant, start_servers):
    run = FaultRun(restaurant, start_servers(2))
    run.add_clients(orders=3, kitchen=3, chooser=run.any_live_ws)  # reconnect anywhere
    await run.connect()
    run.add_drivers(workers=4)
    run.start_drivers()

    await run.wait_events(150, timeout=60)
    killed_at = time.time()
    await run.kill(0)
    await asyncio.sleep(DOWN_S)
    await run.start_again(0)
    restarted_at = time.time()
    await run.wait_events(await run.last_seq() + 150, timeout=60)
    log = await run.finish()

    cut = len(run.cut_sessions(run.servers[0], killed_at))
    result = report(
        "server_sigkill", run.clients, log,
        recovery_s=worst_latency(run.clients, committed_from=killed_at,
                                 committed_to=restarted_at + 1.0),
        extra={
            "sockets_cut": cut,
            "reconnect_s": round(run.reconnect_s(run.servers[0], killed_at), 2),
            "restart_s": round(restarted_at - killed_at, 1),
        },
    )
    result.record()
    assert cut > 0, "no socket was on the killed process"
    assert run.server_errors() == []
    result.assert_clean()
    assert result.recovery_s < 10.0
