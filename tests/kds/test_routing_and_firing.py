"""Routing precedence, firing on confirmation (once), voiding on cancellation."""

from __future__ import annotations

import json

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction

from catalog.models import Product
from kds import services
from kds.models import Station, Ticket, TicketItem
from kds.routing_rules import RoutingTable, prep_stations_for
from kds.selectors import ticket_for_output
from kds.serializers import TicketSerializer
from orders.models import Order, OrderItem
from pos.api_errors import Conflict, InvalidTransition
from pos.models import StreamEvent
from pos.streams import outbox
from tests import factories
from tests.kds.conftest import confirm, events, fired, line, make_order, transition
from tests.streams.helpers import record_emits


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


# --- firing renders what it wrote -----------------------------------------------------------
@pytest.fixture
def ticket_emits(monkeypatch) -> list[tuple[str, str]]:
    """``(name, data as JSON)`` of every event the kitchen services hand to ``emit``: what is
    published after commit, key order included."""
    return record_emits(monkeypatch, services)


@pytest.fixture
def fire_results(monkeypatch) -> list[list[services.TicketChange]]:
    """What each ``tickets_fire`` the confirmation reaction runs returns."""
    results: list[list[services.TicketChange]] = []
    real_fire = services.tickets_fire

    def recording_fire(*, order_id):
        results.append(real_fire(order_id=order_id))
        return results[-1]

    monkeypatch.setattr(services, "tickets_fire", recording_fire)
    return results


def fresh_ticket_json(ticket_id) -> str:
    return json.dumps(TicketSerializer(ticket_for_output(ticket_id)).data, cls=DjangoJSONEncoder)


def columns(obj) -> list[tuple[str, object]]:
    """Every column as the instance holds it; a choice held as its enum member (a model
    default) counts as its value, which is what it renders and compares as."""
    return [
        (f.attname, str(v) if isinstance(v, str) else v)
        for f in obj._meta.concrete_fields
        for v in [getattr(obj, f.attname)]
    ]


@pytest.fixture
def well_done(world, kitchen):
    group = factories.make_modifier_group(
        world.tenant, options=(("Well done", "0.00"), ("Extra sauce", "3000.00")), max_select=2,
    )
    for product in (kitchen.burger, kitchen.steak, kitchen.cola):
        product.modifier_groups.set([group])
    return {o.name: str(o.pk) for o in group.options.all()}


def rich_order(world, kitchen, options):
    return make_order(
        world.outlet,
        {"product": str(kitchen.burger.pk), "quantity": 2,
         "modifiers": [options["Well done"], options["Extra sauce"]],
         "note": 'no onion, "crispy"\nsecond line ✓'},
        line(kitchen.cola, 3),
        {"product": str(kitchen.steak.pk), "quantity": 1, "modifiers": [options["Well done"]],
         "note": ""},
        line(kitchen.coffee, 1, note="oat milk"),
        line(kitchen.special),
        table="T4", customer_name="Ana María",
    )


def test_created_events_are_a_fresh_read_byte_for_byte(world, kitchen, well_done,
                                                        ticket_emits):
    order = rich_order(world, kitchen, well_done)
    confirm(order)

    tickets = {t.station.name: t for t in Ticket.objects.filter(order=order)
               .select_related("station")}
    assert set(tickets) == {"Bar", "Grill"}
    # One event per ticket, in station-name order, each what a fresh read renders.
    assert [name for name, _ in ticket_emits] == ["ticket.created", "ticket.created"]
    assert [json.loads(data)["id"] for _, data in ticket_emits] == [
        str(tickets["Bar"].pk), str(tickets["Grill"].pk),
    ]
    for _, data in ticket_emits:
        assert data == fresh_ticket_json(json.loads(data)["id"])
    stored = [e.data for e in events(world.outlet, "ticket.")]
    assert stored == [json.loads(data) for _, data in ticket_emits]
    # The case is what it claims to be: several items a station, options, notes.
    grill = json.loads(ticket_emits[1][1])
    assert [i["name"] for i in grill["items"]] == ["Burger", "Steak"]
    assert grill["items"][0]["modifiers"] == [
        {"id": well_done["Well done"], "name": "Well done"},
        {"id": well_done["Extra sauce"], "name": "Extra sauce"},
    ]
    assert grill["items"][0]["note"].endswith("second line ✓")
    assert (grill["table"], grill["customer_name"], grill["status"]) == ("T4", "Ana María",
                                                                         "open")
    assert [i["name"] for i in json.loads(ticket_emits[0][1])["items"]] == [
        "Cola", "Coffee", "Chef special",
    ]


def test_fired_tickets_hold_what_their_rows_hold(world, kitchen, well_done, fire_results,
                                                 django_assert_num_queries):
    order = rich_order(world, kitchen, well_done)
    confirm(order)

    (changes,) = fire_results
    assert [c.ticket.station.name for c in changes] == ["Bar", "Grill"]
    for change in changes:
        with django_assert_num_queries(0):  # the items are the ones written, already in
            items = list(change.ticket.items.all())
        fresh = ticket_for_output(change.ticket.pk)
        assert columns(change.ticket) == columns(fresh)
        assert [columns(i) for i in items] == [columns(i) for i in fresh.items.all()]
        assert change.event.seq is not None
        assert change.event.data == TicketSerializer(fresh).data


def test_confirming_fires_in_a_bounded_number_of_statements(world, kitchen, well_done,
                                                            django_assert_max_num_queries):
    # Two stations; product, category and ancestor rules; options. Re-reading the order, its
    # products and each new ticket took this confirmation to 26 statements.
    order = rich_order(world, kitchen, well_done)
    with django_assert_max_num_queries(19):
        confirm(order)
    assert stations_of(order) == {"Bar": ["Cola", "Coffee", "Chef special"],
                                  "Grill": ["Burger", "Steak"]}


def test_confirming_at_a_one_station_outlet_reads_no_routing(world, kitchen,
                                                            django_assert_max_num_queries):
    # outlet2's only prep station is "Line". It was 21 statements.
    order = make_order(world.outlet2, line(kitchen.steak, 2, note="rare"), line(kitchen.cola))
    with django_assert_max_num_queries(15):
        confirm(order)
    assert stations_of(order) == {"Line": ["Steak", "Cola"]}


@pytest.mark.parametrize(
    ("at", "statements"),
    [
        # Three stations. Order, items, 4 routing reads (stations, product rules, category
        # rules, category tree), tickets, items: it was 24. The 3 events are recorded, and
        # written as the confirmation's block ends; firing sets no savepoint of its own (13
        # with both).
        ("outlet", 8),
        # order, items, stations, ticket, items: it was 14 (8 with an event insert and a
        # savepoint and its release).
        ("outlet2", 5),
    ],
)
def test_firing_alone_takes_a_fixed_number_of_statements(world, kitchen, at, statements,
                                                         django_assert_num_queries):
    order = make_order(getattr(world, at), line(kitchen.burger, 2), line(kitchen.cola),
                       line(kitchen.salad, note="no dressing"))
    with outbox.atomic():  # the confirmation's block: finishing its events is not firing
        with django_assert_num_queries(statements):
            changes = services.tickets_fire(order_id=order.pk)
        assert len(changes) == {"outlet": 3, "outlet2": 1}[at]


def test_a_sole_prep_station_gets_everything_whatever_its_rules(world, kitchen):
    outlet = factories.make_outlet(world.tenant)
    services.station_create(outlet=outlet, name="Expo", kind="expo")
    only = services.station_create(outlet=outlet, name="Wok", category_ids=[kitchen.drinks.pk],
                                   product_ids=[kitchen.steak.pk])
    # Made the default behind the services' back: the oldest prep station still cooks.
    Station.objects.filter(pk=only.pk).update(is_default=False)
    order, tickets = fired(outlet, line(kitchen.salad), line(kitchen.steak), line(kitchen.cola))
    assert stations_of(order) == {"Wok": ["Salad", "Steak", "Cola"]}
    assert tickets["Wok"].station_id == only.pk


def test_firing_routes_as_the_routing_table_does(world, kitchen):
    """The fire path's shortcut (one prep station: no rules read) and its full table answer
    what ``RoutingTable`` answers, on outlets with several, one and no prep stations."""
    empty = factories.make_outlet(world.tenant)
    services.station_create(outlet=empty, name="Expo", kind="expo")
    uncategorised = factories.make_product(world.tenant, None, name="Bread")
    products = [kitchen.salad, kitchen.burger, kitchen.steak, kitchen.special, kitchen.cola,
                kitchen.coffee, uncategorised]
    items = [(p.pk, p.category_id) for p in products] + [(None, None)]  # a deleted product
    for outlet in (world.outlet, world.outlet2, empty):
        table = RoutingTable.for_outlet(outlet)
        assert prep_stations_for(outlet, items) == [table.route(p, c).station for p, c in items]
    assert prep_stations_for(empty, items) == [None] * len(items)
    assert set(prep_stations_for(world.outlet2, items)) == {kitchen.line}


def test_routing_without_category_rules_skips_the_category_tree(world, kitchen,
                                                                django_assert_num_queries):
    outlet = factories.make_outlet(world.tenant)
    hot = services.station_create(outlet=outlet, name="Hot")
    cold = services.station_create(outlet=outlet, name="Cold", product_ids=[kitchen.cola.pk])
    with django_assert_num_queries(3):  # stations, product rules, category rules
        table = RoutingTable.for_outlet(outlet)
    assert table.parent_of == {}
    route = table.route(kitchen.steak.pk, kitchen.steaks.pk)
    assert (route.station, route.rule) == (hot, "default")
    route = table.route(kitchen.cola.pk, kitchen.drinks.pk)
    assert (route.station, route.rule) == (cold, "product")
    order, _ = fired(outlet, line(kitchen.steak), line(kitchen.cola), line(kitchen.coffee))
    assert stations_of(order) == {"Hot": ["Steak", "Coffee"], "Cold": ["Cola"]}


def test_category_rules_reach_nested_categories_when_fired(world, kitchen, ticket_emits):
    # Mains -> Grill reaches Steaks' steak; Drinks -> Bar reaches Hot's coffee; Food's salad
    # has no listed ancestor: the default.
    order, _tickets = fired(world.outlet, line(kitchen.coffee), line(kitchen.steak),
                            line(kitchen.salad))
    assert stations_of(order) == {"Bar": ["Coffee"], "Grill": ["Steak"],
                                  "Kitchen": ["Salad"]}
    for _, data in ticket_emits:
        assert data == fresh_ticket_json(json.loads(data)["id"])


def test_an_item_whose_product_was_deleted_goes_to_the_default(world, kitchen, ticket_emits):
    gone = factories.make_product(world.tenant, kitchen.mains, name="Seasonal pie")
    order = make_order(world.outlet, line(gone, 2, note="warm"), line(kitchen.burger))
    Product.objects.filter(pk=gone.pk).delete()  # the order item keeps its name, loses its id
    assert OrderItem.objects.get(order=order, name="Seasonal pie").product_id is None

    confirm(order)

    # Its category went with the product: no rule knows it, the default cooks it.
    assert stations_of(order) == {"Grill": ["Burger"], "Kitchen": ["Seasonal pie"]}
    item = TicketItem.objects.get(ticket__order=order, name="Seasonal pie")
    assert (item.product_id, item.quantity, item.note) == (None, 2, "warm")
    for _, data in ticket_emits:
        assert data == fresh_ticket_json(json.loads(data)["id"])
    kitchen_data = json.loads(ticket_emits[-1][1])
    assert kitchen_data["items"][0]["product"] is None


def test_no_prep_station_names_the_outlet_and_changes_nothing(world, kitchen):
    outlet = factories.make_outlet(world.tenant, name="Night kiosk")
    services.station_create(outlet=outlet, name="Expo", kind="expo")
    order = make_order(outlet, line(kitchen.burger), line(kitchen.cola, 2))
    events_before = StreamEvent.objects.filter(outlet_id=outlet.pk).count()

    with pytest.raises(Conflict) as exc:
        confirm(order)

    assert exc.value.error_code == "no_station"
    assert str(exc.value.detail) == (
        "Outlet 'Night kiosk' has no prep station to cook this order; "
        "create one (POST /api/stations/) before confirming orders."
    )
    order.refresh_from_db()
    assert (order.status, order.version) == ("pending", 1)
    assert not Ticket.objects.filter(order=order).exists()
    assert not TicketItem.objects.filter(ticket__order=order).exists()
    assert StreamEvent.objects.filter(outlet_id=outlet.pk).count() == events_before
