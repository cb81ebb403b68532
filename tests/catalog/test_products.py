"""Products: validation, tenancy of references, filters and search."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.models import Product
from tests import factories
from tests.tenants.helpers import assert_envelope, ids


@pytest.fixture
def menu(world):
    t = world.tenant
    food = factories.make_category(t, name="Food")
    drinks = factories.make_category(t, name="Drinks")
    spice = factories.make_modifier_group(t, name="Spice")
    return {
        "food": food,
        "drinks": drinks,
        "spice": spice,
        "nasi": factories.make_product(t, food, name="Nasi Goreng", sku="NG-01",
                                       price=Decimal("35000.00")),
        "mie": factories.make_product(t, food, name="Mie Goreng", sku="MG-01",
                                      track_stock=True, stock_quantity=4),
        "teh": factories.make_product(t, drinks, name="Es Teh", sku="ET-01",
                                      is_available=False),
    }


def test_create_renders_every_field(world, client_for, menu):
    body = {
        "category": str(menu["food"].pk),
        "name": "Sate Ayam",
        "sku": "SA-01",
        "price": "42000",
        "track_stock": True,
        "stock_quantity": 12,
        "modifier_groups": [str(menu["spice"].pk)],
    }
    response = client_for(world.manager).post("/api/products/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {"id", "tenant", "category", "name", "sku", "price", "track_stock",
                         "stock_quantity", "is_available", "modifier_groups"}
    assert data["price"] == "42000.00"
    assert data["is_available"] is True
    assert data["modifier_groups"] == [str(menu["spice"].pk)]
    product = Product.objects.get(pk=data["id"])
    assert product.price == Decimal("42000.00")
    assert list(product.modifier_groups.all()) == [menu["spice"]]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"price": "-1.00"}, "price"),
        ({"price": "1.005"}, "price"),
        ({"price": "abc"}, "price"),
        ({"stock_quantity": -1}, "stock_quantity"),
        ({"sku": "   "}, "sku"),
        ({"name": ""}, "name"),
        ({"category": "00000000-0000-0000-0000-000000000000"}, "category"),
        ({"modifier_groups": ["nope"]}, "modifier_groups"),
    ],
)
def test_invalid_bodies_are_400_and_change_nothing(world, client_for, menu, body, field):
    before = list(Product.objects.values().order_by("pk"))
    full = {"name": "X", "sku": "X-1", "price": "1000.00", **body}
    response = client_for(world.owner).post("/api/products/", full, format="json")
    assert field in assert_envelope(response, 400, "validation_error")["details"]
    patch = client_for(world.owner).patch(f"/api/products/{menu['nasi'].pk}/", body,
                                          format="json")
    assert field in assert_envelope(patch, 400, "validation_error")["details"]
    assert list(Product.objects.values().order_by("pk")) == before


def test_sku_is_unique_per_tenant(world, client_for, menu):
    body = {"name": "Dup", "sku": "NG-01", "price": "1.00"}
    response = client_for(world.owner).post("/api/products/", body, format="json")
    assert "sku" in assert_envelope(response, 400, "validation_error")["details"]
    patch = client_for(world.owner).patch(f"/api/products/{menu['mie'].pk}/", {"sku": "NG-01"},
                                          format="json")
    assert "sku" in assert_envelope(patch, 400, "validation_error")["details"]
    menu["mie"].refresh_from_db()
    assert menu["mie"].sku == "MG-01"
    # Another tenant may use the same SKU.
    other = client_for(world.other_owner).post("/api/products/", body, format="json")
    assert other.status_code == 201


def test_references_to_another_tenant_are_400(world, client_for, menu):
    foreign_cat = factories.make_category(world.other_tenant)
    foreign_group = factories.make_modifier_group(world.other_tenant)
    before = list(Product.objects.values().order_by("pk"))
    client = client_for(world.owner)
    for body, field in (({"category": str(foreign_cat.pk)}, "category"),
                        ({"modifier_groups": [str(foreign_group.pk)]}, "modifier_groups")):
        response = client.patch(f"/api/products/{menu['nasi'].pk}/", body, format="json")
        assert field in assert_envelope(response, 400, "validation_error")["details"]
    # A platform admin may name any row, but they still must share the product's tenant.
    admin = client_for(world.super_admin)
    for body, field in (({"category": str(foreign_cat.pk)}, "category"),
                        ({"modifier_groups": [str(foreign_group.pk)]}, "modifier_groups")):
        response = admin.patch(f"/api/products/{menu['nasi'].pk}/", body, format="json")
        assert field in assert_envelope(response, 400, "validation_error")["details"]
        created = admin.post("/api/products/", {"name": "Y", "sku": "Y", "price": "1.00",
                                                "tenant": str(world.tenant.pk), **body},
                             format="json")
        assert field in assert_envelope(created, 400, "validation_error")["details"]
    assert list(Product.objects.values().order_by("pk")) == before
    assert menu["nasi"].modifier_groups.count() == 0


def test_put_replaces_the_product(world, client_for, menu):
    body = {"category": None, "name": "Nasi Goreng Spesial", "sku": "NG-02",
            "price": "40000.00", "track_stock": True, "stock_quantity": 3, "is_available": True,
            "modifier_groups": [str(menu["spice"].pk)]}
    response = client_for(world.owner).put(f"/api/products/{menu['nasi'].pk}/", body,
                                           format="json")
    assert response.status_code == 200, response.content
    menu["nasi"].refresh_from_db()
    assert (menu["nasi"].category, menu["nasi"].sku, menu["nasi"].stock_quantity) == (
        None, "NG-02", 3)
    assert response.json()["modifier_groups"] == [str(menu["spice"].pk)]


def test_filters_and_search(world, client_for, menu):
    client = client_for(world.cashier)
    assert ids(client.get(f"/api/products/?category={menu['drinks'].pk}")) == {
        str(menu["teh"].pk)}
    assert ids(client.get("/api/products/?is_available=false")) == {str(menu["teh"].pk)}
    assert ids(client.get("/api/products/?is_available=true")) == {
        str(menu["nasi"].pk), str(menu["mie"].pk)}
    assert ids(client.get("/api/products/?track_stock=true")) == {str(menu["mie"].pk)}
    assert ids(client.get("/api/products/?search=goreng")) == {
        str(menu["nasi"].pk), str(menu["mie"].pk)}
    assert ids(client.get("/api/products/?search=ET-01")) == {str(menu["teh"].pk)}
    names = [r["name"] for r in client.get("/api/products/?ordering=-price").json()["results"]]
    assert names[0] == "Nasi Goreng"
    assert_envelope(client.get("/api/products/?category=not-a-uuid"), 400, "validation_error")


def test_search_does_not_reach_other_tenants(world, client_for, menu):
    factories.make_product(world.other_tenant, name="Nasi Uduk", sku="NU-01")
    assert ids(client_for(world.owner).get("/api/products/?search=nasi")) == {
        str(menu["nasi"].pk)}


def test_pagination(world, client_for, menu):
    client = client_for(world.owner)
    first = client.get("/api/products/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"] and first["previous"] is None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None and second["previous"]


def test_list_query_count_does_not_grow_with_rows(world, client_for, menu,
                                                  django_assert_max_num_queries):
    for i in range(10):
        product = factories.make_product(world.tenant, menu["food"], sku=f"MANY-{i}")
        product.modifier_groups.add(menu["spice"])
    client = client_for(world.owner)
    with django_assert_max_num_queries(6):
        response = client.get("/api/products/?page_size=100")
    assert len(response.json()["results"]) == 13


def test_delete(world, client_for, menu):
    response = client_for(world.owner).delete(f"/api/products/{menu['nasi'].pk}/")
    assert response.status_code == 204
    assert not Product.objects.filter(pk=menu["nasi"].pk).exists()
