"""Tenant validation."""

from __future__ import annotations

import pytest

from tenants.models import Tenant
from tests.tenants.helpers import assert_envelope


def test_super_admin_creates_a_tenant(world, client_for):
    body = {"name": "Kopi Co", "slug": "kopi-co", "currency": "sgd", "timezone": "Asia/Singapore"}
    response = client_for(world.super_admin).post("/api/tenants/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["currency"] == "SGD"
    assert Tenant.objects.get(slug="kopi-co").timezone == "Asia/Singapore"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"timezone": "Nowhere/City"}, "timezone"),
        ({"currency": "RUPIAH"}, "currency"),
        ({"currency": "1D"}, "currency"),
        ({"slug": "not a slug"}, "slug"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_tenant_values(world, client_for, body, field):
    before = Tenant.objects.values().get(pk=world.tenant.pk)
    response = client_for(world.owner).patch(f"/api/tenants/{world.tenant.pk}/", body,
                                             format="json")
    assert field in assert_envelope(response, 400, "validation_error")["details"]
    assert Tenant.objects.values().get(pk=world.tenant.pk) == before


def test_duplicate_slug(world, client_for):
    response = client_for(world.owner).patch(
        f"/api/tenants/{world.tenant.pk}/", {"slug": world.other_tenant.slug}, format="json"
    )
    assert "slug" in assert_envelope(response, 400, "validation_error")["details"]
    world.tenant.refresh_from_db()
    assert world.tenant.slug != world.other_tenant.slug
