"""Database integrity answered as API errors, shared by the apps' services.

A pre-check gives the friendly 400 in the common case; the unique constraint still decides
under a race, and its IntegrityError becomes the same 400. A delete blocked by PROTECT or
RESTRICT foreign keys becomes 409 ``conflict`` and changes nothing.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Model, ProtectedError, QuerySet, RestrictedError

from pos.api_errors import Conflict, DomainValidationError


def refuse_taken(queryset: QuerySet, *, field: str, message: str, exclude_pk=None) -> None:
    """400 ``validation_error`` on ``field`` if ``queryset`` (minus ``exclude_pk``) has a row."""
    if exclude_pk is not None:
        queryset = queryset.exclude(pk=exclude_pk)
    if queryset.exists():
        raise DomainValidationError(details={field: [message]})


def save_unique(obj: Model, *, field: str, message: str, **save_kwargs) -> None:
    """Save ``obj``; a unique-constraint race is the same 400 the pre-check gives."""
    try:
        with transaction.atomic():
            obj.save(**save_kwargs)
    except IntegrityError as exc:
        raise DomainValidationError(details={field: [message]}) from exc


def delete_or_conflict(obj: Model, message: str) -> None:
    """Delete ``obj``, or 409 ``conflict`` (nothing deleted) if other rows still need it."""
    try:
        with transaction.atomic():
            obj.delete()
    except (ProtectedError, RestrictedError) as exc:
        raise Conflict(message) from exc
