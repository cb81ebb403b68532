"""Query-parameter filters shared by the apps' list endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django import forms
from django.utils import timezone
from django_filters.fields import IsoDateTimeField


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC (naive means UTC), or a ValidationError if that leaves the calendar.

    Converting before the query matters: PostgreSQL refuses offsets past about ±16 hours and
    years past 9999, which Python parses happily, and a 500 is no answer to a typo.
    """
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise forms.ValidationError(
            "That date-time is outside the supported range.", code="invalid"
        ) from exc


class UtcDateTimeField(IsoDateTimeField):
    """An ISO-8601 date-time, normalised to UTC."""

    def to_python(self, value):
        parsed = super().to_python(value)
        return None if parsed is None else to_utc(parsed)


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` whose value is checked and converted to UTC before the query."""

    field_class = UtcDateTimeField
