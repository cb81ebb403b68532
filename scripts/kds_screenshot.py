"""Render docs/kds-screenshot.png: the kitchen screen with tickets of different ages.

Builds a demo kitchen on a throwaway SQLite database (with the in-memory channel layer, so no
shared database or Redis is touched), backdates the tickets' ``fired_at`` so fresh, warn and
late colours all show, starts the real ASGI server, signs in with headless Chromium (Debian's
``chromium`` package) and saves a screenshot of the expo view.

    .venv/bin/python scripts/kds_screenshot.py [--out docs/kds-screenshot.png]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def configure(database_path: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{database_path}"
    os.environ["REDIS_URL"] = ""
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(48)
    os.environ["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ["DJANGO_SETTINGS_MODULE"] = "pos.settings"
    os.environ["LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_kitchen() -> dict:
    """A tenant, an outlet with three prep stations, a menu, and eight fired orders."""
    from django.utils import timezone

    from catalog.models import ModifierOption
    from kds import services as kds
    from kds.models import Ticket
    from orders.services import order_create, order_transition
    from tenants.models import Role
    from tests import factories

    tenant = factories.make_tenant(name="Warung Nusantara", slug="warung-nusantara")
    outlet = factories.make_outlet(
        tenant, name="Sabang", kds_warn_after_s=480, kds_late_after_s=900
    )
    cook = factories.make_user(Role.KITCHEN, tenant, [outlet], username="dapur")
    cashier = factories.make_user(Role.CASHIER, tenant, [outlet], username="kasir")

    mains = factories.make_category(tenant, name="Mains")
    grill = factories.make_category(tenant, name="Grill")
    drinks = factories.make_category(tenant, name="Drinks")
    spice = factories.make_modifier_group(
        tenant, name="Spice", options=(("Mild", "0"), ("Extra pedas", "0"))
    )
    extras = factories.make_modifier_group(
        tenant, name="Extras", max_select=3,
        options=(("Telur ceplok", "5000"), ("Kerupuk", "3000"), ("No peanut sauce", "0")),
    )
    menu = {}
    for name, category, groups in [
        ("Nasi goreng spesial", mains, (spice, extras)),
        ("Mie goreng Jawa", mains, (spice, extras)),
        ("Soto Betawi", mains, ()),
        ("Gado-gado", mains, (extras,)),
        ("Sate ayam (10)", grill, (extras,)),
        ("Ayam bakar", grill, (spice,)),
        ("Es teh manis", drinks, ()),
        ("Es jeruk", drinks, ()),
    ]:
        product = factories.make_product(tenant, category, name=name, price=Decimal("28000.00"))
        product.modifier_groups.set(groups)
        menu[name] = product
    kds.station_create(outlet=outlet, name="Wok", category_ids=[mains.pk])
    kds.station_create(outlet=outlet, name="Grill", category_ids=[grill.pk])
    kds.station_create(outlet=outlet, name="Bar", category_ids=[drinks.pk])

    def option(name: str) -> str:
        return str(ModifierOption.objects.get(tenant=tenant, name=name).pk)

    def line(name, quantity=1, modifiers=(), note=""):
        return {"product": menu[name].pk, "quantity": quantity,
                "modifiers": [option(m) for m in modifiers], "note": note}

    orders = [
        # (minutes since fired, type, table, customer, items, rush)
        (23, "dine_in", "7", "", [line("Nasi goreng spesial", 2, ["Extra pedas", "Telur ceplok"]),
                                  line("Soto Betawi", 1, note="No celery")], False),
        (16, "takeaway", "", "Rina", [line("Mie goreng Jawa", 1, ["Mild"]),
                                      line("Gado-gado", 1, ["No peanut sauce"])], False),
        (11, "dine_in", "12", "", [line("Sate ayam (10)", 2, ["Kerupuk"]),
                                   line("Ayam bakar", 1, ["Extra pedas"], note="Well done")],
         False),
        (9, "delivery", "", "GoFood #4812", [line("Nasi goreng spesial", 3, ["Mild"]),
                                             line("Es jeruk", 3)], False),
        (6, "dine_in", "3", "", [line("Mie goreng Jawa", 2), line("Es teh manis", 2)], True),
        (3, "dine_in", "9", "Pak Budi", [line("Soto Betawi", 2),
                                         line("Gado-gado", 1, note="Sauce on the side")], False),
        (1, "takeaway", "", "Dewi", [line("Ayam bakar", 2, ["Mild"]),
                                     line("Es teh manis", 1, note="Less sugar")], False),
    ]
    now = timezone.now()
    for minutes, kind, table, customer, items, rush in orders:
        order = order_create(actor=cashier, outlet=outlet, type=kind, items=items, table=table,
                             customer_name=customer)
        order_transition(order_id=order.pk, to_status="confirmed", actor=cashier)
        tickets = list(Ticket.objects.filter(order=order).prefetch_related("items"))
        Ticket.objects.filter(order=order).update(fired_at=now - timedelta(minutes=minutes,
                                                                           seconds=17))
        for ticket in tickets:
            if rush:
                kds.ticket_set_priority(ticket_id=ticket.pk, priority="rush")
            ticket_items = list(ticket.items.all())
            if minutes >= 9 and ticket_items:
                kds.ticket_item_set_status(item_id=ticket_items[0].pk, status="cooking",
                                           actor=cook)
            if minutes >= 16 and len(ticket_items) > 1:
                kds.ticket_item_set_status(item_id=ticket_items[1].pk, status="done", actor=cook)
    return {"username": cook.username, "password": factories.PASSWORD}


def screenshot(base_url: str, login: dict, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080}, reduced_motion="reduce")
        page.goto(f"{base_url}/kds/")
        page.fill("#signin-username", login["username"])
        page.fill("#signin-password", login["password"])
        page.click("#signin-submit")
        page.select_option("#setup-station", value="")
        page.click("#setup-submit")
        expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
        expect(page.locator(".ticket[data-age]")).to_have_count(10)
        page.screenshot(path=str(out))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "kds-screenshot.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure(Path(tmp) / "db.sqlite3")
        login = build_kitchen()
        from tests.liveserver import ServerProcess

        server = ServerProcess(database_url=os.environ["DATABASE_URL"], redis_url=None).start()
        try:
            screenshot(server.base_url, login, args.out)
        finally:
            server.stop()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
