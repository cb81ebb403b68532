"""Plain builders for test data. Each returns saved rows; names are unique per call."""

from __future__ import annotations

import functools
import itertools
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from catalog.models import Category, ModifierGroup, ModifierOption, Product
from tenants.models import Outlet, Role, Tenant, User

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def _n() -> int:
    return next(_counter)


def make_tenant(**kw) -> Tenant:
    n = _n()
    kw.setdefault("name", f"Tenant {n}")
    kw.setdefault("slug", f"tenant-{n}")
    return Tenant.objects.create(**kw)


def make_outlet(tenant: Tenant, **kw) -> Outlet:
    kw.setdefault("name", f"Outlet {_n()}")
    kw.setdefault("tax_rate", Decimal("0.11"))
    kw.setdefault("service_charge_rate", Decimal("0.05"))
    return Outlet.objects.create(tenant=tenant, **kw)


@functools.cache
def _password_hash() -> str:
    # Hashing is deliberately slow; hash the shared test password once per run.
    return make_password(PASSWORD)


def make_user(role: str, tenant: Tenant | None = None, outlets=(), **kw) -> User:
    kw.setdefault("username", f"{role}-{_n()}")
    if role == Role.SUPER_ADMIN:
        kw.update(is_staff=True, is_superuser=True, tenant=None)
    else:
        kw["tenant"] = tenant
    user = User.objects.create(role=role, password=_password_hash(), **kw)
    if outlets:
        user.outlets.set(outlets)
    return user


def access_token(user: User) -> str:
    # An access token alone touches no table, so async tests may mint one on the loop.
    return str(AccessToken.for_user(user))


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
    return client


def make_category(tenant: Tenant, parent: Category | None = None, **kw) -> Category:
    kw.setdefault("name", f"Category {_n()}")
    return Category.objects.create(tenant=tenant, parent=parent, **kw)


def make_product(tenant: Tenant, category: Category | None = None, **kw) -> Product:
    n = _n()
    kw.setdefault("name", f"Product {n}")
    kw.setdefault("sku", f"SKU-{n}")
    kw.setdefault("price", Decimal("25000.00"))
    return Product.objects.create(tenant=tenant, category=category, **kw)


def make_modifier_group(tenant: Tenant, options=(("Extra cheese", "5000.00"),), **kw):
    kw.setdefault("name", f"Group {_n()}")
    group = ModifierGroup.objects.create(tenant=tenant, **kw)
    for i, (name, delta) in enumerate(options):
        ModifierOption.objects.create(
            tenant=tenant, group=group, name=name, price_delta=Decimal(delta), sort_order=i
        )
    return group
