"""Idempotency-Key (pos.idempotency), exercised through POST /api/orders/."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from orders.models import Order
from pos.idempotency import prune_idempotency_records
from pos.models import IdempotencyRecord, StreamEvent
from pos.streams import outbox
from pos.tasks import idempotency_prune
from tests import factories

URL = "/api/orders/"
SCOPE = "POST /api/orders/"


@pytest.fixture(autouse=True)
def _orders_alone(monkeypatch):
    monkeypatch.setattr(outbox, "_reactions", defaultdict(list))


@pytest.fixture
def product(world):
    return factories.make_product(world.tenant, price=Decimal("10000.00"))


def body(world, product, quantity=1) -> dict:
    return {
        "outlet": str(world.outlet.id),
        "type": "takeaway",
        "items": [{"product": str(product.id), "quantity": quantity}],
    }


def post(client, data, key, **extra):
    return client.post(URL, data, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)


def counts():
    return Order.objects.count(), StreamEvent.objects.count()


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_response(world, product, client_for):
    client = client_for(world.cashier)
    first = post(client, body(world, product), "key-1")
    assert first.status_code == 201
    assert not first.has_header("Idempotent-Replayed")

    second = post(client, body(world, product), "key-1")
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content  # byte for byte, key order included
    assert second["ETag"] == first["ETag"]
    assert counts() == (1, 1)


@pytest.mark.django_db
def test_key_order_and_whitespace_do_not_make_another_body(world, product, client_for):
    client = client_for(world.cashier)
    data = body(world, product)
    first = post(client, data, "key-ws")
    reordered = json.dumps(dict(reversed(list(data.items()))), indent=2)
    second = client.post(URL, reordered, content_type="application/json",
                         HTTP_IDEMPOTENCY_KEY="key-ws")
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_same_key_other_body_is_422(world, product, client_for):
    client = client_for(world.cashier)
    post(client, body(world, product), "key-2")
    before = counts()
    response = post(client, body(world, product, quantity=2), "key-2")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert counts() == before


@pytest.mark.django_db
def test_same_key_while_the_first_still_runs_is_409(world, product, client_for):
    # The claim a running request holds: same user, endpoint, key and body, no response yet.
    client = client_for(world.cashier)
    post(client, body(world, product), "probe")  # learn the fingerprint of this body
    fingerprint = IdempotencyRecord.objects.get(key="probe").fingerprint
    IdempotencyRecord.objects.create(
        user=world.cashier, scope=SCOPE, key="key-3", fingerprint=fingerprint
    )
    before = counts()
    response = post(client, body(world, product), "key-3")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_in_progress"
    assert counts() == before


@pytest.mark.django_db
def test_an_abandoned_claim_is_taken_over(world, product, client_for, settings):
    settings.IDEMPOTENCY_STALE_CLAIM_S = 60
    client = client_for(world.cashier)
    post(client, body(world, product), "probe")
    fingerprint = IdempotencyRecord.objects.get(key="probe").fingerprint
    claim = IdempotencyRecord.objects.create(
        user=world.cashier, scope=SCOPE, key="key-4", fingerprint=fingerprint
    )
    IdempotencyRecord.objects.filter(pk=claim.pk).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )
    response = post(client, body(world, product), "key-4")
    assert response.status_code == 201
    assert IdempotencyRecord.objects.get(pk=claim.pk).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_real_concurrent_retry_gets_409_while_the_first_runs(world, product, monkeypatch):
    import orders.api

    entered, release = threading.Event(), threading.Event()
    real_create = orders.api.order_create

    def slow_create(**kwargs):
        entered.set()
        assert release.wait(10)
        return real_create(**kwargs)

    monkeypatch.setattr(orders.api, "order_create", slow_create)
    results = {}

    def first_request():
        try:
            results["first"] = post(factories.client_for(world.cashier), body(world, product),
                                    "key-race")
        finally:
            connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    try:
        assert entered.wait(10)
        retry = post(factories.client_for(world.cashier), body(world, product), "key-race")
    finally:
        release.set()
        thread.join()

    assert retry.status_code == 409
    assert retry.json()["error"]["code"] == "idempotency_in_progress"
    assert results["first"].status_code == 201
    assert Order.objects.count() == 1
    replay = post(factories.client_for(world.cashier), body(world, product), "key-race")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == results["first"].json()


@pytest.mark.django_db
def test_keys_are_per_user(world, product, client_for):
    mine = post(client_for(world.cashier), body(world, product), "shared-key")
    theirs = post(client_for(world.manager), body(world, product), "shared-key")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert not theirs.has_header("Idempotent-Replayed")
    assert mine.json()["id"] != theirs.json()["id"]
    assert Order.objects.count() == 2


@pytest.mark.django_db
def test_client_errors_are_stored_and_replayed(world, product, client_for):
    client = client_for(world.cashier)
    bad = {**body(world, product), "items": [{"product": str(world.tenant.id), "quantity": 1}]}
    first = post(client, bad, "key-400")
    assert first.status_code == 400
    second = post(client, bad, "key-400")
    assert second.status_code == 400
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()


@pytest.mark.django_db
def test_a_server_error_releases_the_key_for_a_retry(world, product, client_for, monkeypatch):
    import orders.api

    real_create = orders.api.order_create

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(orders.api, "order_create", broken)
    client = client_for(world.cashier)
    with pytest.raises(RuntimeError):
        post(client, body(world, product), "key-500")
    assert not IdempotencyRecord.objects.filter(key="key-500").exists()

    monkeypatch.setattr(orders.api, "order_create", real_create)
    retry = post(client, body(world, product), "key-500")
    assert retry.status_code == 201
    assert not retry.has_header("Idempotent-Replayed")


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "tab\tinside", "caf\u00e9"])
def test_invalid_keys_are_400(world, product, client_for, key):
    response = post(client_for(world.cashier), body(world, product), key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "Idempotency-Key" in response.json()["error"]["details"]
    assert counts() == (0, 0)


@pytest.mark.django_db
def test_longest_key_is_accepted(world, product, client_for):
    response = post(client_for(world.cashier), body(world, product), "k" * 255)
    assert response.status_code == 201


@pytest.mark.django_db
def test_without_a_key_nothing_is_recorded(world, product, client_for):
    client = client_for(world.cashier)
    client.post(URL, body(world, product), format="json")
    client.post(URL, body(world, product), format="json")
    assert Order.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
def test_an_expired_key_starts_afresh(world, product, client_for, settings):
    client = client_for(world.cashier)
    post(client, body(world, product), "old-key")
    IdempotencyRecord.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS, minutes=1)
    )
    response = post(client, body(world, product, quantity=3), "old-key")  # another body
    assert response.status_code == 201
    assert not response.has_header("Idempotent-Replayed")
    assert Order.objects.count() == 2


@pytest.mark.django_db
def test_prune_deletes_only_records_past_the_ttl(world, product, client_for, settings):
    client = client_for(world.cashier)
    post(client, body(world, product), "old")
    post(client, body(world, product), "fresh")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS + 1)
    )
    assert prune_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
    IdempotencyRecord.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS + 1)
    )
    assert idempotency_prune() == 1  # the periodic task
    assert IdempotencyRecord.objects.count() == 0
