"""``/api/kds/``: ticket list and actions by role, cross-tenant 404s, all-day, metrics."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from kds import services
from kds.models import Ticket
from kds.selectors import percentile
from tenants.models import Outlet
from tests import factories
from tests.kds.conftest import fired, line, state

ACTORS = ["super_admin", "owner", "manager", "kitchen"]


def test_list_filters_and_shape(world, kitchen, client_for):
    order, tickets = fired(world.outlet, line(kitchen.salad), line(kitchen.cola, 2))
    fired(world.outlet2, line(kitchen.salad))
    client = client_for(world.kitchen)
    body = client.get("/api/kds/tickets/").json()
    assert set(body) == {"results", "next", "previous"}
    assert {t["id"] for t in body["results"]} == {str(t.pk) for t in tickets.values()}
    bar = client.get("/api/kds/tickets/", {"station": str(kitchen.bar.pk)}).json()["results"]
    assert len(bar) == 1
    assert bar[0] == {
        "id": str(tickets["Bar"].pk),
        "order": str(order.pk),
        "order_number": order.number,
        "outlet": str(world.outlet.pk),
        "station": str(kitchen.bar.pk),
        "status": "open",
        "priority": "normal",
        "type": "dine_in",
        "table": "7",
        "customer_name": "",
        "items": [{
            "id": str(tickets["Bar"].items.get().pk),
            "product": str(kitchen.cola.pk),
            "name": "Cola",
            "quantity": 2,
            "modifiers": [],
            "note": "",
            "status": "queued",
        }],
        "fired_at": bar[0]["fired_at"],
        "bumped_at": None,
    }
    assert bar[0]["fired_at"].endswith("Z")
    services.ticket_bump(ticket_id=tickets["Bar"].pk)
    done = client.get("/api/kds/tickets/", {"status": "done"}).json()["results"]
    assert [t["id"] for t in done] == [str(tickets["Bar"].pk)]
    owner = client_for(world.owner)
    only2 = owner.get("/api/kds/tickets/", {"outlet": str(world.outlet2.pk)}).json()["results"]
    assert {t["outlet"] for t in only2} == {str(world.outlet2.pk)}
    assert client.get("/api/kds/tickets/", {"status": "cooking"}).status_code == 400


def test_other_tenant_sees_no_ticket_and_acts_on_none(world, kitchen, client_for):
    _, tickets = fired(world.outlet, line(kitchen.salad))
    ticket = tickets["Kitchen"]
    client = client_for(world.other_owner)
    assert client.get("/api/kds/tickets/").json()["results"] == []
    assert client.get(f"/api/kds/tickets/{ticket.pk}/").status_code == 404
    before = state(ticket)
    for path in ("bump", "recall"):
        response = client.post(f"/api/kds/tickets/{ticket.pk}/{path}/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    response = client.post(f"/api/kds/tickets/{ticket.pk}/priority/", {"priority": "rush"},
                           format="json")
    assert response.status_code == 404
    item = ticket.items.get()
    response = client.post(f"/api/kds/ticket-items/{item.pk}/status/", {"status": "cooking"},
                           format="json")
    assert response.status_code == 404
    assert client.post(f"/api/kds/stations/{kitchen.kitchen.pk}/recall/").status_code == 404
    assert client.get("/api/kds/all-day/", {"outlet": str(world.outlet.pk)}).status_code == 404
    assert client.get("/api/kds/metrics/", {"outlet": str(world.outlet.pk)}).status_code == 404
    assert state(ticket) == before


@pytest.mark.parametrize("role", ACTORS)
def test_kitchen_actions_by_allowed_roles(world, kitchen, client_for, role):
    _order, tickets = fired(world.outlet, line(kitchen.salad))
    ticket = tickets["Kitchen"]
    client = client_for(world.user(role))
    item = ticket.items.get()
    response = client.post(f"/api/kds/ticket-items/{item.pk}/status/", {"status": "cooking"},
                           format="json")
    assert response.status_code == 200, response.content
    assert response.json()["items"][0]["status"] == "cooking"
    response = client.post(f"/api/kds/tickets/{ticket.pk}/priority/", {"priority": "rush"},
                           format="json")
    assert response.json()["priority"] == "rush"
    response = client.post(f"/api/kds/tickets/{ticket.pk}/bump/")
    assert response.status_code == 200
    assert response.json()["status"] == "done"
    response = client.post(f"/api/kds/tickets/{ticket.pk}/recall/")
    assert response.status_code == 200
    assert response.json()["status"] == "open"
    client.post(f"/api/kds/tickets/{ticket.pk}/bump/")
    response = client.post(f"/api/kds/stations/{kitchen.kitchen.pk}/recall/")
    assert response.status_code == 200
    assert response.json()["id"] == str(ticket.pk)


def test_cashier_reads_but_does_not_act(world, kitchen, client_for):
    _, tickets = fired(world.outlet, line(kitchen.salad))
    ticket = tickets["Kitchen"]
    client = client_for(world.cashier)
    assert client.get(f"/api/kds/tickets/{ticket.pk}/").status_code == 200
    before = state(ticket)
    for path in ("bump", "recall"):
        response = client.post(f"/api/kds/tickets/{ticket.pk}/{path}/")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert client.post(f"/api/kds/tickets/{ticket.pk}/priority/", {"priority": "rush"},
                       format="json").status_code == 403
    assert client.post(f"/api/kds/ticket-items/{ticket.items.get().pk}/status/",
                       {"status": "done"}, format="json").status_code == 403
    assert client.post(f"/api/kds/stations/{kitchen.kitchen.pk}/recall/").status_code == 403
    assert state(ticket) == before


def test_kitchen_of_one_outlet_cannot_touch_another_outlets_tickets(world, kitchen, client_for):
    _, tickets = fired(world.outlet2, line(kitchen.salad))
    ticket = tickets["Line"]
    before = state(ticket)
    response = client_for(world.kitchen).post(f"/api/kds/tickets/{ticket.pk}/bump/")
    assert response.status_code == 404
    assert state(ticket) == before


def test_refusals_over_rest_are_409_and_change_nothing(world, kitchen, client_for):
    _, tickets = fired(world.outlet, line(kitchen.salad))
    ticket = tickets["Kitchen"]
    client = client_for(world.kitchen)
    before = state(ticket)
    response = client.post(f"/api/kds/tickets/{ticket.pk}/recall/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    response = client.post(f"/api/kds/stations/{kitchen.kitchen.pk}/recall/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "nothing_to_recall"
    response = client.post(f"/api/kds/ticket-items/{ticket.items.get().pk}/status/",
                           {"status": "queued"}, format="json")
    assert response.status_code == 400  # not a status a client may set
    response = client.post(f"/api/kds/tickets/{ticket.pk}/priority/", {"priority": "urgent"},
                           format="json")
    assert response.status_code == 400
    assert state(ticket) == before


def test_unknown_ids_in_paths_are_404(world, kitchen, client_for):
    client = client_for(world.owner)
    assert client.get("/api/kds/tickets/not-a-uuid/").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.post(f"/api/kds/tickets/{missing}/bump/").status_code == 404
    assert client.post(f"/api/kds/ticket-items/{missing}/status/", {"status": "done"},
                       format="json").status_code == 404


# --- all-day --------------------------------------------------------------------------------
def test_all_day_counts_open_quantities(world, kitchen, client_for):
    _, _a = fired(world.outlet, line(kitchen.salad, 2), line(kitchen.cola, 1))
    _, b = fired(world.outlet, line(kitchen.salad, 3), line(kitchen.burger, 4))
    _, c = fired(world.outlet, line(kitchen.salad, 5))
    services.ticket_bump(ticket_id=c["Kitchen"].pk)  # done: no longer counted
    cooking = b["Kitchen"].items.get()
    services.ticket_item_set_status(item_id=cooking.pk, status="cooking")  # still counted
    services.ticket_item_set_status(item_id=b["Grill"].items.get().pk, status="done")
    client = client_for(world.kitchen)
    body = client.get("/api/kds/all-day/", {"outlet": str(world.outlet.pk)}).json()
    assert body["outlet"] == str(world.outlet.pk) and body["station"] is None
    assert body["results"] == [
        {"product": str(kitchen.salad.pk), "name": "Salad", "quantity": 5},
        {"product": str(kitchen.cola.pk), "name": "Cola", "quantity": 1},
    ]
    body = client.get("/api/kds/all-day/", {"outlet": str(world.outlet.pk),
                                            "station": str(kitchen.bar.pk)}).json()
    assert body["results"] == [{"product": str(kitchen.cola.pk), "name": "Cola", "quantity": 1}]


def test_all_day_access(world, kitchen, client_for):
    client = client_for(world.kitchen)
    assert client.get("/api/kds/all-day/").status_code == 400
    assert client.get("/api/kds/all-day/", {"outlet": str(world.outlet2.pk)}).status_code == 403
    response = client.get("/api/kds/all-day/", {"outlet": str(world.outlet.pk),
                                                "station": str(kitchen.line.pk)})
    assert response.status_code == 404  # a station of another outlet


# --- metrics --------------------------------------------------------------------------------
def test_percentile_is_linear_between_ranks():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.9) == pytest.approx(37.0)
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0


def _set_times(ticket, fired_at, prep_s=None, status=None):
    fields = {"fired_at": fired_at}
    if prep_s is not None:
        fields.update(status="done", bumped_at=fired_at + dt.timedelta(seconds=prep_s))
    if status is not None:
        fields["status"] = status
    Ticket.objects.filter(pk=ticket.pk).update(**fields)


def test_metrics_maths(world, kitchen, client_for):
    outlet = Outlet.objects.get(pk=world.outlet.pk)
    outlet.timezone = "Asia/Jakarta"  # UTC+7
    outlet.kds_warn_after_s, outlet.kds_late_after_s = 300, 600
    outlet.save()
    tz = ZoneInfo("Asia/Jakarta")
    day = dt.date(2026, 3, 10)
    noon = dt.datetime(2026, 3, 10, 12, 0, tzinfo=tz)
    # Kitchen station, fired on the 10th (local): prep 100, 200, 600 (not late: not > 600),
    # 601 (late), 1000 (late), plus one still open and one voided.
    kitchen_preps = [100, 200, 600, 601, 1000]
    for i, prep in enumerate(kitchen_preps):
        _, t = fired(world.outlet, line(kitchen.salad))
        _set_times(t["Kitchen"], noon + dt.timedelta(minutes=i), prep)
    _, still_open = fired(world.outlet, line(kitchen.salad))
    _set_times(still_open["Kitchen"], noon)
    _, voided = fired(world.outlet, line(kitchen.salad))
    _set_times(voided["Kitchen"], noon, status="voided")
    # Day boundaries in local time: 00:30 local on the 10th is 17:30 UTC on the 9th (in),
    # 00:30 local on the 11th is out.
    _, early = fired(world.outlet, line(kitchen.cola))
    _set_times(early["Bar"], dt.datetime(2026, 3, 10, 0, 30, tzinfo=tz), 50)
    _, next_day = fired(world.outlet, line(kitchen.cola))
    _set_times(next_day["Bar"], dt.datetime(2026, 3, 11, 0, 30, tzinfo=tz), 5000)
    _, before_day = fired(world.outlet, line(kitchen.cola))
    _set_times(before_day["Bar"], dt.datetime(2026, 3, 9, 23, 59, tzinfo=tz), 5000)

    response = client_for(world.manager).get(
        "/api/kds/metrics/", {"outlet": str(world.outlet.pk), "date": day.isoformat()}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["date"], body["timezone"], body["late_after_s"]) == (
        "2026-03-10", "Asia/Jakarta", 600,
    )
    by_name = {row["name"]: row for row in body["stations"]}
    assert set(by_name) == {"Kitchen", "Grill", "Bar"}  # prep stations only
    # sorted [100, 200, 600, 601, 1000]: p50 = 600; p90 at rank 3.6 = 601 + 0.6 * 399
    assert by_name["Kitchen"] == {
        "station": str(kitchen.kitchen.pk), "name": "Kitchen",
        "tickets": 6, "bumped": 5, "p50_prep_s": 600.0, "p90_prep_s": 840.4, "late": 2,
    }
    assert by_name["Bar"] == {
        "station": str(kitchen.bar.pk), "name": "Bar",
        "tickets": 1, "bumped": 1, "p50_prep_s": 50.0, "p90_prep_s": 50.0, "late": 0,
    }
    assert by_name["Grill"] == {
        "station": str(kitchen.grill.pk), "name": "Grill",
        "tickets": 0, "bumped": 0, "p50_prep_s": None, "p90_prep_s": None, "late": 0,
    }


def test_metrics_validation_and_access(world, kitchen, client_for):
    client = client_for(world.kitchen)
    assert client.get("/api/kds/metrics/", {"outlet": str(world.outlet.pk),
                                            "date": "10/03/2026"}).status_code == 400
    assert client.get("/api/kds/metrics/", {"outlet": str(world.outlet2.pk)}).status_code == 403
    body = client.get("/api/kds/metrics/", {"outlet": str(world.outlet.pk)}).json()
    assert body["date"]  # today in the outlet's zone
    other = factories.make_outlet(world.other_tenant)
    assert client.get("/api/kds/metrics/", {"outlet": str(other.pk)}).status_code == 404


def test_lists_cost_the_same_queries_whatever_their_length(world, kitchen, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(world.owner)

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200
        return len(ctx.captured_queries)

    fired(world.outlet, line(kitchen.salad), line(kitchen.cola))
    few = queries("/api/kds/tickets/"), queries("/api/stations/")
    for _ in range(4):
        fired(world.outlet, line(kitchen.salad, 2), line(kitchen.burger), line(kitchen.cola))
    services.station_create(outlet=world.outlet, name="Pastry")
    assert (queries("/api/kds/tickets/"), queries("/api/stations/")) == few
