"""Outlet validation and ownership rules."""

from __future__ import annotations

from datetime import date

import pytest

from tenants.models import Outlet
from tests import factories
from tests.tenants.helpers import assert_envelope


def test_owner_creates_in_own_tenant_whatever_tenant_is_sent(world, client_for):
    body = {"name": "Sneaky", "tenant": str(world.other_tenant.pk)}
    response = client_for(world.owner).post("/api/outlets/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["tenant"] == str(world.tenant.pk)
    assert not Outlet.objects.filter(tenant=world.other_tenant, name="Sneaky").exists()
    # The new outlet is the owner's at once.
    listed = client_for(world.owner).get("/api/outlets/").json()["results"]
    assert response.json()["id"] in {row["id"] for row in listed}


def test_super_admin_must_name_the_tenant(world, client_for):
    before = Outlet.objects.count()
    response = client_for(world.super_admin).post("/api/outlets/", {"name": "X"}, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert "tenant" in error["details"]
    assert Outlet.objects.count() == before


def test_unknown_tenant_in_body_is_400(world, client_for):
    body = {"name": "X", "tenant": "00000000-0000-0000-0000-000000000000"}
    response = client_for(world.super_admin).post("/api/outlets/", body, format="json")
    assert "tenant" in assert_envelope(response, 400, "validation_error")["details"]


def test_defaults_and_rendering(world, client_for):
    response = client_for(world.owner).post("/api/outlets/", {"name": "Plain"}, format="json")
    body = response.json()
    assert body["timezone"] == "Asia/Jakarta"
    assert body["tax_rate"] == "0.00"
    assert body["service_charge_rate"] == "0.00"
    assert (body["kds_warn_after_s"], body["kds_late_after_s"]) == (480, 900)
    fine = client_for(world.owner).patch(
        f"/api/outlets/{body['id']}/", {"tax_rate": "0.1125"}, format="json"
    )
    assert fine.json()["tax_rate"] == "0.1125"


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"tax_rate": "1.5"}, "tax_rate"),
        ({"tax_rate": "-0.01"}, "tax_rate"),
        ({"tax_rate": "0.12345"}, "tax_rate"),
        ({"tax_rate": "eleven"}, "tax_rate"),
        ({"service_charge_rate": "2"}, "service_charge_rate"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"kds_warn_after_s": 600, "kds_late_after_s": 300}, "kds_late_after_s"),
        ({"kds_late_after_s": 100}, "kds_late_after_s"),  # below the stored warn (480)
        ({"kds_warn_after_s": -1}, "kds_warn_after_s"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_values_are_400_and_change_nothing(world, client_for, patch, field):
    before = Outlet.objects.values().get(pk=world.outlet.pk)
    response = client_for(world.owner).patch(f"/api/outlets/{world.outlet.pk}/", patch,
                                             format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert field in error["details"]
    assert Outlet.objects.values().get(pk=world.outlet.pk) == before


def test_duplicate_name_in_tenant_is_400(world, client_for):
    response = client_for(world.owner).post("/api/outlets/", {"name": world.outlet.name},
                                            format="json")
    assert "name" in assert_envelope(response, 400, "validation_error")["details"]
    # The same name in another tenant is fine.
    response = client_for(world.other_owner).post("/api/outlets/", {"name": world.outlet.name},
                                                  format="json")
    assert response.status_code == 201


def test_tenant_cannot_move_after_creation(world, client_for):
    response = client_for(world.super_admin).patch(
        f"/api/outlets/{world.outlet.pk}/", {"tenant": str(world.other_tenant.pk)}, format="json"
    )
    assert response.status_code == 200
    world.outlet.refresh_from_db()
    assert world.outlet.tenant_id == world.tenant.pk


def test_outlet_with_orders_cannot_be_deleted(world, client_for):
    from orders.models import Order

    order = Order.objects.create(
        tenant=world.tenant, outlet=world.outlet2, number="A-0001", business_date=date.today()
    )
    response = client_for(world.owner).delete(f"/api/outlets/{world.outlet2.pk}/")
    assert_envelope(response, 409, "conflict")
    assert Outlet.objects.filter(pk=world.outlet2.pk).exists()
    assert Order.objects.filter(pk=order.pk).exists()


def test_filter_and_search(world, client_for):
    named = factories.make_outlet(world.tenant, name="Seaside Kitchen")
    client = client_for(world.owner)
    found = client.get("/api/outlets/?search=seaside").json()["results"]
    assert [row["id"] for row in found] == [str(named.pk)]
    by_tenant = client_for(world.super_admin).get(f"/api/outlets/?tenant={world.other_tenant.pk}")
    assert {row["id"] for row in by_tenant.json()["results"]} == {str(world.other_outlet.pk)}
