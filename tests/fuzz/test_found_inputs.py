"""Inputs the fuzzers found that made the server fail, kept as plain regression tests.

Each was first met as a 500 in test_api_schema.py or test_webhook_fuzz.py; here each is one
fixed request, so the fault is named and stays fixed. Bad input gets a 4xx with the error
envelope (or, for a query that is merely odd, a normal answer), never a 500.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.factories import access_token

pytestmark = pytest.mark.django_db

# +23:08 is a valid Python offset (anything under a day) but out of PostgreSQL's range
# (+-15:59), so it must be refused or normalised before it reaches the query.
ODD_OFFSET = "1176-02-27T22:05:08+23:08"


def _get(user, path: str, params: dict):
    client = Client(raise_request_exception=False)
    return client.get(path, params, headers={"Authorization": f"Bearer {access_token(user)}"})


def _assert_not_a_server_error(response) -> None:
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("param", ["created_after", "created_before"])
def test_orders_filter_with_an_offset_postgresql_cannot_store(world, param):
    _assert_not_a_server_error(_get(world.owner, "/api/orders/", {param: ODD_OFFSET}))


@pytest.mark.parametrize("param", ["created_after", "created_before"])
def test_audit_filter_with_an_offset_postgresql_cannot_store(world, param):
    _assert_not_a_server_error(_get(world.owner, "/api/audit/", {param: ODD_OFFSET}))


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_kitchen_metrics_for_the_first_and_last_representable_day(world, day):
    response = _get(world.owner, "/api/kds/metrics/", {"outlet": str(world.outlet.pk),
                                                        "date": day})
    _assert_not_a_server_error(response)


def _webhook(provider: str, body: bytes, headers: dict):
    client = Client(raise_request_exception=False)
    return client.generic("POST", f"/api/payments/webhook/{provider}/", data=body,
                          content_type="application/json", headers=headers)


def test_sandbox_signature_with_non_ascii_characters_is_a_bad_signature(world):
    body = json.dumps({"event_id": "e1", "payment": "x", "status": "succeeded",
                       "amount": "1.00"}).encode()
    response = _webhook("sandbox", body, {"X-Signature": "é" * 64})
    assert response.status_code == 401, response.content[:300]
    assert response.json()["error"]["code"] == "invalid_signature"


def test_midtrans_signature_key_with_non_ascii_characters_is_a_bad_signature(world, settings):
    settings.MIDTRANS_SERVER_KEY = "fuzz-midtrans-server-key"
    body = json.dumps({"order_id": "x", "status_code": "200", "gross_amount": "1.00",
                       "signature_key": "é" * 128, "transaction_status": "settlement",
                       "transaction_id": "t1"}).encode()
    response = _webhook("midtrans", body, {})
    assert response.status_code == 401, response.content[:300]
    assert response.json()["error"]["code"] == "invalid_signature"
