"""Every role against every catalog endpoint, and tenant isolation of lists and details."""

from __future__ import annotations

import pytest

from catalog.models import Category, ModifierGroup, Product
from tenants.models import Role
from tests import factories
from tests.tenants.helpers import assert_status, ids

SA, OW, MA, CA, KI = Role.SUPER_ADMIN, Role.OWNER, Role.MANAGER, Role.CASHIER, Role.KITCHEN
ROLES = [SA, OW, MA, CA, KI]
WRITE = {SA, OW, MA}


@pytest.fixture
def rows(world):
    """One category, product and modifier group in each tenant."""
    mine = {
        "categories": factories.make_category(world.tenant),
        "modifier-groups": factories.make_modifier_group(world.tenant),
    }
    mine["products"] = factories.make_product(world.tenant, mine["categories"])
    theirs = {
        "categories": factories.make_category(world.other_tenant),
        "modifier-groups": factories.make_modifier_group(world.other_tenant),
    }
    theirs["products"] = factories.make_product(world.other_tenant, theirs["categories"])
    return mine, theirs


MODELS = {"categories": Category, "products": Product, "modifier-groups": ModifierGroup}
RESOURCES = list(MODELS)


def create_body(world, resource: str) -> dict:
    body = {
        "categories": {"name": "Soups", "sort_order": 3},
        "products": {"name": "Soto Ayam", "sku": "SOTO-1", "price": "30000.00"},
        "modifier-groups": {"name": "Sambal", "min_select": 0, "max_select": 1,
                            "options": [{"name": "Hot", "price_delta": "0.00"}]},
    }[resource]
    return {**body, "tenant": str(world.tenant.pk)}  # only a platform admin's is used


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("role", ROLES)
def test_list(world, client_for, rows, resource, role):
    mine, theirs = rows
    seen = ids(client_for(world.user(role)).get(f"/api/{resource}/"))
    assert str(mine[resource].pk) in seen
    assert (str(theirs[resource].pk) in seen) == (role == SA)


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("role", ROLES)
def test_retrieve(world, client_for, rows, resource, role):
    mine, theirs = rows
    client = client_for(world.user(role))
    assert_status(client.get(f"/api/{resource}/{mine[resource].pk}/"), 200)
    assert_status(client.get(f"/api/{resource}/{theirs[resource].pk}/"),
                  200 if role == SA else 404)


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("role", ROLES)
def test_create(world, client_for, rows, resource, role):
    model = MODELS[resource]
    before = model.objects.count()
    response = client_for(world.user(role)).post(f"/api/{resource}/",
                                                 create_body(world, resource), format="json")
    assert_status(response, 201 if role in WRITE else 403)
    assert model.objects.count() == before + (1 if role in WRITE else 0)
    if role in WRITE:
        assert model.objects.get(pk=response.json()["id"]).tenant_id == world.tenant.pk


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("role", ROLES)
def test_update(world, client_for, rows, resource, role):
    mine, _ = rows
    obj = mine[resource]
    response = client_for(world.user(role)).patch(f"/api/{resource}/{obj.pk}/",
                                                  {"name": "Renamed"}, format="json")
    assert_status(response, 200 if role in WRITE else 403)
    obj.refresh_from_db()
    assert (obj.name == "Renamed") == (role in WRITE)


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("role", ROLES)
def test_delete(world, client_for, rows, resource, role):
    mine, _ = rows
    obj = mine[resource]
    if resource == "categories":
        obj = factories.make_category(world.tenant)  # an empty one: deletable
    response = client_for(world.user(role)).delete(f"/api/{resource}/{obj.pk}/")
    assert_status(response, 204 if role in WRITE else 403)
    assert MODELS[resource].objects.filter(pk=obj.pk).exists() == (role not in WRITE)


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("role", [OW, MA])
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_tenants_rows_are_404(world, client_for, rows, resource, role, method):
    _, theirs = rows
    obj = theirs[resource]
    client = client_for(world.user(role))
    response = getattr(client, method)(f"/api/{resource}/{obj.pk}/",
                                       create_body(world, resource), format="json")
    assert_status(response, 404)
    fresh = MODELS[resource].objects.get(pk=obj.pk)
    assert fresh.name == obj.name


@pytest.mark.parametrize("resource", RESOURCES)
def test_unknown_and_malformed_ids_are_404(world, client_for, resource):
    client = client_for(world.owner)
    assert_status(client.get(f"/api/{resource}/00000000-0000-0000-0000-000000000000/"), 404)
    assert_status(client.get(f"/api/{resource}/not-a-uuid/"), 404)


@pytest.mark.parametrize("resource", RESOURCES)
def test_super_admin_must_name_the_tenant(world, client_for, resource):
    model = MODELS[resource]
    before = model.objects.count()
    body = create_body(world, resource)
    del body["tenant"]
    response = client_for(world.super_admin).post(f"/api/{resource}/", body, format="json")
    assert_status(response, 400)
    assert "tenant" in response.json()["error"]["details"]
    assert model.objects.count() == before


@pytest.mark.parametrize("resource", RESOURCES)
def test_super_admin_creates_in_the_named_tenant(world, client_for, resource):
    body = {**create_body(world, resource), "tenant": str(world.other_tenant.pk)}
    response = client_for(world.super_admin).post(f"/api/{resource}/", body, format="json")
    assert_status(response, 201)
    assert response.json()["tenant"] == str(world.other_tenant.pk)


@pytest.mark.parametrize("resource", RESOURCES)
def test_unauthenticated_is_401(world, client_for, resource):
    before = MODELS[resource].objects.count()
    client = client_for(None)
    assert_status(client.get(f"/api/{resource}/"), 401)
    assert_status(client.post(f"/api/{resource}/", create_body(world, resource),
                              format="json"), 401)
    assert MODELS[resource].objects.count() == before
