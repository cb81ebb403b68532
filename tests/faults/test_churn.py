"""Clients connect and disconnect at random all through a run of at least 2,000 events.

Screens drop their socket every few hundred milliseconds (half of them cleanly, half by
cutting TCP), stay away for up to a second, and reconnect with ``since`` to either server
process; new screens join mid-run from a snapshot. Every screen must end with every event it
was owed, once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

import pytest

from tests.faults.checker import catch_up_s, report
from tests.faults.clients import start_clients
from tests.faults.harness import FaultRun

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

EVENTS = 2000
DROPS = 100  # at least this many sockets dropped while the events flow


async def _churn(run: FaultRun, rng: random.Random, stop: asyncio.Event, drops: list) -> None:
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        connected = [c for c in run.clients if c.connected]
        if not connected:
            continue
        client = rng.choice(connected)
        abort = rng.random() < 0.5
        drops.append(abort)
        await client.drop(pause=rng.uniform(0.0, 1.0), abort=abort)


async def _late_joiners(run: FaultRun, rng: random.Random) -> None:
    for _ in range(4):
        await asyncio.sleep(rng.uniform(2.0, 8.0))
        kind = rng.choice(("orders", "kitchen"))
        joiners = run.add_clients(orders=kind == "orders", kitchen=kind == "kitchen",
                                  chooser=run.any_live_ws)
        await start_clients(joiners)


@pytest.mark.timeout(240)
async def test_random_reconnects_through_2000_events(restaurant, start_servers):
    rng = random.Random(2000)
    run = FaultRun(restaurant, start_servers(2), seed=2000)
    run.add_clients(orders=4, kitchen=4, chooser=run.any_live_ws)
    await run.connect()
    run.add_drivers(workers=6)
    run.start_drivers()

    stop, drops = asyncio.Event(), []
    churn = asyncio.create_task(_churn(run, rng, stop, drops))
    joining = asyncio.create_task(_late_joiners(run, rng))
    await run.wait_events(EVENTS, timeout=200)
    # A fast machine writes the events before the churn has dropped enough sockets: the
    # drivers go on until it has, so that every machine runs the same amount of churn.
    deadline = time.monotonic() + 120
    while len(drops) < DROPS and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    stop.set()
    await churn
    with contextlib.suppress(asyncio.CancelledError):
        joining.cancel()
        await joining
    log = await run.finish()

    result = report(
        "churn", run.clients, log, recovery_s=catch_up_s(run.clients, log),
        extra={"drops": len(drops), "tcp_aborts": sum(drops)},
    )
    result.record()
    assert result.events >= EVENTS
    assert len(drops) >= DROPS and result.sessions >= len(drops)
    assert run.server_errors() == []
    result.assert_clean()
