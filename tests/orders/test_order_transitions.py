"""PATCH /api/orders/{id}/status/ and order_transition: the machine, versions, roles, events."""

from __future__ import annotations

import itertools
import uuid

import pytest

from orders.lifecycle import TRANSITIONS
from orders.models import Order, OrderStatus
from orders.services import order_transition
from pos.api_errors import InvalidTransition
from pos.models import StreamEvent
from pos.streams import outbox
from tests.orders.conftest import events, item, make_order

STATUSES = [s.value for s in OrderStatus]
ALLOWED = {
    ("draft", "pending"), ("pending", "confirmed"), ("confirmed", "preparing"),
    ("preparing", "ready"), ("ready", "served"), ("served", "completed"),
    ("draft", "cancelled"), ("pending", "cancelled"), ("confirmed", "cancelled"),
    ("preparing", "cancelled"), ("ready", "cancelled"), ("served", "cancelled"),
}


def url(order) -> str:
    return f"/api/orders/{order.id}/status/"


def _state(order):
    row = Order.objects.get(pk=order.pk)
    return row.status, row.version, StreamEvent.objects.filter(order_id=order.pk).count()


def test_machine_table_is_exactly_the_contracts():
    drawn = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert drawn == ALLOWED


@pytest.mark.django_db
def test_happy_path_bumps_version_and_emits_status_changed(world, menu, client_for):
    client = client_for(world.cashier)
    order = make_order(world.outlet, [item(menu.tea)], status="draft")
    path = ["pending", "confirmed", "preparing", "ready", "served", "completed"]
    previous = "draft"
    for version, status in enumerate(path, start=2):
        response = client.patch(url(order), {"status": status}, format="json")
        assert response.status_code == 200, response.json()
        data = response.json()
        assert (data["status"], data["version"]) == (status, version)
        assert response["ETag"] == f'"{version}"'
        event = events(world.outlet, "order.status_changed")[-1]
        assert event.data["from"] == previous
        assert event.data["to"] == status
        assert {k: v for k, v in event.data.items() if k not in ("from", "to")} == data
        previous = status
    assert len(events(world.outlet, "order.status_changed")) == len(path)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        pair
        for pair in itertools.product(STATUSES, STATUSES)
        if pair not in ALLOWED
    ],
)
def test_every_other_edge_is_409_and_changes_nothing(world, menu, client_for, from_status,
                                                       to_status):
    order = make_order(world.outlet, [item(menu.tea)], status=from_status)
    before = _state(order)
    response = client_for(world.manager).patch(url(order), {"status": to_status}, format="json")
    assert response.status_code == 409, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"] == {"from": from_status, "to": to_status}
    assert _state(order) == before


@pytest.mark.django_db
def test_ready_to_preparing_only_by_the_system_path(world, menu, client_for):
    order = make_order(world.outlet, [item(menu.tea)], status="ready")
    response = client_for(world.owner).patch(url(order), {"status": "preparing"}, format="json")
    assert response.status_code == 409
    with pytest.raises(InvalidTransition):
        order_transition(order_id=order.id, to_status="preparing", actor=world.owner)

    recalled = order_transition(order_id=order.id, to_status="preparing", system=True)
    assert (recalled.status, recalled.version) == ("preparing", order.version + 1)


@pytest.mark.django_db
def test_system_path_repeating_the_current_status_is_a_no_op(world, menu):
    order = make_order(world.outlet, [item(menu.tea)], status="preparing")
    before = _state(order)
    again = order_transition(order_id=order.id, to_status="preparing", system=True)
    assert again.status == "preparing"
    assert _state(order) == before


@pytest.mark.django_db
def test_service_needs_an_actor_unless_system(world, menu):
    order = make_order(world.outlet, [item(menu.tea)])
    with pytest.raises(ValueError, match="actor"):
        order_transition(order_id=order.id, to_status="confirmed")


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["1", '"1"', 'W/"1"', "*"])
def test_if_match_current_version_is_accepted(world, menu, client_for, header):
    order = make_order(world.outlet, [item(menu.tea)])
    response = client_for(world.cashier).patch(
        url(order), {"status": "confirmed"}, format="json", HTTP_IF_MATCH=header
    )
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["2", '"7"'])
def test_stale_if_match_is_409_version_conflict(world, menu, client_for, header):
    order = make_order(world.outlet, [item(menu.tea)])
    before = _state(order)
    response = client_for(world.cashier).patch(
        url(order), {"status": "confirmed"}, format="json", HTTP_IF_MATCH=header
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "version_conflict"
    assert response.json()["error"]["details"] == {"current_version": 1}
    assert _state(order) == before


@pytest.mark.django_db
def test_malformed_if_match_is_400(world, menu, client_for):
    order = make_order(world.outlet, [item(menu.tea)])
    before = _state(order)
    response = client_for(world.cashier).patch(
        url(order), {"status": "confirmed"}, format="json", HTTP_IF_MATCH="abc"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert _state(order) == before


@pytest.mark.django_db
def test_unknown_status_is_400(world, menu, client_for):
    order = make_order(world.outlet, [item(menu.tea)])
    before = _state(order)
    response = client_for(world.cashier).patch(url(order), {"status": "eaten"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()["error"]["details"]
    assert _state(order) == before


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", ["preparing", "ready", "served"])
def test_cashier_cannot_cancel_once_the_kitchen_started(world, menu, client_for, from_status):
    order = make_order(world.outlet, [item(menu.tea)], status=from_status)
    before = _state(order)
    response = client_for(world.cashier).patch(url(order), {"status": "cancelled"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert _state(order) == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["manager", "owner", "super_admin"])
@pytest.mark.parametrize("from_status", ["preparing", "ready", "served"])
def test_managers_cancel_once_the_kitchen_started(world, menu, client_for, role, from_status):
    order = make_order(world.outlet, [item(menu.tea)], status=from_status)
    response = client_for(world.user(role)).patch(
        url(order), {"status": "cancelled"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", ["draft", "pending", "confirmed"])
def test_cashier_cancels_before_the_kitchen_starts(world, menu, client_for, from_status):
    order = make_order(world.outlet, [item(menu.tea)], status=from_status)
    response = client_for(world.cashier).patch(url(order), {"status": "cancelled"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.django_db
def test_kitchen_cannot_transition(world, menu, client_for):
    order = make_order(world.outlet, [item(menu.tea)])
    before = _state(order)
    response = client_for(world.kitchen).patch(url(order), {"status": "confirmed"}, format="json")
    assert response.status_code == 403
    assert _state(order) == before


@pytest.mark.django_db
def test_other_tenant_and_unassigned_orders_are_404(world, menu, client_for):
    order = make_order(world.outlet, [item(menu.tea)])
    before = _state(order)
    for user in (world.other_owner, world.other_cashier, world.manager2):
        response = client_for(user).patch(url(order), {"status": "confirmed"}, format="json")
        assert response.status_code == 404, user
        assert response.json()["error"]["code"] == "not_found"
    missing = client_for(world.cashier).patch(
        f"/api/orders/{uuid.uuid4()}/status/", {"status": "confirmed"}, format="json"
    )
    assert missing.status_code == 404
    assert _state(order) == before


@pytest.mark.django_db
def test_reactions_see_the_new_state_in_the_same_transaction(world, menu, monkeypatch):
    seen = []

    def reaction(event):
        row = Order.objects.get(pk=event.order_id)
        seen.append((event.data["to"], row.status, row.version))

    monkeypatch.setitem(outbox._reactions, "order.status_changed", [reaction])
    order = make_order(world.outlet, [item(menu.tea)])
    order_transition(order_id=order.id, to_status="confirmed", actor=world.cashier)
    assert seen == [("confirmed", "confirmed", 2)]


@pytest.mark.django_db
def test_a_failing_reaction_rolls_the_transition_back(world, menu, monkeypatch):
    def reaction(event):
        raise RuntimeError("kitchen unavailable")

    monkeypatch.setitem(outbox._reactions, "order.status_changed", [reaction])
    order = make_order(world.outlet, [item(menu.tea)])
    before = _state(order)
    with pytest.raises(RuntimeError):
        order_transition(order_id=order.id, to_status="confirmed", actor=world.cashier)
    assert _state(order) == before
