"""``python -m bench``: scenarios, the results table and the targets of the fan-out issue.

Examples::

    python -m bench                                   # the default set, a few minutes
    python -m bench --scenario all                    # the issue's whole table
    python -m bench --scenario fanout --screens 200 --rate 100 --events 2000 --mode service
    python -m bench --scenario sweep --screens 200 --rates 100 200 400 800
    python -m bench --scenario idle --idle-screens 5000
    python -m bench --scenario replay --missed 10000

``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` must be set; the bench creates and migrates
its own database next to the given one (see ``bench.database``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench import database, runs
from bench.machine import Pinning, describe, raise_open_files_limit
from bench.processes import OwnRedis

ROOT = Path(__file__).resolve().parent.parent

# Targets of the fan-out issue.
TARGETS = {
    "200x100": {"screens": 200, "rate": 100, "p99_ms": 25.0},
    "1000x50": {"screens": 1000, "rate": 50, "p99_ms": 100.0},
    "sweep_p99_ms": 50.0,
    "sweep_fraction_of_reference": 0.5,
    "idle_screens": 5000,
    "idle_kb_per_screen": 25.0,
    "replay_events": 10000,
    "replay_s": 1.0,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenario", default="default",
        choices=("default", "all", "fanout", "sweep", "idle", "replay"),
        help="default: 200x100 (publish and service, with the reference), idle 1000, replay "
             "10k; all: the issue's table (200x100, 1000x50, rate sweep, idle 5000, replay 10k)",
    )
    parser.add_argument("--screens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--mode", choices=("publish", "service", "both"), default="both",
                        help="how the project's events are committed (fanout scenario)")
    parser.add_argument("--writers", type=int, default=2,
                        help="driver processes committing the project's events side by side, "
                             "as several web processes do (publish and service modes)")
    parser.add_argument("--writers-on", choices=("load", "server", "any"), default="load",
                        help="core of the events drivers: the load client's (default), the "
                             "server's (as web and socket processes share a host), or any")
    parser.add_argument("--lanes", type=int, default=2,
                        help="service calls in flight in each writer (service mode)")
    parser.add_argument("--rates", type=float, nargs="+",
                        default=[50, 100, 200, 300, 400, 600, 800], help="rates of the sweep")
    parser.add_argument("--sweep-per-tx", type=int, default=0,
                        help="events per transaction in the project's sweep steps (0: rate/50, "
                             "so that the writers keep up; 1: every event its own transaction, "
                             "one message each as the reference gets them)")
    parser.add_argument("--sweep-extend", type=int, default=3,
                        help="rates tried above the last of --rates while a server still "
                             "passes, each 1.5 times the one before (the reference's ceiling "
                             "is what the sweep target compares with)")
    parser.add_argument("--sweep-seconds", type=float, default=8.0,
                        help="length of each sweep step (events = rate x seconds)")
    parser.add_argument("--idle-screens", type=int, default=None)
    parser.add_argument("--missed", type=int, default=10000, help="events replayed")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument("--asgi", default="asgi:application",
                        help="ASGI application the project server runs (to measure a variant "
                             "of the project against the same harness)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the bare websockets reference runs")
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument("--redis", choices=("env", "own"), default="env",
                        help="env: the Redis of REDIS_URL; own: start a private redis-server "
                             "pinned to the server's core (keeps thousands of bench "
                             "connections off a shared Redis)")
    parser.add_argument("--bench-db", default=None,
                        help="database name to use (default: <DATABASE_URL name>_bench_run)")
    parser.add_argument("--json", default=str(ROOT / "var" / "bench" / "results.json"),
                        help="where to write the raw results")
    parser.add_argument("--profile", action="store_true",
                        help="sample the project server with py-spy during fan-out runs "
                             "(pip install py-spy); collapsed stacks go to var/bench/")
    parser.add_argument("--report", default=str(ROOT / "var" / "bench" / "report.txt"),
                        help="where to write the printed report")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="hard limit of every child process")
    return parser


def child_environment(database_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        # Bench keys in Redis never mix with a development server's or the tests'.
        CHANNELS_PREFIX="posbench",
        DJANGO_SETTINGS_MODULE="pos.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        PAYMENTS_SANDBOX_SECRET=secrets.token_urlsafe(24),
        # Every screen of the bench logs in as the same user; the per-user connect limit is
        # an abuse guard, not what is measured here.
        WS_CONNECTS_PER_MINUTE="1000000",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="plain",
        PYTHONUNBUFFERED="1",
    )
    return env


# --- table -----------------------------------------------------------------------------------
def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


FANOUT_COLUMNS = [
    ("server", lambda r: r["target"] + ("" if r["target"] == "reference" else f"/{r['mode']}")),
    ("screens", lambda r: r["screens"]),
    ("rate", lambda r: f"{r['rate']:g}->{r['achieved_rate']:g}"
                       + (f" ({r['batch']}/tx)" if r.get("batch", 1) > 1 else "")
                       + (f" [{r['writers']}w]" if r.get("writers", 1) > 1 else "")),
    ("conn", lambda r: f"{r['connected']}/{r['requested']}"),
    ("delivered/expected", lambda r: f"{r['delivered']}/{r['expected']}"),
    ("lost", lambda r: r["lost"]),
    ("dup", lambda r: r["duplicates"]),
    ("ooo", lambda r: r["out_of_order"]),
    ("p50", lambda r: _fmt(r["p50_ms"])),
    ("p95", lambda r: _fmt(r["p95_ms"])),
    ("p99", lambda r: _fmt(r["p99_ms"])),
    ("max", lambda r: _fmt(r["max_ms"])),
    ("deliv/s", lambda r: _fmt(r["deliveries_per_s"], 0)),
    ("RSS MB", lambda r: _fmt(r["server_rss_mb"])),
    ("srv CPU%", lambda r: _fmt(r["server_cpu_pct"], 0)),
    ("srv wait%", lambda r: _fmt(r["server_wait_pct"], 0)),
    ("cli CPU%", lambda r: _fmt(r["client_cpu_pct"], 0)),
    ("other cores", lambda r: _fmt(r["other_cores"], 2)),
]


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def fanout_table(results: list[dict]) -> str:
    header = [name for name, _ in FANOUT_COLUMNS]
    rows = [[str(get(r)) for _, get in FANOUT_COLUMNS] for r in results]
    return table(rows, header)


def ratio(project: dict, reference: dict | None) -> str:
    if reference is None:
        return ""
    parts = []
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("deliveries_per_s", "deliv/s"),
                       ("server_rss_mb", "RSS")):
        a, b = project.get(key), reference.get(key)
        if a and b and not (math.isnan(a) or math.isnan(b)):
            parts.append(f"{label} x{a / b:.2f}")
    return f"  {project['target']}/{project['mode']} vs reference: " + ", ".join(parts)


def server_side(row: dict) -> str:
    """The server's own account of a run (its ``/metrics``): what a screen's latency is
    made of on the server, and how often sockets could not take an event at once."""
    figures = row.get("server_side") or {}
    if "error" in figures or not figures:
        return f"    server side: not read ({figures.get('error', 'no figures')})"
    parts = []
    for key, label in (("commit_to_hub", "commit->hub"), ("handout", "hand-out to all sockets")):
        if key in figures:
            h = figures[key]
            parts.append(f"{label} p50 <={_fmt(h['p50_ms'])} p99 <={_fmt(h['p99_ms'])} ms")
    parts.append(f"sends that found a socket paused {_fmt(figures.get('sends_suspended'), 0)}")
    parts.append(f"resyncs {_fmt(figures.get('resyncs'), 0)}")
    return "    server side: " + ", ".join(parts)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


SWEEP_STEP_FACTOR = 1.5


def sweep_ladder(rates: list[float], extra: int) -> list[float]:
    """The sweep's rates: the given ones in order, then ``extra`` more, each 1.5 times the one
    before. A reference that passes every given rate is thus still taken towards its ceiling,
    which the verdict compares with (a climb stops at its first failure, so the extra steps
    cost nothing once both servers have failed)."""
    ladder = sorted(rates)
    for _ in range(extra):
        ladder.append(float(round(ladder[-1] * SWEEP_STEP_FACTOR)))
    return ladder


@dataclass
class Climb:
    """How far one server got up the sweep's ladder."""

    best: float = 0.0  # highest rate achieved in a passing step
    topped: bool = False  # every rate passed: the ceiling is higher than the ladder
    short_of: float | None = None  # the writers could not reach this rate; the climb stopped


def climb(ladder: list[float], step: Callable[[float], dict]) -> Climb:
    """Run ``step(rate)`` up ``ladder`` until a step fails (its row's ``passed``) or the
    writers reach less than 90 % of the rate asked (higher rates would not be tested)."""
    result = Climb()
    for rate in ladder:
        row = step(rate)
        if not row["passed"]:
            return result
        # The rate that was tested is the one the writers reached.
        result.best = max(result.best, row["achieved_rate"])
        if row["achieved_rate"] < 0.9 * rate:
            result.short_of = rate
            return result
    result.topped = True
    return result


def sweep_verdict(project: Climb, reference: Climb) -> str:
    """The sweep target: the project's highest passing rate is at least half the reference's.
    Where the reference's ceiling was not found (it passed every rate, or its writer fell
    short) a project at or above half its best proves nothing: INCONCLUSIVE."""
    if reference.best <= 0:
        return "INCONCLUSIVE (the reference passed no rate: the machine was too busy)"
    ok = project.best >= TARGETS["sweep_fraction_of_reference"] * reference.best
    if ok and (reference.topped or reference.short_of is not None):
        return (f"INCONCLUSIVE (the reference's ceiling is above {reference.best:g}/s, the "
                f"highest rate reached: raise --rates or --sweep-extend)")
    return verdict(ok)


# --- scenarios -------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, ctx: runs.Context) -> None:
        self.args = args
        self.ctx = ctx
        self.results: dict[str, list] = {"fanout": [], "sweep": [], "idle": [], "replay": []}
        self.verdicts: list[str] = []
        self.lines: list[str] = []

    def out(self, text: str) -> None:
        """Print a line of the report and keep it for the report file."""
        print(text)
        self.lines.append(text)

    def fanout_set(self, screens: int, rate: float, events: int, modes: list[str],
                   label: str | None = None) -> list[dict]:
        rows = []
        reference = None
        if not self.args.no_reference:
            self.ctx.say(f"fanout reference {screens}x{rate:g}, {events} events")
            reference = runs.fanout(self.ctx, target="reference", screens=screens, rate=rate,
                                    events=events, mode="broadcast")
            rows.append(reference)
        for mode in modes:
            self.ctx.say(f"fanout {self.args.server}/{mode} {screens}x{rate:g}, {events} events")
            rows.append(runs.fanout(self.ctx, target="project", screens=screens, rate=rate,
                                    events=events, mode=mode, writers=self.args.writers,
                                    lanes=self.args.lanes))
        for row in rows:
            row["label"] = label or f"{screens}x{rate:g}"
        self.results["fanout"].extend(rows)
        self.out(f"\n== fan-out: {screens} screens, {rate:g} events/s, {events} events ==")
        self.out(fanout_table(rows))
        for row in rows:
            if row["target"] != "reference":
                self.out(ratio(row, reference))
                self.out(server_side(row))
            if row["driver"].get("errors"):
                self.out(f"  driver errors ({row['target']}/{row['mode']}): "
                         f"{row['driver']['errors']}")
        target = TARGETS.get(f"{screens}x{rate:g}")
        if target:
            for row in rows:
                if row["target"] == "reference":
                    continue
                ok = (row["lost"] == 0 and row["duplicates"] == 0 and row["out_of_order"] == 0
                      and row["connected"] == screens and row["p99_ms"] <= target["p99_ms"]
                      and row["achieved_rate"] >= 0.95 * rate)
                self.verdicts.append(
                    f"{screens} screens x {rate:g}/s ({row['mode']}): 0 lost and p99 <= "
                    f"{target['p99_ms']:g} ms: {verdict(ok)} (lost {row['lost']}, p99 "
                    f"{_fmt(row['p99_ms'])} ms, achieved {row['achieved_rate']:g}/s)"
                )
        return rows

    def sweep(self, screens: int) -> None:
        ladder = sweep_ladder(self.args.rates, self.args.sweep_extend)
        targets = ([] if self.args.no_reference else ["reference"]) + ["project"]
        climbs = {target: climb(ladder, partial(self._sweep_step, target, screens))
                  for target in targets}
        self.out(f"\n== rate sweep at {screens} screens (p99 <= {TARGETS['sweep_p99_ms']:g} ms "
                 f"and 0 lost) ==")
        self.out(fanout_table(self.results["sweep"]))
        for target, result in climbs.items():
            self.out(f"  highest passing rate, {target}: {result.best:g}/s")
            if result.short_of is not None:
                self.out(f"  ({target}: the writer fell short of {result.short_of:g}/s; higher "
                         f"rates were not tried)")
        if "reference" in climbs:
            self.verdicts.append(
                f"sweep at {screens} screens: project {climbs['project'].best:g}/s >= half the "
                f"reference's {climbs['reference'].best:g}/s: "
                f"{sweep_verdict(climbs['project'], climbs['reference'])}"
            )

    def _sweep_step(self, target: str, screens: int, rate: float) -> dict:
        """One rate of the sweep for ``target``: its row, with whether it passed."""
        events = int(min(max(rate * self.args.sweep_seconds, 400), 20000))
        self.ctx.say(f"sweep {target} {screens}x{rate:g}, {events} events")
        # The writers share the load client's core; above 50/s the sweep commits several
        # events per transaction, so that it measures fan-out rather than the writers' Python.
        row = runs.fanout(self.ctx, target=target, screens=screens, rate=rate, events=events,
                          mode="broadcast" if target == "reference" else "publish",
                          batch=(self.args.sweep_per_tx or max(1, int(rate // 50)))
                          if target == "project" else 1,
                          writers=self.args.writers)
        row["label"] = "sweep"
        row["passed"] = (row["lost"] == 0 and row["p99_ms"] <= TARGETS["sweep_p99_ms"]
                         and row["duplicates"] == 0 and row["out_of_order"] == 0)
        self.results["sweep"].append(row)
        return row

    def idle(self, screens: int) -> None:
        rows = []
        targets = ["project"] + ([] if self.args.no_reference else ["reference"])
        for target in targets:
            self.ctx.say(f"idle {target}, {screens} screens")
            rows.append(runs.idle(self.ctx, target=target, screens=screens))
        self.results["idle"].extend(rows)
        self.out(f"\n== idle capacity: {screens} idle screens on one process ==")
        header = ["server", "connected", "connect s", "RSS before MB", "RSS after MB",
                  "KB/screen", "MB/1000 screens", "fds/screen"]
        self.out(table([[r["target"], f"{r['connected']}/{r['screens']}", _fmt(r["connect_s"]),
                      _fmt(r["rss_before_mb"]), _fmt(r["rss_after_mb"]),
                      _fmt(r["kb_per_screen"]), _fmt(r["mb_per_1000"]),
                      _fmt(r["fds_per_screen"], 2)] for r in rows], header))
        project = rows[0]
        if screens >= TARGETS["idle_screens"]:
            ok = (project["connected"] == screens
                  and project["kb_per_screen"] <= TARGETS["idle_kb_per_screen"])
            self.verdicts.append(
                f"{screens} idle screens per process at <= {TARGETS['idle_kb_per_screen']:g} KB "
                f"each: {verdict(ok)} ({project['connected']} connected, "
                f"{_fmt(project['kb_per_screen'])} KB each)"
            )

    def replay(self, missed: int) -> None:
        self.ctx.say(f"replay {missed} missed events")
        row = runs.replay(self.ctx, missed=missed)
        self.results["replay"].append(row)
        self.out(f"\n== replay: one screen reconnects with since, {missed} events behind ==")
        header = ["server", "missed", "received", "in order", "dup", "first event s",
                  "replay s (median of 3)", "runs s"]
        self.out(table([[row["target"], row["missed"], "/".join(map(str, row["received"])),
                      "yes" if row["contiguous"] else "NO", row["duplicates"],
                      _fmt(row["first_event_s"], 3), _fmt(row["replay_s"], 3),
                      " ".join(_fmt(t, 3) for t in row["replay_runs_s"])]], header))
        if missed >= TARGETS["replay_events"]:
            ok = (row["replay_s"] < TARGETS["replay_s"] and row["contiguous"]
                  and all(n == missed for n in row["received"]))
            self.verdicts.append(
                f"{missed} missed events replayed in under {TARGETS['replay_s']:g} s: "
                f"{verdict(ok)} ({_fmt(row['replay_s'], 3)} s)"
            )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url or not redis_url:
        print("set DATABASE_URL (PostgreSQL) and REDIS_URL", file=sys.stderr)
        return 2
    bench_url = database.bench_database_url(database_url, args.bench_db)
    raise_open_files_limit(20000)
    pinning = Pinning(enabled=not args.no_pin, writers_on=args.writers_on)
    own_redis = OwnRedis(pinning, args.max_seconds * 20) if args.redis == "own" else None
    try:
        return run_bench(args, argv, bench_url, own_redis.url if own_redis else redis_url,
                         pinning)
    finally:
        if own_redis is not None:
            own_redis.stop()


def run_bench(args: argparse.Namespace, argv: list[str] | None, bench_url: str,
              redis_url: str, pinning: Pinning) -> int:
    env = child_environment(bench_url, redis_url)
    machine = describe()

    created = database.ensure_database(bench_url)
    database.migrate(env)
    database.setup_django(env)
    ctx = runs.Context(env=env, pinning=pinning, fixtures=database.Fixtures(),
                       server_kind=args.server, max_seconds=args.max_seconds,
                       profile=args.profile, asgi=args.asgi)
    ctx.say(f"database {bench_url.rsplit('/', 1)[-1]} ({'created' if created else 'reused'}), "
            f"Redis {redis_url.split('@')[-1]}; {pinning.describe()}")
    bench = Bench(args, ctx)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    bench.out(f"command: {command.strip()}")
    bench.out(f"code: {code_version()}")
    bench.out(f"machine: {machine['nproc']} CPU ({machine['cpu']}), {machine['memory_gib']} GiB, "
              f"Linux {machine['kernel']}, Python {machine['python']}; {pinning.describe()}")
    started = time.monotonic()
    service_ready = _service_mode_available()
    modes = (["publish", "service"] if args.mode == "both" else [args.mode])
    if not service_ready and "service" in modes:
        ctx.say("orders services are not available: service mode skipped")
        modes = [m for m in modes if m != "service"]

    scenario = args.scenario
    if scenario in ("default", "all"):
        bench.fanout_set(200, 100, 2000, modes)
    if scenario == "all":
        bench.fanout_set(1000, 50, 1000, modes)
        bench.sweep(200)
    if scenario == "fanout":
        bench.fanout_set(args.screens, args.rate, args.events, modes)
    if scenario == "sweep":
        bench.sweep(args.screens)
    if scenario in ("default", "all", "idle"):
        bench.idle(args.idle_screens or (5000 if scenario != "default" else 1000))
    if scenario in ("default", "all", "replay"):
        bench.replay(args.missed)

    elapsed = time.monotonic() - started
    if bench.verdicts:
        bench.out("\n== targets ==")
        for line in bench.verdicts:
            bench.out(f"  {line}")
    bench.out(f"\n(bench took {elapsed:.0f} s)")
    print(f"raw results in {args.json}, this report in {args.report}")
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(bench.lines) + "\n")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "pinning": pinning.describe(),
                               "argv": sys.argv[1:] if argv is None else argv,
                               "results": bench.results, "targets": bench.verdicts,
                               "seconds": elapsed}, indent=2, default=str))
    return 0


def code_version() -> str:
    """The commit, and a digest of the realtime path's files as they are in the work tree."""
    import hashlib
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip() or "unknown"
    except OSError:
        head = "unknown"
    digest = hashlib.sha256()
    files = [*sorted((ROOT / "pos" / "streams").glob("*.py")), ROOT / "orders" / "services.py"]
    for path in files:
        if path.exists():
            digest.update(path.read_bytes())
    return f"commit {head}, pos/streams + orders/services.py digest {digest.hexdigest()[:12]}"


def _service_mode_available() -> bool:
    try:
        from bench.orders_driver import OrderFlow  # noqa: F401
    except ImportError:
        return False
    return True
