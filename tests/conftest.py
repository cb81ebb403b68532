"""Shared fixtures: two tenants, an outlet each, staff of every role, authenticated clients."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.cache import cache

from pos.streams import publisher
from tenants.models import Role
from tests import factories
from tests.liveserver import asgi_server, server_factory  # noqa: F401 - shared fixtures


@pytest.fixture(autouse=True)
def _write_publication_marks(django_db_blocker):
    # On-commit publication leaves the published marks to a marker thread (it writes them
    # MARK_LINGER_S later): write them within the test that made them, and close the
    # marker's database connection, so that none outlives the test (a database flush between
    # tests, or the test database dropped at the end, would wait for it).
    yield
    with django_db_blocker.unblock():
        publisher.flush_marks(close=True)


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters and idempotency locks live in the cache; tests must not share them.
    cache.clear()
    yield
    cache.clear()


@dataclass
class World:
    """One tenant with two outlets and every role, and a second tenant to stay out of."""

    tenant: object
    outlet: object
    outlet2: object
    owner: object
    manager: object
    cashier: object
    kitchen: object
    manager2: object  # manager of outlet2 only
    other_tenant: object
    other_outlet: object
    other_owner: object
    other_cashier: object
    super_admin: object

    def user(self, role: str):
        return {
            Role.SUPER_ADMIN: self.super_admin,
            Role.OWNER: self.owner,
            Role.MANAGER: self.manager,
            Role.CASHIER: self.cashier,
            Role.KITCHEN: self.kitchen,
        }[role]


@pytest.fixture
def world(db) -> World:
    tenant = factories.make_tenant()
    outlet = factories.make_outlet(tenant)
    outlet2 = factories.make_outlet(tenant)
    other_tenant = factories.make_tenant()
    other_outlet = factories.make_outlet(other_tenant)
    return World(
        tenant=tenant,
        outlet=outlet,
        outlet2=outlet2,
        owner=factories.make_user(Role.OWNER, tenant),
        manager=factories.make_user(Role.MANAGER, tenant, [outlet]),
        cashier=factories.make_user(Role.CASHIER, tenant, [outlet]),
        kitchen=factories.make_user(Role.KITCHEN, tenant, [outlet]),
        manager2=factories.make_user(Role.MANAGER, tenant, [outlet2]),
        other_tenant=other_tenant,
        other_outlet=other_outlet,
        other_owner=factories.make_user(Role.OWNER, other_tenant),
        other_cashier=factories.make_user(Role.CASHIER, other_tenant, [other_outlet]),
        super_admin=factories.make_user(Role.SUPER_ADMIN),
    )


@pytest.fixture
def client_for():
    return factories.client_for
