"""Staff management rules: who may create, change and delete whom."""

from __future__ import annotations

import pytest

from tenants.models import Role, User
from tests import factories
from tests.tenants.helpers import assert_envelope

NEW_PASSWORD = "another-Long-passphrase-9"


def create(client, **body):
    body.setdefault("password", NEW_PASSWORD)
    return client.post("/api/users/", body, format="json")


def snapshot(user: User) -> tuple:
    user = User.objects.get(pk=user.pk)
    return (user.username, user.role, user.tenant_id, user.is_active, user.password,
            sorted(str(o) for o in user.outlets.values_list("pk", flat=True)))


# --- create ----------------------------------------------------------------------------------


def test_owner_creates_staff_in_own_tenant(world, client_for):
    response = create(client_for(world.owner), username="m1", role="manager",
                      tenant=str(world.other_tenant.pk), outlets=[str(world.outlet2.pk)])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tenant"] == str(world.tenant.pk)  # forced, whatever was sent
    assert body["outlets"] == [str(world.outlet2.pk)]
    assert body["role"] == "manager"
    assert body["is_active"] is True


def test_owner_cannot_create_a_super_admin(world, client_for):
    before = User.objects.count()
    response = create(client_for(world.owner), username="boss", role="super_admin")
    assert_envelope(response, 403, "permission_denied")
    assert User.objects.count() == before


def test_owner_cannot_assign_another_tenants_outlet(world, client_for):
    before = User.objects.count()
    response = create(client_for(world.owner), username="x", role="cashier",
                      outlets=[str(world.other_outlet.pk)])
    assert "outlets" in assert_envelope(response, 400, "validation_error")["details"]
    assert User.objects.count() == before


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_manager_creates_floor_staff_of_own_outlets(world, client_for, role):
    response = create(client_for(world.manager), username="floor", role=role,
                      outlets=[str(world.outlet.pk)])
    assert response.status_code == 201, response.content
    assert User.objects.get(username="floor").tenant_id == world.tenant.pk


@pytest.mark.parametrize("role", ["manager", "owner", "super_admin"])
def test_manager_cannot_create_higher_roles(world, client_for, role):
    before = User.objects.count()
    response = create(client_for(world.manager), username="up", role=role,
                      outlets=[str(world.outlet.pk)])
    assert_envelope(response, 403, "permission_denied")
    assert User.objects.count() == before


@pytest.mark.parametrize("outlets", [[], "outlet2", "other_outlet"])
def test_manager_must_use_own_outlets(world, client_for, outlets):
    before = User.objects.count()
    if isinstance(outlets, str):
        outlets = [str(getattr(world, outlets).pk)]
    response = create(client_for(world.manager), username="floor", role="cashier",
                      outlets=outlets)
    assert "outlets" in assert_envelope(response, 400, "validation_error")["details"]
    assert User.objects.count() == before


def test_super_admin_creates_in_any_tenant(world, client_for):
    client = client_for(world.super_admin)
    response = create(client, username="o2", role="owner", tenant=str(world.other_tenant.pk))
    assert response.status_code == 201, response.content
    assert User.objects.get(username="o2").tenant_id == world.other_tenant.pk
    # Without a tenant, a tenant role is refused.
    refused = create(client, username="o3", role="owner")
    assert "tenant" in assert_envelope(refused, 400, "validation_error")["details"]
    # Outlets must belong to the tenant.
    mixed = create(client, username="o4", role="cashier", tenant=str(world.tenant.pk),
                   outlets=[str(world.other_outlet.pk)])
    assert "outlets" in assert_envelope(mixed, 400, "validation_error")["details"]
    # Another platform admin: no tenant.
    admin = create(client, username="admin2", role="super_admin")
    assert admin.status_code == 201
    created = User.objects.get(username="admin2")
    assert created.tenant_id is None and created.is_superuser
    assert not User.objects.filter(username__in=["o3", "o4"]).exists()


@pytest.mark.parametrize(
    "body,field",
    [
        ({"password": "123"}, "password"),
        ({"password": "password"}, "password"),  # too common
        ({"password": None}, "password"),
        ({"username": "has spaces!"}, "username"),
        ({"role": "chef"}, "role"),
        ({"outlets": ["00000000-0000-0000-0000-000000000000"]}, "outlets"),
    ],
)
def test_invalid_user_bodies(world, client_for, body, field):
    before = User.objects.count()
    full = {"username": "valid-name", "role": "cashier", "outlets": [str(world.outlet.pk)],
            "password": NEW_PASSWORD, **body}
    if full["password"] is None:
        del full["password"]
    response = client_for(world.owner).post("/api/users/", full, format="json")
    assert field in assert_envelope(response, 400, "validation_error")["details"]
    assert User.objects.count() == before


def test_duplicate_username(world, client_for):
    response = create(client_for(world.owner), username=world.other_cashier.username,
                      role="cashier")
    assert "username" in assert_envelope(response, 400, "validation_error")["details"]


def test_password_is_never_rendered(world, client_for):
    for url in ("/api/users/", f"/api/users/{world.cashier.pk}/", "/api/auth/me/"):
        assert "password" not in client_for(world.owner).get(url).content.decode()


# --- update ----------------------------------------------------------------------------------


def test_user_changes_own_password_with_current_password(world, client_for):
    client = client_for(world.cashier)
    url = f"/api/users/{world.cashier.pk}/"
    before = snapshot(world.cashier)
    missing = client.patch(url, {"password": NEW_PASSWORD}, format="json")
    assert "current_password" in assert_envelope(missing, 400, "validation_error")["details"]
    wrong = client.patch(url, {"password": NEW_PASSWORD, "current_password": "nope"},
                         format="json")
    assert_envelope(wrong, 400, "validation_error")
    weak = client.patch(url, {"password": "123", "current_password": factories.PASSWORD},
                        format="json")
    assert "password" in assert_envelope(weak, 400, "validation_error")["details"]
    assert snapshot(world.cashier) == before
    ok = client.patch(url, {"password": NEW_PASSWORD, "current_password": factories.PASSWORD},
                      format="json")
    assert ok.status_code == 200, ok.content
    login = client_for(None).post("/api/auth/token/",
                                  {"username": world.cashier.username, "password": NEW_PASSWORD},
                                  format="json")
    assert login.status_code == 200


@pytest.mark.parametrize("role", [Role.MANAGER, Role.CASHIER, Role.KITCHEN])
@pytest.mark.parametrize(
    "body",
    [{"role": "owner"}, {"is_active": False}, {"username": "renamed"}, {"outlets": []}],
    ids=["role", "is_active", "username", "outlets"],
)
def test_staff_cannot_change_own_account_beyond_password(world, client_for, role, body):
    user = world.user(role)
    before = snapshot(user)
    response = client_for(user).patch(f"/api/users/{user.pk}/", body, format="json")
    assert_envelope(response, 403, "permission_denied")
    assert snapshot(user) == before


def test_owner_may_rename_self_but_not_demote_self(world, client_for):
    client = client_for(world.owner)
    url = f"/api/users/{world.owner.pk}/"
    assert client.patch(url, {"username": "the-owner"}, format="json").status_code == 200
    assert_envelope(client.patch(url, {"role": "cashier"}, format="json"), 403,
                    "permission_denied")
    world.owner.refresh_from_db()
    assert (world.owner.username, world.owner.role) == ("the-owner", Role.OWNER)


def test_owner_changes_staff_role_and_outlets(world, client_for):
    response = client_for(world.owner).patch(
        f"/api/users/{world.cashier.pk}/",
        {"role": "manager", "outlets": [str(world.outlet2.pk)]},
        format="json",
    )
    assert response.status_code == 200, response.content
    world.cashier.refresh_from_db()
    assert world.cashier.role == Role.MANAGER
    assert list(world.cashier.outlets.all()) == [world.outlet2]


def test_owner_cannot_promote_to_super_admin(world, client_for):
    before = snapshot(world.cashier)
    response = client_for(world.owner).patch(f"/api/users/{world.cashier.pk}/",
                                             {"role": "super_admin"}, format="json")
    assert_envelope(response, 403, "permission_denied")
    assert snapshot(world.cashier) == before


def test_owner_sets_another_users_password_without_current_one(world, client_for):
    response = client_for(world.owner).patch(f"/api/users/{world.kitchen.pk}/",
                                             {"password": NEW_PASSWORD}, format="json")
    assert response.status_code == 200
    world.kitchen.refresh_from_db()
    assert world.kitchen.check_password(NEW_PASSWORD)


def test_manager_cannot_promote_floor_staff(world, client_for):
    before = snapshot(world.cashier)
    response = client_for(world.manager).patch(f"/api/users/{world.cashier.pk}/",
                                               {"role": "manager"}, format="json")
    assert_envelope(response, 403, "permission_denied")
    assert snapshot(world.cashier) == before


def test_manager_switches_cashier_to_kitchen(world, client_for):
    response = client_for(world.manager).patch(f"/api/users/{world.cashier.pk}/",
                                               {"role": "kitchen"}, format="json")
    assert response.status_code == 200, response.content
    world.cashier.refresh_from_db()
    assert world.cashier.role == Role.KITCHEN
    assert list(world.cashier.outlets.all()) == [world.outlet]


def test_manager_cannot_move_staff_to_an_outlet_it_does_not_run(world, client_for):
    before = snapshot(world.cashier)
    response = client_for(world.manager).patch(
        f"/api/users/{world.cashier.pk}/", {"outlets": [str(world.outlet2.pk)]}, format="json"
    )
    assert "outlets" in assert_envelope(response, 400, "validation_error")["details"]
    assert snapshot(world.cashier) == before


def test_manager_keeps_the_outlets_it_cannot_see(world, client_for):
    shared = factories.make_user(Role.CASHIER, world.tenant, [world.outlet, world.outlet2])
    response = client_for(world.manager).patch(
        f"/api/users/{shared.pk}/", {"outlets": [str(world.outlet.pk)]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert set(shared.outlets.all()) == {world.outlet, world.outlet2}


@pytest.mark.parametrize("target", ["owner", "manager2", "other_cashier"])
def test_manager_cannot_see_or_touch_others(world, client_for, target):
    user = getattr(world, target)
    before = snapshot(user)
    client = client_for(world.manager)
    assert_envelope(client.get(f"/api/users/{user.pk}/"), 404, "not_found")
    assert_envelope(client.patch(f"/api/users/{user.pk}/", {"is_active": False},
                                 format="json"), 404, "not_found")
    assert_envelope(client.delete(f"/api/users/{user.pk}/"), 404, "not_found")
    assert snapshot(user) == before


def test_super_admin_turns_staff_into_platform_admin(world, client_for):
    response = client_for(world.super_admin).patch(f"/api/users/{world.cashier.pk}/",
                                                   {"role": "super_admin"}, format="json")
    assert response.status_code == 200, response.content
    world.cashier.refresh_from_db()
    assert world.cashier.tenant_id is None
    assert not world.cashier.outlets.exists()


def test_super_admin_moves_user_to_another_tenant(world, client_for):
    response = client_for(world.super_admin).patch(
        f"/api/users/{world.cashier.pk}/", {"tenant": str(world.other_tenant.pk)}, format="json"
    )
    assert response.status_code == 200, response.content
    world.cashier.refresh_from_db()
    assert world.cashier.tenant_id == world.other_tenant.pk
    assert not world.cashier.outlets.exists()  # the old tenant's outlets do not follow


# --- delete ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SUPER_ADMIN, Role.OWNER, Role.MANAGER])
def test_nobody_deletes_themselves(world, client_for, role):
    user = world.user(role)
    response = client_for(user).delete(f"/api/users/{user.pk}/")
    assert_envelope(response, 403, "permission_denied")
    assert User.objects.filter(pk=user.pk).exists()


def test_owner_deletes_a_manager(world, client_for):
    response = client_for(world.owner).delete(f"/api/users/{world.manager2.pk}/")
    assert response.status_code == 204
    assert not User.objects.filter(pk=world.manager2.pk).exists()


def test_filters(world, client_for):
    client = client_for(world.owner)
    rows = client.get("/api/users/?role=kitchen").json()["results"]
    assert [row["id"] for row in rows] == [str(world.kitchen.pk)]
    rows = client.get(f"/api/users/?outlets={world.outlet2.pk}").json()["results"]
    assert [row["id"] for row in rows] == [str(world.manager2.pk)]
    rows = client.get(f"/api/users/?search={world.cashier.username}").json()["results"]
    assert [row["id"] for row in rows] == [str(world.cashier.pk)]


def test_list_query_count_does_not_grow_with_rows(world, client_for,
                                                  django_assert_max_num_queries):
    for _ in range(10):
        factories.make_user(Role.CASHIER, world.tenant, [world.outlet, world.outlet2])
        factories.make_user(Role.OWNER, world.tenant)
    for user in (world.super_admin, world.owner, world.manager):
        with django_assert_max_num_queries(8):
            response = client_for(user).get("/api/users/?page_size=200")
        assert response.status_code == 200
