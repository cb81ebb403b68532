"""Item and ticket transitions, refusals that change nothing, order automation, recall."""

from __future__ import annotations

import pytest
from django.utils import timezone

from kds import services
from kds.models import Ticket, TicketItem
from orders.models import Order
from pos.api_errors import Conflict, InvalidTransition
from tests.kds.conftest import events, fired, line, state, transition


def order_status(order) -> str:
    return Order.objects.values_list("status", flat=True).get(pk=order.pk)


def item_of(ticket) -> TicketItem:
    return ticket.items.order_by("position").first()


def test_item_moves_queued_cooking_done_and_emits_updated(world, kitchen):
    _order, tickets = fired(world.outlet, line(kitchen.salad), line(kitchen.burger))
    item = item_of(tickets["Kitchen"])
    change = services.ticket_item_set_status(item_id=item.pk, status="cooking")
    assert change.event.name == "ticket.updated"
    assert change.event.station_id == kitchen.kitchen.pk
    assert change.event.data["items"][0]["status"] == "cooking"
    assert TicketItem.objects.get(pk=item.pk).status == "cooking"
    change = services.ticket_item_set_status(item_id=item.pk, status="done")
    assert change.event.data["items"][0]["status"] == "done"
    # All items done does not bump: the cook bumps.
    assert Ticket.objects.get(pk=tickets["Kitchen"].pk).status == "open"


def test_queued_item_may_be_struck_done_directly(world, kitchen):
    order, tickets = fired(world.outlet, line(kitchen.salad))
    item = item_of(tickets["Kitchen"])
    services.ticket_item_set_status(item_id=item.pk, status="done")
    assert TicketItem.objects.get(pk=item.pk).status == "done"
    assert order_status(order) == "preparing"  # striking an item starts the order too


@pytest.mark.parametrize(
    ("setup", "to_status"),
    [
        (["cooking"], "cooking"),
        (["done"], "cooking"),
        (["done"], "done"),
        ([], "queued"),
        ([], "voided"),
    ],
)
def test_refused_item_transitions_change_nothing(world, kitchen, setup, to_status):
    _order, tickets = fired(world.outlet, line(kitchen.salad))
    item = item_of(tickets["Kitchen"])
    for step in setup:
        services.ticket_item_set_status(item_id=item.pk, status=step)
    before = state(tickets["Kitchen"])
    with pytest.raises(InvalidTransition):
        services.ticket_item_set_status(item_id=item.pk, status=to_status)
    assert state(tickets["Kitchen"]) == before


def test_item_of_a_bumped_or_voided_ticket_cannot_change(world, kitchen):
    order, tickets = fired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    before = state(tickets["Kitchen"])
    with pytest.raises(InvalidTransition):
        services.ticket_item_set_status(item_id=item_of(tickets["Kitchen"]).pk, status="cooking")
    assert state(tickets["Kitchen"]) == before
    transition(order, "cancelled", actor=world.manager)
    before = state(tickets["Bar"])
    with pytest.raises(InvalidTransition):
        services.ticket_item_set_status(item_id=item_of(tickets["Bar"]).pk, status="cooking")
    assert state(tickets["Bar"]) == before


def test_bump_marks_items_done_and_stamps_server_time(world, kitchen):
    _order, tickets = fired(world.outlet, line(kitchen.salad, 2), line(kitchen.steak))
    t0 = timezone.now()
    change = services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    ticket = Ticket.objects.get(pk=tickets["Kitchen"].pk)
    assert ticket.status == "done"
    assert t0 <= ticket.bumped_at <= timezone.now()
    assert set(ticket.items.values_list("status", flat=True)) == {"done"}
    assert change.event.name == "ticket.bumped"
    assert change.event.data["status"] == "done"
    assert change.event.data["bumped_at"] is not None


def test_bump_twice_is_refused_and_changes_nothing(world, kitchen):
    _order, tickets = fired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    before = state(tickets["Kitchen"])
    with pytest.raises(InvalidTransition):
        services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    assert state(tickets["Kitchen"]) == before


def test_order_automation_preparing_ready_and_back(world, kitchen):
    order, tickets = fired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    assert order_status(order) == "confirmed"
    services.ticket_item_set_status(item_id=item_of(tickets["Bar"]).pk, status="cooking")
    assert order_status(order) == "preparing"
    # A second item starting does not transition again (one order.status_changed so far).
    services.ticket_item_set_status(item_id=item_of(tickets["Kitchen"]).pk, status="cooking")
    changes = [e.data["to"] for e in events(world.outlet, "order.status_changed")]
    assert changes == ["confirmed", "preparing"]
    services.ticket_bump(ticket_id=tickets["Bar"].pk)
    assert order_status(order) == "preparing"  # the kitchen ticket is still open
    services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    assert order_status(order) == "ready"
    services.ticket_recall(ticket_id=tickets["Kitchen"].pk)
    assert order_status(order) == "preparing"
    services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    assert order_status(order) == "ready"
    changes = [e.data["to"] for e in events(world.outlet, "order.status_changed")]
    assert changes == ["confirmed", "preparing", "ready", "preparing", "ready"]


def test_bumping_an_unstarted_order_walks_it_to_ready(world, kitchen):
    order, tickets = fired(world.outlet, line(kitchen.salad))
    services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    assert order_status(order) == "ready"
    names = [(e.name, e.data.get("to")) for e in events(world.outlet)
             if e.name in ("ticket.bumped", "order.status_changed")]
    assert names[-3:] == [
        ("ticket.bumped", None),
        ("order.status_changed", "preparing"),
        ("order.status_changed", "ready"),
    ]


def test_recall_reopens_the_last_bumped_ticket_with_items_cooking(world, kitchen):
    _, first = fired(world.outlet, line(kitchen.salad, 2))
    _, second = fired(world.outlet, line(kitchen.salad))
    services.ticket_bump(ticket_id=first["Kitchen"].pk)
    services.ticket_bump(ticket_id=second["Kitchen"].pk)
    # Not the last one bumped at the station: refused, nothing changes.
    before = state(first["Kitchen"])
    with pytest.raises(InvalidTransition):
        services.ticket_recall(ticket_id=first["Kitchen"].pk)
    assert state(first["Kitchen"]) == before

    change = services.ticket_recall(ticket_id=second["Kitchen"].pk)
    ticket = Ticket.objects.get(pk=second["Kitchen"].pk)
    assert (ticket.status, ticket.bumped_at) == ("open", None)
    assert set(ticket.items.values_list("status", flat=True)) == {"cooking"}
    assert change.event.name == "ticket.recalled"
    assert change.event.data["status"] == "open"
    # Recalling again steps back to the ticket bumped before it.
    services.ticket_recall(ticket_id=first["Kitchen"].pk)
    assert Ticket.objects.get(pk=first["Kitchen"].pk).status == "open"


def test_recall_is_per_station(world, kitchen):
    _, a = fired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    services.ticket_bump(ticket_id=a["Kitchen"].pk)
    services.ticket_bump(ticket_id=a["Bar"].pk)  # later, at another station
    change = services.station_recall_last(station_id=kitchen.kitchen.pk)
    assert change.ticket.pk == a["Kitchen"].pk


def test_station_recall_with_nothing_bumped_is_409(world, kitchen):
    fired(world.outlet, line(kitchen.salad))
    with pytest.raises(Conflict) as exc:
        services.station_recall_last(station_id=kitchen.kitchen.pk)
    assert exc.value.error_code == "nothing_to_recall"


def test_recall_of_open_ticket_or_of_served_order_is_refused(world, kitchen):
    order, tickets = fired(world.outlet, line(kitchen.salad))
    before = state(tickets["Kitchen"])
    with pytest.raises(InvalidTransition):
        services.ticket_recall(ticket_id=tickets["Kitchen"].pk)
    assert state(tickets["Kitchen"]) == before
    services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    transition(order, "served", actor=world.cashier)
    before = state(tickets["Kitchen"])
    with pytest.raises(InvalidTransition):
        services.ticket_recall(ticket_id=tickets["Kitchen"].pk)
    assert state(tickets["Kitchen"]) == before


def test_priority_rush_and_back(world, kitchen):
    _, tickets = fired(world.outlet, line(kitchen.salad))
    change = services.ticket_set_priority(ticket_id=tickets["Kitchen"].pk, priority="rush")
    assert change.event.name == "ticket.updated"
    assert change.event.data["priority"] == "rush"
    same = services.ticket_set_priority(ticket_id=tickets["Kitchen"].pk, priority="rush")
    assert same.event is None  # nothing changed, nothing emitted
    assert len(events(world.outlet, "ticket.updated")) == 1
    services.ticket_set_priority(ticket_id=tickets["Kitchen"].pk, priority="normal")
    assert Ticket.objects.get(pk=tickets["Kitchen"].pk).priority == "normal"


def test_priority_of_a_done_ticket_is_refused(world, kitchen):
    _, tickets = fired(world.outlet, line(kitchen.salad))
    services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    before = state(tickets["Kitchen"])
    with pytest.raises(InvalidTransition):
        services.ticket_set_priority(ticket_id=tickets["Kitchen"].pk, priority="rush")
    assert state(tickets["Kitchen"]) == before


def test_recall_is_audited_once_and_a_refused_recall_not_at_all(world, kitchen):
    from pos.models import AuditEntry

    order, tickets = fired(world.outlet, line(kitchen.salad))
    with pytest.raises(InvalidTransition):  # still open: refused
        services.ticket_recall(ticket_id=tickets["Kitchen"].pk, actor=world.kitchen)
    assert not AuditEntry.objects.filter(action="ticket.recalled").exists()
    services.ticket_bump(ticket_id=tickets["Kitchen"].pk)
    services.ticket_recall(ticket_id=tickets["Kitchen"].pk, actor=world.kitchen)
    entry = AuditEntry.objects.get(action="ticket.recalled")
    assert (entry.actor, entry.tenant_id, entry.outlet_id) == (
        world.kitchen, world.tenant.pk, world.outlet.pk
    )
    assert (entry.target_type, entry.target_id) == ("ticket", str(tickets["Kitchen"].pk))
    assert entry.details["order"] == str(order.pk)
    assert entry.details["order_number"] == order.number
    assert entry.details["order_status"] == "ready"
