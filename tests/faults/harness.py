"""One fault run: server processes, socket clients spread over them, drivers, the final check."""

from __future__ import annotations

import asyncio
import random
import re
import time

import httpx
from channels.db import database_sync_to_async
from django.db import connection

from pos.streams import log as event_log
from tests.faults.checker import LogEvent, fetch_log, forwards
from tests.faults.clients import StreamClient, start_clients, stop_clients
from tests.faults.driver import OrderDriver
from tests.liveserver import ServerProcess


def metric(base_url: str, name: str, label: str = "") -> float:
    """The sum of a server's Prometheus samples of ``name`` whose labels contain ``label``."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    pattern = rf"^{re.escape(name)}(?:{{([^}}]*)}})? ([0-9.e+]+)$"
    return sum(float(m.group(2)) for m in re.finditer(pattern, text, re.MULTILINE)
               if label in (m.group(1) or ""))


def _last_seq(outlet_id: str) -> int:
    try:
        return event_log.last_seq(outlet_id)
    finally:
        # The worker thread's connection would otherwise outlive the test and keep the test
        # database from being dropped.
        connection.close()


class FaultRun:
    def __init__(self, restaurant, servers: list[ServerProcess], *, seed: int = 7) -> None:
        self.restaurant = restaurant
        self.servers = servers
        self.down: set[int] = set()  # indexes of servers the test took down
        self.clients: list[StreamClient] = []
        self.drivers: list[OrderDriver] = []
        self.rng = random.Random(seed)

    # --- servers ----------------------------------------------------------------------------
    def live(self) -> list[ServerProcess]:
        return [s for i, s in enumerate(self.servers) if i not in self.down]

    def live_http(self) -> list[str]:
        return [s.base_url for s in self.live()]

    def any_live_ws(self) -> str:
        live = self.live() or self.servers
        return self.rng.choice(live).ws_url

    def prefer(self, index: int):
        """A chooser: server ``index`` while it is up, else any live one."""

        def choose() -> str:
            if index not in self.down:
                return self.servers[index].ws_url
            return self.any_live_ws()

        return choose

    async def kill(self, index: int) -> None:
        self.down.add(index)
        await asyncio.to_thread(self.servers[index].kill)

    async def start_again(self, index: int) -> None:
        await asyncio.to_thread(self.servers[index].start)
        self.down.discard(index)

    # --- clients and drivers ----------------------------------------------------------------
    def add_clients(self, *, orders: int, kitchen: int, chooser=None, **kwargs
                    ) -> list[StreamClient]:
        """Orders and kitchen clients, alternately homed on each server process."""
        r = self.restaurant
        made = []
        wanted = [("orders", r.cashier_token)] * orders + [("kitchen", r.kitchen_token)] * kitchen
        for kind, token in wanted:
            number = len(self.clients) + len(made)
            home = number % len(self.servers)
            made.append(StreamClient(
                name=f"{kind}-{number}@{home}", kind=kind, outlet_id=r.outlet_id, token=token,
                choose_server=chooser or self.prefer(home), **kwargs,
            ))
        self.clients.extend(made)
        return made

    async def connect(self, clients: list[StreamClient] | None = None) -> None:
        await start_clients(clients if clients is not None else self.clients)

    def add_drivers(self, *, workers: int = 4, noise: bool = True, **kwargs) -> None:
        r = self.restaurant
        self.drivers.append(OrderDriver(
            servers=self.live_http, token=r.manager_token, owner_token=r.owner_token,
            outlet_id=r.outlet_id, product_sets=r.product_sets,
            toggle_product_id=r.toggle_product_id, workers=workers, **kwargs,
        ))
        if noise:
            # Another tenant's outlet changes all along: none of it may reach our sockets.
            self.drivers.append(OrderDriver(
                servers=self.live_http, token=r.other_manager_token,
                owner_token=r.other_owner_token, outlet_id=r.other_outlet_id,
                product_sets=r.other_product_sets, workers=1, pause=0.3,
            ))

    def start_drivers(self) -> None:
        for driver in self.drivers:
            driver.start()

    async def stop_drivers(self) -> None:
        for driver in self.drivers:
            await driver.stop()

    @property
    def driver(self) -> OrderDriver:
        return self.drivers[0]

    # --- progress ---------------------------------------------------------------------------
    async def last_seq(self) -> int:
        return await database_sync_to_async(_last_seq)(self.restaurant.outlet_id)

    async def wait_events(self, count: int, timeout: float) -> int:
        """Until the outlet's log holds ``count`` events; returns the last seq."""
        deadline = time.monotonic() + timeout
        while True:
            seq = await self.last_seq()
            if seq >= count:
                return seq
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {seq} events after {timeout}s; driver: {self.driver.stats.summary()}"
                )
            await asyncio.sleep(0.2)

    async def finish(self, *, catch_up_timeout: float = 20.0) -> list[LogEvent]:
        """Stop the drivers, let every client catch up with the log, stop the clients."""
        await self.stop_drivers()
        log = await fetch_log(self.live_http()[0], self.restaurant.manager_token,
                              self.restaurant.outlet_id)
        await asyncio.gather(*(self._catch_up(c, log, catch_up_timeout) for c in self.clients))
        await stop_clients(self.clients)
        return log

    @staticmethod
    async def _catch_up(client: StreamClient, log: list[LogEvent], timeout: float) -> None:
        due = [e.seq for e in log
               if e.seq > (client.start_seq or 0) and forwards(client.kind, e, client.station_id)]
        if due:
            await client.wait_for_seq(due[-1], timeout)  # the check reports what is missing

    def cut_sessions(self, server: ServerProcess, at: float, within: float = 5.0):
        """(client, session) pairs whose socket on ``server`` closed soon after ``at``."""
        return [(client, s) for client in self.clients for s in client.sessions
                if s.server == server.ws_url and s.opened_at < at <= (s.closed_at or 0)
                < at + within]

    def reconnect_s(self, server: ServerProcess, at: float) -> float:
        """The longest a client cut from ``server`` at ``at`` took to open a new socket."""
        worst = 0.0
        for client, cut in self.cut_sessions(server, at):
            again = [s.opened_at for s in client.sessions if s.opened_at >= cut.closed_at]
            worst = max(worst, (min(again) if again else time.time()) - at)
        return worst

    def server_errors(self) -> list[str]:
        return [error for driver in self.drivers for error in driver.stats.server_errors]
