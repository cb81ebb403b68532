"""The events driver: commits (or, for the reference, sends) M events at R per second.

``python -m bench.driver --mode MODE ...`` prints one JSON line with what it did:

- ``publish``: pre-made order events written through ``pos.streams.outbox.emit``, one
  transaction each (real outbox rows, real on-commit publication), to isolate fan-out;
- ``service``: real order transitions through the orders service layer (``order_create`` and
  ``order_transition``; each a transaction with its outbox rows);
- ``reference``: the same envelope, stamped with the send time, sent to the reference
  server's ``/publish`` socket.

Writes run as a web process runs a sync view (a worker thread beside a running event loop),
so their after-commit publication takes the same path as a REST request's in uvicorn.
Pacing is open-loop: event i is due at ``start + i / R``; a driver that falls behind sends at
once and reports how far behind it got. The run stops by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from bench.load import loop_factory


def order_payload(number: int, outlet_id: str) -> dict:
    """An order as the order serializer renders it: three items, one with a modifier."""
    items = []
    for position, (name, price, quantity) in enumerate(
        (("Nasi goreng spesial", "45000.00", 2), ("Es teh manis", "8000.00", 3),
         ("Sate ayam", "38000.00", 1))
    ):
        modifiers = (
            [{"id": str(uuid.uuid4()), "name": "Extra pedas", "price_delta": "2000.00"}]
            if position == 0 else []
        )
        unit = Decimal(price) + sum(Decimal(m["price_delta"]) for m in modifiers)
        items.append({
            "id": str(uuid.uuid4()),
            "product": str(uuid.uuid4()),
            "name": name,
            "unit_price": price,
            "quantity": quantity,
            "modifiers": modifiers,
            "note": "",
            "total": f"{unit * quantity:.2f}",
        })
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": str(uuid.uuid4()),
        "number": f"B-{number:04d}",
        "outlet": outlet_id,
        "status": "preparing",
        "version": 4,
        "type": "dine_in",
        "table": "12",
        "customer_name": "Bench",
        "note": "",
        "items": items,
        "subtotal": "156000.00",
        "tax_amount": "18018.00",
        "service_charge_amount": "7800.00",
        "discount_amount": "0.00",
        "total": "181818.00",
        "payment_status": "unpaid",
        "paid_amount": "0.00",
        "created_at": now,
        "updated_at": now,
    }


async def paced(count: int, rate: float, max_seconds: float,
                step: Callable[[int], Awaitable[None]], lanes: int = 1,
                start_at: float | None = None) -> dict:
    """Await ``step(i)`` for i < count at ``rate`` per second (0: as fast as possible).

    With several ``lanes``, lane j makes the steps i = j, j + lanes, ... one after the other,
    and the lanes run side by side: up to ``lanes`` steps are in flight, as several requests
    are on a server, while every step keeps its place in the one schedule. ``start_at`` (a
    ``time.time()``) starts the schedule then, so that several driver processes share one.
    """
    durations: list[float] = []
    errors: Counter[str] = Counter()
    max_lag = 0.0
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
    start = time.monotonic()
    done = 0

    async def lane(first: int) -> None:
        nonlocal max_lag, done
        for i in range(first, count, lanes):
            if rate > 0:
                due = start + i / rate
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                else:
                    max_lag = max(max_lag, now - due)
            if time.monotonic() - start > max_seconds:
                return
            began = time.perf_counter()
            try:
                await step(i)
            except Exception as exc:
                # A failed write rolled back and emitted nothing; count it and go on, as a
                # client would retry. The first traceback of each kind goes to the log.
                name = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                if name not in errors:
                    traceback.print_exc()
                errors[name] += 1
                continue
            durations.append(time.perf_counter() - began)
            done += 1

    await asyncio.gather(*(lane(j) for j in range(lanes)))
    elapsed = time.monotonic() - start
    durations.sort()

    def pick(q: float) -> float:
        return durations[min(len(durations) - 1, int(q * len(durations)))] * 1000.0

    return {
        "events": done,
        "seconds": round(elapsed, 3),
        "achieved_rate": round(done / elapsed, 1) if elapsed > 0 else 0.0,
        "op_ms_p50": round(pick(0.5), 3) if durations else None,
        "op_ms_p99": round(pick(0.99), 3) if durations else None,
        "op_ms_max": round(durations[-1] * 1000.0, 3) if durations else None,
        "max_lag_ms": round(max_lag * 1000.0, 1),
        "errors": dict(errors),
    }


def in_worker_thread(
    function: Callable[[int], None], *, shared: bool = True
) -> Callable[[int], Awaitable[None]]:
    """Run a service call as a web process runs a sync view: in a worker thread, with this
    event loop running, so on-commit publication goes through this loop's channel layer
    connections (``async_to_sync`` finds the loop) as it does in uvicorn. ``shared=False``
    lets calls run in several threads at once (each with its database connection)."""
    from asgiref.sync import sync_to_async

    return sync_to_async(function, thread_sensitive=shared)


# --- modes -----------------------------------------------------------------------------------
async def run_reference(args: argparse.Namespace) -> dict:
    from websockets.asyncio.client import connect

    outlet = str(uuid.uuid4())
    payload = order_payload(1, outlet)
    data_text = json.dumps(payload, separators=(",", ":"))
    async with connect(f"ws://{args.host}:{args.port}/publish", compression=None) as socket:

        async def step(i: int) -> None:
            at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            await socket.send(
                f'{{"type":"event","seq":{i + 1},"event":"order.updated","outlet":"{outlet}",'
                f'"at":"{at}","data":{data_text}}}'
            )

        stats = await paced(args.events, args.rate, args.max_seconds, step)
    stats.update(first_seq=1, last_seq=stats["events"])
    return stats


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pos.settings")
    import django

    django.setup()


def warm_up(_: int) -> None:
    """Open what a web process that has been serving has open: its worker thread's database
    connection, and the channel layer's connections publication uses, so that the first
    measured commit does not pay for setting them up."""
    from django.db import connection

    from pos.streams.publisher import open_connections

    connection.ensure_connection()
    open_connections()


def freeze_start_up() -> None:
    """Move what the start-up loaded out of the garbage collector's reach, as ``asgi.py`` does
    in a web process: unfrozen, the driver's full collections walked Django's objects and
    stalled every lane of the driver for 180 to 220 ms, and with it every event it had
    committed and not yet published."""
    gc.collect()
    gc.freeze()


async def run_publish(args: argparse.Namespace) -> dict:
    _setup_django()
    from pos.streams import outbox
    from tenants.models import Outlet

    outlet = await Outlet.objects.aget(pk=args.outlet)
    await in_worker_thread(warm_up)(0)
    payload = order_payload(1, str(outlet.id))
    order_id = payload["id"]
    freeze_start_up()
    seqs: list[int] = []
    per_transaction = max(1, args.batch)

    def step(i: int) -> None:
        with outbox.atomic():
            events = [
                outbox.emit(outlet=outlet, name="order.updated", data=payload, order_id=order_id)
                for _ in range(per_transaction)
            ]
        seqs.extend(event.seq for event in events)  # numbered as the block ended

    count = -(-args.events // per_transaction)
    rate = args.rate / per_transaction if args.rate else 0
    stats = await paced(count, rate, args.max_seconds, in_worker_thread(step),
                        start_at=args.start_at)
    stats.update(events=len(seqs), first_seq=seqs[0] if seqs else None,
                 last_seq=seqs[-1] if seqs else None, transactions=stats["events"],
                 achieved_rate=round(len(seqs) / stats["seconds"], 1) if stats["seconds"] else 0)
    return stats


async def run_service(args: argparse.Namespace) -> dict:
    _setup_django()
    from bench.orders_driver import OrderFlow

    lanes = max(1, args.lanes)
    await in_worker_thread(warm_up)(0)
    # One flow per lane: a lane's steps run one after the other, so no order is ever moved by
    # two threads at once.
    flows = [
        await in_worker_thread(
            lambda i: OrderFlow(outlet_id=args.outlet, user_id=args.user,
                                products=args.products)
        )(0)
        for _ in range(lanes)
    ]
    freeze_start_up()
    stats = await paced(args.events, args.rate, args.max_seconds,
                        in_worker_thread(lambda i: flows[i % lanes].step(), shared=False),
                        lanes=lanes, start_at=args.start_at)
    totals: dict[str, int] = {}
    for flow in flows:
        for key, value in flow.summary().items():
            totals[key] = totals.get(key, 0) + value
    stats.update(totals, lanes=lanes)
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.driver")
    parser.add_argument("--mode", choices=("publish", "service", "reference"), required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="events per second; 0 = max")
    parser.add_argument("--outlet", help="outlet id (publish, service)")
    parser.add_argument("--user", help="acting user id (service)")
    parser.add_argument("--products", nargs="*", default=[], help="product ids (service)")
    parser.add_argument("--batch", type=int, default=1, help="events per transaction (publish)")
    parser.add_argument("--lanes", type=int, default=4,
                        help="service calls in flight at once (service)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="reference server port")
    parser.add_argument("--start-at", type=float, default=None,
                        help="time.time() at which to start the schedule (several writers)")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    runner = {"publish": run_publish, "service": run_service, "reference": run_reference}
    with asyncio.Runner(loop_factory=loop_factory()) as loop:
        result = loop.run(runner[args.mode](args))
    sys.stdout.write(json.dumps({"status": "driven", "mode": args.mode, **result}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
