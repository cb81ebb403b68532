"""The category tree: parents in the same tenant, no cycles, safe deletes."""

from __future__ import annotations

import pytest

from catalog.models import Category
from tests import factories
from tests.tenants.helpers import assert_envelope, ids


@pytest.fixture
def tree(world):
    food = factories.make_category(world.tenant, name="Food")
    rice = factories.make_category(world.tenant, food, name="Rice")
    fried = factories.make_category(world.tenant, rice, name="Fried rice")
    drinks = factories.make_category(world.tenant, name="Drinks")
    return {"food": food, "rice": rice, "fried": fried, "drinks": drinks}


def parents():
    return dict(Category.objects.values_list("pk", "parent_id"))


def test_create_child(world, client_for, tree):
    response = client_for(world.manager).post(
        "/api/categories/", {"name": "Noodles", "parent": str(tree["food"].pk), "sort_order": 2},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "tenant", "name", "parent", "sort_order"}
    assert (body["parent"], body["sort_order"]) == (str(tree["food"].pk), 2)


def test_parent_of_another_tenant_is_400(world, client_for, tree):
    foreign = factories.make_category(world.other_tenant)
    before = Category.objects.count()
    response = client_for(world.owner).post(
        "/api/categories/", {"name": "X", "parent": str(foreign.pk)}, format="json"
    )
    assert "parent" in assert_envelope(response, 400, "validation_error")["details"]
    # A platform admin can name it, but parent and child must share a tenant.
    response = client_for(world.super_admin).post(
        "/api/categories/",
        {"name": "X", "parent": str(foreign.pk), "tenant": str(world.tenant.pk)},
        format="json",
    )
    assert "parent" in assert_envelope(response, 400, "validation_error")["details"]
    response = client_for(world.super_admin).patch(
        f"/api/categories/{tree['rice'].pk}/", {"parent": str(foreign.pk)}, format="json"
    )
    assert "parent" in assert_envelope(response, 400, "validation_error")["details"]
    assert Category.objects.count() == before
    tree["rice"].refresh_from_db()
    assert tree["rice"].parent == tree["food"]


@pytest.mark.parametrize("node,new_parent", [("food", "food"), ("food", "rice"),
                                             ("food", "fried"), ("rice", "fried")])
def test_cycles_are_refused(world, client_for, tree, node, new_parent):
    before = parents()
    response = client_for(world.owner).patch(
        f"/api/categories/{tree[node].pk}/", {"parent": str(tree[new_parent].pk)}, format="json"
    )
    assert "parent" in assert_envelope(response, 400, "validation_error")["details"]
    assert parents() == before


def test_move_and_move_to_top(world, client_for, tree):
    client = client_for(world.owner)
    moved = client.patch(f"/api/categories/{tree['fried'].pk}/",
                         {"parent": str(tree["drinks"].pk)}, format="json")
    assert moved.status_code == 200
    top = client.patch(f"/api/categories/{tree['rice'].pk}/", {"parent": None}, format="json")
    assert top.status_code == 200
    assert parents()[tree["fried"].pk] == tree["drinks"].pk
    assert parents()[tree["rice"].pk] is None


def test_names_unique_under_one_parent(world, client_for, tree):
    client = client_for(world.owner)
    dup = client.post("/api/categories/", {"name": "Rice", "parent": str(tree["food"].pk)},
                      format="json")
    assert "name" in assert_envelope(dup, 400, "validation_error")["details"]
    top_dup = client.post("/api/categories/", {"name": "Food"}, format="json")
    assert "name" in assert_envelope(top_dup, 400, "validation_error")["details"]
    elsewhere = client.post("/api/categories/",
                            {"name": "Rice", "parent": str(tree["drinks"].pk)}, format="json")
    assert elsewhere.status_code == 201


@pytest.mark.parametrize("what", ["children", "products"])
def test_delete_of_a_used_category_is_409(world, client_for, tree, what):
    target = tree["rice"] if what == "children" else tree["drinks"]
    if what == "products":
        factories.make_product(world.tenant, tree["drinks"])
    response = client_for(world.owner).delete(f"/api/categories/{target.pk}/")
    assert_envelope(response, 409, "conflict")
    assert Category.objects.filter(pk=target.pk).exists()


def test_filters(world, client_for, tree):
    client = client_for(world.kitchen)
    assert ids(client.get("/api/categories/?is_root=true")) == {
        str(tree["food"].pk), str(tree["drinks"].pk)}
    assert ids(client.get(f"/api/categories/?parent={tree['food'].pk}")) == {
        str(tree["rice"].pk)}
    ordered = client.get("/api/categories/?ordering=name").json()["results"]
    assert [row["name"] for row in ordered] == ["Drinks", "Food", "Fried rice", "Rice"]
