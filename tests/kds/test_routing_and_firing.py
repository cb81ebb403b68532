"""Routing precedence, firing on confirmation (once), voiding on cancellation."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from catalog.models import Product
from kds import services
from kds.models import Station, Ticket, TicketItem
from kds.routing_rules import RoutingTable
from kds.selectors import ticket_for_output
from kds.serializers import TicketSerializer
from orders.models import Order
from pos.api_errors import Conflict, InvalidTransition
from pos.models import StreamEvent
from tests import factories
from tests.kds.conftest import confirm, events, fired, line, make_order, transition


def stations_of(order) -> dict[str, list[str]]:
    return {
        t.station.name: [i.name for i in t.items.order_by("position")]
        for t in Ticket.objects.filter(order=order).select_related("station")
    }


def test_routing_precedence_product_category_ancestor_default(world, kitchen):
    order, _ = fired(
        world.outlet,
        line(kitchen.salad), line(kitchen.burger), line(kitchen.steak),
        line(kitchen.special), line(kitchen.cola), line(kitchen.coffee),
    )
    assert stations_of(order) == {
        "Kitchen": ["Salad"],  # Food is routed nowhere: the default
        "Grill": ["Burger", "Steak"],  # Mains itself, then Steaks by its nearest ancestor
        "Bar": ["Chef special", "Cola", "Coffee"],  # the product wins over Steaks -> Grill
    }


def test_nearest_ancestor_wins_over_a_farther_one(world, kitchen):
    # Food -> Kitchen is now listed too; Steaks is nearer to Mains (Grill) than to Food.
    services.station_update(station_id=kitchen.kitchen.pk, category_ids=[kitchen.food.pk])
    table = RoutingTable.for_outlet(world.outlet)
    assert table.route(kitchen.steak.pk, kitchen.steaks.pk).station == kitchen.grill
    assert table.route(kitchen.steak.pk, kitchen.steaks.pk).rule == "ancestor"
    assert table.route(kitchen.burger.pk, kitchen.mains.pk).rule == "category"
    assert table.route(kitchen.salad.pk, kitchen.food.pk).station == kitchen.kitchen
    assert table.route(kitchen.salad.pk, kitchen.food.pk).rule == "category"
    uncategorised = factories.make_product(world.tenant, None, name="Bread")
    route = table.route(uncategorised.pk, None)
    assert (route.station, route.rule) == (kitchen.kitchen, "default")


def test_routing_is_per_outlet(world, kitchen):
    order, tickets = fired(world.outlet2, line(kitchen.steak), line(kitchen.cola))
    assert stations_of(order) == {"Line": ["Steak", "Cola"]}
    assert tickets["Line"].outlet_id == world.outlet2.pk


def test_expo_station_never_receives_tickets(world, kitchen):
    _order, tickets = fired(world.outlet, line(kitchen.salad))
    assert "Expo" not in tickets
    assert not Ticket.objects.filter(station=kitchen.expo).exists()


def test_ticket_snapshot_and_created_events(world, kitchen):
    before = StreamEvent.objects.filter(outlet_id=world.outlet.pk).count()
    order = make_order(
        world.outlet, line(kitchen.burger, 2, note="no onion"), line(kitchen.cola, 3),
        table="12", customer_name="Ana",
    )
    confirm(order)
    order.refresh_from_db()
    created = events(world.outlet, "ticket.")
    assert [e.name for e in created] == ["ticket.created", "ticket.created"]
    # order.status_changed first (seq before), then one ticket.created per station.
    names = [e.name for e in StreamEvent.objects.filter(outlet_id=world.outlet.pk,
                                                        seq__gt=before).order_by("seq")]
    assert names == ["order.created", "order.status_changed", "ticket.created",
                     "ticket.created"]
    for event in created:
        ticket = ticket_for_output(event.data["id"])
        assert event.data == dict(TicketSerializer(ticket).data) | {
            "fired_at": event.data["fired_at"]
        }
        assert event.station_id == ticket.station_id
        assert event.order_id == order.pk
        assert ticket.order_number == order.number
        assert (ticket.table, ticket.customer_name, ticket.type) == ("12", "Ana", "dine_in")
        assert ticket.status == "open" and ticket.priority == "normal"
        assert ticket.bumped_at is None
    grill = Ticket.objects.get(order=order, station=kitchen.grill)
    (burger,) = grill.items.all()
    assert (burger.name, burger.quantity, burger.note, burger.status) == (
        "Burger", 2, "no onion", "queued",
    )
    assert burger.product_id == kitchen.burger.pk


def test_modifiers_are_snapshotted_without_prices(world, kitchen):
    group = factories.make_modifier_group(world.tenant, options=(("Well done", "0.00"),))
    kitchen.steak.modifier_groups.set([group])
    option = group.options.get()
    order = make_order(world.outlet, {"product": str(kitchen.steak.pk), "quantity": 1,
                                      "modifiers": [str(option.pk)], "note": ""})
    confirm(order)
    item = TicketItem.objects.get(ticket__order=order)
    assert item.modifiers == [{"id": str(option.pk), "name": "Well done"}]


def test_fires_once(world, kitchen):
    order, _tickets = fired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    count = StreamEvent.objects.filter(outlet_id=world.outlet.pk).count()
    with transaction.atomic():
        assert services.tickets_fire(order_id=order.pk) == []
        # The confirmation's event delivered to the reaction again changes nothing either.
        confirmed = StreamEvent.objects.get(outlet_id=world.outlet.pk, order_id=order.pk,
                                            name="order.status_changed")
        assert confirmed.data["to"] == "confirmed"
        services.tickets_on_order_status_changed(confirmed)
    # The order cannot be confirmed again either.
    with pytest.raises(InvalidTransition), transaction.atomic():
        transition(order, "confirmed", actor=world.owner)
    assert Ticket.objects.filter(order=order).count() == 2
    assert TicketItem.objects.filter(ticket__order=order).count() == 2
    assert StreamEvent.objects.filter(outlet_id=world.outlet.pk).count() == count


def test_database_holds_one_ticket_per_order_and_station(world, kitchen):
    order, tickets = fired(world.outlet, line(kitchen.salad))
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(
            tenant=world.tenant, outlet=world.outlet, station=kitchen.kitchen, order=order,
            order_number=order.number, type="dine_in", fired_at=tickets["Kitchen"].fired_at,
        )


def test_outlet_without_prep_station_refuses_confirmation(world, kitchen):
    outlet = factories.make_outlet(world.tenant)
    Station.objects.create(tenant=world.tenant, outlet=outlet, name="Expo", kind="expo")
    tracked = factories.make_product(world.tenant, kitchen.food, name="Pie", track_stock=True,
                                     stock_quantity=5)
    order = make_order(outlet, line(tracked, 2))
    seq_before = StreamEvent.objects.filter(outlet_id=outlet.pk).count()
    with pytest.raises(Conflict) as exc:
        confirm(order)
    assert exc.value.error_code == "no_station"
    order.refresh_from_db()
    assert (order.status, order.version) == ("pending", 1)
    assert Product.objects.get(pk=tracked.pk).stock_quantity == 5
    assert not Ticket.objects.filter(order=order).exists()
    assert StreamEvent.objects.filter(outlet_id=outlet.pk).count() == seq_before


def test_confirm_over_rest_without_station_is_409_no_station(world, kitchen, client_for):
    outlet = factories.make_outlet(world.tenant)
    order = make_order(outlet, line(kitchen.salad))
    response = client_for(world.owner).patch(
        f"/api/orders/{order.pk}/status/", {"status": "confirmed"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_station"
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_cancel_voids_open_tickets_and_keeps_done_ones(world, kitchen):
    order, tickets = fired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    services.ticket_bump(ticket_id=tickets["Bar"].pk)
    before = {e.seq for e in events(world.outlet)}
    transition(order, "cancelled", actor=world.manager)
    voided = [e for e in events(world.outlet) if e.seq not in before and e.name == "ticket.voided"]
    kitchen_ticket = Ticket.objects.get(pk=tickets["Kitchen"].pk)
    bar_ticket = Ticket.objects.get(pk=tickets["Bar"].pk)
    assert kitchen_ticket.status == "voided"
    assert set(kitchen_ticket.items.values_list("status", flat=True)) == {"voided"}
    assert bar_ticket.status == "done"
    assert set(bar_ticket.items.values_list("status", flat=True)) == {"done"}
    assert [e.data["id"] for e in voided] == [str(kitchen_ticket.pk)]
    assert voided[0].data["status"] == "voided"
    assert voided[0].station_id == kitchen.kitchen.pk


def test_cancel_before_confirmation_fires_nothing(world, kitchen):
    order = make_order(world.outlet, line(kitchen.salad))
    transition(order, "cancelled", actor=world.cashier)
    assert not Ticket.objects.filter(order=order).exists()
    assert events(world.outlet, "ticket.") == []
