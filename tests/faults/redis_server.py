"""A Redis of the test's own, on a free port, that the test may stop and start at will.

The machine's shared Redis serves other test runs; restarting it would break them. This one
keeps nothing on disk (``--save ''``, no AOF), so a restart loses every key, group and queued
message, as a crashed production Redis without persistence would.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.liveserver import ROOT, free_port


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / "var" / f"faults-redis-{self.port}.log"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--logfile", str(self.log_path)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5)
                if client.ping():
                    client.close()
                    return self
            except redis.RedisError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def stop(self) -> None:
        """SIGKILL: Redis vanishes at once, with everything it held."""
        if self.running:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, down_for: float = 0.0) -> RedisServer:
        self.stop()
        time.sleep(down_for)
        return self.start()
