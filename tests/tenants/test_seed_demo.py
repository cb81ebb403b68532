"""``manage.py seed_demo``: loads the demo, prints logins and URLs, and a second run changes
nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from rest_framework.test import APIClient

from catalog.models import Category, ModifierGroup, ModifierOption, Product
from tenants.demo import STAFF
from tenants.models import Outlet, Role, Tenant, User

DEMO_APPS = ("tenants", "catalog", "kds")


def table_state() -> dict:
    """Every row of the demo apps' tables, so "changes nothing" covers edits as well."""
    state = {}
    for label in DEMO_APPS:
        for model in apps.get_app_config(label).get_models():
            state[model._meta.label] = sorted(
                (tuple(sorted((k, str(v)) for k, v in row.items()))
                 for row in model.objects.values()),
            )
    return state


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Seeding hashes four passwords per run; the production hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_loads_the_demo_and_is_idempotent():
    first_output = seed(host="pos.local", port=9000)
    tenant = Tenant.objects.get(slug="warung-demo")
    assert (tenant.name, tenant.currency, tenant.timezone) == ("Warung Demo", "IDR",
                                                               "Asia/Jakarta")
    outlet = Outlet.objects.get(tenant=tenant)
    assert (str(outlet.tax_rate), str(outlet.service_charge_rate)) == ("0.1100", "0.0500")
    assert {u.role for u in User.objects.filter(tenant=tenant)} == {
        Role.OWNER, Role.MANAGER, Role.CASHIER, Role.KITCHEN}
    names = {c.name: c for c in Category.objects.filter(tenant=tenant)}
    assert names["Rice"].parent == names["Food"] and names["Tea"].parent == names["Drinks"]
    assert names["Desserts"].parent is None
    products = Product.objects.filter(tenant=tenant)
    assert 10 <= products.count() <= 16
    assert products.filter(track_stock=True).exists()
    assert all(p.price > 1000 and p.price == p.price.quantize(1) for p in products)
    spice = ModifierGroup.objects.get(tenant=tenant, name="Spice level")
    extras = ModifierGroup.objects.get(tenant=tenant, name="Extras")
    assert (spice.min_select, spice.max_select) == (1, 1)
    assert (extras.min_select, extras.max_select) == (0, 3)
    assert ModifierOption.objects.filter(group=spice).count() >= 2

    # The printout: every login, the URLs on the requested host and port.
    for _, username, password in STAFF:
        assert username in first_output and password in first_output
    assert "http://pos.local:9000/api/docs/" in first_output
    assert "http://pos.local:9000/kds/" in first_output
    assert f"ws://pos.local:9000/ws/kitchen/{outlet.pk}/" in first_output
    assert f"ws://pos.local:9000/ws/orders/{outlet.pk}/" in first_output

    before = table_state()
    second_output = seed()
    assert table_state() == before
    assert "0 rows created" in second_output
    assert "http://127.0.0.1:8000/api/docs/" in second_output


@pytest.mark.django_db
def test_rerun_keeps_later_edits():
    seed()
    product = Product.objects.get(sku="RICE-01")
    product.price = 99000
    product.is_available = False
    product.save()
    seed()
    product.refresh_from_db()
    assert (product.price, product.is_available) == (99000, False)
    assert Product.objects.filter(sku="RICE-01").count() == 1


@pytest.mark.django_db
def test_printed_logins_work():
    seed()
    outlet = Outlet.objects.get(tenant__slug="warung-demo")
    for role, username, password in STAFF:
        response = APIClient().post("/api/auth/token/", {"username": username,
                                                         "password": password}, format="json")
        assert response.status_code == 200, response.content
        user = response.json()["user"]
        assert user["role"] == role
        assert user["outlets"] == [str(outlet.pk)]
