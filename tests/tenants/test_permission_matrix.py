"""Every role against every tenant, outlet and user endpoint: allowed and refused.

Each refused request is checked to change nothing.
"""

from __future__ import annotations

import pytest

from tenants.models import Outlet, Role, Tenant, User
from tests.tenants.helpers import assert_status, ids

SA, OW, MA, CA, KI = Role.SUPER_ADMIN, Role.OWNER, Role.MANAGER, Role.CASHIER, Role.KITCHEN
ROLES = [SA, OW, MA, CA, KI]


# --- Tenants ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_tenant_list(world, client_for, role):
    seen = ids(client_for(world.user(role)).get("/api/tenants/"))
    if role == SA:
        assert seen == {str(world.tenant.pk), str(world.other_tenant.pk)}
    else:
        assert seen == {str(world.tenant.pk)}


@pytest.mark.parametrize("role", ROLES)
def test_tenant_retrieve(world, client_for, role):
    client = client_for(world.user(role))
    own = client.get(f"/api/tenants/{world.tenant.pk}/")
    assert own.status_code == 200
    assert set(own.json()) == {"id", "name", "slug", "currency", "timezone"}
    assert_status(client.get(f"/api/tenants/{world.other_tenant.pk}/"), 200 if role == SA else 404)


@pytest.mark.parametrize("role,expected", [(SA, 201), (OW, 403), (MA, 403), (CA, 403), (KI, 403)])
def test_tenant_create(world, client_for, role, expected):
    before = Tenant.objects.count()
    body = {"name": "New Co", "slug": "new-co", "currency": "IDR", "timezone": "Asia/Jakarta"}
    response = client_for(world.user(role)).post("/api/tenants/", body, format="json")
    assert_status(response, expected)
    assert Tenant.objects.count() == before + (1 if expected == 201 else 0)


@pytest.mark.parametrize("role,expected", [(SA, 200), (OW, 200), (MA, 403), (CA, 403), (KI, 403)])
def test_tenant_update(world, client_for, role, expected):
    response = client_for(world.user(role)).patch(
        f"/api/tenants/{world.tenant.pk}/", {"name": "Renamed"}, format="json"
    )
    assert_status(response, expected)
    world.tenant.refresh_from_db()
    assert (world.tenant.name == "Renamed") == (expected == 200)


@pytest.mark.parametrize("role,expected", [(SA, 204), (OW, 403), (MA, 403), (CA, 403), (KI, 403)])
def test_tenant_delete(world, client_for, role, expected):
    # Another tenant's id: the role gate answers 403 before any lookup could tell it exists.
    response = client_for(world.user(role)).delete(f"/api/tenants/{world.other_tenant.pk}/")
    assert_status(response, expected)
    assert Tenant.objects.filter(pk=world.other_tenant.pk).exists() == (expected != 204)


def test_owner_cannot_update_another_tenant(world, client_for):
    response = client_for(world.owner).patch(
        f"/api/tenants/{world.other_tenant.pk}/", {"name": "Hijacked"}, format="json"
    )
    assert_status(response, 404)
    world.other_tenant.refresh_from_db()
    assert world.other_tenant.name != "Hijacked"


# --- Outlets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_outlet_list(world, client_for, role):
    seen = ids(client_for(world.user(role)).get("/api/outlets/"))
    expected = {
        SA: {world.outlet, world.outlet2, world.other_outlet},
        OW: {world.outlet, world.outlet2},
    }.get(role, {world.outlet})
    assert seen == {str(o.pk) for o in expected}


def test_outlet_list_of_a_manager_of_outlet2(world, client_for):
    assert ids(client_for(world.manager2).get("/api/outlets/")) == {str(world.outlet2.pk)}


@pytest.mark.parametrize("role", ROLES)
def test_outlet_retrieve(world, client_for, role):
    client = client_for(world.user(role))
    response = client.get(f"/api/outlets/{world.outlet.pk}/")
    assert response.status_code == 200
    assert set(response.json()) == {
        "id", "tenant", "name", "timezone", "tax_rate", "service_charge_rate",
        "kds_warn_after_s", "kds_late_after_s",
    }
    assert_status(client.get(f"/api/outlets/{world.other_outlet.pk}/"),
                  200 if role == SA else 404)
    # Same tenant, not assigned: not visible to outlet-bound roles.
    assert_status(client.get(f"/api/outlets/{world.outlet2.pk}/"),
                  200 if role in (SA, OW) else 404)


@pytest.mark.parametrize("role,expected", [(SA, 201), (OW, 201), (MA, 403), (CA, 403), (KI, 403)])
def test_outlet_create(world, client_for, role, expected):
    before = Outlet.objects.count()
    body = {"name": "Harbour", "tax_rate": "0.10", "tenant": str(world.tenant.pk)}
    response = client_for(world.user(role)).post("/api/outlets/", body, format="json")
    assert_status(response, expected)
    assert Outlet.objects.count() == before + (1 if expected == 201 else 0)
    if expected == 201:
        assert response.json()["tenant"] == str(world.tenant.pk)
        assert response.json()["tax_rate"] == "0.10"


@pytest.mark.parametrize("role,expected", [(SA, 200), (OW, 200), (MA, 403), (CA, 403), (KI, 403)])
def test_outlet_update(world, client_for, role, expected):
    response = client_for(world.user(role)).patch(
        f"/api/outlets/{world.outlet.pk}/", {"name": "Renamed"}, format="json"
    )
    assert_status(response, expected)
    world.outlet.refresh_from_db()
    assert (world.outlet.name == "Renamed") == (expected == 200)


@pytest.mark.parametrize("role,expected", [(SA, 204), (OW, 204), (MA, 403), (CA, 403), (KI, 403)])
def test_outlet_delete(world, client_for, role, expected):
    response = client_for(world.user(role)).delete(f"/api/outlets/{world.outlet2.pk}/")
    assert_status(response, expected)
    assert Outlet.objects.filter(pk=world.outlet2.pk).exists() == (expected != 204)


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_owner_cannot_touch_another_tenants_outlet(world, client_for, method):
    client = client_for(world.owner)
    response = getattr(client, method)(f"/api/outlets/{world.other_outlet.pk}/",
                                       {"name": "Hijacked"}, format="json")
    assert_status(response, 404)
    world.other_outlet.refresh_from_db()
    assert world.other_outlet.name != "Hijacked"


# --- Users -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_user_list(world, client_for, role):
    seen = ids(client_for(world.user(role)).get("/api/users/?page_size=200"))
    tenant_staff = {world.owner, world.manager, world.cashier, world.kitchen, world.manager2}
    expected = {
        OW: tenant_staff,
        MA: {world.manager, world.cashier, world.kitchen},
        CA: {world.cashier},
        KI: {world.kitchen},
    }.get(role)
    if role == SA:
        assert seen == {str(u.pk) for u in User.objects.all()}
    else:
        assert seen == {str(u.pk) for u in expected}
        assert str(world.other_owner.pk) not in seen
        assert str(world.other_cashier.pk) not in seen


@pytest.mark.parametrize("role,expected", [(SA, 200), (OW, 200), (MA, 200), (CA, 404), (KI, 200)])
def test_user_retrieve(world, client_for, role, expected):
    response = client_for(world.user(role)).get(f"/api/users/{world.kitchen.pk}/")
    assert_status(response, expected)
    if expected == 200:
        body = response.json()
        assert set(body) == {"id", "username", "role", "tenant", "outlets", "is_active"}


@pytest.mark.parametrize("role,expected", [(SA, 201), (OW, 201), (MA, 201), (CA, 403), (KI, 403)])
def test_user_create(world, client_for, role, expected):
    before = User.objects.count()
    body = {
        "username": "new-cashier",
        "password": "a-Long-unusual-passphrase-7",
        "role": "cashier",
        "tenant": str(world.tenant.pk),
        "outlets": [str(world.outlet.pk)],
    }
    response = client_for(world.user(role)).post("/api/users/", body, format="json")
    assert_status(response, expected)
    assert User.objects.count() == before + (1 if expected == 201 else 0)
    if expected == 201:
        created = User.objects.get(username="new-cashier")
        assert created.tenant_id == world.tenant.pk
        assert created.check_password("a-Long-unusual-passphrase-7")
        assert "password" not in response.json()


@pytest.mark.parametrize("role,expected", [(SA, 200), (OW, 200), (MA, 200), (CA, 404), (KI, 403)])
def test_user_update(world, client_for, role, expected):
    response = client_for(world.user(role)).patch(
        f"/api/users/{world.kitchen.pk}/", {"is_active": False}, format="json"
    )
    assert_status(response, expected)
    world.kitchen.refresh_from_db()
    assert world.kitchen.is_active == (expected != 200)


@pytest.mark.parametrize("role,expected", [(SA, 204), (OW, 204), (MA, 204), (CA, 403), (KI, 403)])
def test_user_delete(world, client_for, role, expected):
    response = client_for(world.user(role)).delete(f"/api/users/{world.kitchen.pk}/")
    assert_status(response, expected)
    assert User.objects.filter(pk=world.kitchen.pk).exists() == (expected != 204)


@pytest.mark.parametrize("role", [OW, MA, CA, KI])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_other_tenants_user_is_404(world, client_for, role, method):
    client = client_for(world.user(role))
    response = getattr(client, method)(f"/api/users/{world.other_cashier.pk}/",
                                       {"is_active": False}, format="json")
    if method == "delete" and role in (CA, KI):
        assert_status(response, 403)  # no delete right at all: refused before the lookup
    else:
        assert_status(response, 404)
    world.other_cashier.refresh_from_db()
    assert world.other_cashier.is_active


def test_unauthenticated_is_401_everywhere(world, client_for):
    client = client_for(None)
    for url in ("/api/tenants/", "/api/outlets/", "/api/users/",
                f"/api/tenants/{world.tenant.pk}/", f"/api/outlets/{world.outlet.pk}/"):
        assert_status(client.get(url), 401)
    before = Outlet.objects.count()
    assert_status(client.post("/api/outlets/", {"name": "X"}, format="json"), 401)
    assert Outlet.objects.count() == before
