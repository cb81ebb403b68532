"""Fixtures of the fault tests: a Redis of their own, a small restaurant, a run harness."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from kds import services as kds_services
from tenants.models import Role
from tests import factories
from tests.faults.redis_server import RedisServer
from tests.liveserver import ROOT, ServerProcess, test_database_url

# A line per request would drown the figures the runs print.
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class Restaurant:
    """One outlet with four prep stations, and a second tenant's outlet to stay out of."""

    outlet_id: str
    product_ids: list[str]  # one per station: four tickets per confirmed order
    # One such set per driver worker. Workers never share a product, so the lock-order
    # deadlock of test_lock_order.py (a product shared by concurrent orders) stays out of the
    # delivery figures; that test covers it on its own.
    product_sets: list[list[str]]
    toggle_product_id: str  # flipped available/unavailable; never ordered
    manager_token: str
    owner_token: str
    cashier_token: str
    kitchen_token: str
    other_outlet_id: str
    other_product_sets: list[list[str]]
    other_manager_token: str
    other_owner_token: str


PRODUCT_SETS = 8
STATIONS = ("Grill", "Fryer", "Cold", "Bar")


def _kitchen(tenant, outlet) -> list[list[str]]:
    """A prep station per category (the first is the default); sets of one product per
    category, so confirming an order of a set fires four tickets, and cancelling voids four."""
    categories = []
    for i, name in enumerate(STATIONS):
        category = factories.make_category(tenant, name=f"{name} food")
        kds_services.station_create(outlet=outlet, name=name, is_default=i == 0,
                                    category_ids=[category.pk])
        categories.append(category)
    return [
        [str(factories.make_product(tenant, category, name=f"{category.name} {i}").pk)
         for category in categories]
        for i in range(PRODUCT_SETS)
    ]


@pytest.fixture
def restaurant(transactional_db) -> Restaurant:
    tenant = factories.make_tenant()
    outlet = factories.make_outlet(tenant)
    product_sets = _kitchen(tenant, outlet)
    toggle = factories.make_product(tenant, name="Soup of the day")
    other_tenant = factories.make_tenant()
    other_outlet = factories.make_outlet(other_tenant)
    other_product_sets = _kitchen(other_tenant, other_outlet)
    token = factories.access_token
    return Restaurant(
        outlet_id=str(outlet.pk),
        product_ids=product_sets[0],
        product_sets=product_sets[1:],
        toggle_product_id=str(toggle.pk),
        manager_token=token(factories.make_user(Role.MANAGER, tenant, [outlet])),
        owner_token=token(factories.make_user(Role.OWNER, tenant)),
        cashier_token=token(factories.make_user(Role.CASHIER, tenant, [outlet])),
        kitchen_token=token(factories.make_user(Role.KITCHEN, tenant, [outlet])),
        other_outlet_id=str(other_outlet.pk),
        other_product_sets=other_product_sets,
        other_manager_token=token(factories.make_user(Role.MANAGER, other_tenant,
                                                      [other_outlet])),
        other_owner_token=token(factories.make_user(Role.OWNER, other_tenant)),
    )


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.stop()


#: Server settings for every fault run. The per-user connection budget and the payment
#: throttle guard against abuse; a fault test reconnects and pays far more than a person.
SERVER_ENV = {
    "WS_CONNECTS_PER_MINUTE": "100000",
    "THROTTLE_PAYMENTS": "100000/min",
    "CHANNELS_PREFIX": "faults",
}


@pytest.fixture
def start_relay(transactional_db, own_redis):
    """``start_relay()``: ``manage.py outbox_relay --older-than 0 --loop 1`` as a process, on the
    test database and own Redis, as the periodic relay task runs in production."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = dict(os.environ)
        env.update({"DATABASE_URL": test_database_url(), "REDIS_URL": own_redis.url(),
                    "DJANGO_DEBUG": "0", "LOG_FORMAT": "plain", **SERVER_ENV})
        log_path = ROOT / "var" / f"faults-relay-{len(started)}-{os.getpid()}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "outbox_relay", "--older-than", "0",
                 "--loop", "1"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        started.append(proc)
        # Up once its first pass has printed its count.
        deadline = time.monotonic() + 30
        while b"published" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the relay did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        return proc

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class TightServer(ServerProcess):
    """A server whose connections have a small fixed send buffer (see tight_server.py)."""

    def __init__(self, *, sndbuf: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sndbuf = sndbuf

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "tests.faults.tight_server", "--port", str(self.port),
                "--sndbuf", str(self.sndbuf)]


@pytest.fixture
def start_servers(server_factory, own_redis):
    """``start_servers(n, **env)``: n server processes on the test database and own Redis;
    ``sndbuf=`` gives them a small fixed TCP send buffer."""
    tight: list[TightServer] = []

    def start(count: int = 2, sndbuf: int | None = None, **env: str):
        extra_env = {**SERVER_ENV, **env}
        if sndbuf is None:
            return [server_factory(redis_url=own_redis.url(), extra_env=extra_env)
                    for _ in range(count)]
        for _ in range(count):
            server = TightServer(sndbuf=sndbuf, database_url=test_database_url(),
                                 redis_url=own_redis.url(), extra_env=extra_env)
            tight.append(server)
            server.start()
        return tight[-count:]

    yield start
    for server in tight:
        server.stop()
