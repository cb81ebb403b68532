"""``Idempotency-Key`` for creation endpoints: one mechanism, reused by every app.

Put ``@idempotent`` directly on the view method that creates (``post`` of an ``APIView``,
``create`` of a viewset, or an ``@action`` method: below ``@action``/``@extend_schema``)::

    class PaymentViewSet(...):
        @idempotent
        def create(self, request, *args, **kwargs): ...

A request without the header runs as usual. With it, the key is scoped to the user and to the
endpoint (``"POST /api/orders/"``) and kept ``IDEMPOTENCY_TTL_HOURS`` (24 h):

- first use: the key is *claimed* by an INSERT that relies on the unique constraint (so two
  racing requests cannot both win), committed in its own transaction before the view runs;
  the view's response is stored afterwards;
- same key, same body, first request finished: the stored response is replayed (same status,
  same body, header ``Idempotent-Replayed: true``) and the view does not run;
- same key, other body: 422 ``idempotency_key_reused``;
- same key while the first request still runs: 409 ``idempotency_in_progress``.

Which responses are kept: every response below 500, 4xx included. A 400 for a bad body is
replayed as such (the body is the same, so the answer would be the same), and a 409 such as
``insufficient_stock`` is replayed too: a client that wants to try again after the situation
changed sends a new key. A 5xx, or an exception escaping the view, releases the claim, so a
retry with the same key runs the view again (its transaction rolled back, nothing was done).

The body fingerprint is the SHA-256 of the parsed JSON body re-serialised with sorted keys, so
whitespace and key order do not matter. A claim left "in progress" by a process that died is
taken over by a retry after ``IDEMPOTENCY_STALE_CLAIM_S`` seconds (default 300).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from pos.api_errors import ApiError, Conflict
from pos.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers of the first response that a replay repeats along with status and body.
REPLAYED_RESPONSE_HEADERS = ("ETag", "Location")
_KEY_RE = re.compile(r"^[\x20-\x7e]{1,255}$")
_SCOPE_MAX = 120


class IdempotencyKeyReused(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request body."


class IdempotencyInProgress(Conflict):
    default_code = "idempotency_in_progress"
    default_detail = "A request with this Idempotency-Key is still being processed; retry later."


def _ttl() -> timedelta:
    return timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)


def _stale_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "IDEMPOTENCY_STALE_CLAIM_S", 300))


def _validated_key(raw: str) -> str:
    key = raw.strip()
    if not _KEY_RE.match(key):
        raise ValidationError(
            {HEADER: ["Must be 1 to 255 printable ASCII characters."]}
        )
    return key


def _scope(request) -> str:
    scope = f"{request.method} {request.path}"
    if len(scope) > _SCOPE_MAX:
        scope = f"{request.method} sha256:{hashlib.sha256(request.path.encode()).hexdigest()}"
    return scope


def _fingerprint(request) -> str:
    canonical = json.dumps(
        request.data, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim(user, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Claim the key: the new record, or None if a record for it already exists.

    Each statement commits on its own (autocommit), so a concurrent request sees the claim.
    """
    expired = timezone.now() - _ttl()
    IdempotencyRecord.objects.filter(
        user=user, scope=scope, key=key, created_at__lt=expired
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                user=user, scope=scope, key=key, fingerprint=fingerprint
            )
    except IntegrityError:
        return None


def _take_over_stale(record: IdempotencyRecord) -> bool:
    """Atomically take an abandoned in-progress claim; True if this request now owns it."""
    now = timezone.now()
    return bool(
        IdempotencyRecord.objects.filter(
            pk=record.pk, status_code__isnull=True, created_at__lt=now - _stale_after()
        ).update(created_at=now)
    )


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()


def _store(record: IdempotencyRecord, response: Response) -> None:
    body = json.dumps(response.data, cls=DjangoJSONEncoder)
    headers = {
        name: response[name] for name in REPLAYED_RESPONSE_HEADERS if response.has_header(name)
    }
    # The body is kept as JSON text: a jsonb column would reorder its keys.
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=response.status_code,
        response_body={"body": body, "headers": headers},
    )


def _replay(record: IdempotencyRecord) -> Response:
    stored = record.response_body or {}
    data = json.loads(stored["body"]) if stored.get("body") is not None else None
    headers = {**stored.get("headers", {}), REPLAYED_HEADER: "true"}
    return Response(data, status=record.status_code, headers=headers)


def _run_once(view, view_method, request, args, kwargs, record: IdempotencyRecord):
    """Run the view for a claimed key and keep (or release) the claim by the outcome."""
    try:
        try:
            response = view_method(view, request, *args, **kwargs)
        except Exception as exc:
            # Turn API errors into their response here, so a 4xx is stored like any other
            # answer; anything the handler does not know re-raises (a 500: released below).
            response = view.handle_exception(exc)
    except BaseException:
        _release(record)
        raise
    if response.status_code >= 500 or not isinstance(response, Response):
        _release(record)
    else:
        _store(record, response)
    return response


def idempotent(view_method):
    """Honour ``Idempotency-Key`` on a DRF view method that creates something."""

    @functools.wraps(view_method)
    def wrapper(view, request, *args, **kwargs):
        raw_key = request.headers.get(HEADER)
        user = getattr(request, "user", None)
        if raw_key is None or user is None or not user.is_authenticated:
            return view_method(view, request, *args, **kwargs)
        key = _validated_key(raw_key)
        scope = _scope(request)
        fingerprint = _fingerprint(request)

        record = _claim(user, scope, key, fingerprint)
        if record is None:
            existing = IdempotencyRecord.objects.filter(user=user, scope=scope, key=key).first()
            if existing is None:
                # Released (a 5xx) or pruned between our insert and this read: claim again.
                record = _claim(user, scope, key, fingerprint)
                if record is None:
                    raise IdempotencyInProgress()
            elif existing.fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            elif existing.status_code is not None:
                logger.info("idempotent replay", extra={"scope": scope})
                return _replay(existing)
            elif _take_over_stale(existing):
                record = existing
            else:
                raise IdempotencyInProgress()
        return _run_once(view, view_method, request, args, kwargs, record)

    return extend_schema(
        parameters=[
            OpenApiParameter(
                HEADER,
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                required=False,
                description=(
                    "Makes the request safe to retry: the same key with the same body replays "
                    "the first response (header Idempotent-Replayed: true) for 24 h; with "
                    "another body, 422; while the first request still runs, 409."
                ),
            )
        ]
    )(wrapper)


def prune_idempotency_records() -> int:
    """Delete records older than ``IDEMPOTENCY_TTL_HOURS``; returns how many went."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - _ttl()).delete()
    return deleted
