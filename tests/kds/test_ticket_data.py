"""``kds.serializers.ticket_data``: a ticket event's payload, by one shared serializer."""

from __future__ import annotations

import pytest

from kds import serializers
from kds.selectors import ticket_for_output
from kds.serializers import TicketSerializer, ticket_data
from tests.kds.conftest import fired, line

pytestmark = pytest.mark.django_db


def test_ticket_data_renders_each_ticket_as_a_new_serializer_would(world, kitchen):
    serializers._ticket_renderer.reset()
    _, first = fired(world.outlet, line(kitchen.burger, 2, note="rare"), line(kitchen.cola, 3))
    _, second = fired(world.outlet, line(kitchen.salad))
    tickets = [first["Grill"], first["Bar"], second["Kitchen"]]
    for ticket in (*tickets, tickets[0]):  # one serializer renders them in turn
        fresh = ticket_for_output(ticket.pk)
        assert ticket_data(fresh) == dict(TicketSerializer(fresh).data)
    shared = serializers._ticket_renderer.serializer
    assert isinstance(shared, TicketSerializer)
    ticket_data(ticket_for_output(tickets[1].pk))
    assert serializers._ticket_renderer.serializer is shared  # built once
