"""Hardening: socket origin check, CORS from settings, security headers, pinned JWT algorithm,
and production mode refusing unsafe settings."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import jwt
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from asgi import application
from tests.factories import access_token
from tests.liveserver import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


async def socket_close_code(path: str, headers: list[tuple[bytes, bytes]]) -> int | None:
    """None if the socket was accepted and sent its snapshot, else the close code."""
    comm = WebsocketCommunicator(application, path, headers=headers)
    accepted, code = await comm.connect()
    if not accepted:
        return code
    assert (await comm.receive_json_from(timeout=3))["type"] == "snapshot"
    await comm.disconnect()
    return None


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # native screens send no Origin
        (b"http://testserver", True),  # the page's own host
        (b"http://localhost:3000", True),  # a host in ALLOWED_HOSTS
        (b"https://evil.example", False),
    ],
)
async def test_socket_origin_check(world, origin, allowed):
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin))
    path = f"/ws/orders/{world.outlet.id}/?token={access_token(world.cashier)}"
    assert await socket_close_code(path, headers) == (None if allowed else 4403)


async def test_socket_origin_allow_list_from_settings(world, settings):
    settings.WS_ALLOWED_ORIGINS = ["https://kds.example"]
    path = f"/ws/orders/{world.outlet.id}/?token={access_token(world.cashier)}"
    ok = [(b"host", b"api.example"), (b"origin", b"https://kds.example")]
    refused = [(b"host", b"api.example"), (b"origin", b"https://other.example")]
    assert await socket_close_code(path, ok) is None
    assert await socket_close_code(path, refused) == 4403


def test_security_headers(client):
    response = client.get("/healthz")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Request-ID"]


def test_cors_answers_only_configured_origins(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://pos.example"]
    allowed = client.options(
        "/api/orders/",
        HTTP_ORIGIN="https://pos.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, idempotency-key",
    )
    assert allowed["Access-Control-Allow-Origin"] == "https://pos.example"
    assert "idempotency-key" in allowed["Access-Control-Allow-Headers"]
    refused = client.options(
        "/api/orders/", HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in refused


def _unsigned(payload: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_jwt_algorithm_is_pinned(world, client_for):
    from rest_framework.test import APIClient

    good = access_token(world.owner)
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = {
        "none": _unsigned(claims),
        "HS512": jwt.encode(claims, django_settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512"),
    }
    for name, token in forged.items():
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = api.get("/api/auth/me/")
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "not_authenticated"
    assert client_for(world.owner).get("/api/auth/me/").status_code == 200


def _settings_import(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    base.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env={**base, "DJANGO_SETTINGS_MODULE": "pos.settings"},
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"DATABASE_URL": "postgres://x@127.0.0.1/x", "DJANGO_ALLOWED_HOSTS": "pos.example"},
         "DJANGO_SECRET_KEY"),
        ({"DATABASE_URL": "postgres://x@127.0.0.1/x", "DJANGO_SECRET_KEY": "short",
          "DJANGO_ALLOWED_HOSTS": "pos.example"}, "DJANGO_SECRET_KEY"),
        ({"DATABASE_URL": "postgres://x@127.0.0.1/x", "DJANGO_SECRET_KEY": "k" * 50},
         "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "pos.example"}, "DJANGO_SECRET_KEY"),
    ],
)
def test_production_mode_refuses_unsafe_settings(env, complaint):
    done = _settings_import(env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and complaint in done.stderr


def test_production_mode_starts_with_safe_settings():
    done = _settings_import({
        "DATABASE_URL": "postgres://x@127.0.0.1/x", "REDIS_URL": "redis://127.0.0.1:6379/0",
        "DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "pos.example",
    })
    assert done.returncode == 0, done.stderr
