"""``pos.permissions``: how a view's declared roles are resolved per request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIRequestFactory

from pos import permissions as p
from tenants.models import Role, User

factory = APIRequestFactory()


def test_role_names_match_the_user_model():
    assert set(Role.values) == p.ALL_ROLES
    assert {Role.SUPER_ADMIN, Role.OWNER, Role.MANAGER} == p.MANAGEMENT_ROLES
    assert {Role.SUPER_ADMIN, Role.OWNER} == p.TENANT_ADMIN_ROLES
    assert {Role.CASHIER, Role.KITCHEN} == p.FLOOR_ROLES


SPEC = {
    "list": {Role.CASHIER},
    "POST": {Role.KITCHEN},
    "read": {Role.MANAGER},
    "*": {Role.OWNER},
}


@pytest.mark.parametrize(
    "action,method,expected",
    [
        ("list", "GET", {Role.CASHIER}),  # the action wins
        (None, "POST", {Role.KITCHEN}),  # then the method
        ("retrieve", "GET", {Role.MANAGER}),  # then read/write
        ("destroy", "DELETE", {Role.OWNER}),  # then "*"
    ],
)
def test_lookup_order(action, method, expected):
    assert p.roles_for_request(SPEC, action=action, method=method) == expected


def test_unmatched_request_is_refused_and_bare_sets_apply_everywhere():
    assert p.roles_for_request({"list": {Role.OWNER}}, action="create", method="POST") == set()
    assert p.roles_for_request(None, action="list", method="GET") == set()
    assert p.roles_for_request({Role.OWNER}, action="anything", method="PATCH") == {Role.OWNER}


class FakeView:
    def __init__(self, action=None, allowed_roles=None, methods=("get", "post")):
        self.action = action
        self.http_method_names = ["get", "post", "put", "patch", "delete", "options"]
        if allowed_roles is not None:
            self.allowed_roles = allowed_roles
        for method in methods:
            setattr(self, method, lambda *a, **kw: None)


def request_as(user, method="GET"):
    request = getattr(factory, method.lower())("/")
    request.user = user
    return request


def make_user(role, active=True):
    return User(role=role, is_active=active)


def test_view_attribute_and_for_roles():
    view = FakeView(action="create", allowed_roles={"create": {Role.OWNER}})
    assert p.RolePermission().has_permission(request_as(make_user(Role.OWNER), "POST"), view)
    assert not p.RolePermission().has_permission(request_as(make_user(Role.CASHIER), "POST"),
                                                 view)
    bound = p.RolePermission.for_roles({"create": {Role.CASHIER}})
    assert bound().has_permission(request_as(make_user(Role.CASHIER), "POST"), view)
    assert not bound().has_permission(request_as(make_user(Role.OWNER), "POST"), view)


def test_anonymous_and_inactive_users_are_refused():
    view = FakeView(action="list", allowed_roles=p.ALL_ROLES)
    assert not p.RolePermission().has_permission(request_as(AnonymousUser()), view)
    assert not p.RolePermission().has_permission(
        request_as(make_user(Role.OWNER, active=False)), view)
    assert p.user_role(AnonymousUser()) is None
    assert not p.user_has_role(make_user(Role.OWNER, active=False), {Role.OWNER})
    assert p.user_has_role(make_user(Role.OWNER), {Role.OWNER, Role.MANAGER})
    assert p.is_super_admin(make_user(Role.SUPER_ADMIN))


def test_options_and_unimplemented_methods_pass_the_gate_for_a_405():
    view = FakeView(action=None, allowed_roles={"list": {Role.OWNER}}, methods=("get",))
    cashier = make_user(Role.CASHIER)
    assert p.RolePermission().has_permission(request_as(cashier, "DELETE"), view)
    assert p.RolePermission().has_permission(request_as(cashier, "OPTIONS"), view)
    assert not p.RolePermission().has_permission(request_as(cashier, "GET"), view)
