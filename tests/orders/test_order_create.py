"""POST /api/orders/: snapshot, totals, validation, roles, and nothing changed on refusal."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from catalog.models import Product
from orders.models import Order, OrderItem, OrderNumberCounter
from pos.models import StreamEvent
from tests import factories
from tests.orders.conftest import events, item, order_body

URL = "/api/orders/"


def _counts():
    return (
        Order.objects.count(),
        OrderItem.objects.count(),
        StreamEvent.objects.count(),
        list(OrderNumberCounter.objects.values_list("last_number", flat=True)),
    )


@pytest.mark.django_db
def test_cashier_creates_an_order_with_snapshots_totals_and_event(world, menu, client_for):
    body = order_body(
        world.outlet,
        [
            item(menu.burger, 2, [menu.large, menu.cheese], note="no onion"),
            item(menu.tea, 1),
        ],
        customer_name="Ana",
        note="window seat",
    )
    response = client_for(world.cashier).post(URL, body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert response["ETag"] == '"1"'
    assert data["status"] == "pending"
    assert data["version"] == 1
    assert data["number"] == "A-0001"
    assert data["outlet"] == str(world.outlet.id)
    assert (data["type"], data["table"], data["customer_name"], data["note"]) == (
        "dine_in", "7", "Ana", "window seat"
    )
    burger, tea = data["items"]
    assert burger["product"] == str(menu.burger.id)
    assert burger["name"] == "Burger"
    assert burger["unit_price"] == "25000.00"
    assert burger["quantity"] == 2
    assert burger["note"] == "no onion"
    assert burger["modifiers"] == [
        {"id": str(menu.large.id), "name": "Large", "price_delta": "5000.00"},
        {"id": str(menu.cheese.id), "name": "Cheese", "price_delta": "4000.00"},
    ]
    # (25000 + 5000 + 4000) x 2
    assert burger["total"] == "68000.00"
    assert tea["total"] == "8000.00"
    # subtotal 76000; service 5 % = 3800; tax 11 % of 79800 = 8778
    assert data["subtotal"] == "76000.00"
    assert data["service_charge_amount"] == "3800.00"
    assert data["discount_amount"] == "0.00"
    assert data["tax_amount"] == "8778.00"
    assert data["total"] == "88578.00"
    assert (data["payment_status"], data["paid_amount"]) == ("unpaid", "0.00")
    assert data["created_at"].endswith("Z")

    order = Order.objects.get(pk=data["id"])
    assert order.tenant_id == world.tenant.id
    assert order.created_by_id == world.cashier.id
    [created] = events(world.outlet)
    assert created.name == "order.created"
    assert created.order_id == order.id
    assert created.data == data


@pytest.mark.django_db
def test_snapshot_does_not_follow_later_menu_changes(world, menu, client_for):
    client = client_for(world.cashier)
    order_id = client.post(
        URL, order_body(world.outlet, [item(menu.burger, 1, [menu.small])]), format="json"
    ).json()["id"]
    Product.objects.filter(pk=menu.burger.pk).update(name="Renamed", price=Decimal("1.00"))
    menu.small.price_delta = Decimal("999.00")
    menu.small.save()

    line = client.get(f"{URL}{order_id}/").json()["items"][0]
    assert (line["name"], line["unit_price"], line["total"]) == ("Burger", "25000.00", "25000.00")
    assert line["modifiers"][0]["price_delta"] == "0.00"


@pytest.mark.django_db
def test_draft_on_request_and_type_defaults_to_dine_in(world, menu, client_for):
    body = {"outlet": str(world.outlet.id), "status": "draft", "items": [item(menu.tea)]}
    response = client_for(world.cashier).post(URL, body, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "draft"
    assert response.json()["type"] == "dine_in"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["owner", "manager", "super_admin"])
def test_other_writer_roles_create(world, menu, client_for, role):
    response = client_for(world.user(role)).post(
        URL, order_body(world.outlet, [item(menu.tea)]), format="json"
    )
    assert response.status_code == 201


@pytest.mark.django_db
def test_kitchen_cannot_create(world, menu, client_for):
    before = _counts()
    response = client_for(world.kitchen).post(
        URL, order_body(world.outlet, [item(menu.tea)]), format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert _counts() == before


@pytest.mark.django_db
def test_anonymous_is_401(world, menu, client_for):
    response = client_for(None).post(URL, order_body(world.outlet, [item(menu.tea)]), format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def _bad(client, body):
    before = _counts()
    response = client.post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert _counts() == before
    return error["details"]


@pytest.mark.django_db
def test_another_tenants_outlet_looks_exactly_like_an_unknown_one(world, menu, client_for):
    client = client_for(world.cashier)
    foreign = _bad(client, order_body(world.other_outlet, [item(menu.tea)]))
    unknown = _bad(client, {**order_body(world.outlet, [item(menu.tea)]),
                            "outlet": str(uuid.uuid4())})
    assert foreign == unknown == {"outlet": ["Unknown outlet."]}


@pytest.mark.django_db
def test_same_tenant_outlet_not_assigned_is_refused(world, menu, client_for):
    details = _bad(client_for(world.cashier), order_body(world.outlet2, [item(menu.tea)]))
    assert list(details) == ["outlet"]


@pytest.mark.django_db
def test_unknown_and_foreign_products_are_validation_errors(world, menu, client_for):
    foreign = factories.make_product(world.other_tenant)
    body = order_body(
        world.outlet,
        [item(menu.tea), {"product": str(uuid.uuid4()), "quantity": 1}, item(foreign)],
    )
    details = _bad(client_for(world.cashier), body)
    assert details["items"] == {
        "1": {"product": ["Unknown product."]},
        "2": {"product": ["Unknown product."]},
    }


@pytest.mark.django_db
def test_unavailable_product_is_refused(world, menu, client_for):
    Product.objects.filter(pk=menu.tea.pk).update(is_available=False)
    details = _bad(client_for(world.cashier), order_body(world.outlet, [item(menu.tea)]))
    assert details["items"]["0"]["product"] == ["Tea is not available."]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("modifiers", "fragment"),
    [
        ([], "choose at least 1"),  # the required size group left out
        (["small", "large"], "choose at most 1"),
        (["small", "cheese", "bacon", "egg"], "choose at most 2"),
        (["small", "cheese", "cheese"], "chosen twice"),
        (["small", "foreign"], "Unknown modifier option"),
        (["small", "unlinked"], "Unknown modifier option"),
    ],
)
def test_modifier_rules(world, menu, client_for, modifiers, fragment):
    foreign_group = factories.make_modifier_group(world.other_tenant)
    unlinked_group = factories.make_modifier_group(world.tenant)  # not on the burger
    options = {
        "small": menu.small, "large": menu.large, "cheese": menu.cheese, "bacon": menu.bacon,
        "egg": menu.egg, "foreign": foreign_group.options.get(),
        "unlinked": unlinked_group.options.get(),
    }
    body = order_body(world.outlet, [item(menu.burger, 1, [options[m] for m in modifiers])])
    details = _bad(client_for(world.cashier), body)
    assert any(fragment in message for message in details["items"]["0"]["modifiers"])


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", [0, 1000, -1, "two", 1.5])
def test_quantity_out_of_range(world, menu, client_for, quantity):
    body = order_body(world.outlet, [{"product": str(menu.tea.id), "quantity": quantity}])
    details = _bad(client_for(world.cashier), body)
    assert "quantity" in details["items"]["0"]


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", [1, 999])
def test_quantity_bounds_accepted(world, menu, client_for, quantity):
    body = order_body(world.outlet, [item(menu.tea, quantity)])
    assert client_for(world.cashier).post(URL, body, format="json").status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    "patch",
    [
        {"items": []},
        {"type": "drive_through"},
        {"status": "confirmed"},
        {"table": "x" * 33},
        {"outlet": "not-a-uuid"},
    ],
)
def test_body_shape_errors(world, menu, client_for, patch):
    body = {**order_body(world.outlet, [item(menu.tea)]), **patch}
    details = _bad(client_for(world.cashier), body)
    assert set(details) == set(patch)


@pytest.mark.django_db
def test_service_validates_like_the_api(world, menu):
    from orders.services import order_create
    from pos.api_errors import DomainValidationError

    with pytest.raises(DomainValidationError) as excinfo:
        order_create(
            actor=world.cashier, outlet=world.outlet, type="dine_in",
            items=[{"product": menu.tea.id, "quantity": 0, "modifiers": []}],
        )
    assert "quantity" in excinfo.value.details["items"]["0"]
    assert Order.objects.count() == 0
