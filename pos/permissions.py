"""Role-based permissions: the base every app's API uses to apply the matrix of CONTRACT.md §2.

Two layers, both needed on every endpoint:

1. **Role gate** (this module): may a user of this role call this action at all? A view
   declares the roles allowed per action and ``RolePermission`` refuses the rest with 403
   ``permission_denied`` (401 ``not_authenticated`` when there is no valid token).
2. **Scope** (``tenants.selectors``): which rows may the user see? Views read through selectors
   already narrowed to the user's tenant and outlets, so another tenant's object is a 404, and
   use ``tenants.selectors.user_can_access_outlet`` / ``user_can_manage_outlet`` to tell a
   same-tenant outlet the user is not assigned to (403) from a foreign one (404).

Usage in a view or viewset::

    from pos.permissions import MANAGEMENT_ROLES, ALL_ROLES, RolePermission
    from tenants.models import Role

    class StationViewSet(viewsets.ModelViewSet):
        permission_classes = [RolePermission]
        allowed_roles = {
            "list": ALL_ROLES,
            "retrieve": ALL_ROLES,
            "create": MANAGEMENT_ROLES,
            "update": MANAGEMENT_ROLES,
            "partial_update": MANAGEMENT_ROLES,
            "destroy": MANAGEMENT_ROLES,
            "bump": {Role.SUPER_ADMIN, Role.OWNER, Role.MANAGER, Role.KITCHEN},  # an @action
        }

or, without the view attribute, ``permission_classes = [RolePermission.for_roles({...})]``.

Keys of the mapping are looked up in this order, the first present one wins:
the viewset action name (``"list"``, ``"create"``, an ``@action``'s name), the HTTP method in
upper case (``"GET"``, ``"POST"``: for plain ``APIView``\\ s), ``"read"`` for safe methods
(GET/HEAD/OPTIONS) or ``"write"`` for the others, and finally ``"*"``. A request that matches no
key is refused: forgetting an action closes it rather than opening it. A bare set instead of a
mapping means "these roles, for every action". Two requests pass the gate for any authenticated
user: ``OPTIONS`` (it describes the endpoint, no data) and a method the view does not implement
(so DRF answers 405 ``method_not_allowed``, not 403).

Role names are the plain strings of ``tenants.models.Role`` (a ``TextChoices``, so
``Role.OWNER == "owner"``): this module sits below the tenancy app and does not import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

SUPER_ADMIN = "super_admin"
OWNER = "owner"
MANAGER = "manager"
CASHIER = "cashier"
KITCHEN = "kitchen"

#: Every role.
ALL_ROLES: frozenset[str] = frozenset({SUPER_ADMIN, OWNER, MANAGER, CASHIER, KITCHEN})
#: Platform admin and tenant owner: tenant-wide administration.
TENANT_ADMIN_ROLES: frozenset[str] = frozenset({SUPER_ADMIN, OWNER})
#: Roles that manage a restaurant: catalog, stations and routing CRUD, staff of their outlets.
MANAGEMENT_ROLES: frozenset[str] = frozenset({SUPER_ADMIN, OWNER, MANAGER})
#: Floor staff bound to outlets.
FLOOR_ROLES: frozenset[str] = frozenset({CASHIER, KITCHEN})

RoleSpec = Mapping[str, Iterable[str]] | Iterable[str]


def user_role(user: Any) -> str | None:
    """The role of an authenticated, active user; ``None`` for anyone else."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if not getattr(user, "is_active", False):
        return None
    return getattr(user, "role", None)


def user_has_role(user: Any, roles: Iterable[str]) -> bool:
    """True if the user is authenticated, active, and has one of ``roles``."""
    role = user_role(user)
    return role is not None and role in {str(r) for r in roles}


def is_super_admin(user: Any) -> bool:
    return user_role(user) == SUPER_ADMIN


def roles_for_request(spec: RoleSpec | None, *, action: str | None, method: str) -> set[str]:
    """The roles ``spec`` allows for this action/method (empty set: nobody).

    Precondition: ``method`` is the request's HTTP method; ``action`` the viewset action or None.
    """
    if spec is None:
        return set()
    if not isinstance(spec, Mapping):
        return {str(r) for r in spec}
    method = method.upper()
    for key in (action, method, "read" if method in SAFE_METHODS else "write", "*"):
        if key is not None and key in spec:
            return {str(r) for r in spec[key]}
    return set()


class RolePermission(BasePermission):
    """Allows a request when the user's role is in the roles the view declares for the action.

    The view declares ``allowed_roles`` (see the module docstring), or the class is configured
    with ``RolePermission.for_roles(spec)``. Unauthenticated requests get 401; authenticated
    users of another role get 403. Object scoping is not done here: read through selectors.
    """

    message = "Your role does not allow this action."
    #: Set on subclasses made by ``for_roles``; otherwise the view's ``allowed_roles`` is used.
    roles: RoleSpec | None = None

    @classmethod
    def for_roles(cls, spec: RoleSpec) -> type[RolePermission]:
        """A ``RolePermission`` subclass bound to ``spec`` instead of the view attribute."""
        frozen: RoleSpec
        if isinstance(spec, Mapping):
            frozen = {key: frozenset(str(r) for r in value) for key, value in spec.items()}
        else:
            frozen = frozenset(str(r) for r in spec)
        return type("RolePermissionFor", (cls,), {"roles": frozen})

    def allowed_for(self, request, view) -> set[str]:
        spec = self.roles if self.roles is not None else getattr(view, "allowed_roles", None)
        return roles_for_request(spec, action=getattr(view, "action", None),
                                 method=request.method)

    def has_permission(self, request, view) -> bool:
        role = user_role(request.user)
        if role is None:
            return False  # DRF answers 401 since the JWT authenticator sends a challenge
        if request.method == "OPTIONS" or not _has_handler(request, view):
            # OPTIONS describes the endpoint, no data; a method the view does not implement
            # must answer 405 (DRF checks permissions before it looks the handler up).
            return True
        return role in self.allowed_for(request, view)


def _has_handler(request, view) -> bool:
    method = request.method.lower()
    if method not in getattr(view, "http_method_names", ()):
        return False
    return callable(getattr(view, method, None))
