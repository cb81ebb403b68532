"""The kitchen screen page (/kds/) in headless Chromium against the real ASGI server.

Each test starts uvicorn on the test database (tests/liveserver.py), so data is committed
(transactional tests) and the server sees it. Chromium is Debian's (scripts/ensure-browser.sh);
Playwright drives it.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Page, expect, sync_playwright
from websockets.sync.client import connect as ws_connect

from kds import services
from kds.models import Ticket, TicketItem
from orders.models import Order
from pos.models import StreamEvent
from pos.streams import log
from tests import factories
from tests.kds.conftest import fired, line

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 15_000
RECONNECT_WAIT_MS = 30_000
EXPO = "All stations (expo)"


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an asyncio loop running on this thread (in a greenlet), which
    # Django's guard takes for async code. The test code calling the ORM here is plain
    # synchronous code sharing nothing with that loop, so the guard is lifted while it runs.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def server(server_factory):
    """The real ASGI server on the test database. (Not ``live_server``: that name is claimed by
    pytest-django's autouse helper, which expects its own server object.)"""
    return server_factory()


@dataclass
class Screen:
    page: Page
    errors: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)

    def card(self, ticket) -> object:
        return self.page.locator(f'.ticket[data-ticket-id="{ticket.pk}"]')

    def item(self, item) -> object:
        return self.page.locator(f'.item[data-item-id="{item.pk}"]')


@pytest.fixture
def screen(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    result = Screen(page)
    page.on("pageerror", lambda exc: result.errors.append(str(exc)))
    page.on("websocket", lambda ws: result.sockets.append(ws.url))
    yield result
    context.close()


def sign_in(screen: Screen, base_url: str, user, station: str | None) -> None:
    """Sign in through the form and open the screen of ``station`` (a name, or None: expo)."""
    page = screen.page
    page.goto(f"{base_url}/kds/")
    page.fill("#signin-username", user.username)
    page.fill("#signin-password", factories.PASSWORD)
    page.click("#signin-submit")
    expect(page.locator("#setup")).to_be_visible()
    page.select_option("#setup-station", label=station or EXPO)
    page.click("#setup-submit")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected")


def committed(write, *args, **kwargs):
    """Run a write in a worker thread and return its result.

    The write's after-commit publication uses ``async_to_sync``, which refuses to run on a
    thread where an event loop runs (Playwright's does, on the test thread); in a worker thread
    it publishes at once, as any other process would.
    """

    def run():
        try:
            return write(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def backdate(ticket, minutes: float) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(
        fired_at=timezone.now() - timedelta(minutes=minutes)
    )


def items_of(ticket) -> list[TicketItem]:
    return list(TicketItem.objects.filter(ticket=ticket).order_by("position", "id"))


def receive_until(socket, predicate, timeout: float = 15.0) -> dict:
    """Messages from a ``websockets`` client until one matches ``predicate``."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("the expected socket message never came")
        message = json.loads(socket.recv(timeout=remaining))
        if predicate(message):
            return message


def status_changed_to(order, status: str):
    def predicate(message: dict) -> bool:
        return (
            message.get("type") == "event"
            and message.get("event") == "order.status_changed"
            and message["data"]["id"] == str(order.pk)
            and message["data"]["to"] == status
        )

    return predicate


# --- signing in -----------------------------------------------------------------------------
def test_sign_in_offers_only_the_users_outlets_and_their_stations(server, world, kitchen,
                                                                  screen):
    page = screen.page
    page.goto(f"{server.base_url}/kds/")
    page.fill("#signin-username", world.kitchen.username)
    page.fill("#signin-password", "not-the-password")
    page.click("#signin-submit")
    expect(page.locator("#signin-error")).to_have_text("Wrong username or password.")
    expect(page.locator("#setup")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('kds.auth')") is None

    page.fill("#signin-password", factories.PASSWORD)
    page.click("#signin-submit")
    expect(page.locator("#setup")).to_be_visible()
    # The kitchen user works at world.outlet only: not outlet2, not the other tenant's outlet.
    expect(page.locator("#setup-outlet option")).to_have_text([world.outlet.name])
    # The outlet's prep stations, then the expo view; outlet2's "Line" is not offered.
    expect(page.locator("#setup-station option")).to_have_text(
        ["Bar", "Grill", "Kitchen", EXPO]
    )
    stored = json.loads(page.evaluate("sessionStorage.getItem('kds.auth')"))
    assert stored["access"] and stored["refresh"]
    assert screen.errors == []


# --- scenario 1: an order confirmed through REST appears ------------------------------------
def test_order_confirmed_through_rest_appears_on_the_station_screen(server, world,
                                                                    kitchen, screen):
    extras = factories.make_modifier_group(
        world.tenant, name="Burger extras", max_select=2,
        options=(("No onion", "0"), ("Extra cheese", "5000.00")),
    )
    kitchen.burger.modifier_groups.add(extras)
    options = {o.name: str(o.pk) for o in extras.options.all()}

    page = screen.page
    sign_in(screen, server.base_url, world.kitchen, "Grill")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator(".ticket")).to_have_count(0)

    api = httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {factories.access_token(world.cashier)}"},
        timeout=10,
    )
    created = api.post("/api/orders/", json={
        "outlet": str(world.outlet.pk),
        "type": "dine_in",
        "table": "12",
        "customer_name": "Ana",
        "items": [
            {"product": str(kitchen.burger.pk), "quantity": 2,
             "modifiers": [options["No onion"], options["Extra cheese"]], "note": "Medium rare"},
            {"product": str(kitchen.cola.pk), "quantity": 1},
        ],
    })
    assert created.status_code == 201, created.text
    order = created.json()
    # Pending orders are not fired: the screen stays empty until confirmation.
    page.wait_for_timeout(300)
    expect(page.locator(".ticket")).to_have_count(0)
    confirmed = api.patch(f"/api/orders/{order['id']}/status/", json={"status": "confirmed"})
    assert confirmed.status_code == 200, confirmed.text

    ticket = Ticket.objects.get(order_id=order["id"], station=kitchen.grill)
    card = screen.card(ticket)
    expect(card).to_have_count(1)
    expect(card.locator(".number")).to_have_text(order["number"])
    expect(card.locator(".meta")).to_have_text("Dine in · Table 12 · Ana")
    expect(card.locator(".item .qty")).to_have_text(["2\u00d7"])
    expect(card.locator(".item .name")).to_have_text(["Burger"])
    expect(card.locator(".mods li")).to_have_text(["No onion", "Extra cheese"])
    expect(card.locator(".item .note")).to_have_text("Medium rare")
    expect(card).to_have_attribute("data-age", "ok")
    expect(card.locator(".age")).to_have_text("00:00", timeout=3000)
    # The cola went to the Bar: this station shows only its own ticket.
    expect(page.locator(".ticket")).to_have_count(1)
    expect(page.locator("#allday-list li")).to_have_count(1)
    expect(page.locator("#allday-list li")).to_have_text("2Burger")
    expect(page.locator("#board-count")).to_have_text("1")
    # The sign-in tap enabled sound; the new ticket rang once.
    expect(page.locator("#sound-hint")).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-chimes", "1")
    assert screen.errors == []


# --- scenario 2: taps start, finish and bump; the cashier's socket sees the order ready -----
def test_taps_cook_and_bump_the_ticket_and_the_order_turns_ready(server, world, kitchen,
                                                                  screen):
    order, tickets = committed(fired, world.outlet, line(kitchen.burger, 2), line(kitchen.steak))
    ticket = tickets["Grill"]
    burger, steak = items_of(ticket)
    page = screen.page
    sign_in(screen, server.base_url, world.kitchen, "Grill")
    card = screen.card(ticket)
    expect(card).to_have_count(1)
    expect(page.locator("#allday-list li")).to_have_text(["2Burger", "1Steak"])

    token = factories.access_token(world.cashier)
    url = f"{server.ws_url}/ws/orders/{world.outlet.pk}/?token={token}"
    with ws_connect(url) as cashier:
        snapshot = receive_until(cashier, lambda m: m["type"] == "snapshot")
        assert [o["status"] for o in snapshot["orders"]] == ["confirmed"]

        screen.item(burger).click()  # queued -> cooking
        expect(screen.item(burger)).to_have_attribute("data-status", "cooking")
        expect(screen.item(burger).locator(".state")).to_have_text("COOKING")
        receive_until(cashier, status_changed_to(order, "preparing"))

        screen.item(burger).click()  # cooking -> done
        expect(screen.item(burger)).to_have_attribute("data-status", "done")
        # All-day counts follow the events: the burgers are no longer to be cooked.
        expect(page.locator("#allday-list li")).to_have_text(["1Steak"])
        assert TicketItem.objects.get(pk=steak.pk).status == "queued"

        card.locator(".ticket-head").click()  # bump
        expect(card).to_have_count(0)
        expect(page.locator("#empty")).to_be_visible()
        ready = receive_until(cashier, status_changed_to(order, "ready"))
        assert ready["data"]["from"] == "preparing"

        ticket.refresh_from_db()
        assert ticket.status == "done" and ticket.bumped_at is not None
        assert {i.status for i in items_of(ticket)} == {"done"}
        assert Order.objects.get(pk=order.pk).status == "ready"

        # Recall: the last bumped ticket comes back, and so does the order to preparing.
        page.click("#recall-button")
        recall = page.locator(f'#recall-list button[data-ticket-id="{ticket.pk}"]')
        expect(recall.locator(".number")).to_have_text(order.number)
        recall.click()
        expect(card).to_have_count(1)
        expect(card.locator(".item")).to_have_count(2)
        receive_until(cashier, status_changed_to(order, "preparing"))
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.bumped_at is None
    assert screen.errors == []


def test_a_refused_tap_shows_the_error_and_changes_nothing(server, world, kitchen, screen):
    # A cashier may watch the kitchen screen, not act on it.
    order, tickets = committed(fired, world.outlet, line(kitchen.burger))
    ticket = tickets["Grill"]
    (item,) = items_of(ticket)
    seq_before = log.last_seq(world.outlet.pk)
    sign_in(screen, server.base_url, world.cashier, "Grill")

    screen.item(item).click()
    refusal = "Your role may watch this screen only."
    expect(screen.page.locator(".toast.error")).to_have_text(refusal)
    expect(screen.item(item)).not_to_have_class(re.compile(r"\bpending\b"))
    expect(screen.item(item)).to_have_attribute("data-status", "queued")
    screen.card(ticket).locator(".ticket-head").click()
    expect(screen.page.locator(".toast.error").last).to_have_text(refusal)
    expect(screen.card(ticket)).to_have_count(1)

    assert TicketItem.objects.get(pk=item.pk).status == "queued"
    assert Ticket.objects.get(pk=ticket.pk).status == "open"
    assert Order.objects.get(pk=order.pk).status == "confirmed"
    assert log.last_seq(world.outlet.pk) == seq_before
    assert screen.errors == []


# --- scenario 3: the server goes away, a ticket is fired meanwhile --------------------------
def test_screen_reconnects_after_a_server_restart_and_catches_up_once(server, world,
                                                                       kitchen, screen):
    first_order, first = committed(fired, world.outlet, line(kitchen.burger))
    page = screen.page
    sign_in(screen, server.base_url, world.kitchen, "Grill")
    expect(screen.card(first["Grill"])).to_have_count(1)
    seen_seq = log.last_seq(world.outlet.pk)

    server.stop()
    expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    # Fired while the screen has no socket: only the event log can bring it.
    missed_order, missed = committed(fired, world.outlet, line(kitchen.steak, 3), table="21")
    server.start()

    expect(page.locator("#conn")).to_have_attribute(
        "data-state", "connected", timeout=RECONNECT_WAIT_MS
    )
    expect(screen.card(missed["Grill"])).to_have_count(1)
    expect(screen.card(missed["Grill"]).locator(".number")).to_have_text(missed_order.number)
    expect(screen.card(first["Grill"])).to_have_count(1)
    expect(page.locator(".ticket")).to_have_count(2)
    # It resumed from the last seq it had applied rather than starting over.
    assert f"since={seen_seq}" in screen.sockets[-1]
    assert "since=" not in screen.sockets[0]

    # And it is live again: a ticket fired now shows up too, once.
    later_order, later = committed(fired, world.outlet, line(kitchen.burger))
    expect(screen.card(later["Grill"])).to_have_count(1)
    expect(page.locator(".ticket")).to_have_count(3)
    expect(page.locator(".ticket .number")).to_have_text(
        [first_order.number, missed_order.number, later_order.number]
    )
    assert screen.errors == []


def test_a_reset_snapshot_redraws_the_screen_from_scratch(server, world, kitchen, screen):
    _, bumped = committed(fired, world.outlet, line(kitchen.burger))
    _, kept = committed(fired, world.outlet, line(kitchen.steak))
    page = screen.page
    sign_in(screen, server.base_url, world.kitchen, "Grill")
    expect(page.locator(".ticket")).to_have_count(2)

    server.stop()
    expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    committed(services.ticket_bump, ticket_id=bumped["Grill"].pk)
    # The log no longer holds what the screen missed (as after pruning): replay is impossible,
    # so the server answers the reconnect with a reset snapshot.
    StreamEvent.objects.filter(outlet_id=world.outlet.pk).delete()
    server.start()

    expect(page.locator("#conn")).to_have_attribute(
        "data-state", "connected", timeout=RECONNECT_WAIT_MS
    )
    expect(screen.card(bumped["Grill"])).to_have_count(0)
    expect(screen.card(kept["Grill"])).to_have_count(1)
    expect(page.locator(".ticket")).to_have_count(1)
    assert screen.errors == []


# --- ages, colours, clocks ------------------------------------------------------------------
def test_ages_and_colours_follow_the_server_clock_not_the_device_clock(server, world,
                                                                        kitchen, screen):
    world.outlet.kds_warn_after_s, world.outlet.kds_late_after_s = 300, 600
    world.outlet.save()
    _, fresh = committed(fired, world.outlet, line(kitchen.burger))
    _, warn = committed(fired, world.outlet, line(kitchen.steak), line(kitchen.cola))
    _, late = committed(fired, world.outlet, line(kitchen.salad))
    backdate(fresh["Grill"], 1)
    backdate(warn["Grill"], 7)
    backdate(warn["Bar"], 7)
    backdate(late["Kitchen"], 12)
    committed(services.ticket_set_priority, ticket_id=fresh["Grill"].pk, priority="rush")

    page = screen.page
    # The tablet's clock is three hours fast.
    page.clock.install(time=datetime.now() + timedelta(hours=3))
    sign_in(screen, server.base_url, world.kitchen, None)

    cards = page.locator(".ticket")
    expect(cards).to_have_count(4)
    # Rush on top, then oldest first.
    order_ids = [cards.nth(i).get_attribute("data-ticket-id") for i in range(4)]
    assert order_ids[0] == str(fresh["Grill"].pk)
    assert order_ids[1] == str(late["Kitchen"].pk)
    assert set(order_ids[2:]) == {str(warn["Grill"].pk), str(warn["Bar"].pk)}

    expect(screen.card(fresh["Grill"])).to_have_attribute("data-age", "ok")
    expect(screen.card(fresh["Grill"])).to_have_attribute("data-priority", "rush")
    expect(screen.card(warn["Grill"])).to_have_attribute("data-age", "warn")
    expect(screen.card(warn["Bar"])).to_have_attribute("data-age", "warn")
    expect(screen.card(late["Kitchen"])).to_have_attribute("data-age", "late")
    expect(screen.card(warn["Grill"]).locator(".age")).to_have_text(
        re.compile(r"^0[67]:\d\d$")
    )
    # The expo view names each ticket's station.
    expect(screen.card(warn["Bar"]).locator(".badge.station")).to_have_text("Bar")

    def head_colour(ticket) -> str:
        return screen.card(ticket).locator(".ticket-head").evaluate(
            "node => getComputedStyle(node).backgroundColor"
        )

    colours = {head_colour(fresh["Grill"]), head_colour(warn["Grill"]),
               head_colour(late["Kitchen"])}
    assert len(colours) == 3
    assert screen.errors == []


# --- tokens ---------------------------------------------------------------------------------
def test_a_refused_access_token_is_refreshed_and_the_screen_carries_on(server, world,
                                                                        kitchen, screen):
    _, tickets = committed(fired, world.outlet, line(kitchen.burger))
    page = screen.page
    sign_in(screen, server.base_url, world.kitchen, "Grill")
    expect(page.locator(".ticket")).to_have_count(1)
    before = json.loads(page.evaluate("sessionStorage.getItem('kds.auth')"))

    # An access token the server refuses (as once it expired): the socket is closed with 4401.
    page.evaluate("""() => {
        const auth = JSON.parse(sessionStorage.getItem('kds.auth'));
        auth.access = 'expired.' + auth.access.split('.')[1] + '.signature';
        sessionStorage.setItem('kds.auth', JSON.stringify(auth));
    }""")
    page.reload()
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    expect(screen.card(tickets["Grill"])).to_have_count(1)
    after = json.loads(page.evaluate("sessionStorage.getItem('kds.auth')"))
    assert after["access"] != before["access"]
    assert after["refresh"] != before["refresh"]  # rotated
    expect(page.locator("#signin")).to_be_hidden()
    # No tap since the reload: the browser will not play sound until one comes.
    expect(page.locator("#sound-hint")).to_be_visible()
    page.click("#sound-hint")
    expect(page.locator("#sound-hint")).to_be_hidden()
    assert screen.errors == []


def test_the_page_is_served_without_login_and_loads_nothing_from_elsewhere(server):
    response = httpx.get(f"{server.base_url}/kds/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "http://" not in response.text and "https://" not in response.text
    for asset in ("/static/kds/app.js", "/static/kds/style.css"):
        assert httpx.get(f"{server.base_url}{asset}").status_code == 200
    # A page, not a form target: writes are refused (by CSRF before the view's 405).
    assert httpx.post(f"{server.base_url}/kds/").status_code in (403, 405)
