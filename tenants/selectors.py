"""Reads scoped to what a user may see. Every app asks these "may this user see this outlet?".

Scoping is explicit: each function takes the user and returns a queryset already narrowed to
the user's tenant (and outlets, for roles bound to outlets). Another tenant's row simply is
not in the queryset, so a lookup through it answers 404 exactly as a missing row would.

Access helpers for other apps (all take the requesting user, never global state):

- ``outlets_visible_to(user)`` / ``outlet_for_user(user, id)``: outlets the user works at.
- ``outlet_in_user_tenant(user, id)``: any outlet of the user's tenant (to tell 403 from 404).
- ``user_can_access_outlet(user, outlet)``: the user works at that outlet (any role).
- ``user_can_manage_outlet(user, outlet)``: super admin, the tenant's owner, or a manager
  assigned to the outlet.
- ``tenant_for_write(user, requested)``: the tenant a new tenant-owned row belongs to.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from pos.api_errors import DomainValidationError
from pos.ids import parse_uuid
from tenants.models import Outlet, Role, Tenant, User

# Roles that see every outlet of their tenant.
TENANT_WIDE_ROLES = frozenset({Role.OWNER})


def user_is_super_admin(user: User) -> bool:
    return bool(user.is_authenticated and user.role == Role.SUPER_ADMIN)


def tenants_visible_to(user: User) -> QuerySet[Tenant]:
    if user_is_super_admin(user):
        return Tenant.objects.all()
    if not user.is_authenticated or user.tenant_id is None:
        return Tenant.objects.none()
    return Tenant.objects.filter(pk=user.tenant_id)


def outlets_visible_to(user: User) -> QuerySet[Outlet]:
    """Outlets the user works at: all of the tenant for owners, assigned ones otherwise."""
    if user_is_super_admin(user):
        return Outlet.objects.all()
    if not user.is_authenticated or user.tenant_id is None:
        return Outlet.objects.none()
    outlets = Outlet.objects.filter(tenant_id=user.tenant_id)
    if user.role in TENANT_WIDE_ROLES:
        return outlets
    return outlets.filter(staff=user)


def outlet_ids_visible_to(user: User) -> set:
    return set(outlets_visible_to(user).values_list("id", flat=True))


def outlet_for_user(user: User, outlet_id) -> Outlet | None:
    """The outlet if the user may see it, else None (unknown and foreign look the same)."""
    pk = parse_uuid(outlet_id)
    if pk is None:
        return None
    return outlets_visible_to(user).filter(pk=pk).first()


def outlet_in_user_tenant(user: User, outlet_id) -> Outlet | None:
    """The outlet if it belongs to the user's tenant (or any, for a super admin).

    Lets callers tell 404 (unknown or another tenant's) from 403 (same tenant, not assigned).
    """
    pk = parse_uuid(outlet_id)
    if pk is None or not user.is_authenticated:
        return None
    qs = Outlet.objects.all()
    if not user_is_super_admin(user):
        if user.tenant_id is None:
            return None
        qs = qs.filter(tenant_id=user.tenant_id)
    return qs.filter(pk=pk).first()


def user_can_access_outlet(user: User, outlet: Outlet) -> bool:
    """True if the user works at ``outlet``: super admin, the tenant's owner, or assigned."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user_is_super_admin(user):
        return True
    if user.tenant_id is None or outlet.tenant_id != user.tenant_id:
        return False
    if user.role in TENANT_WIDE_ROLES:
        return True
    return user.outlets.filter(pk=outlet.pk).exists()


def user_can_manage_outlet(user: User, outlet: Outlet) -> bool:
    """True if the user may administer ``outlet``'s operations (catalog, stations, staff).

    Super admin: any outlet. Owner: every outlet of its tenant. Manager: outlets assigned to
    it. Cashier and kitchen: never.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    if user.role not in (Role.SUPER_ADMIN, Role.OWNER, Role.MANAGER):
        return False
    return user_can_access_outlet(user, outlet)


def tenant_for_write(user: User, requested: Tenant | None) -> Tenant:
    """The tenant a new tenant-owned row belongs to.

    Everyone but a super admin writes into its own tenant (``requested`` is ignored). A super
    admin belongs to no tenant, so it must name one: a missing one is a 400 on ``tenant``.
    Precondition: ``requested`` was already resolved from an id the caller may see.
    """
    if user_is_super_admin(user):
        if requested is None:
            raise DomainValidationError(
                details={"tenant": ["This field is required for a platform admin."]}
            )
        return requested
    return user.tenant


def users_visible_to(user: User) -> QuerySet[User]:
    """Staff the user may see: all (super admin), the tenant (owner), the cashier and kitchen
    staff of its outlets and itself (manager), itself (cashier, kitchen)."""
    if user_is_super_admin(user):
        return User.objects.select_related("tenant").prefetch_related("outlets")
    if not user.is_authenticated or user.tenant_id is None:
        return User.objects.none()
    qs = User.objects.filter(tenant_id=user.tenant_id).prefetch_related("outlets")
    if user.role == Role.OWNER:
        return qs
    if user.role == Role.MANAGER:
        # Managers see (and manage) the cashier and kitchen staff of their own outlets, and
        # themselves. The subquery keeps the queryset free of joins: no row repeats.
        ids = User.objects.filter(
            outlets__in=outlets_visible_to(user), role__in=(Role.CASHIER, Role.KITCHEN)
        ).values("pk")
        return qs.filter(Q(pk__in=ids) | Q(pk=user.pk))
    return qs.filter(pk=user.pk)
