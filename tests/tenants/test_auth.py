"""Login, refresh rotation, /me, and brute-force throttling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tenants.models import Role, User
from tests import factories

TOKEN_URL = "/api/auth/token/"
REFRESH_URL = "/api/auth/token/refresh/"
ME_URL = "/api/auth/me/"


def login(username: str, password: str = factories.PASSWORD, client: APIClient | None = None):
    return (client or APIClient()).post(
        TOKEN_URL, {"username": username, "password": password}, format="json"
    )


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


@pytest.mark.parametrize("role", list(Role))
def test_login_returns_tokens_and_user(world, role):
    user = world.user(role)
    response = login(user.username)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"]["id"] == str(user.pk)
    assert body["user"]["username"] == user.username
    assert body["user"]["role"] == role
    assert "password" not in body["user"]
    expected_outlets = {
        Role.SUPER_ADMIN: set(),
        Role.OWNER: {str(world.outlet.pk), str(world.outlet2.pk)},  # owners have every outlet
    }.get(role, {str(world.outlet.pk)})
    assert set(body["user"]["outlets"]) == expected_outlets
    expected_tenant = None if role == Role.SUPER_ADMIN else str(world.tenant.pk)
    assert body["user"]["tenant"] == expected_tenant
    # The access token works.
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.get(ME_URL).json()["id"] == str(user.pk)
    user.refresh_from_db()
    assert user.last_login is not None


def test_login_wrong_password_is_401_envelope(world):
    error = assert_envelope(login(world.cashier.username, "wrong-password"), 401,
                            "not_authenticated")
    assert "credentials" in error["message"]


def test_login_unknown_user_is_401(world):
    assert_envelope(login("nobody-at-all"), 401, "not_authenticated")


def test_login_inactive_user_is_401(world):
    User.objects.filter(pk=world.cashier.pk).update(is_active=False)
    assert_envelope(login(world.cashier.username), 401, "not_authenticated")


def test_login_missing_fields_is_400(world):
    error = assert_envelope(APIClient().post(TOKEN_URL, {}, format="json"), 400,
                            "validation_error")
    assert set(error["details"]) == {"username", "password"}


def test_login_ignores_a_bad_authorization_header(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    assert login(world.cashier.username, client=client).status_code == 200


def test_refresh_rotates_and_blacklists_the_old_token(world):
    first = login(world.cashier.username).json()
    response = APIClient().post(REFRESH_URL, {"refresh": first["refresh"]}, format="json")
    assert response.status_code == 200, response.content
    second = response.json()
    assert set(second) == {"access", "refresh"}
    assert second["refresh"] != first["refresh"]
    # The new access token authenticates as the same user.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {second['access']}")
    assert client.get(ME_URL).json()["id"] == str(world.cashier.pk)
    # Reusing the old refresh token is refused...
    reuse = APIClient().post(REFRESH_URL, {"refresh": first["refresh"]}, format="json")
    assert_envelope(reuse, 401, "not_authenticated")
    # ...and the new one still works once, then is spent too.
    third = APIClient().post(REFRESH_URL, {"refresh": second["refresh"]}, format="json")
    assert third.status_code == 200
    again = APIClient().post(REFRESH_URL, {"refresh": second["refresh"]}, format="json")
    assert_envelope(again, 401, "not_authenticated")


def test_refresh_with_a_token_never_seen_before_works_once(world):
    # Tokens minted outside the login view (here: a test helper) are not yet outstanding.
    token = str(RefreshToken.for_user(world.kitchen))
    assert APIClient().post(REFRESH_URL, {"refresh": token}, format="json").status_code == 200
    reuse = APIClient().post(REFRESH_URL, {"refresh": token}, format="json")
    assert_envelope(reuse, 401, "not_authenticated")


@pytest.mark.parametrize(
    "make_token",
    [
        lambda user: "not-a-token",
        lambda user: str(AccessToken.for_user(user)),  # wrong token type
        lambda user: str(RefreshToken.for_user(user))[:-3] + "abc",  # bad signature
    ],
    ids=["garbage", "access-token", "tampered"],
)
def test_refresh_refuses_bad_tokens(world, make_token):
    response = APIClient().post(REFRESH_URL, {"refresh": make_token(world.cashier)},
                                format="json")
    assert_envelope(response, 401, "not_authenticated")


def test_refresh_refuses_expired_token(world):
    token = RefreshToken.for_user(world.cashier)
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = APIClient().post(REFRESH_URL, {"refresh": str(token)}, format="json")
    assert_envelope(response, 401, "not_authenticated")


def test_refresh_refuses_inactive_or_deleted_user(world):
    token = str(RefreshToken.for_user(world.cashier))
    User.objects.filter(pk=world.cashier.pk).update(is_active=False)
    assert_envelope(APIClient().post(REFRESH_URL, {"refresh": token}, format="json"), 401,
                    "not_authenticated")
    token = str(RefreshToken.for_user(world.kitchen))
    User.objects.filter(pk=world.kitchen.pk).delete()
    assert_envelope(APIClient().post(REFRESH_URL, {"refresh": token}, format="json"), 401,
                    "not_authenticated")


def test_refresh_missing_field_is_400(world):
    assert_envelope(APIClient().post(REFRESH_URL, {}, format="json"), 400, "validation_error")


@pytest.mark.parametrize("role", list(Role))
def test_me_returns_the_user(world, client_for, role):
    user = world.user(role)
    body = client_for(user).get(ME_URL).json()
    assert body["id"] == str(user.pk)
    assert body["role"] == role
    assert "password" not in body


def test_me_requires_a_valid_token(world):
    assert_envelope(APIClient().get(ME_URL), 401, "not_authenticated")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    assert_envelope(client.get(ME_URL), 401, "not_authenticated")
    expired = AccessToken.for_user(world.cashier)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {expired}")
    assert_envelope(client.get(ME_URL), 401, "not_authenticated")


def test_me_refuses_token_of_deactivated_user(world, client_for):
    client = client_for(world.cashier)
    User.objects.filter(pk=world.cashier.pk).update(is_active=False)
    assert_envelope(client.get(ME_URL), 401, "not_authenticated")


def test_login_is_throttled_per_address(world):
    for _ in range(10):  # the "login" rate: 10/min
        assert login(world.cashier.username, "wrong-password").status_code == 401
    error = assert_envelope(login(world.cashier.username), 429, "throttled")
    assert error["details"]["retry_after_s"] > 0
    # Even the right password is refused while throttled, and nothing was logged in.
    world.cashier.refresh_from_db()
    assert world.cashier.last_login is None


def test_login_is_throttled_per_username_across_addresses(world):
    for i in range(10):
        client = APIClient(REMOTE_ADDR=f"10.0.0.{i + 1}")
        assert login(world.manager.username, "wrong", client=client).status_code == 401
    response = login(world.manager.username, client=APIClient(REMOTE_ADDR="10.0.1.1"))
    assert_envelope(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # Another account from a fresh address is not affected.
    assert login(world.cashier.username, client=APIClient(REMOTE_ADDR="10.0.2.1")).status_code \
        == 200


def test_refresh_is_throttled(world):
    client = APIClient()
    for _ in range(30):  # the "token_refresh" rate: 30/min
        client.post(REFRESH_URL, {"refresh": "x"}, format="json")
    token = str(RefreshToken.for_user(world.cashier))
    assert_envelope(client.post(REFRESH_URL, {"refresh": token}, format="json"), 429,
                    "throttled")
