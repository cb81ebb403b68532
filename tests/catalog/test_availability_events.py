"""``product.availability_changed``: one event per outlet of the tenant, only on a real change,
never on a refused request."""

from __future__ import annotations

import pytest

from catalog import services
from catalog.models import Product
from pos.models import StreamEvent
from pos.streams import outbox
from tests import factories
from tests.tenants.helpers import assert_envelope

EVENT = "product.availability_changed"


@pytest.fixture
def product(world):
    return factories.make_product(world.tenant, factories.make_category(world.tenant))


def events():
    return list(StreamEvent.objects.filter(name=EVENT).order_by("outlet_id", "seq"))


@pytest.mark.parametrize("role", ["super_admin", "owner", "manager"])
def test_patch_emits_on_every_outlet_of_the_tenant(world, client_for, product, role):
    client = client_for(world.user(role))
    response = client.patch(f"/api/products/{product.pk}/", {"is_available": False},
                            format="json")
    assert response.status_code == 200, response.content
    rows = events()
    assert {e.outlet_id for e in rows} == {world.outlet.pk, world.outlet2.pk}
    assert len(rows) == 2
    rendered = client.get(f"/api/products/{product.pk}/").json()
    assert rendered["is_available"] is False
    for event in rows:
        assert event.tenant_id == world.tenant.pk
        assert event.data == rendered == response.json()
    assert not StreamEvent.objects.filter(outlet_id=world.other_outlet.pk).exists()


def test_back_to_available_emits_again(world, client_for, product):
    client = client_for(world.owner)
    client.patch(f"/api/products/{product.pk}/", {"is_available": False}, format="json")
    client.patch(f"/api/products/{product.pk}/", {"is_available": True}, format="json")
    rows = StreamEvent.objects.filter(name=EVENT, outlet_id=world.outlet.pk).order_by("seq")
    assert [e.data["is_available"] for e in rows] == [False, True]


@pytest.mark.parametrize(
    "body", [{"is_available": True}, {"price": "1.00"}, {"name": "Renamed", "stock_quantity": 9}]
)
def test_no_event_without_an_availability_change(world, client_for, product, body):
    response = client_for(world.owner).patch(f"/api/products/{product.pk}/", body,
                                             format="json")
    assert response.status_code == 200
    assert events() == []


def test_creating_an_unavailable_product_emits_nothing(world, client_for):
    body = {"name": "Later", "sku": "L-1", "price": "1.00", "is_available": False}
    assert client_for(world.owner).post("/api/products/", body, format="json").status_code == 201
    assert events() == []


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_refused_role_emits_nothing(world, client_for, product, role):
    response = client_for(world.user(role)).patch(f"/api/products/{product.pk}/",
                                                  {"is_available": False}, format="json")
    assert_envelope(response, 403, "permission_denied")
    assert events() == []
    product.refresh_from_db()
    assert product.is_available


def test_other_tenant_emits_nothing(world, client_for, product):
    response = client_for(world.other_owner).patch(f"/api/products/{product.pk}/",
                                                   {"is_available": False}, format="json")
    assert_envelope(response, 404, "not_found")
    assert events() == []
    product.refresh_from_db()
    assert product.is_available


@pytest.mark.parametrize(
    "body",
    [
        {"is_available": False, "price": "-5.00"},
        {"is_available": False, "sku": "TAKEN"},
        {"is_available": False, "category": "00000000-0000-0000-0000-000000000000"},
    ],
)
def test_invalid_request_emits_nothing(world, client_for, product, body):
    factories.make_product(world.tenant, sku="TAKEN")
    before = Product.objects.values().get(pk=product.pk)
    response = client_for(world.owner).patch(f"/api/products/{product.pk}/", body,
                                             format="json")
    assert_envelope(response, 400, "validation_error")
    assert events() == []
    assert Product.objects.values().get(pk=product.pk) == before


def test_service_for_other_apps(world, product):
    services.product_set_availability(product=product, is_available=True)
    assert events() == []
    services.product_set_availability(product=product, is_available=False)
    assert len(events()) == 2
    services.product_set_availability(product=product, is_available=False)
    assert len(events()) == 2


def test_tenant_without_outlets(world):
    lonely = factories.make_tenant()
    product = factories.make_product(lonely)
    updated = services.product_update(product=product, data={"is_available": False})
    assert updated.is_available is False
    assert events() == []


def test_seq_continues_per_outlet(world, client_for, product):
    with outbox.atomic():
        outbox.emit(outlet=world.outlet, name="order.created", data={"id": "x"})
    client_for(world.owner).patch(f"/api/products/{product.pk}/", {"is_available": False},
                                  format="json")
    by_outlet = {e.outlet_id: e.seq for e in events()}
    assert by_outlet == {world.outlet.pk: 2, world.outlet2.pk: 1}
