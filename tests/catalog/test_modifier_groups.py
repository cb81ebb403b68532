"""Modifier groups with their options, written in one request."""

from __future__ import annotations

import pytest

from catalog.models import ModifierGroup, ModifierOption
from tests import factories
from tests.tenants.helpers import assert_envelope


@pytest.fixture
def extras(world):
    return factories.make_modifier_group(
        world.tenant, name="Extras", min_select=0, max_select=2,
        options=(("Egg", "3000.00"), ("Cheese", "4000.00"), ("Bacon", "6000.00")),
    )


def options_of(group):
    return [(o.name, str(o.price_delta), o.sort_order)
            for o in ModifierOption.objects.filter(group=group).order_by("sort_order")]


def test_create_with_options(world, client_for):
    body = {"name": "Spice level", "min_select": 1, "max_select": 1,
            "options": [{"name": "Mild"}, {"name": "Hot", "price_delta": "0"},
                        {"name": "Extra hot", "price_delta": "2000"}]}
    response = client_for(world.manager).post("/api/modifier-groups/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {"id", "tenant", "name", "min_select", "max_select", "options"}
    assert [(o["name"], o["price_delta"]) for o in data["options"]] == [
        ("Mild", "0.00"), ("Hot", "0.00"), ("Extra hot", "2000.00")]
    assert all(set(o) == {"id", "name", "price_delta"} for o in data["options"])
    group = ModifierGroup.objects.get(pk=data["id"])
    assert ModifierOption.objects.filter(group=group, tenant=world.tenant).count() == 3


def test_update_keeps_updates_creates_and_deletes_options(world, client_for, extras):
    egg, cheese, bacon = ModifierOption.objects.filter(group=extras).order_by("sort_order")
    body = {"options": [
        {"id": str(cheese.pk), "name": "Cheddar", "price_delta": "4500.00"},
        {"name": "Avocado", "price_delta": "7000.00"},
        {"id": str(egg.pk), "name": "Egg"},
    ]}
    response = client_for(world.owner).patch(f"/api/modifier-groups/{extras.pk}/", body,
                                             format="json")
    assert response.status_code == 200, response.content
    assert options_of(extras) == [("Cheddar", "4500.00", 0), ("Avocado", "7000.00", 1),
                                  ("Egg", "3000.00", 2)]
    assert not ModifierOption.objects.filter(pk=bacon.pk).exists()
    assert ModifierOption.objects.get(name="Cheddar").pk == cheese.pk  # kept, not recreated
    assert [o["name"] for o in response.json()["options"]] == ["Cheddar", "Avocado", "Egg"]


def test_swapping_two_names(world, client_for, extras):
    egg, cheese, _ = ModifierOption.objects.filter(group=extras).order_by("sort_order")
    body = {"options": [{"id": str(egg.pk), "name": "Cheese"},
                        {"id": str(cheese.pk), "name": "Egg"}]}
    response = client_for(world.owner).patch(f"/api/modifier-groups/{extras.pk}/", body,
                                             format="json")
    assert response.status_code == 200, response.content
    egg.refresh_from_db()
    assert egg.name == "Cheese"


def test_patch_without_options_leaves_them(world, client_for, extras):
    before = options_of(extras)
    response = client_for(world.owner).patch(f"/api/modifier-groups/{extras.pk}/",
                                             {"max_select": 3}, format="json")
    assert response.status_code == 200
    assert options_of(extras) == before
    assert len(response.json()["options"]) == 3


@pytest.mark.parametrize(
    "body,field",
    [
        ({"min_select": 3, "max_select": 1}, "max_select"),
        ({"min_select": 4, "max_select": 4}, "min_select"),  # only 3 options
        ({"options": [{"name": "A"}, {"name": "a"}]}, "options"),
        ({"options": [{"name": "A", "price_delta": "1.234"}]}, "options"),
        ({"options": [{"id": "00000000-0000-0000-0000-000000000000", "name": "A"}]}, "options"),
        ({"options": "nope"}, "options"),
        ({"min_select": -1}, "min_select"),
    ],
)
def test_invalid_updates_change_nothing(world, client_for, extras, body, field):
    before = (options_of(extras), ModifierGroup.objects.values().get(pk=extras.pk))
    response = client_for(world.owner).patch(f"/api/modifier-groups/{extras.pk}/", body,
                                             format="json")
    assert field in assert_envelope(response, 400, "validation_error")["details"]
    assert (options_of(extras), ModifierGroup.objects.values().get(pk=extras.pk)) == before


def test_an_option_of_another_group_cannot_be_stolen(world, client_for, extras):
    other = factories.make_modifier_group(world.tenant, options=(("Ice", "0.00"),))
    ice = ModifierOption.objects.get(group=other)
    response = client_for(world.owner).patch(
        f"/api/modifier-groups/{extras.pk}/",
        {"options": [{"id": str(ice.pk), "name": "Ice"}]}, format="json",
    )
    assert "options" in assert_envelope(response, 400, "validation_error")["details"]
    ice.refresh_from_db()
    assert ice.group_id == other.pk
    assert len(options_of(extras)) == 3


def test_duplicate_group_name_is_400(world, client_for, extras):
    response = client_for(world.owner).post("/api/modifier-groups/",
                                            {"name": "Extras", "options": []}, format="json")
    assert "name" in assert_envelope(response, 400, "validation_error")["details"]
    assert ModifierGroup.objects.filter(tenant=world.tenant, name="Extras").count() == 1


def test_new_options_cannot_carry_ids_on_create(world, client_for, extras):
    egg = ModifierOption.objects.filter(group=extras).first()
    response = client_for(world.owner).post(
        "/api/modifier-groups/", {"name": "Copy", "options": [{"id": str(egg.pk), "name": "E"}]},
        format="json",
    )
    assert "options" in assert_envelope(response, 400, "validation_error")["details"]
    assert not ModifierGroup.objects.filter(name="Copy").exists()


def test_list_query_count_does_not_grow(world, client_for, extras,
                                        django_assert_max_num_queries):
    for _ in range(8):
        factories.make_modifier_group(world.tenant, options=(("A", "1.00"), ("B", "2.00")))
    with django_assert_max_num_queries(6):
        response = client_for(world.owner).get("/api/modifier-groups/")
    assert len(response.json()["results"]) == 9


def test_delete_removes_options(world, client_for, extras):
    assert client_for(world.owner).delete(f"/api/modifier-groups/{extras.pk}/").status_code == 204
    assert not ModifierOption.objects.filter(group_id=extras.pk).exists()
