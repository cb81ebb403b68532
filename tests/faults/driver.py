"""A steady stream of order changes through REST, spread over every server process.

Each worker loops over one order's life: create (``order.created``), confirm
(``order.status_changed`` and one ``ticket.created`` per station), then mostly cancel
(``order.status_changed``, ``ticket.voided`` per station) and sometimes pay in cash
(``payment.created``, ``payment.succeeded``, ``order.updated``). Now and then the owner
flips a product's availability (``product.availability_changed``). Requests go round-robin
over the servers the test has not taken down; a request that gets no answer at all goes to
the next one.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class DriverStats:
    cycles: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    transport_errors: int = 0
    server_errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        codes = ",".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (f"cycles={self.cycles} requests={self.requests} statuses={codes} "
                f"transport_errors={self.transport_errors}")


class OrderDriver:
    def __init__(
        self,
        *,
        servers: Callable[[], list[str]],
        token: str,
        owner_token: str,
        outlet_id: str,
        product_sets: list[list[str]],
        toggle_product_id: str | None = None,
        workers: int = 4,
        pay_ratio: float = 0.2,
        toggle_every: int = 15,
        pause: float = 0.0,
    ) -> None:
        self.servers = servers
        self.token = token
        self.owner_token = owner_token
        self.outlet_id = str(outlet_id)
        self.product_sets = [[str(p) for p in products] for products in product_sets]
        self.toggle_product_id = str(toggle_product_id) if toggle_product_id else None
        self.workers = workers
        self.pay_ratio = pay_ratio
        self.toggle_every = toggle_every
        self.pause = pause
        self.stats = DriverStats()
        self._stop = asyncio.Event()
        self._round_robin = itertools.count()
        self._available = True
        self._tasks: list[asyncio.Task] = []

    # --- control ----------------------------------------------------------------------------
    def start(self) -> OrderDriver:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(i)) for i in range(self.workers)]
        return self

    async def stop(self) -> None:
        self._stop.set()
        _, pending = await asyncio.wait(self._tasks, timeout=15)
        for task in pending:
            task.cancel()
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()

    # --- requests ---------------------------------------------------------------------------
    async def _call(self, http: httpx.AsyncClient, method: str, path: str, *,
                    token: str | None = None, json: dict | None = None,
                    headers: dict | None = None) -> httpx.Response | None:
        """Send to the next live server; on a transport error try the others, then give up."""
        headers = {"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        for _ in range(40):
            if self._stop.is_set():
                return None
            servers = self.servers()
            if not servers:
                await asyncio.sleep(0.1)
                continue
            base = servers[next(self._round_robin) % len(servers)]
            try:
                response = await http.request(method, f"{base}{path}", json=json,
                                              headers=headers)
            except httpx.TransportError:
                self.stats.transport_errors += 1
                await asyncio.sleep(0.05)
                continue
            self.stats.requests += 1
            self.stats.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.stats.server_errors.append(
                    f"{method} {path} -> {response.status_code} {response.text[:300]}"
                )
            return response
        return None

    async def _worker(self, number: int) -> None:
        rng = random.Random(number)
        async with httpx.AsyncClient(timeout=20) as http:
            while not self._stop.is_set():
                await self._cycle(http, rng, self.product_sets[number % len(self.product_sets)])
                self.stats.cycles += 1
                if self.toggle_product_id and self.stats.cycles % self.toggle_every == 0:
                    await self._toggle(http)
                if self.pause:
                    await asyncio.sleep(self.pause)

    async def _cycle(self, http: httpx.AsyncClient, rng: random.Random,
                     products: list[str]) -> None:
        items = [{"product": p, "quantity": rng.randint(1, 3)} for p in products]
        created = await self._call(
            http, "POST", "/api/orders/",
            json={"outlet": self.outlet_id, "type": "takeaway", "items": items},
            # A retry after a lost answer must not create a second order.
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        if created is None or created.status_code != 201:
            return
        order = created.json()
        path = f"/api/orders/{order['id']}/status/"
        confirmed = await self._call(http, "PATCH", path, json={"status": "confirmed"})
        if confirmed is None or confirmed.status_code != 200:
            return
        if rng.random() < self.pay_ratio:
            total = confirmed.json()["total"]
            await self._call(
                http, "POST", "/api/payments/",
                json={"order": order["id"], "method": "cash", "amount": total,
                      "tendered": total},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
        else:
            await self._call(http, "PATCH", path, json={"status": "cancelled"})

    async def _toggle(self, http: httpx.AsyncClient) -> None:
        self._available = not self._available
        await self._call(
            http, "PATCH", f"/api/products/{self.toggle_product_id}/",
            token=self.owner_token, json={"is_available": self._available},
        )
