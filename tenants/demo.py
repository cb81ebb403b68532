"""Demo tenant, outlet and staff for ``manage.py seed_demo``.

Idempotent: rows are found by their natural keys (tenant slug, outlet name, username) and only
created when missing, so a second run creates nothing and leaves later edits alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from tenants.models import Outlet, Role, Tenant, User

TENANT_SLUG = "warung-demo"
TENANT_NAME = "Warung Demo"
OUTLET_NAME = "Warung Demo Kemang"

# Demo logins, printed by seed_demo. They only open the demo tenant.
STAFF: tuple[tuple[str, str, str], ...] = (
    (Role.OWNER, "demo-owner", "warung-owner-2026"),
    (Role.MANAGER, "demo-manager", "warung-manager-2026"),
    (Role.CASHIER, "demo-cashier", "warung-cashier-2026"),
    (Role.KITCHEN, "demo-kitchen", "warung-kitchen-2026"),
)


@dataclass
class DemoTenant:
    tenant: Tenant
    outlet: Outlet
    # role -> (user, demo password)
    staff: dict[str, tuple[User, str]] = field(default_factory=dict)
    created: int = 0


@transaction.atomic
def seed_tenant() -> DemoTenant:
    """The demo tenant "Warung Demo" (IDR, Asia/Jakarta), one outlet (tax 11 %, service 5 %)
    and one user of each tenant role, all assigned to the outlet."""
    created = 0
    tenant, new = Tenant.objects.get_or_create(
        slug=TENANT_SLUG,
        defaults={"name": TENANT_NAME, "currency": "IDR", "timezone": "Asia/Jakarta"},
    )
    created += new
    outlet, new = Outlet.objects.get_or_create(
        tenant=tenant,
        name=OUTLET_NAME,
        defaults={
            "timezone": "Asia/Jakarta",
            "tax_rate": Decimal("0.11"),
            "service_charge_rate": Decimal("0.05"),
            "kds_warn_after_s": 480,
            "kds_late_after_s": 900,
        },
    )
    created += new
    demo = DemoTenant(tenant=tenant, outlet=outlet)
    for role, username, password in STAFF:
        user, new = User.objects.get_or_create(
            username=username, defaults={"role": role, "tenant": tenant}
        )
        if new:
            user.set_password(password)
            user.save(update_fields=["password"])
            created += 1
        if not user.outlets.filter(pk=outlet.pk).exists():
            user.outlets.add(outlet)
        demo.staff[role] = (user, password)
    demo.created = created
    return demo
