"""GET /api/events/: the outlet's log with the socket envelope, paged by seq."""

from __future__ import annotations

import pytest

from tests.streams.helpers import write_events


@pytest.fixture
def logged(world):
    write_events(world.outlet, 5)
    write_events(world.outlet2, 1)
    return world


def test_events_after_since_in_order(logged, client_for):
    response = client_for(logged.cashier).get(
        "/api/events/", {"outlet": str(logged.outlet.id), "since": 2}
    )
    assert response.status_code == 200
    body = response.json()
    assert [e["seq"] for e in body["results"]] == [3, 4, 5]
    assert body["next"] is None and body["previous"] is None
    first = body["results"][0]
    assert set(first) == {"type", "seq", "event", "outlet", "at", "data"}
    assert (first["type"], first["event"], first["outlet"]) == (
        "event", "order.updated", str(logged.outlet.id)
    )


def test_events_page_with_next_link(logged, client_for):
    client = client_for(logged.owner)
    body = client.get("/api/events/", {"outlet": str(logged.outlet.id), "limit": 2}).json()
    assert [e["seq"] for e in body["results"]] == [1, 2]
    assert "since=2" in body["next"]
    body = client.get(body["next"]).json()
    assert [e["seq"] for e in body["results"]] == [3, 4]
    body = client.get(body["next"]).json()
    assert [e["seq"] for e in body["results"]] == [5]
    assert body["next"] is None


@pytest.mark.parametrize("who", ["other_owner", "other_cashier"])
def test_other_tenants_outlet_is_404(logged, client_for, who):
    response = client_for(getattr(logged, who)).get(
        "/api/events/", {"outlet": str(logged.outlet.id)}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unassigned_outlet_is_404_for_outlet_bound_roles(logged, client_for):
    response = client_for(logged.cashier).get("/api/events/", {"outlet": str(logged.outlet2.id)})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "params", [{}, {"outlet": "nope"}, {"since": "-1"}, {"limit": "0"}, {"since": "x"}]
)
def test_bad_parameters_are_validation_errors(logged, client_for, params):
    if params and "outlet" not in params:
        params = {"outlet": str(logged.outlet.id), **params}
    response = client_for(logged.owner).get("/api/events/", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_anonymous_is_401(logged, client_for):
    response = client_for(None).get("/api/events/", {"outlet": str(logged.outlet.id)})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
