"""CONTRACT.md §1 for every endpoint: the error envelope, pagination, schema and docs, health.

This module is also a URLconf (``urlpatterns`` below) so the 500 path can be driven through a
view that raises, with the project's ``handler500``.
"""

from __future__ import annotations

import copy

import pytest
from django.db import connections
from django.db.utils import load_backend
from django.test import Client
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

import pos.health
from pos import urls as project_urls
from tests.tenants.helpers import assert_envelope


@api_view(["GET"])
@permission_classes([AllowAny])
def api_boom(request):
    raise RuntimeError("boom from an API view")


def plain_boom(request):
    raise RuntimeError("boom from a plain Django view")


handler404 = project_urls.handler404
handler500 = project_urls.handler500
urlpatterns = [
    path("boom/api/", api_boom),
    path("boom/plain/", plain_boom),
    path("", include(project_urls.urlpatterns)),
]


def assert_json(response) -> None:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]


# --- the envelope on every error status --------------------------------------------------------


def test_400_validation_error_has_field_details(world, client_for):
    response = client_for(world.owner).post("/api/products/", {"price": "-1"}, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert {"name", "sku", "price"} <= set(error["details"])
    assert_json(response)


def test_400_on_malformed_json(world, client_for):
    response = client_for(world.owner).post("/api/products/", "{not json",
                                            content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_401_without_token(world, client_for):
    response = client_for(None).get("/api/products/")
    assert_envelope(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_403_for_a_refused_role(world, client_for):
    response = client_for(world.cashier).post("/api/categories/", {"name": "X"}, format="json")
    assert_envelope(response, 403, "permission_denied")


def test_404_unknown_object_and_unknown_url(world, client_for):
    client = client_for(world.owner)
    assert_envelope(client.get("/api/products/00000000-0000-0000-0000-000000000000/"), 404,
                    "not_found")
    for url in ("/api/no-such-thing/", "/nowhere"):
        response = Client().get(url)
        assert_envelope(response, 404, "not_found")
        assert_json(response)


def test_405_method_not_allowed(world, client_for):
    response = client_for(world.owner).post("/api/auth/me/", {}, format="json")
    assert_envelope(response, 405, "method_not_allowed")
    response = client_for(world.owner).delete("/api/products/")
    assert_envelope(response, 405, "method_not_allowed")


def test_415_unsupported_media_type(world, client_for):
    response = client_for(world.owner).post("/api/categories/", "name=X",
                                            content_type="application/x-www-form-urlencoded")
    assert_envelope(response, 415, "unsupported_media_type")


def test_429_throttled(world, client_for):
    client = client_for(None)
    body = {"username": world.cashier.username, "password": "wrong"}
    for _ in range(10):
        client.post("/api/auth/token/", body, format="json")
    response = client.post("/api/auth/token/", body, format="json")
    error = assert_envelope(response, 429, "throttled")
    assert error["details"]["retry_after_s"] >= 1


@pytest.mark.urls("tests.test_conventions")
@pytest.mark.parametrize("url", ["/boom/api/", "/boom/plain/"])
def test_500_is_the_envelope_without_a_trace(db, url):
    response = Client(raise_request_exception=False).get(url)
    error = assert_envelope(response, 500, "server_error")
    assert_json(response)
    assert "boom" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert error["details"] == {}


# --- pagination, schema, docs ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/tenants/", "/api/outlets/", "/api/users/",
                                 "/api/categories/", "/api/products/", "/api/modifier-groups/"])
def test_lists_are_paginated(world, client_for, url):
    body = client_for(world.super_admin).get(url + "?page_size=1").json()
    assert set(body) == {"results", "next", "previous"}
    assert len(body["results"]) <= 1


def test_openapi_schema_and_docs(world):
    client = Client()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for expected in ("/api/auth/token/", "/api/auth/token/refresh/", "/api/auth/me/",
                     "/api/tenants/", "/api/outlets/{id}/", "/api/users/", "/api/categories/",
                     "/api/products/{id}/", "/api/modifier-groups/"):
        assert expected in paths, expected
    product_params = {p["name"] for p in paths["/api/products/"]["get"]["parameters"]}
    assert {"category", "is_available", "track_stock", "search", "page"} <= product_params
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


# --- health ----------------------------------------------------------------------------------


def test_healthz(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_everything_is_up(db):
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": True, "channel_layer": True}


@pytest.fixture
def unreachable_database(monkeypatch):
    """A real PostgreSQL connection object whose settings point at a closed port."""
    settings_dict = copy.deepcopy(connections["default"].settings_dict)
    settings_dict.update(HOST="127.0.0.1", PORT="1")
    backend = load_backend(settings_dict["ENGINE"])
    wrapper = backend.DatabaseWrapper(settings_dict, alias="unreachable")
    monkeypatch.setattr(pos.health, "connection", wrapper)
    yield wrapper
    wrapper.close()


def test_readyz_503_when_the_database_is_unreachable(db, unreachable_database):
    response = Client().get("/readyz")
    error = assert_envelope(response, 503, "not_ready")
    assert error["details"]["checks"] == {"database": False, "channel_layer": True}
    assert "database" in error["message"]


def test_readyz_503_when_the_channel_layer_is_unreachable(db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = Client().get("/readyz")
    error = assert_envelope(response, 503, "not_ready")
    assert error["details"]["checks"] == {"database": True, "channel_layer": False}
