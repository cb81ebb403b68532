"""The machine the figures come from, CPU pinning, and per-process resource readings."""

from __future__ import annotations

import os
import platform
import resource
import shutil
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def describe() -> dict[str, str | int]:
    """nproc, CPU model, memory, kernel, Python: what performance.md reports with results."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count() or 0,
        "affinity": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


class Pinning:
    """Which cores the server side and the load side run on (``taskset -c``).

    With two or more cores the server (and a Redis started by the bench) gets the first and
    the load client and events driver the second. Without ``taskset`` or with one core nothing
    is pinned, and the report says so.
    """

    def __init__(self, enabled: bool = True, writers_on: str = "load") -> None:
        cores = sorted(os.sched_getaffinity(0))
        self.taskset = shutil.which("taskset") if enabled else None
        self.active = bool(self.taskset) and len(cores) >= 2
        self.server_core = cores[0]
        self.load_core = cores[1] if len(cores) >= 2 else cores[0]
        # Where the events drivers (the writers) run: with the load client ("load"), with the
        # server as web processes share a host with socket processes ("server"), or wherever
        # the scheduler puts them ("any").
        self.writers_on = writers_on

    def server(self, argv: list[str]) -> list[str]:
        return self._wrap(argv, self.server_core)

    def load(self, argv: list[str]) -> list[str]:
        return self._wrap(argv, self.load_core)

    def writer(self, argv: list[str]) -> list[str]:
        if self.writers_on == "any":
            return argv
        return self._wrap(argv, self.server_core if self.writers_on == "server"
                          else self.load_core)

    def _wrap(self, argv: list[str], core: int) -> list[str]:
        if not self.active:
            return argv
        return [self.taskset, "-c", str(core), *argv]

    def describe(self) -> str:
        if not self.active:
            return "not pinned (taskset missing or a single core)"
        writers = {"load": f"core {self.load_core}", "server": f"core {self.server_core}",
                   "any": "any core"}[self.writers_on]
        return (f"server on core {self.server_core}, load client on core {self.load_core}, "
                f"event writers on {writers}")


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE toward ``wanted`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` now."""
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_queue_wait_seconds(pid: int) -> float:
    """Time the threads of ``pid`` spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores; /proc/stat minus idle, iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def open_fds(pid: int) -> int:
    """File descriptors ``pid`` holds (sockets included)."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))
