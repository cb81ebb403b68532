"""Bad input on ``POST /api/payments/webhook/<provider>/``: forged, replayed and truncated
signatures, bodies in other encodings, empty and huge bodies.

The gateway's signature is the webhook's only authentication, so each refused request must
answer with the error envelope and leave every watched row (payments, webhook events, the
event outbox, orders) exactly as it was; a genuine webhook delivered again must change nothing
the second time.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import services as payment_services
from payments.gateways.midtrans import signature_for
from payments.models import Payment, WebhookEvent
from pos.models import StreamEvent
from tenants.models import Role
from tests.fuzz.conftest import fingerprint

pytestmark = pytest.mark.django_db(transaction=True)

MIDTRANS_KEY = "fuzz-midtrans-server-key"
SANDBOX_SECRET = "fuzz-sandbox-secret"


def url(provider: str) -> str:
    return f"/api/payments/webhook/{provider}/"


def post(provider: str, body: bytes, headers: dict | None = None,
         content_type: str = "application/json"):
    # A failure inside the view answers 500, as a real server does, instead of raising here.
    client = Client(raise_request_exception=False)
    return client.generic("POST", url(provider), data=body, content_type=content_type,
                          headers=headers or {})


def hmac_hex(body: bytes, key: str = SANDBOX_SECRET, digest=hashlib.sha256) -> str:
    return hmac.new(key.encode(), body, digest).hexdigest()


def sandbox_body(payment, *, status="succeeded", amount=None, event_id=None, **extra) -> bytes:
    return json.dumps({
        "event_id": event_id or f"evt-{uuid.uuid4().hex}",
        "payment": str(payment.pk),
        "status": status,
        "amount": str(payment.amount if amount is None else amount),
        **extra,
    }).encode()


def midtrans_body(payment, *, key=MIDTRANS_KEY, gross_amount=None, signature=None,
                  transaction_status="settlement", **extra) -> bytes:
    gross = str(payment.amount if gross_amount is None else gross_amount)
    fields = {"order_id": str(payment.pk), "status_code": "200", "gross_amount": gross}
    body = {
        **fields,
        "transaction_status": transaction_status,
        "transaction_id": f"tx-{uuid.uuid4().hex}",
        "fraud_status": "accept",
        "signature_key": signature if signature is not None
        else signature_for(**fields, server_key=key),
        **extra,
    }
    return json.dumps(body).encode()


def assert_refused(response, statuses: set[int], case: str = "") -> None:
    assert response.status_code in statuses, (case, response.status_code,
                                              response.content[:300])
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert isinstance(error["details"], dict)


@pytest.fixture
def pending(seeded, settings):
    """A pending sandbox QR payment and a pending Midtrans one."""
    settings.PAYMENTS_SANDBOX_SECRET = SANDBOX_SECRET
    settings.MIDTRANS_SERVER_KEY = MIDTRANS_KEY
    sandbox = seeded.payments["qris"]
    other = payment_services.payment_create(
        actor=seeded.users[Role.CASHIER], order_id=seeded.orders[0].pk, method="ewallet",
        amount=Decimal("1500.00"),
    )
    # Created through the sandbox (no network), then handed to Midtrans: the webhook path
    # only looks at the provider name and the amount.
    Payment.objects.filter(pk=other.pk).update(provider="midtrans")
    other.refresh_from_db()
    assert sandbox.status == other.status == "pending"
    return sandbox, other


def _latin1(data: dict) -> bytes:
    """JSON text with its non-ASCII characters left raw, encoded as latin-1 (not UTF-8)."""
    raw = json.dumps(data, ensure_ascii=False).encode("latin-1")
    assert not raw.isascii()
    return raw


def _sandbox_cases(payment):
    body = sandbox_body(payment)
    good = hmac_hex(body)
    latin = _latin1(json.loads(sandbox_body(payment, event_id="évènement")))
    zipped = gzip.compress(body)
    huge = sandbox_body(payment, pad="x" * (3 * 1024 * 1024))
    return {
        "no signature": (body, {}, {401}),
        "empty signature": (body, {"X-Signature": ""}, {401}),
        "forged with another secret": (body, {"X-Signature": hmac_hex(body, "guess")}, {401}),
        "signature of another body": (
            body, {"X-Signature": hmac_hex(sandbox_body(payment, amount="1.00"))}, {401}),
        "truncated to 63": (body, {"X-Signature": good[:63]}, {401}),
        "truncated to 32": (body, {"X-Signature": good[:32]}, {401}),
        "truncated to 1": (body, {"X-Signature": good[:1]}, {401}),
        "one character more": (body, {"X-Signature": good + "0"}, {401}),
        "one hex digit changed": (
            body, {"X-Signature": good[:-1] + ("0" if good[-1] != "0" else "1")}, {401}),
        "sha1 instead of sha256": (
            body, {"X-Signature": hmac_hex(body, digest=hashlib.sha1)}, {401}),
        "base64 instead of hex": (body, {"X-Signature": base64.b64encode(
            hmac.new(SANDBOX_SECRET.encode(), body, hashlib.sha256).digest()).decode()}, {401}),
        "body changed after signing": (body + b" ", {"X-Signature": good}, {401}),
        "utf-16 body, signature of utf-8": (
            body.decode().encode("utf-16"), {"X-Signature": good}, {401}),
        "latin-1 body, signed": (latin, {"X-Signature": hmac_hex(latin)}, {400}),
        "gzip body, signed": (zipped, {"X-Signature": hmac_hex(zipped),
                                       "Content-Encoding": "gzip"}, {400}),
        "empty body, signed": (b"", {"X-Signature": hmac_hex(b"")}, {400}),
        "json array, signed": (b"[]", {"X-Signature": hmac_hex(b"[]")}, {400}),
        "huge body, signed": (huge, {"X-Signature": hmac_hex(huge)}, {400, 413}),
        "amount mismatch, signed": (
            (m := sandbox_body(payment, amount="1.00")), {"X-Signature": hmac_hex(m)}, {400}),
        "unknown payment, signed": (
            (u := sandbox_body(payment).replace(str(payment.pk).encode(),
                                                str(uuid.uuid4()).encode())),
            {"X-Signature": hmac_hex(u)}, {404}),
        "status not allowed, signed": (
            (s := sandbox_body(payment, status="refunded")), {"X-Signature": hmac_hex(s)}, {400}),
    }


def _midtrans_cases(payment):
    body = json.loads(midtrans_body(payment))
    good = body["signature_key"]

    def variant(**changes) -> bytes:
        return json.dumps({**body, **changes}).encode()

    utf16 = variant(signature_key="0" * 128).decode().encode("utf-16")
    return {
        "no signature_key": (json.dumps({k: v for k, v in body.items()
                                         if k != "signature_key"}).encode(), {401}),
        "empty signature_key": (variant(signature_key=""), {401}),
        "forged with another key": (midtrans_body(payment, key="guess"), {401}),
        "truncated to 127": (variant(signature_key=good[:127]), {401}),
        "truncated to 64": (variant(signature_key=good[:64]), {401}),
        "signature of another amount": (
            variant(signature_key=json.loads(midtrans_body(payment, gross_amount="1.00"))
                    ["signature_key"]), {401}),
        "signature_key not a string": (variant(signature_key=12345), {401}),
        "utf-16 body, forged": (utf16, {401}),
        "latin-1 body": (_latin1({**body, "transaction_id": "tx-é"}), {401}),
        "gzip body": (gzip.compress(variant()), {401}),
        "empty body": (b"", {401}),
        "huge body": (variant(pad="x" * (3 * 1024 * 1024)), {400, 413}),
        "amount mismatch, signed": (midtrans_body(payment, gross_amount="1.00"), {400}),
        "no transaction_id, signed": (variant(transaction_id=None), {400}),
    }


def test_refused_sandbox_webhooks_change_nothing(pending):
    sandbox, _ = pending
    before = fingerprint()
    for name, (body, headers, statuses) in _sandbox_cases(sandbox).items():
        response = post("sandbox", body, headers)
        assert_refused(response, statuses, name)
        assert fingerprint() == before, f"{name}: a refused webhook changed something"


def test_refused_midtrans_webhooks_change_nothing(pending):
    _, midtrans = pending
    before = fingerprint()
    for name, (body, statuses) in _midtrans_cases(midtrans).items():
        response = post("midtrans", body)
        assert_refused(response, statuses, name)
        assert fingerprint() == before, f"{name}: a refused webhook changed something"


def test_unknown_provider_is_404_and_changes_nothing(pending):
    sandbox, _ = pending
    before = fingerprint()
    body = sandbox_body(sandbox)
    for provider in ("paypal", "SANDBOX", "sandbox2"):
        assert_refused(post(provider, body, {"X-Signature": hmac_hex(body)}), {404})
    assert fingerprint() == before


def _state(payment) -> tuple:
    return (
        list(Payment.objects.filter(pk=payment.pk).values_list("status", "provider_ref",
                                                                "settled_at")),
        WebhookEvent.objects.count(),
        list(StreamEvent.objects.order_by("pk").values_list("pk", "name")),
    )


@pytest.mark.parametrize("provider", ["sandbox", "midtrans"])
def test_a_replayed_webhook_changes_nothing_the_second_time(pending, provider):
    payment = pending[0] if provider == "sandbox" else pending[1]
    if provider == "sandbox":
        body = sandbox_body(payment)
        headers = {"X-Signature": hmac_hex(body)}
    else:
        body, headers = midtrans_body(payment), {}

    first = post(provider, body, headers)
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "applied"
    applied = fingerprint()
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"

    for _ in range(3):
        again = post(provider, body, headers)
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"
        assert fingerprint() == applied


def test_the_same_event_id_saying_something_else_changes_nothing(pending):
    sandbox, _ = pending
    event_id = f"evt-{uuid.uuid4().hex}"
    first = sandbox_body(sandbox, event_id=event_id)
    assert post("sandbox", first, {"X-Signature": hmac_hex(first)}).json()["status"] == "applied"
    applied = fingerprint()
    other = sandbox_body(sandbox, event_id=event_id, status="failed")
    response = post("sandbox", other, {"X-Signature": hmac_hex(other)})
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert fingerprint() == applied


def test_a_late_webhook_for_a_final_payment_changes_no_state(pending):
    sandbox, _ = pending
    paid = sandbox_body(sandbox)
    assert post("sandbox", paid, {"X-Signature": hmac_hex(paid)}).json()["status"] == "applied"
    before = _state(sandbox)
    late = sandbox_body(sandbox, status="failed")
    response = post("sandbox", late, {"X-Signature": hmac_hex(late)})
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    after = _state(sandbox)
    assert after[0] == before[0] and after[2] == before[2]  # payment and outbox as they were


signatures = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.binary(min_size=1, max_size=64).map(lambda b: hmac_hex(b)),  # signs something else
)
bodies = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(str.encode),
    st.dictionaries(st.sampled_from(["event_id", "payment", "status", "amount", "order_id",
                                     "status_code", "gross_amount", "signature_key",
                                     "transaction_status", "transaction_id"]),
                    st.one_of(st.text(max_size=30), st.integers(), st.none(),
                              st.floats(allow_nan=False)),
                    max_size=10).map(lambda d: json.dumps(d).encode()),
)


@pytest.mark.timeout(300)
def test_random_unsigned_webhooks_are_refused_and_change_nothing(pending):
    sandbox, midtrans = pending
    before = fingerprint()

    @settings(max_examples=80, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(provider=st.sampled_from(["sandbox", "midtrans"]), body=bodies, signature=signatures,
           real_payment=st.booleans())
    def fuzz(provider, body, signature, real_payment) -> None:
        if real_payment:  # point a forged body at a real, pending payment
            target = sandbox if provider == "sandbox" else midtrans
            body = body.replace(b'"payment": "', f'"payment": "{target.pk}'.encode())
        headers = {} if signature is None else {"X-Signature": signature}
        response = post(provider, body, headers)
        assert_refused(response, {400, 401, 404})
        assert fingerprint() == before

    fuzz()
