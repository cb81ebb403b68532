"""``/api/stations/``: CRUD by role and outlet, routing validation, the default station."""

from __future__ import annotations

import pytest

from kds.models import Station, StationCategory
from tests import factories
from tests.kds.conftest import fired, line


def url(station=None) -> str:
    return f"/api/stations/{station.pk}/" if station else "/api/stations/"


def snapshot_stations(outlet) -> list:
    return sorted(
        (s.name, s.kind, s.is_default, tuple(sorted(str(c) for c in
                                                    s.categories.values_list("pk", flat=True))))
        for s in Station.objects.filter(outlet=outlet)
    )


def test_list_shape_and_scoping(world, kitchen, client_for):
    body = client_for(world.kitchen).get(url()).json()
    assert set(body) == {"results", "next", "previous"}
    names = {s["name"] for s in body["results"]}
    assert names == {"Kitchen", "Grill", "Bar", "Expo"}  # not outlet2's "Line"
    bar = next(s for s in body["results"] if s["name"] == "Bar")
    assert bar == {
        "id": str(kitchen.bar.pk),
        "outlet": str(world.outlet.pk),
        "name": "Bar",
        "kind": "prep",
        "is_default": False,
        "categories": [str(kitchen.drinks.pk)],
        "products": [str(kitchen.special.pk)],
    }
    owner_names = {s["name"] for s in client_for(world.owner).get(url()).json()["results"]}
    assert owner_names == {"Kitchen", "Grill", "Bar", "Expo", "Line"}


def test_list_filters(world, kitchen, client_for):
    client = client_for(world.owner)
    only2 = client.get(url(), {"outlet": str(world.outlet2.pk)}).json()["results"]
    assert [s["name"] for s in only2] == ["Line"]
    expo = client.get(url(), {"kind": "expo"}).json()["results"]
    assert [s["name"] for s in expo] == ["Expo"]
    assert client.get(url(), {"outlet": "nope"}).status_code == 400


def test_other_tenant_sees_nothing_and_gets_404(world, kitchen, client_for):
    client = client_for(world.other_owner)
    assert client.get(url()).json()["results"] == []
    assert client.get(url(kitchen.bar)).status_code == 404
    before = snapshot_stations(world.outlet)
    response = client.patch(url(kitchen.bar), {"name": "Mine"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.delete(url(kitchen.expo)).status_code == 404
    assert snapshot_stations(world.outlet) == before


@pytest.mark.parametrize("role", ["super_admin", "owner", "manager"])
def test_management_roles_create_update_delete(world, kitchen, client_for, role):
    client = client_for(world.user(role))
    response = client.post(
        url(), {"outlet": str(world.outlet.pk), "name": "Pastry",
                "categories": [str(kitchen.food.pk)]}, format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["kind"] == "prep" and created["is_default"] is False
    assert created["categories"] == [str(kitchen.food.pk)]
    response = client.patch(f"/api/stations/{created['id']}/", {"name": "Pastry bench"},
                            format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Pastry bench"
    assert response.json()["categories"] == [str(kitchen.food.pk)]  # lists left alone
    assert client.delete(f"/api/stations/{created['id']}/").status_code == 204
    assert not Station.objects.filter(pk=created["id"]).exists()


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_floor_roles_read_only(world, kitchen, client_for, role):
    client = client_for(world.user(role))
    assert client.get(url(kitchen.bar)).status_code == 200
    before = snapshot_stations(world.outlet)
    response = client.post(url(), {"outlet": str(world.outlet.pk), "name": "X"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert client.patch(url(kitchen.bar), {"name": "Y"}, format="json").status_code == 403
    assert client.delete(url(kitchen.expo)).status_code == 403
    assert snapshot_stations(world.outlet) == before


def test_manager_only_in_own_outlets(world, kitchen, client_for):
    client = client_for(world.manager)  # manages outlet, not outlet2
    before = snapshot_stations(world.outlet2)
    response = client.post(url(), {"outlet": str(world.outlet2.pk), "name": "X"}, format="json")
    assert response.status_code == 403
    assert client.patch(url(kitchen.line), {"name": "Y"}, format="json").status_code == 404
    assert snapshot_stations(world.outlet2) == before
    response = client.post(url(), {"outlet": str(world.other_outlet.pk), "name": "X"},
                           format="json")
    assert response.status_code == 400  # another tenant's outlet: unknown id in a body
    assert response.json()["error"]["details"]["outlet"] == ["Unknown outlet."]


def test_categories_and_products_must_be_the_tenants(world, kitchen, client_for):
    foreign_category = factories.make_category(world.other_tenant)
    foreign_product = factories.make_product(world.other_tenant)
    client = client_for(world.owner)
    before = snapshot_stations(world.outlet)
    response = client.post(url(), {"outlet": str(world.outlet.pk), "name": "X",
                                   "categories": [str(foreign_category.pk)]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "categories" in response.json()["error"]["details"]
    response = client.patch(url(kitchen.grill), {"products": [str(foreign_product.pk)]},
                            format="json")
    assert response.status_code == 400
    assert "products" in response.json()["error"]["details"]
    assert snapshot_stations(world.outlet) == before


def test_a_category_is_routed_to_one_station_per_outlet(world, kitchen, client_for):
    client = client_for(world.owner)
    before = snapshot_stations(world.outlet)
    response = client.patch(url(kitchen.grill), {"categories": [str(kitchen.drinks.pk)]},
                            format="json")
    assert response.status_code == 400
    assert "Bar" in response.json()["error"]["details"]["categories"][0]
    assert snapshot_stations(world.outlet) == before
    # Another outlet may route the same category elsewhere.
    response = client.patch(url(kitchen.line), {"categories": [str(kitchen.drinks.pk)]},
                            format="json")
    assert response.status_code == 200
    assert StationCategory.objects.filter(category=kitchen.drinks).count() == 2


def test_making_a_station_default_moves_the_flag(world, kitchen, client_for):
    client = client_for(world.owner)
    response = client.patch(url(kitchen.grill), {"is_default": True}, format="json")
    assert response.status_code == 200
    defaults = list(Station.objects.filter(outlet=world.outlet, is_default=True))
    assert defaults == [kitchen.grill]


def test_default_cannot_be_unset_or_become_expo(world, kitchen, client_for):
    client = client_for(world.owner)
    before = snapshot_stations(world.outlet)
    response = client.patch(url(kitchen.kitchen), {"is_default": False}, format="json")
    assert response.status_code == 400
    assert "is_default" in response.json()["error"]["details"]
    response = client.patch(url(kitchen.kitchen), {"kind": "expo"}, format="json")
    assert response.status_code == 400
    assert snapshot_stations(world.outlet) == before


def test_expo_cannot_be_default_or_route(world, kitchen, client_for):
    client = client_for(world.owner)
    before = snapshot_stations(world.outlet)
    response = client.post(url(), {"outlet": str(world.outlet.pk), "name": "Pass",
                                   "kind": "expo", "is_default": True}, format="json")
    assert response.status_code == 400
    response = client.patch(url(kitchen.expo), {"categories": [str(kitchen.food.pk)]},
                            format="json")
    assert response.status_code == 400
    assert snapshot_stations(world.outlet) == before


def test_first_prep_station_becomes_default_and_delete_hands_it_on(world, client_for):
    outlet = factories.make_outlet(world.tenant)
    client = client_for(world.owner)
    first = client.post(url(), {"outlet": str(outlet.pk), "name": "A"}, format="json").json()
    second = client.post(url(), {"outlet": str(outlet.pk), "name": "B"}, format="json").json()
    assert (first["is_default"], second["is_default"]) == (True, False)
    assert client.delete(f"/api/stations/{first['id']}/").status_code == 204
    assert Station.objects.get(pk=second["id"]).is_default is True


def test_duplicate_name_in_outlet_is_400(world, kitchen, client_for):
    response = client_for(world.owner).post(
        url(), {"outlet": str(world.outlet.pk), "name": "bar"}, format="json"
    )
    assert response.status_code == 400
    assert "name" in response.json()["error"]["details"]


def test_station_with_tickets_cannot_be_deleted(world, kitchen, client_for):
    fired(world.outlet, line(kitchen.cola))
    response = client_for(world.owner).delete(url(kitchen.bar))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "station_in_use"
    assert Station.objects.filter(pk=kitchen.bar.pk).exists()


def test_route_preview(world, kitchen, client_for):
    response = client_for(world.kitchen).post(
        "/api/stations/route-preview/",
        {"outlet": str(world.outlet.pk),
         "items": [{"product": str(p.pk)} for p in
                   (kitchen.special, kitchen.burger, kitchen.coffee, kitchen.salad)]},
        format="json",
    )
    assert response.status_code == 200
    rows = response.json()["items"]
    assert [(r["station_name"], r["rule"]) for r in rows] == [
        ("Bar", "product"), ("Grill", "category"), ("Bar", "ancestor"), ("Kitchen", "default"),
    ]
    assert rows[0]["station"] == str(kitchen.bar.pk)


def test_route_preview_refuses_foreign_ids(world, kitchen, client_for):
    client = client_for(world.owner)
    foreign = factories.make_product(world.other_tenant)
    response = client.post("/api/stations/route-preview/", {
        "outlet": str(world.outlet.pk),
        "items": [{"product": str(kitchen.salad.pk)}, {"product": str(foreign.pk)}],
    }, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["items"] == [{}, {"product": ["Unknown product."]}]
    response = client.post("/api/stations/route-preview/", {
        "outlet": str(world.other_outlet.pk), "items": [{"product": str(kitchen.salad.pk)}],
    }, format="json")
    assert response.status_code == 400


def test_unauthenticated_is_401(world, kitchen, client_for):
    response = client_for(None).get(url())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
