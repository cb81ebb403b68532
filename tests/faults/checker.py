"""Compare what each socket client received with the outlet's event log.

The log is read through ``GET /api/events/`` (the same envelopes sockets carry) and filtered
the way each socket filters: orders sockets forward ``order.*``, ``payment.*`` and
``product.availability_changed``; kitchen sockets without a station forward ``ticket.*`` and
``product.availability_changed``. A client owes every filtered event after the seq of its
first snapshot, once, in increasing seq, across all its connections.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

import httpx

from tests.faults.clients import StreamClient
from tests.liveserver import ROOT

SUMMARY_PATH = ROOT / "var" / "faults-summary.jsonl"


@dataclass(frozen=True)
class LogEvent:
    seq: int
    name: str
    station: str | None
    committed: float


def forwards(kind: str, event: LogEvent, station_id: str | None = None) -> bool:
    """Whether a socket of ``kind`` forwards ``event`` (docs/realtime.md, the socket table)."""
    if event.name == "product.availability_changed":
        return True
    if kind == "orders":
        return event.name.startswith(("order.", "payment."))
    if not event.name.startswith("ticket."):
        return False
    return station_id is None or event.station == station_id


async def fetch_log(base_url: str, token: str, outlet_id: str) -> list[LogEvent]:
    """Every event of the outlet, in seq order, paging through ``/api/events/``."""
    events: list[LogEvent] = []
    url: str | None = f"{base_url}/api/events/?outlet={outlet_id}&since=0&limit=500"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                 timeout=30) as http:
        while url:
            response = await http.get(url)
            response.raise_for_status()
            page = response.json()
            for item in page["results"]:
                data = item.get("data") or {}
                events.append(
                    LogEvent(
                        seq=item["seq"],
                        name=item["event"],
                        station=str(data["station"]) if item["event"].startswith("ticket.")
                        and data.get("station") else None,
                        committed=datetime.fromisoformat(item["at"]).timestamp(),
                    )
                )
            url = page["next"]
    return events


@dataclass
class Verdict:
    """One client's history against the log."""

    client: str
    expected: int
    received: int
    losses: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    reorders: list[int] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)  # not forwarded by that socket
    foreign: int = 0  # another outlet's event
    resets: int = 0
    late_replays: int = 0  # a session that resumed with since=N and first sent seq <= N
    errors: int = 0

    @property
    def clean(self) -> bool:
        return not (self.losses or self.duplicates or self.reorders or self.unexpected
                    or self.foreign or self.resets or self.late_replays or self.errors)


def check_client(client: StreamClient, log: list[LogEvent]) -> Verdict:
    if client.start_seq is None:
        raise AssertionError(f"{client.name} never received a snapshot")
    expected = [e.seq for e in log
                if e.seq > client.start_seq and forwards(client.kind, e, client.station_id)]
    received = client.received
    verdict = Verdict(client=client.name, expected=len(expected), received=len(received))
    seen: set[int] = set()
    highest = client.start_seq
    for event in received:
        if event.outlet != client.outlet_id:
            verdict.foreign += 1
            continue
        if event.seq in seen:
            verdict.duplicates.append(event.seq)
            continue
        if event.seq < highest:
            verdict.reorders.append(event.seq)
        seen.add(event.seq)
        highest = max(highest, event.seq)
    wanted = set(expected)
    verdict.losses = sorted(wanted - seen)
    verdict.unexpected = sorted(seen - wanted)
    verdict.resets = sum(1 for s in client.sessions if s.reset)
    verdict.late_replays = sum(
        1 for s in client.sessions
        if s.since is not None and s.events and s.events[0].seq <= s.since
    )
    verdict.errors = len(client.errors)
    return verdict


@dataclass
class RunReport:
    """The one-line figures of a fault test run."""

    test: str
    events: int
    clients: int
    sessions: int
    losses: int
    duplicates: int
    reorders: int
    resets: int
    recovery_s: float
    extra: dict = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"[faults] {self.test}: events={self.events} clients={self.clients} "
            f"sessions={self.sessions} losses={self.losses} duplicates={self.duplicates} "
            f"reorders={self.reorders} resets={self.resets} "
            f"recovery={self.recovery_s:.2f}s {extra}"
        ).rstrip()

    def record(self) -> None:
        """Print the summary and append it to var/faults-summary.jsonl."""
        print(self.line())
        SUMMARY_PATH.parent.mkdir(parents=True, exist_ok=True)
        row = {k: v for k, v in asdict(self).items() if k != "verdicts"}
        row["at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        with SUMMARY_PATH.open("a") as out:
            out.write(json.dumps(row) + "\n")

    def assert_clean(self) -> None:
        dirty = [v for v in self.verdicts if not v.clean]
        assert not dirty, "\n".join(
            f"{v.client}: expected {v.expected}, received {v.received}, "
            f"lost {v.losses[:20]} ({len(v.losses)}), twice {v.duplicates[:20]}, "
            f"out of order {v.reorders[:20]}, not forwarded by this socket "
            f"{v.unexpected[:20]}, foreign {v.foreign}, resets {v.resets}, "
            f"late replays {v.late_replays}, error frames {v.errors}"
            for v in dirty
        )


def report(
    test: str,
    clients: list[StreamClient],
    log: list[LogEvent],
    *,
    recovery_s: float,
    extra: dict | None = None,
) -> RunReport:
    verdicts = [check_client(client, log) for client in clients]
    return RunReport(
        test=test,
        events=len(log),
        clients=len(clients),
        sessions=sum(len(client.sessions) for client in clients),
        losses=sum(len(v.losses) for v in verdicts),
        duplicates=sum(len(v.duplicates) for v in verdicts),
        reorders=sum(len(v.reorders) for v in verdicts),
        resets=sum(v.resets for v in verdicts),
        recovery_s=recovery_s,
        extra=extra or {},
        verdicts=verdicts,
    )


def worst_latency(clients: list[StreamClient], *, committed_from: float,
                  committed_to: float) -> float:
    """The longest any client waited for an event committed in the window (first receipt)."""
    worst = 0.0
    for client in clients:
        first_seen: dict[int, float] = {}
        for event in client.received:
            if committed_from <= event.committed <= committed_to:
                first_seen.setdefault(event.seq, event.received - event.committed)
        if first_seen:
            worst = max(worst, max(first_seen.values()))
    return worst


def catch_up_s(clients: list[StreamClient], log: list[LogEvent]) -> float:
    """The longest a resumed connection (``since``) took to deliver everything committed before
    it opened: reconnect-to-caught-up time."""
    worst = 0.0
    for client in clients:
        for session in client.sessions:
            if session.since is None:
                continue
            due = [e.seq for e in log
                   if e.seq > session.since and e.committed < session.opened_at
                   and forwards(client.kind, e, client.station_id)]
            if not due:
                continue
            arrived = [r.received for r in session.events if r.seq == due[-1]]
            if arrived:  # a session closed before catching up is judged by the next one
                worst = max(worst, arrived[0] - session.opened_at)
    return worst
