"""The load client: N screens on one socket URL, counting what each one receives.

Run by the orchestrator as ``python -m bench.load ...`` on its own core. It talks JSON lines:
it prints ``{"status": "connected", ...}`` once every screen has its first message (the
snapshot), then obeys commands read from stdin:

- ``{"cmd": "mark"}``: the measurement window starts (CPU and time are read);
- ``{"cmd": "finish", "expected": [seq, ...], "timeout": s}``: wait until every screen has the
  last expected seq (or the timeout), then print ``{"status": "result", ...}`` and exit;
- ``{"cmd": "close"}``: close every screen and exit (idle runs).

With ``--until-seq`` it measures one replay instead: the time from opening the socket to the
arrival of that seq. The process exits by itself after ``--max-seconds`` whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import resource
import sys
import time
from array import array
from datetime import datetime

from bench.wsclient import connect

EVENT_PREFIX = b'{"type":"event"'


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Screen:
    """What one socket received: seqs in arrival order and each one's latency."""

    __slots__ = ("base", "close_code", "done", "first_message", "latencies", "max_seq", "seqs")

    def __init__(self) -> None:
        self.seqs = array("q")
        self.latencies = array("d")
        self.base: int | None = None  # seq of the snapshot
        self.first_message: float | None = None
        self.max_seq = 0
        self.done = False
        self.close_code: int | None = None


class LoadClient:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.screens: list[Screen] = []
        self.protocols = []
        self.at_cache: dict[int, float] = {}
        self.target: int | None = args.until_seq
        self.remaining = 0
        self.all_done = asyncio.Event()
        self.first_ready = asyncio.Event()
        self.ready_count = 0
        self.closed_early = 0
        self.mark_time = 0.0
        self.mark_cpu = 0.0
        self.connect_started = 0.0
        self.first_arrival: float | None = None
        self.last_arrival = 0.0

    # --- receiving ------------------------------------------------------------------------
    def handler(self, screen: Screen):
        at_cache = self.at_cache

        def on_message(payload: bytes, arrived: float) -> None:
            if payload.startswith(EVENT_PREFIX):
                start = payload.find(b'"seq":', 14) + 6
                seq = int(payload[start : payload.find(b",", start)])
                at = at_cache.get(seq)
                if at is None:
                    k = payload.find(b'"at":"', start) + 6
                    at = datetime.fromisoformat(payload[k : payload.find(b'"', k)].decode())
                    at = at_cache[seq] = at.timestamp()
                screen.seqs.append(seq)
                screen.latencies.append(arrived - at)
                if self.first_arrival is None:
                    self.first_arrival = arrived
                self.last_arrival = arrived
                if seq > screen.max_seq:
                    screen.max_seq = seq
                    target = self.target
                    if target is not None and seq >= target and not screen.done:
                        screen.done = True
                        self.remaining -= 1
                        if self.remaining <= 0:
                            self.all_done.set()
                return
            message = json.loads(payload)
            if screen.first_message is None:
                screen.first_message = arrived
                if message.get("type") == "snapshot":
                    screen.base = message.get("seq")
                self.ready_count += 1
                self.first_ready.set()

        return on_message

    def closer(self, screen: Screen):
        def on_close(code: int | None) -> None:
            screen.close_code = code
            if not self.closing:
                self.closed_early += 1

        return on_close

    closing = False

    # --- connecting -----------------------------------------------------------------------
    async def connect_all(self) -> dict:
        args = self.args
        semaphore = asyncio.Semaphore(args.connect_concurrency)
        failures: list[str] = []
        self.connect_started = time.time()

        async def open_one(index: int) -> None:
            screen = Screen()
            self.screens.append(screen)
            async with semaphore:
                try:
                    protocol = await connect(
                        args.host, args.port, args.path, self.handler(screen),
                        self.closer(screen), timeout=args.connect_timeout,
                    )
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    screen.close_code = -1
                    return
                self.protocols.append(protocol)
                # Hold the slot until the first message: it bounds the server's connect work
                # in flight, as a fleet of screens coming online would.
                deadline = time.monotonic() + args.connect_timeout
                while screen.first_message is None and screen.close_code is None:
                    if time.monotonic() > deadline:
                        failures.append("no first message")
                        return
                    await asyncio.sleep(0.005)

        self.remaining = args.screens
        await asyncio.gather(*(open_one(i) for i in range(args.screens)))
        ready = sum(1 for s in self.screens if s.first_message is not None and s.close_code is None)
        return {
            "status": "connected",
            "connected": ready,
            "requested": args.screens,
            "failed": len(failures),
            "failures": sorted(set(failures))[:5],
            "connect_s": round(time.time() - self.connect_started, 3),
        }

    # --- results --------------------------------------------------------------------------
    def finish_stats(self, expected: list[int], waited_s: float) -> dict:
        expected_set = set(expected)
        latencies: list[float] = []
        delivered = lost = duplicates = out_of_order = unexpected = 0
        expected_total = 0
        connected = 0
        for screen in self.screens:
            if screen.first_message is None:
                continue
            connected += 1
            base = screen.base or 0
            mine = {seq for seq in expected_set if seq > base}
            expected_total += len(mine)
            seen: set[int] = set()
            previous = 0
            for seq, latency in zip(screen.seqs, screen.latencies, strict=True):
                if seq < previous:
                    out_of_order += 1
                previous = max(previous, seq)
                if seq in seen:
                    duplicates += 1
                    continue
                seen.add(seq)
                if seq in mine:
                    delivered += 1
                    latencies.append(latency)
                else:
                    unexpected += 1
            lost += len(mine - seen)
        latencies.sort()
        window = (self.last_arrival - self.first_arrival) if self.first_arrival else 0.0
        cpu = _cpu_seconds() - self.mark_cpu
        wall = max(1e-9, time.time() - self.mark_time)
        ms = 1000.0
        return {
            "status": "result",
            "connected": connected,
            "requested": self.args.screens,
            "expected": expected_total,
            "delivered": delivered,
            "lost": lost,
            "duplicates": duplicates,
            "out_of_order": out_of_order,
            "unexpected": unexpected,
            "closed_early": self.closed_early,
            "p50_ms": percentile(latencies, 0.50) * ms,
            "p95_ms": percentile(latencies, 0.95) * ms,
            "p99_ms": percentile(latencies, 0.99) * ms,
            "max_ms": (latencies[-1] * ms) if latencies else float("nan"),
            "deliveries_per_s": delivered / window if window > 0 else float("nan"),
            "window_s": window,
            "client_cpu_pct": 100.0 * cpu / wall,
            "waited_s": waited_s,
        }

    def replay_stats(self) -> dict:
        screen = self.screens[0]
        seqs = list(screen.seqs)
        received = len(seqs)
        in_order = all(b == a + 1 for a, b in itertools.pairwise(seqs))
        return {
            "status": "result",
            "received": received,
            "first_seq": seqs[0] if seqs else None,
            "last_seq": seqs[-1] if seqs else None,
            "contiguous": in_order,
            "duplicates": received - len(set(seqs)),
            "replay_s": (self.last_arrival - self.connect_started) if seqs else float("nan"),
            "first_event_s": (self.first_arrival - self.connect_started) if seqs else None,
            "reached_target": screen.done,
        }

    async def close_all(self) -> None:
        self.closing = True
        for protocol in self.protocols:
            protocol.close()
        await asyncio.sleep(0.2)
        for protocol in self.protocols:
            protocol.abort()


def emit(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def read_commands(queue: asyncio.Queue) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            await queue.put({"cmd": "close"})  # the orchestrator is gone: stop
            return
        await queue.put(json.loads(line))


async def run(args: argparse.Namespace) -> None:
    client = LoadClient(args)
    if args.until_seq is not None:
        client.remaining = 1
        client.connect_started = time.time()
        screen = Screen()
        client.screens.append(screen)
        protocol = await connect(
            args.host, args.port, args.path, client.handler(screen), None, args.connect_timeout
        )
        client.protocols.append(protocol)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.all_done.wait(), args.replay_timeout)
        emit(client.replay_stats())
        await client.close_all()
        return

    emit(await client.connect_all())
    commands: asyncio.Queue = asyncio.Queue()
    reader = asyncio.get_running_loop().create_task(read_commands(commands))
    try:
        while True:
            command = await commands.get()
            if command["cmd"] == "mark":
                client.mark_time, client.mark_cpu = time.time(), _cpu_seconds()
                client.first_arrival = None
                emit({"status": "marked"})
            elif command["cmd"] == "finish":
                expected = command["expected"]
                started = time.monotonic()
                if expected:
                    client.target = max(expected)
                    client.remaining = sum(
                        1 for s in client.screens
                        if s.first_message is not None and s.max_seq < client.target
                    )
                    if client.remaining > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(client.all_done.wait(), command["timeout"])
                # A short grace period so that late duplicates are counted too.
                await asyncio.sleep(command.get("grace", 0.3))
                emit(client.finish_stats(expected, time.monotonic() - started))
                return
            elif command["cmd"] == "close":
                return
    finally:
        reader.cancel()
        await client.close_all()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--screens", type=int, default=1)
    parser.add_argument("--connect-concurrency", type=int, default=64)
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    parser.add_argument("--until-seq", type=int, default=None)
    parser.add_argument("--replay-timeout", type=float, default=60.0)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)

    async def bounded() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run(args), args.max_seconds)

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(bounded())


def loop_factory():
    """uvloop when installed (uvicorn[standard] brings it), else the default loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
