"""WebSocket handshake middleware: origin check and JWT authentication.

The token comes from ``?token=<access JWT>`` or an ``Authorization: Bearer`` header. A missing
or bad token leaves ``scope["user"]`` anonymous; the consumer then accepts and closes with 4401,
so clients can tell "log in again" from a network failure.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError


def token_from_scope(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin-1").split()
            if len(parts) == 2 and parts[0].lower() == "bearer":
                return parts[1]
    return None


@database_sync_to_async
def user_from_token(raw_token: str):
    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(raw_token.encode())
        user = auth.get_user(validated)
    except (InvalidToken, TokenError, Exception):  # any failure means "not authenticated"
        return AnonymousUser()
    if not user.is_active:
        return AnonymousUser()
    return user


async def scope_with_user(scope) -> dict:
    """A copy of ``scope`` with ``"user"`` set from its token."""
    raw = token_from_scope(scope)
    return dict(scope, user=await user_from_token(raw) if raw else AnonymousUser())


class JWTAuthMiddleware:
    # A middleware's frame stays suspended for as long as its socket is open, so ``__call__``
    # keeps no locals but its arguments: the token, or a header dict, would live on per socket.

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        return await self.inner(await scope_with_user(scope), receive, send)


def origin_allowed(origin: str, host_header: str | None) -> bool:
    """Browsers send Origin; native screens usually do not, and are let through."""
    if not origin:
        return True
    allowed = settings.WS_ALLOWED_ORIGINS
    if "*" in allowed or origin in allowed:
        return True
    origin_host = urlsplit(origin).netloc
    if host_header and origin_host == host_header:
        return True  # same origin as the page that opened the socket
    if not allowed:
        hostname = urlsplit(origin).hostname or ""
        return any(
            pattern == "*"
            or hostname == pattern
            or (pattern.startswith(".") and hostname.endswith(pattern))
            for pattern in settings.ALLOWED_HOSTS
        )
    return False


def scope_origin_allowed(scope) -> bool:
    """``origin_allowed`` for a WebSocket scope's ``Origin`` and ``Host`` headers."""
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin", b"").decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1") or None
    return origin_allowed(origin, host)


class OriginCheckMiddleware:
    """Refuses a cross-site handshake (close 4403 before accepting) from an unknown origin."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if not scope_origin_allowed(scope):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4403})
            return None
        return await self.inner(scope, receive, send)
