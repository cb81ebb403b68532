"""The audit trail: who did which sensitive action, to what, when.

Write with ``audit_record(...)`` from the service that makes the change, inside its
transaction, after the change itself: the entry then commits or rolls back with it, so a
refused or failed action leaves no entry, and a committed one always has its entry. Read with
``audit_entries_visible_to(user)`` (owners: their tenant; platform admins: everything).

Actions (``AUDIT_ACTIONS``) and the target each one names:

========================================  ===========  ===========================================
action                                    target_type  written by
========================================  ===========  ===========================================
``order.cancelled_after_fire``            ``order``    ``orders.services.order_transition``
``payment.refunded``                      ``payment``  ``payments.services.payment_refund``
``user.created``                          ``user``     ``tenants.services.user_create``
``user.role_changed``                     ``user``     ``tenants.services.user_update``
``user.outlets_changed``                  ``user``     ``tenants.services.user_update``
``user.tenant_changed``                   ``user``     ``tenants.services.user_update``
``user.deactivated``                      ``user``     ``tenants.services.user_update``
``user.reactivated``                      ``user``     ``tenants.services.user_update``
``user.password_changed_by_other``        ``user``     ``tenants.services.user_update``
``user.deleted``                          ``user``     ``tenants.services.user_delete``
``ticket.recalled``                       ``ticket``   ``kds.services.ticket_recall``
========================================  ===========  ===========================================

For ``ticket.recalled`` the kitchen's service calls, inside ``ticket_recall``'s transaction::

    audit_record(actor=actor, action="ticket.recalled", target_type="ticket",
                 target_id=ticket.pk, tenant_id=ticket.tenant_id, outlet_id=ticket.outlet_id,
                 details={"order": order.pk, "order_number": order.number,
                          "station": ticket.station_id, "order_status": order.status})

``pos`` sits at the bottom of the dependency order: it knows users only through
``settings.AUTH_USER_MODEL`` and role names as plain strings (see ``pos.permissions``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import QuerySet

from pos.models import AuditEntry
from pos.permissions import OWNER, SUPER_ADMIN, user_role

AUDIT_ACTIONS = frozenset(
    {
        "order.cancelled_after_fire",
        "payment.refunded",
        "user.created",
        "user.role_changed",
        "user.outlets_changed",
        "user.tenant_changed",
        "user.deactivated",
        "user.reactivated",
        "user.password_changed_by_other",
        "user.deleted",
        "ticket.recalled",
    }
)

#: Roles that may read the trail: the platform admin (everything) and owners (their tenant).
AUDIT_READER_ROLES = frozenset({SUPER_ADMIN, OWNER})


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` as the JSON column will give it back: Decimals, UUIDs and datetimes become
    strings now, so the saved instance and a re-read row hold the same values."""
    return json.loads(json.dumps(details, cls=DjangoJSONEncoder))


def audit_record(
    *,
    actor: Any | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | int,
    tenant_id: uuid.UUID | str | None = None,
    outlet_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry for ``action`` on ``target_type``/``target_id``.

    Preconditions: call inside the transaction of the change it records, after the change
    (``RuntimeError`` otherwise, and nothing is written); ``action`` is one of
    ``AUDIT_ACTIONS`` (``ValueError`` otherwise). ``actor`` is the user who acted, or None
    for the system. ``tenant_id`` is the tenant whose owners may read the entry (None: only
    platform admins). ``details`` holds before/after values, amounts and reasons; Decimals
    (amounts), UUIDs and datetimes are stored as strings. Never put a secret in it.
    """
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record() must run inside the transaction of the change")
    return AuditEntry.objects.create(
        tenant_id=tenant_id,
        outlet_id=outlet_id,
        actor=actor,
        actor_username=getattr(actor, "username", "") or "",
        actor_role=getattr(actor, "role", "") or "",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=_json_safe(details or {}),
    )


def audit_entries_visible_to(user: Any) -> QuerySet[AuditEntry]:
    """Entries ``user`` may read: all for a platform admin, its tenant's for an owner, none
    for anyone else. Newest first."""
    role = user_role(user)
    entries = AuditEntry.objects.order_by("-created_at", "-id")
    if role == SUPER_ADMIN:
        return entries
    if role == OWNER and getattr(user, "tenant_id", None) is not None:
        return entries.filter(tenant_id=user.tenant_id)
    return entries.none()
