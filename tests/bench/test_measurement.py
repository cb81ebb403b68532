"""The bench's own arithmetic: what the load client counts, how the driver paces, and how the
server's histograms are read. The verdicts in docs/performance.md rest on these."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from prometheus_client.samples import Sample

from bench.cli import Climb, climb, sweep_ladder, sweep_verdict
from bench.driver import paced
from bench.load import LoadClient, percentile
from bench.runs import _histogram_quantiles


def event_frame(seq: int, at: float) -> bytes:
    stamp = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    return (f'{{"type":"event","seq":{seq},"event":"order.updated","outlet":"o",'
            f'"at":"{stamp}","data":{{"id":"x"}}}}').encode()


def snapshot_frame(seq: int) -> bytes:
    return json.dumps({"type": "snapshot", "seq": seq, "orders": []}).encode()


def test_the_load_client_counts_lost_duplicated_out_of_order_and_latency():
    client = LoadClient(argparse.Namespace(screens=2, until_seq=None))
    client.mark_time, client.mark_cpu = time.time(), 0.0
    at = time.time() - 5
    first, second = client.handler(_screen(client)), client.handler(_screen(client))
    first(snapshot_frame(2), at)  # events 1 and 2 were in its snapshot
    for seq, late_ms in ((3, 10), (4, 10), (4, 30), (6, 20), (5, 40)):
        first(event_frame(seq, at), at + late_ms / 1000)
    second(snapshot_frame(0), at)
    for seq in (1, 2, 3):
        second(event_frame(seq, at), at + 0.010)

    stats = client.finish_stats(expected=[1, 2, 3, 4, 5, 6], waited_s=0.0)

    assert (stats["connected"], stats["expected"], stats["delivered"]) == (2, 10, 7)
    assert (stats["lost"], stats["duplicates"], stats["out_of_order"]) == (3, 1, 1)
    assert round(stats["p50_ms"]) == 10 and round(stats["max_ms"]) == 40


def _screen(client: LoadClient):
    from bench.load import Screen

    screen = Screen()
    client.screens.append(screen)
    return screen


def test_percentile_picks_the_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (
        51.0, 99.0, 100.0)
    assert percentile([], 0.5) != percentile([], 0.5)  # nan: nothing was measured


def test_paced_runs_every_step_once_on_schedule_and_counts_failures():
    calls: list[tuple[int, float]] = []

    async def step(i: int) -> None:
        calls.append((i, time.monotonic()))
        await asyncio.sleep(0.001)
        if i == 7:
            raise ValueError("rolled back")

    started = time.monotonic()
    stats = asyncio.run(paced(20, 200.0, 10.0, step, lanes=2))

    assert sorted(i for i, _ in calls) == list(range(20))
    assert stats["events"] == 19 and stats["errors"] == {"ValueError: rolled back": 1}
    # Open loop at 200/s: step i is not started before its due time.
    assert all(moment - started >= i / 200.0 - 0.002 for i, moment in calls)
    assert 0.09 <= stats["seconds"] < 2.0


def test_histogram_quantiles_are_bucket_upper_bounds():
    def bucket(le: str, count: float) -> Sample:
        return Sample("pos_fanout_latency_seconds_bucket", {"le": le}, count, None, None)

    family = SimpleNamespace(samples=[
        bucket("0.005", 50), bucket("0.01", 90), bucket("0.025", 99), bucket("0.05", 100),
        bucket("+Inf", 100),
        Sample("pos_fanout_latency_seconds_count", {}, 100, None, None),
    ])
    assert _histogram_quantiles(family) == {"count": 100, "p50_ms": 5.0, "p99_ms": 25.0}
    assert _histogram_quantiles(SimpleNamespace(samples=[])) == {
        "count": 0, "p50_ms": None, "p99_ms": None}


def _steps(outcomes: dict[float, tuple[bool, float]]):
    """A sweep step that answers from ``outcomes`` (rate -> passed, achieved) and records
    which rates were run."""
    tried: list[float] = []

    def step(rate: float) -> dict:
        tried.append(rate)
        passed, achieved = outcomes[rate]
        return {"passed": passed, "achieved_rate": achieved}

    return step, tried


def test_the_sweep_ladder_goes_past_the_given_rates():
    assert sweep_ladder([400, 100, 800], 3) == [100, 400, 800, 1200, 1800, 2700]
    assert sweep_ladder([50, 100], 0) == [50, 100]


def test_a_climb_stops_at_the_first_failure_and_keeps_the_achieved_rate():
    step, tried = _steps({100: (True, 100.2), 200: (True, 199.0), 400: (False, 400.0),
                          800: (True, 800.0)})
    result = climb([100, 200, 400, 800], step)
    assert tried == [100, 200, 400]
    assert (result.best, result.topped, result.short_of) == (199.0, False, None)


def test_a_climb_stops_where_the_writers_fall_short_and_one_that_passes_all_is_topped():
    step, tried = _steps({100: (True, 100.0), 200: (True, 150.0), 400: (True, 400.0)})
    short = climb([100, 200, 400], step)
    assert tried == [100, 200] and (short.best, short.short_of, short.topped) == (150, 200, False)
    step, _ = _steps({100: (True, 100.0), 200: (True, 200.5)})
    assert climb([100, 200], step) == Climb(best=200.5, topped=True)


def test_the_sweep_verdict_needs_the_references_ceiling():
    found = Climb(best=800.0)
    assert sweep_verdict(Climb(best=400.0), found) == "MET"
    assert sweep_verdict(Climb(best=399.0), found) == "NOT MET"
    # A reference that passed every rate could go higher: half of what it reached proves
    # nothing, less than half of it fails whatever its ceiling.
    for unknown in (Climb(best=800.0, topped=True), Climb(best=800.0, short_of=1200.0)):
        assert sweep_verdict(Climb(best=1200.0), unknown).startswith("INCONCLUSIVE")
        assert sweep_verdict(Climb(best=300.0), unknown) == "NOT MET"
    assert sweep_verdict(Climb(best=300.0), Climb()).startswith("INCONCLUSIVE")
