"""``pos.ws_auth.JWTAuthMiddleware``: who ``scope["user"]`` is, for every way a token arrives.

A tiny ASGI consumer behind the middleware reports the user it was given.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from pos.ws_auth import JWTAuthMiddleware, token_from_scope
from tenants.models import Role, User
from tests import factories


class WhoAmI(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send_json(
            {"authenticated": bool(user.is_authenticated),
             "id": str(user.pk) if user.is_authenticated else None}
        )


app = JWTAuthMiddleware(WhoAmI.as_asgi())


async def who(path: str = "/ws/probe/", headers=None) -> dict:
    communicator = WebsocketCommunicator(app, path, headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    message = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    return message


@pytest.fixture
def cashier(transactional_db):
    tenant = factories.make_tenant()
    return factories.make_user(Role.CASHIER, tenant, [factories.make_outlet(tenant)])


@database_sync_to_async
def token_for(user, **kw) -> str:
    token = AccessToken.for_user(user)
    if kw.get("expired"):
        token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


@pytest.mark.django_db(transaction=True)
async def test_valid_token_in_query(cashier):
    token = await token_for(cashier)
    assert await who(f"/ws/probe/?token={token}") == {"authenticated": True,
                                                        "id": str(cashier.pk)}


@pytest.mark.django_db(transaction=True)
async def test_valid_token_in_header(cashier):
    token = await token_for(cashier)
    headers = [(b"authorization", f"Bearer {token}".encode())]
    assert await who(headers=headers) == {"authenticated": True, "id": str(cashier.pk)}


@pytest.mark.django_db(transaction=True)
async def test_query_token_wins_over_header(cashier):
    other = await database_sync_to_async(factories.make_user)(Role.KITCHEN, cashier.tenant)
    query_token, header_token = await token_for(cashier), await token_for(other)
    headers = [(b"authorization", f"Bearer {header_token}".encode())]
    result = await who(f"/ws/probe/?token={query_token}", headers=headers)
    assert result["id"] == str(cashier.pk)


@pytest.mark.django_db(transaction=True)
async def test_expired_token_is_anonymous(cashier):
    token = await token_for(cashier, expired=True)
    assert (await who(f"/ws/probe/?token={token}"))["authenticated"] is False
    headers = [(b"authorization", f"Bearer {token}".encode())]
    assert (await who(headers=headers))["authenticated"] is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path,headers",
    [
        ("/ws/probe/", []),
        ("/ws/probe/?token=", []),
        ("/ws/probe/?token=garbage", []),
        ("/ws/probe/?token=a.b.c", []),
        ("/ws/probe/", [(b"authorization", b"Bearer garbage")]),
        ("/ws/probe/", [(b"authorization", b"Bearer")]),
        ("/ws/probe/", [(b"authorization", b"Basic dXNlcjpwYXNz")]),
    ],
    ids=["none", "empty-query", "garbage-query", "bad-jwt", "garbage-header", "no-token",
         "basic-auth"],
)
async def test_missing_or_garbage_token_is_anonymous(cashier, path, headers):
    assert await who(path, headers) == {"authenticated": False, "id": None}


@pytest.mark.django_db(transaction=True)
async def test_refresh_token_is_not_an_access_token(cashier):
    refresh = await database_sync_to_async(lambda: str(RefreshToken.for_user(cashier)))()
    assert (await who(f"/ws/probe/?token={refresh}"))["authenticated"] is False


@pytest.mark.django_db(transaction=True)
async def test_tampered_token_is_anonymous(cashier):
    token = await token_for(cashier)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    assert (await who(f"/ws/probe/?token={tampered}"))["authenticated"] is False


@pytest.mark.django_db(transaction=True)
async def test_inactive_or_deleted_user_is_anonymous(cashier):
    token = await token_for(cashier)
    await database_sync_to_async(User.objects.filter(pk=cashier.pk).update)(is_active=False)
    assert (await who(f"/ws/probe/?token={token}"))["authenticated"] is False
    await database_sync_to_async(User.objects.filter(pk=cashier.pk).delete)()
    assert (await who(f"/ws/probe/?token={token}"))["authenticated"] is False


def test_token_from_scope_forms():
    assert token_from_scope({"query_string": b"token=abc&since=3"}) == "abc"
    assert token_from_scope({"headers": [(b"authorization", b"bearer xyz")]}) == "xyz"
    assert token_from_scope({"headers": [(b"authorization", b"Token xyz")]}) is None
    assert token_from_scope({}) is None
