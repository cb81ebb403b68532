"""Reads scoped to what a user may see. Every app asks these "may this user see this outlet?".

Scoping is explicit: each function takes the user and returns a queryset already narrowed to
the user's tenant (and outlets, for roles bound to outlets). Another tenant's row simply is
not in the queryset, so a lookup through it answers 404 exactly as a missing row would.
"""

from __future__ import annotations

from django.db.models import QuerySet

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
    try:
        return outlets_visible_to(user).get(pk=outlet_id)
    except (Outlet.DoesNotExist, ValueError, TypeError):
        return None


def outlet_in_user_tenant(user: User, outlet_id) -> Outlet | None:
    """The outlet if it belongs to the user's tenant (or any, for a super admin).

    Lets callers tell 404 (unknown or another tenant's) from 403 (same tenant, not assigned).
    """
    qs = Outlet.objects.all()
    if not user_is_super_admin(user):
        if user.tenant_id is None:
            return None
        qs = qs.filter(tenant_id=user.tenant_id)
    try:
        return qs.get(pk=outlet_id)
    except (Outlet.DoesNotExist, ValueError, TypeError):
        return None


def users_visible_to(user: User) -> QuerySet[User]:
    if user_is_super_admin(user):
        return User.objects.all()
    if not user.is_authenticated or user.tenant_id is None:
        return User.objects.none()
    qs = User.objects.filter(tenant_id=user.tenant_id).prefetch_related("outlets")
    if user.role == Role.OWNER:
        return qs
    if user.role == Role.MANAGER:
        # Managers see staff of their own outlets, and themselves.
        from django.db.models import Q

        return qs.filter(Q(outlets__in=outlets_visible_to(user)) | Q(pk=user.pk)).distinct()
    return qs.filter(pk=user.pk)
