"""A process that commits events but never publishes them, as one killed right after COMMIT.

Server 1 runs with ``OUTBOX_SKIP_ON_COMMIT_PUBLISH=1``: every event committed through it
stays unpublished, exactly as when a process dies between commit and its on-commit
publication. The relay (``manage.py outbox_relay --older-than 0 --loop 1``, the periodic
task's work) publishes them; every socket on both processes still receives every event, a
few seconds late at most.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.db.models import Count, F, Max, Q

from pos.models import StreamEvent
from tests.faults.checker import report, worst_latency
from tests.faults.harness import FaultRun, metric

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _publication(outlet_id: str) -> dict:
    try:
        return StreamEvent.objects.filter(outlet_id=outlet_id).aggregate(
            total=Count("pk"),
            unpublished=Count("pk", filter=Q(published_at__isnull=True)),
            worst_lag=Max(F("published_at") - F("created_at")),
        )
    finally:
        connection.close()


@pytest.mark.timeout(150)
async def test_relay_publishes_what_a_dead_process_committed(restaurant, start_servers,
                                                             start_relay):
    normal, mute = start_servers(1) + start_servers(1, OUTBOX_SKIP_ON_COMMIT_PUBLISH="1")
    start_relay()
    run = FaultRun(restaurant, [normal, mute])
    run.add_clients(orders=3, kitchen=3)
    await run.connect()
    started = run.clients[0].sessions[0].opened_at
    run.add_drivers(workers=4)
    run.start_drivers()

    await run.wait_events(300, timeout=90)
    log = await run.finish()

    # The relay runs every second: give its last pass the time to run.
    for _ in range(50):
        publication = await database_sync_to_async(_publication)(restaurant.outlet_id)
        if publication["unpublished"] == 0:
            break
        await asyncio.sleep(0.1)
    mute_emitted = metric(mute.base_url, "pos_events_emitted_total")
    mute_published = metric(mute.base_url, "pos_events_published_total", 'path="commit"')
    relay_lag = publication["worst_lag"].total_seconds()
    result = report(
        "commit_without_publish", run.clients, log,
        recovery_s=worst_latency(run.clients, committed_from=started, committed_to=1e12),
        extra={"left_unpublished": int(mute_emitted), "relay_lag_s": round(relay_lag, 2)},
    )
    result.record()
    assert run.server_errors() == []
    # The mute process committed events and published none of them itself...
    assert mute_emitted > 0
    assert mute_published == 0
    # ...and the relay published every one, within a few seconds of its commit.
    assert publication["unpublished"] == 0
    assert relay_lag < 5.0
    result.assert_clean()
    assert result.recovery_s < 5.0
