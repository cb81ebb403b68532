"""``manage.py seed_demo``: load the demo tenant, outlet, staff, menu and kitchen stations.

Idempotent: a second run creates nothing. Prints the demo logins and where to point a browser,
a kitchen screen and socket clients.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from catalog.demo import seed_menu
from kds.demo import seed_stations
from tenants.demo import seed_tenant


class Command(BaseCommand):
    help = "Load demo data (tenant 'Warung Demo', outlet, staff, menu, stations) idempotently."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="host shown in the printed URLs")
        parser.add_argument("--port", default=8000, type=int, help="port shown in the URLs")

    def handle(self, *args, host: str, port: int, **options):
        with transaction.atomic():
            demo = seed_tenant()
            menu = seed_menu(demo.tenant)
            stations = seed_stations(demo.outlet, list(menu.categories.values()))
        created = demo.created + menu.created
        outlet = demo.outlet
        base = f"http://{host}:{port}"
        sockets = f"ws://{host}:{port}"
        out = self.stdout
        out.write(self.style.SUCCESS(
            f"Demo data ready ({created} rows created"
            f"{'' if created else ': everything was already there'})."
        ))
        out.write(f"Tenant  {demo.tenant.name} ({demo.tenant.currency}, {demo.tenant.timezone})"
                  f"  id {demo.tenant.pk}")
        out.write(f"Outlet  {outlet.name}  id {outlet.pk}")
        out.write(f"Menu    {len(menu.categories)} categories, {len(menu.groups)} modifier "
                  f"groups, {len(menu.products)} products")
        if stations:
            out.write("Stations " + ", ".join(stations))
        out.write("")
        out.write("Logins (POST /api/auth/token/ {username, password}):")
        for role, (user, password) in demo.staff.items():
            out.write(f"  {role:<8} {user.username:<14} {password}")
        out.write("  (platform admin: python manage.py createsuperuser)")
        out.write("")
        out.write(f"API docs        {base}/api/docs/")
        out.write(f"OpenAPI schema  {base}/api/schema/")
        out.write(f"Kitchen screen  {base}/kds/")
        out.write(f"Kitchen socket  {sockets}/ws/kitchen/{outlet.pk}/?token=<access JWT>")
        out.write(f"Orders socket   {sockets}/ws/orders/{outlet.pk}/?token=<access JWT>")
        out.write(f"Payments socket {sockets}/ws/payments/<order id>/?token=<access JWT>")
