"""Single measurements: one fan-out run, one idle-capacity run, one replay run.

Each run starts its own server (a fresh process, so RSS figures are its own), its own load
client and driver, and stops all of them before returning, whatever happened.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import database
from bench.machine import Pinning, busy_cpu_seconds
from bench.processes import LOG_DIR, Child, Server, python_module

MB = 1024 * 1024


@dataclass
class Context:
    """What every run needs: environment of the children, pinning, fixtures, limits."""

    env: dict[str, str]
    pinning: Pinning
    fixtures: database.Fixtures
    server_kind: str = "uvicorn"
    max_seconds: float = 600.0
    profile: bool = False
    asgi: str = "asgi:application"
    log: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.log.append(text)
        sys.stderr.write(f"[bench] {text}\n")
        sys.stderr.flush()

    def start_server(self, kind: str) -> Server:
        server = Server(kind, self.env, self.pinning, self.max_seconds, self.asgi)
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def start_load(self, name: str, port: int, path: str, *extra: str) -> Child:
        argv = ["timeout", "-s", "KILL", str(int(self.max_seconds) + 30),
                *python_module("bench.load", "--port", str(port), "--path", path,
                               "--max-seconds", str(self.max_seconds), *extra)]
        return Child(name, self.pinning.load(argv), self.env, stdin=True)

    def _driver(self, name: str, timeout: float, *args: str,
                env: dict[str, str] | None = None) -> Child:
        argv = ["timeout", "-s", "KILL", str(int(timeout) + 30),
                *python_module("bench.driver", "--max-seconds", str(timeout), *args)]
        return Child(name, self.pinning.writer(argv), {**self.env, **(env or {})})

    def drive(self, *args: str, env: dict[str, str] | None = None, timeout: float) -> dict:
        driver = self._driver("driver", timeout, *args, env=env)
        try:
            return driver.read_json(timeout + 60)
        finally:
            driver.stop()

    def drive_many(self, writers: int, *args: str, events: int, rate: float,
                   timeout: float) -> dict:
        """``writers`` driver processes sharing one schedule of ``events`` at ``rate``/s, as
        several web processes take a rush's orders; their figures summed."""
        if writers <= 1:
            return self.drive(*args, "--events", str(events), "--rate", str(rate),
                              timeout=timeout)
        # Every process loads Django before its first event: start them all, then the
        # schedule, offset per writer so that the events of all of them are evenly spaced.
        start_at = time.time() + 5.0
        children = []
        try:
            for j in range(writers):
                share = events // writers + (1 if j < events % writers else 0)
                children.append(self._driver(
                    f"driver-{j}", timeout, *args, "--events", str(share),
                    "--rate", str(rate / writers),
                    "--start-at", str(start_at + j / rate if rate else 0)))
            parts = [child.read_json(timeout + 60) for child in children]
        finally:
            for child in children:
                child.stop()
        done = sum(p["events"] for p in parts)
        seconds = max(p["seconds"] for p in parts)
        errors: dict[str, int] = {}
        for part in parts:
            for name, count in part["errors"].items():
                errors[name] = errors.get(name, 0) + count
        return {
            "writers": writers,
            "events": done,
            "seconds": seconds,
            "achieved_rate": round(done / seconds, 1) if seconds else 0.0,
            "op_ms_p50": statistics.median(p["op_ms_p50"] or 0 for p in parts),
            "op_ms_p99": max(p["op_ms_p99"] or 0 for p in parts),
            "max_lag_ms": max(p["max_lag_ms"] for p in parts),
            "errors": errors,
            "parts": parts,
        }


def _orders_path(outlet_id, token: str, since: int | None = None) -> str:
    path = f"/ws/orders/{outlet_id}/?token={token}"
    return path if since is None else f"{path}&since={since}"


def _warm_up(ctx: Context, server: Server, path: str, screens: int = 20) -> None:
    """Open and close a few sockets so the first-connection costs are not in the figures."""
    client = ctx.start_load("warmup", server.port, path, "--screens", str(screens))
    try:
        client.read_json(60)
        client.send({"cmd": "close"})
        client.wait(30)
    finally:
        client.stop()
    time.sleep(0.5)


def fanout(ctx: Context, *, target: str, screens: int, rate: float, events: int,
           mode: str, batch: int = 1, writers: int = 1, lanes: int = 2) -> dict:
    """N screens on one outlet, M events at R/s: delivery, order, latency, throughput, RSS.

    ``target`` is "project" (the ASGI server; ``mode`` "publish" or "service" says how events
    are committed) or "reference" (the bare broadcast server).
    """
    kind = ctx.server_kind if target == "project" else "reference"
    result: dict = {"target": target if target == "reference" else kind, "mode": mode,
                    "screens": screens, "rate": rate, "events": events, "batch": batch,
                    "writers": writers if target == "project" else 1}
    if target == "project":
        outlet = ctx.fixtures.new_outlet()
        path = _orders_path(outlet.id, ctx.fixtures.token())
        start_seq = database.last_seq(outlet.id)
    else:
        outlet, path, start_seq = None, "/", 0
    server = ctx.start_server(kind)
    client = profiler = None
    try:
        _warm_up(ctx, server, path)
        rss_before = server.rss()
        client = ctx.start_load(f"load-{kind}", server.port, path, "--screens", str(screens))
        connected = client.read_json(120 + screens / 10)
        result["connect_s"] = connected["connect_s"]
        if connected["failed"]:
            result["connect_failures"] = connected["failures"]
        rss_connected = server.rss()
        client.send({"cmd": "mark"})
        client.read_json(30)
        cpu0, wait0, busy0, wall0 = (server.cpu(), server.run_queue_wait(),
                                     busy_cpu_seconds(), time.monotonic())
        budget = events / rate * 3 + 60 if rate else 300
        if ctx.profile and target == "project":
            result["profile"] = str(LOG_DIR / f"profile-{mode}-{screens}x{rate:g}.txt")
            profiler = _start_profiler(ctx, server, result["profile"],
                                       events / rate + 5 if rate else 60)
        if target == "reference":
            driven = ctx.drive("--mode", "reference", "--port", str(server.port),
                               "--events", str(events), "--rate", str(rate), timeout=budget)
            expected = list(range(driven["first_seq"], driven["last_seq"] + 1))
        elif mode == "publish":
            driven = ctx.drive_many(writers, "--mode", "publish", "--outlet", str(outlet.id),
                                    "--batch", str(batch), events=events, rate=rate,
                                    timeout=budget)
            expected = database.orders_socket_seqs(outlet.id, start_seq)
        else:
            driven = ctx.drive_many(writers, "--mode", "service", "--outlet", str(outlet.id),
                                    "--user", str(ctx.fixtures.owner.id),
                                    "--lanes", str(lanes), "--products", *ctx.fixtures.products,
                                    events=events, rate=rate, timeout=budget)
            expected = database.orders_socket_seqs(outlet.id, start_seq)
        client.send({"cmd": "finish", "expected": expected, "timeout": 20})
        stats = client.read_json(120 + screens / 5)
        if profiler is not None:
            with contextlib.suppress(Exception):
                profiler.wait(60)
        cpu1, wait1, busy1, wall1 = (server.cpu(), server.run_queue_wait(),
                                     busy_cpu_seconds(), time.monotonic())
        wall = max(1e-9, wall1 - wall0)
        result.update(stats)
        if target == "project":
            result["server_side"] = server_side_figures(server)
        result.update(
            achieved_rate=driven["achieved_rate"],
            driver=driven,
            server_rss_mb=server.rss() / MB,
            server_rss_before_mb=rss_before / MB,
            server_rss_connected_mb=rss_connected / MB,
            server_cpu_pct=100.0 * (cpu1 - cpu0) / wall,
            # Runnable but not running: the server waited for a core (another process had it).
            server_wait_pct=100.0 * (wait1 - wait0) / wall,
            # Cores busy with anything but the server and the load client (the driver,
            # PostgreSQL, Redis, and whatever else runs on the machine).
            other_cores=max(0.0, (busy1 - busy0) / wall - (cpu1 - cpu0) / wall
                            - stats["client_cpu_pct"] / 100.0),
        )
        return result
    finally:
        if profiler is not None:
            profiler.stop()
        if client is not None:
            client.stop()
        server.stop()


def _histogram_quantiles(family, quantiles=(0.5, 0.99)) -> dict[str, float | None]:
    """Quantiles of a Prometheus histogram, read off its buckets (the upper bound of the
    bucket where the quantile falls: coarse, but from the server's own clock)."""
    buckets = sorted(
        (float(sample.labels["le"]), sample.value)
        for sample in family.samples if sample.name.endswith("_bucket")
    )
    total = buckets[-1][1] if buckets else 0
    figures: dict[str, float | None] = {"count": total}
    for q in quantiles:
        bound = next((le for le, count in buckets if total and count >= q * total), None)
        figures[f"p{q * 100:g}_ms"] = None if bound is None else bound * 1000
    return figures


def server_side_figures(server: Server) -> dict:
    """Where the server says the time went, from its ``/metrics`` at the end of a run: commit
    to its hub (database, publication, Redis) and the hub's hand-out to every local socket
    (the process's own CPU); sends that found a socket paused, sockets refilled from the log."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    except httpx.HTTPError as exc:
        return {"error": str(exc)}
    families = {family.name: family for family in text_string_to_metric_families(text)}
    figures: dict = {}
    for key, name in (("commit_to_hub", "pos_fanout_latency_seconds"),
                      ("handout", "pos_fanout_handout_seconds")):
        if name in families:
            figures[key] = _histogram_quantiles(families[name])
    for key, name in (("sends_suspended", "pos_socket_sends_suspended"),
                      ("resyncs", "pos_socket_resyncs")):
        if name in families:
            figures[key] = sum(s.value for s in families[name].samples
                               if s.name.endswith("_total"))
    return figures


def _start_profiler(ctx: Context, server: Server, output: str, seconds: float) -> Child:
    """py-spy sampling the server for the measured window (on the load core)."""
    argv = [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record",
            "--pid", str(server.pid), "--rate", "200", "--format", "raw", "--nonblocking",
            "--duration", str(int(seconds)), "--output", output]
    return Child("py-spy", ctx.pinning.load(argv), ctx.env)


def idle(ctx: Context, *, target: str, screens: int, settle_s: float = 3.0) -> dict:
    """RSS of one server process holding ``screens`` idle sockets, per socket."""
    kind = ctx.server_kind if target == "project" else "reference"
    if target == "project":
        outlet = ctx.fixtures.new_outlet()
        path = _orders_path(outlet.id, ctx.fixtures.token())
    else:
        path = "/"
    server = ctx.start_server(kind)
    client = None
    try:
        _warm_up(ctx, server, path)
        time.sleep(1.0)
        before, fds_before = server.rss(), server.fds()
        client = ctx.start_load(f"idle-{kind}", server.port, path, "--screens", str(screens),
                                "--connect-concurrency", "100")
        connected = client.read_json(300 + screens / 5)
        time.sleep(settle_s)
        after, fds_after = server.rss(), server.fds()
        per_screen = (after - before) / max(1, connected["connected"])
        client.send({"cmd": "close"})
        with contextlib.suppress(Exception):
            client.wait(60)
        return {
            "target": target if target == "reference" else kind,
            "screens": screens,
            "connected": connected["connected"],
            "connect_s": connected["connect_s"],
            "rss_before_mb": before / MB,
            "rss_after_mb": after / MB,
            "kb_per_screen": per_screen / 1024,
            "mb_per_1000": per_screen * 1000 / MB,
            # One per socket is the floor; more means each socket holds another connection.
            "fds_per_screen": (fds_after - fds_before) / max(1, connected["connected"]),
        }
    finally:
        if client is not None:
            client.stop()
        server.stop()


def replay(ctx: Context, *, missed: int, attempts: int = 3) -> dict:
    """Time for one screen reconnecting with ``since`` to receive ``missed`` logged events."""
    outlet = ctx.fixtures.new_outlet()
    token = ctx.fixtures.token()
    since = database.last_seq(outlet.id)
    # The screen is away while these commit: the rows are real outbox rows, written through
    # emit() in transactions of 100; nobody listens, so their publication is skipped.
    filled = ctx.drive("--mode", "publish", "--outlet", str(outlet.id), "--events", str(missed),
                       "--rate", "0", "--batch", "100",
                       env={"OUTBOX_SKIP_ON_COMMIT_PUBLISH": "1"}, timeout=600)
    until = since + filled["events"]
    server = ctx.start_server(ctx.server_kind)
    runs = []
    try:
        _warm_up(ctx, server, _orders_path(outlet.id, token), screens=2)
        for _ in range(attempts):
            client = ctx.start_load("replay", server.port, _orders_path(outlet.id, token, since),
                                    "--until-seq", str(until), "--replay-timeout", "60")
            try:
                runs.append(client.read_json(120))
            finally:
                client.stop()
    finally:
        server.stop()
    times = [r["replay_s"] for r in runs]
    return {
        "target": ctx.server_kind,
        "missed": filled["events"],
        "fill_s": filled["seconds"],
        "replay_s": statistics.median(times),
        "replay_runs_s": times,
        "received": [r["received"] for r in runs],
        "contiguous": all(r["contiguous"] for r in runs),
        "duplicates": sum(r["duplicates"] for r in runs),
        "first_event_s": statistics.median(r["first_event_s"] or 0 for r in runs),
    }
