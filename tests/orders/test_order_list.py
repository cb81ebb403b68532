"""GET /api/orders/ and /api/orders/{id}/: scoping, filters, cursor pages, query counts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from orders.models import Order
from tests import factories
from tests.orders.conftest import item, make_order

URL = "/api/orders/"


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def spread(world, menu):
    """Orders at outlet (3) and outlet2 (1)."""
    return {
        "outlet": [make_order(world.outlet, [item(menu.tea)]) for _ in range(3)],
        "outlet2": [make_order(world.outlet2, [item(menu.tea)])],
    }


def _other_tenant_order(world):
    product = factories.make_product(world.other_tenant)
    return make_order(world.other_outlet, [item(product)])


@pytest.mark.django_db
def test_each_role_sees_its_own_outlets_only(world, menu, spread, client_for):
    foreign = _other_tenant_order(world)
    here = {str(o.id) for o in spread["outlet"]}
    there = {str(o.id) for o in spread["outlet2"]}

    assert set(ids(client_for(world.cashier).get(URL))) == here
    assert set(ids(client_for(world.kitchen).get(URL))) == here
    assert set(ids(client_for(world.manager).get(URL))) == here
    assert set(ids(client_for(world.manager2).get(URL))) == there
    assert set(ids(client_for(world.owner).get(URL))) == here | there
    assert set(ids(client_for(world.other_owner).get(URL))) == {str(foreign.id)}
    assert set(ids(client_for(world.super_admin).get(URL))) == here | there | {str(foreign.id)}


@pytest.mark.django_db
def test_newest_first(world, menu, spread, client_for):
    expected = [str(o.id) for o in reversed(spread["outlet"])]
    assert ids(client_for(world.cashier).get(URL)) == expected


@pytest.mark.django_db
def test_retrieve_scoped_and_with_etag(world, menu, spread, client_for):
    order = spread["outlet"][0]
    response = client_for(world.kitchen).get(f"{URL}{order.id}/")
    assert response.status_code == 200
    assert response.json()["id"] == str(order.id)
    assert response["ETag"] == '"1"'
    for user in (world.other_owner, world.other_cashier, world.manager2):
        response = client_for(user).get(f"{URL}{order.id}/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert client_for(world.cashier).get(f"{URL}{uuid.uuid4()}/").status_code == 404
    assert client_for(world.cashier).get(f"{URL}not-a-uuid/").status_code == 404


@pytest.mark.django_db
def test_filters_outlet_status_type(world, menu, spread, client_for):
    client = client_for(world.owner)
    confirmed = spread["outlet"][0]
    Order.objects.filter(pk=confirmed.pk).update(status="confirmed", type="takeaway")

    assert set(ids(client.get(URL, {"outlet": world.outlet2.id}))) == {
        str(spread["outlet2"][0].id)
    }
    assert ids(client.get(URL, {"status": "confirmed"})) == [str(confirmed.id)]
    assert ids(client.get(URL, {"type": "takeaway"})) == [str(confirmed.id)]
    both = client.get(f"{URL}?status=confirmed&status=pending")
    assert len(ids(both)) == 4
    # Another tenant's outlet as a filter simply matches nothing.
    assert ids(client.get(URL, {"outlet": world.other_outlet.id})) == []


@pytest.mark.django_db
def test_bad_filter_values_are_400(world, client_for):
    client = client_for(world.owner)
    for params in ({"status": "eaten"}, {"outlet": "nope"}, {"created_after": "yesterday"}):
        response = client.get(URL, params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.django_db
def test_created_range_by_datetime_and_by_business_date(world, menu, client_for):
    old, mid, new = (make_order(world.outlet, [item(menu.tea)]) for _ in range(3))
    base = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    for n, order in enumerate((old, mid, new)):
        Order.objects.filter(pk=order.pk).update(
            created_at=base + timedelta(days=n), business_date=date(2026, 5, 10 + n)
        )
    client = client_for(world.cashier)

    after = client.get(URL, {"created_after": "2026-05-11T12:00:00Z"})
    assert ids(after) == [str(new.id), str(mid.id)]
    before = client.get(URL, {"created_before": "2026-05-11T11:59:59+00:00"})
    assert ids(before) == [str(old.id)]
    day = client.get(URL, {"created_after": "2026-05-11", "created_before": "2026-05-11"})
    assert ids(day) == [str(mid.id)]
    naive = client.get(URL, {"created_after": "2026-05-12T12:00:00"})
    assert ids(naive) == [str(new.id)]


@pytest.mark.django_db
def test_cursor_pages_cover_everything_once(world, menu, client_for):
    made = [make_order(world.outlet, [item(menu.tea)]) for _ in range(5)]
    client = client_for(world.cashier)
    seen: list[str] = []
    response = client.get(URL, {"page_size": 2})
    pages = 0
    while True:
        body = response.json()
        assert set(body) == {"results", "next", "previous"}
        seen += [row["id"] for row in body["results"]]
        pages += 1
        if body["next"] is None:
            break
        assert "cursor=" in body["next"]
        response = client.get(body["next"])
    assert pages == 3
    assert seen == [str(o.id) for o in reversed(made)]


@pytest.mark.django_db
def test_list_queries_do_not_grow_with_orders_or_items(
    world, menu, client_for, django_assert_max_num_queries
):
    for _ in range(12):
        make_order(world.outlet, [item(menu.tea), item(menu.fries, 2),
                                  item(menu.burger, 1, [menu.large, menu.egg])])
    client = client_for(world.cashier)
    # the user (JWT), the page of orders (outlet scope is a subquery), the items prefetch
    with django_assert_max_num_queries(3):
        response = client.get(URL)
    assert len(response.json()["results"]) == 12
    order_id = response.json()["results"][0]["id"]
    with django_assert_max_num_queries(3):
        assert client.get(f"{URL}{order_id}/").status_code == 200
