"""The bench database: created next to ``DATABASE_URL``'s, migrated, and filled per run.

The bench never touches the database named in ``DATABASE_URL`` itself: it uses (and creates
when missing) ``<name>_bench_run`` on the same server, or the one given with ``--bench-db``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def bench_database_url(database_url: str, name: str | None = None) -> str:
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit("the bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    current = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path="/" + (name or f"{current}_bench_run")))


def ensure_database(url: str) -> bool:
    """Create the database of ``url`` if it does not exist. True if it was created."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, check=True, timeout=600,
    )


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in the orchestrator against the bench database."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pos.settings")
    import django

    django.setup()


class Fixtures:
    """The bench tenant, its owner, a product menu, and a fresh outlet per run."""

    def __init__(self) -> None:
        from tenants.models import Role, Tenant, User

        self.tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        self.owner = User.objects.filter(username="bench-owner").first()
        if self.owner is None:
            self.owner = User.objects.create_user(
                username="bench-owner", password=uuid.uuid4().hex, role=Role.OWNER,
                tenant=self.tenant,
            )
        self.products = self._products()

    def _products(self) -> list[str]:
        from catalog.models import Product

        ids = []
        for n, (name, price) in enumerate(
            (("Nasi goreng", "45000.00"), ("Es teh", "8000.00"), ("Sate ayam", "38000.00"))
        ):
            product, _ = Product.objects.get_or_create(
                tenant=self.tenant, sku=f"BENCH-{n}",
                defaults={"name": name, "price": Decimal(price)},
            )
            ids.append(str(product.id))
        return ids

    def new_outlet(self):
        """A fresh outlet (its stream starts at seq 1), with what orders need to be fired."""
        from tenants.models import Outlet

        outlet = Outlet.objects.create(
            tenant=self.tenant, name=f"bench-{uuid.uuid4().hex[:12]}",
            tax_rate=Decimal("0.11"), service_charge_rate=Decimal("0.05"),
        )
        _ensure_default_station(outlet)
        return outlet

    def token(self) -> str:
        from rest_framework_simplejwt.tokens import RefreshToken

        return str(RefreshToken.for_user(self.owner).access_token)


def _ensure_default_station(outlet) -> None:
    """Confirming an order routes its items to a prep station: give the outlet its default."""
    from kds.services import station_create

    station_create(outlet=outlet, name="Kitchen")


def last_seq(outlet_id) -> int:
    from pos.streams import log

    return log.last_seq(outlet_id)


def orders_socket_seqs(outlet_id, after: int) -> list[int]:
    """Seqs after ``after`` that the orders socket forwards (contract, section 5)."""
    from django.db.models import Q

    from pos.models import StreamEvent

    forwarded = (
        Q(name__startswith="order.")
        | Q(name__startswith="payment.")
        | Q(name="product.availability_changed")
    )
    return list(
        StreamEvent.objects.filter(outlet_id=outlet_id, seq__gt=after)
        .filter(forwarded)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
