"""Every write of the tenancy app: tenants, outlets, staff users, refresh-token rotation.

Services take the acting user where the rule depends on who acts (staff management), so any
caller, REST or not, obeys the same matrix (CONTRACT.md §2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from pos.api_errors import DomainValidationError
from pos.audit import audit_record
from pos.integrity import delete_or_conflict, refuse_taken, save_unique
from tenants.models import Outlet, Role, Tenant, User
from tenants.selectors import outlet_ids_visible_to

FLOOR_ROLES = frozenset({Role.CASHIER, Role.KITCHEN})


# --- Tenants ---------------------------------------------------------------------------------


@transaction.atomic
def tenant_create(*, name: str, slug: str, currency: str = "IDR",
                  timezone: str = "Asia/Jakarta") -> Tenant:
    if Tenant.objects.filter(slug=slug).exists():
        raise DomainValidationError(details={"slug": ["A tenant with this slug exists."]})
    tenant = Tenant(name=name, slug=slug, currency=currency, timezone=timezone)
    save_unique(tenant, field="slug", message="A tenant with this slug exists.")
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, data: Mapping[str, Any]) -> Tenant:
    """Precondition: ``data`` was validated by ``TenantSerializer``."""
    slug = data.get("slug")
    if slug and Tenant.objects.filter(slug=slug).exclude(pk=tenant.pk).exists():
        raise DomainValidationError(details={"slug": ["A tenant with this slug exists."]})
    for field in ("name", "slug", "currency", "timezone"):
        if field in data:
            setattr(tenant, field, data[field])
    save_unique(tenant, field="slug", message="A tenant with this slug exists.")
    return tenant


@transaction.atomic
def tenant_delete(*, tenant: Tenant) -> None:
    delete_or_conflict(tenant, "This tenant is still in use and cannot be deleted.")


# --- Outlets ---------------------------------------------------------------------------------

_OUTLET_FIELDS = (
    "name",
    "timezone",
    "tax_rate",
    "service_charge_rate",
    "kds_warn_after_s",
    "kds_late_after_s",
)


def _check_outlet_name(tenant_id, name: str, exclude_pk=None) -> None:
    refuse_taken(Outlet.objects.filter(tenant_id=tenant_id, name=name), field="name",
                 message="An outlet with this name exists in the tenant.", exclude_pk=exclude_pk)


@transaction.atomic
def outlet_create(
    *,
    tenant: Tenant,
    name: str,
    timezone: str = "Asia/Jakarta",
    tax_rate: Decimal = Decimal("0"),
    service_charge_rate: Decimal = Decimal("0"),
    kds_warn_after_s: int = 480,
    kds_late_after_s: int = 900,
) -> Outlet:
    _check_outlet_name(tenant.pk, name)
    outlet = Outlet(
        tenant=tenant,
        name=name,
        timezone=timezone,
        tax_rate=tax_rate,
        service_charge_rate=service_charge_rate,
        kds_warn_after_s=kds_warn_after_s,
        kds_late_after_s=kds_late_after_s,
    )
    save_unique(outlet, field="name", message="An outlet with this name exists in the tenant.")
    return outlet


@transaction.atomic
def outlet_update(*, outlet: Outlet, data: Mapping[str, Any]) -> Outlet:
    """Precondition: ``data`` was validated by ``OutletSerializer`` (the tenant never moves)."""
    if "name" in data:
        _check_outlet_name(outlet.tenant_id, data["name"], exclude_pk=outlet.pk)
    for field in _OUTLET_FIELDS:
        if field in data:
            setattr(outlet, field, data[field])
    if outlet.kds_late_after_s < outlet.kds_warn_after_s:
        raise DomainValidationError(
            details={"kds_late_after_s": ["Must be greater than or equal to kds_warn_after_s."]}
        )
    save_unique(outlet, field="name", message="An outlet with this name exists in the tenant.")
    return outlet


@transaction.atomic
def outlet_delete(*, outlet: Outlet) -> None:
    delete_or_conflict(outlet, "This outlet is still in use and cannot be deleted.")


# --- Staff users -----------------------------------------------------------------------------


def _validated_password(password: str, user: User) -> str:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise DomainValidationError(details={"password": list(exc.messages)}) from exc
    return password


def _check_username(username: str, exclude_pk=None) -> None:
    refuse_taken(User.objects.filter(username=username), field="username",
                 message="A user with that username already exists.", exclude_pk=exclude_pk)


def _resolve_membership(
    *,
    actor: User,
    role: str,
    tenant: Tenant | None,
    outlets: list[Outlet],
    kept_outlets: Iterable[Outlet] = (),
) -> tuple[Tenant | None, list[Outlet]]:
    """The tenant and outlets a user of ``role`` gets when ``actor`` writes it.

    Raises 403 when the actor may not hand out that role, 400 when tenant or outlets do not fit.
    ``kept_outlets`` are outlets the target already has outside the actor's reach: a manager
    editing a cashier cannot see, so cannot take away, the cashier's other outlets.
    """
    if actor.role == Role.SUPER_ADMIN:
        if role == Role.SUPER_ADMIN:
            if outlets:
                raise DomainValidationError(
                    details={"outlets": ["A platform admin belongs to no outlet."]}
                )
            return None, []
        if tenant is None:
            raise DomainValidationError(
                details={"tenant": ["This field is required for this role."]}
            )
    elif actor.role == Role.OWNER:
        if role == Role.SUPER_ADMIN:
            raise PermissionDenied("Only a platform admin can grant the super_admin role.")
        tenant = actor.tenant
    elif actor.role == Role.MANAGER:
        if role not in FLOOR_ROLES:
            raise PermissionDenied("Managers manage cashier and kitchen staff only.")
        tenant = actor.tenant
        own = outlet_ids_visible_to(actor)
        if not outlets:
            raise DomainValidationError(
                details={"outlets": ["Assign at least one of your outlets."]}
            )
        if any(o.pk not in own for o in outlets):
            raise DomainValidationError(details={"outlets": ["Only your own outlets."]})
    else:
        raise PermissionDenied("Your role does not allow managing staff.")
    if any(o.tenant_id != tenant.pk for o in outlets):
        raise DomainValidationError(
            details={"outlets": ["Every outlet must belong to the user's tenant."]}
        )
    merged = {o.pk: o for o in [*kept_outlets, *outlets]}
    return tenant, list(merged.values())


@transaction.atomic
def user_create(
    *,
    actor: User,
    username: str,
    password: str,
    role: str = Role.CASHIER,
    tenant: Tenant | None = None,
    outlets: Iterable[Outlet] = (),
    is_active: bool = True,
) -> User:
    """Create a staff user as ``actor`` allows (CONTRACT.md §2, "staff users")."""
    tenant, outlet_list = _resolve_membership(
        actor=actor, role=role, tenant=tenant, outlets=list(outlets)
    )
    _check_username(username)
    user = User(username=username, role=role, tenant=tenant, is_active=is_active)
    user.set_password(_validated_password(password, user))
    # Platform admins get Django's admin site too, as createsuperuser would give them.
    user.is_staff = user.is_superuser = role == Role.SUPER_ADMIN
    save_unique(user, field="username", message="A user with that username already exists.")
    user.outlets.set(outlet_list)
    audit_record(
        actor=actor, action="user.created", target_type="user", target_id=user.pk,
        tenant_id=user.tenant_id,
        details={"username": user.username, "role": user.role,
                 "outlets": _ids(outlet_list), "is_active": user.is_active},
    )
    return user


# Fields users may change on their own account. Role, activity and outlets are granted by
# someone above them, so changing one's own would be a privilege escalation.
_SELF_EDITABLE = {
    Role.SUPER_ADMIN: {"username", "password", "current_password"},
    Role.OWNER: {"username", "password", "current_password"},
    Role.MANAGER: {"password", "current_password"},
    Role.CASHIER: {"password", "current_password"},
    Role.KITCHEN: {"password", "current_password"},
}


@transaction.atomic
def user_update(*, actor: User, user: User, data: Mapping[str, Any]) -> User:
    """Change ``user`` as ``actor``. Precondition: ``user`` is visible to ``actor``
    (``tenants.selectors.users_visible_to``) and ``data`` was validated by ``UserSerializer``.
    """
    if actor.pk == user.pk:
        forbidden = set(data) - _SELF_EDITABLE.get(actor.role, set())
        if forbidden:
            raise PermissionDenied(
                "You cannot change these fields of your own account: "
                + ", ".join(sorted(forbidden))
                + "."
            )
        if "password" in data:
            current = data.get("current_password") or ""
            if not user.check_password(current):
                raise DomainValidationError(
                    details={"current_password": ["Your current password is required."]}
                )
    elif actor.role == Role.MANAGER and user.role not in FLOOR_ROLES:
        raise PermissionDenied("Managers manage cashier and kitchen staff only.")
    elif actor.role == Role.OWNER and user.role == Role.SUPER_ADMIN:
        raise PermissionDenied("Only a platform admin can change a platform admin.")
    elif actor.role not in (Role.SUPER_ADMIN, Role.OWNER, Role.MANAGER):
        raise PermissionDenied("Your role does not allow managing staff.")

    before = _AuditedState(role=user.role, tenant_id=user.tenant_id, is_active=user.is_active)
    membership_fields = {"role", "tenant", "outlets"}
    if actor.pk != user.pk and membership_fields & set(data):
        role = data.get("role", user.role)
        tenant = data.get("tenant", user.tenant)
        current = list(user.outlets.all())
        before.outlets = _ids(current)
        outlets = list(data["outlets"]) if "outlets" in data else current
        kept: list[Outlet] = []
        if "outlets" not in data:
            if role == Role.SUPER_ADMIN:
                outlets = []  # a platform admin belongs to no outlet
            elif tenant is not None:
                # Moving a user to another tenant drops the old tenant's outlets.
                outlets = [o for o in outlets if o.tenant_id == tenant.pk]
        if actor.role == Role.MANAGER:
            own = outlet_ids_visible_to(actor)
            kept = [o for o in current if o.pk not in own]
            if "outlets" not in data:
                outlets = [o for o in current if o.pk in own]
        tenant, outlet_list = _resolve_membership(
            actor=actor, role=role, tenant=tenant, outlets=outlets, kept_outlets=kept
        )
        user.role, user.tenant = role, tenant
        user.is_staff = user.is_superuser = role == Role.SUPER_ADMIN
        user.outlets.set(outlet_list)
        after_outlets = _ids(outlet_list)
    else:
        after_outlets = before.outlets
    if "username" in data:
        _check_username(data["username"], exclude_pk=user.pk)
        user.username = data["username"]
    if "is_active" in data:
        user.is_active = data["is_active"]
    if data.get("password"):
        user.set_password(_validated_password(data["password"], user))
    save_unique(user, field="username", message="A user with that username already exists.")
    after = _AuditedState(role=user.role, tenant_id=user.tenant_id, is_active=user.is_active,
                          outlets=after_outlets)
    _audit_user_update(actor=actor, user=user, before=before, after=after,
                       password_set=bool(data.get("password")) and actor.pk != user.pk)
    return user


@dataclass
class _AuditedState:
    """What of a user the audit trail follows; ``outlets`` is None when not looked at."""

    role: str
    tenant_id: Any
    is_active: bool
    outlets: list[str] | None = None


def _ids(objects: Iterable[Any]) -> list[str]:
    return sorted(str(o.pk) for o in objects)


def _audit_user_update(
    *, actor: User, user: User, before: _AuditedState, after: _AuditedState, password_set: bool
) -> None:
    """One audit entry per sensitive change ``user_update`` made. Precondition: inside its
    transaction, after the user was saved."""

    def record(action: str, details: dict[str, Any], tenant_id: Any = after.tenant_id) -> None:
        audit_record(actor=actor, action=action, target_type="user", target_id=user.pk,
                     tenant_id=tenant_id, details={"username": user.username, **details})

    if before.tenant_id != after.tenant_id:
        # A platform admin moved the user: each tenant's owners read their side only, so
        # neither learns the other tenant's ids.
        record("user.tenant_changed",
               {"direction": "left", "role": before.role, "outlets": before.outlets},
               tenant_id=before.tenant_id)
        record("user.tenant_changed",
               {"direction": "joined", "role": after.role, "outlets": after.outlets})
    else:
        if before.role != after.role:
            record("user.role_changed", {"role": {"before": before.role, "after": after.role}})
        if before.outlets != after.outlets:
            old, new = set(before.outlets or ()), set(after.outlets or ())
            record("user.outlets_changed", {
                "outlets": {"before": before.outlets, "after": after.outlets},
                "added": sorted(new - old), "removed": sorted(old - new),
            })
    if before.is_active != after.is_active:
        record("user.reactivated" if after.is_active else "user.deactivated", {})
    if password_set:
        record("user.password_changed_by_other", {})


@transaction.atomic
def user_delete(*, actor: User, user: User) -> None:
    """Precondition: ``user`` is visible to ``actor``."""
    if actor.pk == user.pk:
        raise PermissionDenied("You cannot delete your own account.")
    if actor.role == Role.MANAGER and user.role not in FLOOR_ROLES:
        raise PermissionDenied("Managers manage cashier and kitchen staff only.")
    if actor.role == Role.OWNER and user.role == Role.SUPER_ADMIN:
        raise PermissionDenied("Only a platform admin can delete a platform admin.")
    if actor.role not in (Role.SUPER_ADMIN, Role.OWNER, Role.MANAGER):
        raise PermissionDenied("Your role does not allow managing staff.")
    # Snapshot first: delete() clears the instance's pk.
    target_id, tenant_id = user.pk, user.tenant_id
    details = {"username": user.username, "role": user.role,
               "outlets": _ids(user.outlets.all())}
    delete_or_conflict(user, "This user is still in use and cannot be deleted.")
    audit_record(actor=actor, action="user.deleted", target_type="user", target_id=target_id,
                 tenant_id=tenant_id, details=details)


# --- Tokens ----------------------------------------------------------------------------------


@transaction.atomic
def token_rotate(*, refresh: RefreshToken) -> dict[str, str]:
    """Exchange a valid refresh token for a new pair and blacklist the old one.

    The outstanding-token row is locked, so two concurrent uses of one refresh token cannot
    both succeed: the second finds it blacklisted (401). Precondition: ``refresh`` passed
    signature and expiry checks.
    """
    user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
    user = User.objects.filter(pk=user_id).first() if user_id else None
    if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
        raise AuthenticationFailed("No active account found for the given token.")
    jti = refresh.payload[jwt_settings.JTI_CLAIM]
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=jti,
        defaults={
            "user": user,
            "token": str(refresh),
            "created_at": refresh.current_time,
            "expires_at": datetime_from_epoch(refresh.payload["exp"]),
        },
    )
    outstanding = OutstandingToken.objects.select_for_update().get(pk=outstanding.pk)
    if BlacklistedToken.objects.filter(token=outstanding).exists():
        raise InvalidToken("Token is blacklisted")
    BlacklistedToken.objects.create(token=outstanding)
    new_refresh = RefreshToken.for_user(user)
    return {"access": str(new_refresh.access_token), "refresh": str(new_refresh)}
