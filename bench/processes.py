"""Child processes of a bench run: servers, the load client and the events driver.

Every child is started with a hard time limit of its own and is stopped (SIGTERM, then
SIGKILL) by the orchestrator when its part is over, so nothing outlives a run.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.machine import Pinning, cpu_seconds, open_fds, rss_bytes, run_queue_wait_seconds

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Child:
    """A subprocess whose stdout carries JSON lines and whose stderr goes to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], *, stdin: bool = False):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOG_DIR / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        )
        self._pending = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read_json(self, timeout: float) -> dict:
        """The next JSON line on stdout; raises if none comes in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.name}: no answer in {timeout:.0f}s; {self.tail()}")
                if not selector.select(remaining):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise RuntimeError(f"{self.name} exited ({self.proc.wait()}): {self.tail()}")
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line)

    def send(self, payload: dict) -> None:
        self.proc.stdin.write(json.dumps(payload).encode() + b"\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._log.close()


class Server:
    """The project server (uvicorn or daphne on ``asgi:application``) or the reference."""

    def __init__(self, kind: str, env: dict[str, str], pinning: Pinning, max_seconds: float,
                 asgi: str = "asgi:application"):
        self.kind = kind
        self.port = free_port()
        python = sys.executable
        if kind == "uvicorn":
            argv = [python, "-m", "uvicorn", asgi, "--ws", "pos.ws_protocol:WebSocketProtocol",
                    "--ws-per-message-deflate", "false", "--host", "127.0.0.1",
                    "--port", str(self.port), "--no-access-log", "--log-level", "warning",
                    "--backlog", "4096", "--timeout-graceful-shutdown", "3"]
        elif kind == "daphne":
            argv = [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                    "-v", "0", asgi]
        elif kind == "reference":
            argv = [python, "-m", "bench.reference", "--port", str(self.port),
                    "--max-seconds", str(max_seconds)]
        else:
            raise ValueError(kind)
        argv = ["timeout", "-s", "KILL", str(int(max_seconds) + 30), *argv]
        self.child = Child(f"server-{kind}", pinning.server(argv), env)

    @property
    def pid(self) -> int:
        """The server's own pid (the direct child is ``timeout``, which execs nothing)."""
        children = Path(f"/proc/{self.child.pid}/task/{self.child.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            pids = []
        return int(pids[0]) if pids else self.child.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.child.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited early: {self.child.tail()}")
            try:
                if self.kind == "reference":
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
                elif httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).is_success:
                    return
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.kind} did not come up: {self.child.tail()}")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def fds(self) -> int:
        return open_fds(self.pid)

    def run_queue_wait(self) -> float:
        return run_queue_wait_seconds(self.pid)

    def stop(self) -> None:
        pid = self.pid
        if pid != self.child.pid:
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.05)
            except ProcessLookupError:
                pass
        self.child.stop()


class OwnRedis:
    """A private redis-server for the bench, on a free port, pinned with the server."""

    def __init__(self, pinning: Pinning, max_seconds: float) -> None:
        self.port = free_port()
        argv = ["timeout", "-s", "KILL", str(int(max_seconds) + 60),
                shutil.which("redis-server") or "redis-server", "--port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--maxclients", "15000"]
        self.child = Child("redis", pinning.server(argv), dict(os.environ))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        self.child.stop()
        raise RuntimeError(f"redis-server did not start: {self.child.tail()}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.child.stop()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
