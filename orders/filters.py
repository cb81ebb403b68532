"""Query filters of ``GET /api/orders/``."""

from __future__ import annotations

from datetime import datetime

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field

from orders.models import Order, OrderStatus, OrderType
from pos.filters import to_utc


class DateOrDateTimeField(forms.Field):
    """An ISO-8601 date (``2026-11-22``) or date-time (``2026-11-22T08:00:00+07:00``)."""

    default_error_messages = {"invalid": "Enter an ISO-8601 date or date-time."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        value = value.strip()
        try:
            # A bare date first: parse_datetime would read "2026-11-22" as its midnight.
            parsed = parse_date(value) or parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return to_utc(parsed) if isinstance(parsed, datetime) else parsed


@extend_schema_field(
    {
        "type": "string",
        "description": "ISO-8601 date (compared with the business date) or date-time "
        "(compared with created_at), inclusive.",
    }
)
class DateOrDateTimeFilter(django_filters.Filter):
    field_class = DateOrDateTimeField


class OrderFilter(django_filters.FilterSet):
    """``created_after``/``created_before`` are inclusive bounds. A date-time compares with
    ``created_at`` (a naive one is read as UTC); a bare date compares with the order's
    business date, the outlet's local day."""

    outlet = django_filters.UUIDFilter(field_name="outlet_id")
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    type = django_filters.ChoiceFilter(choices=OrderType.choices)
    created_after = DateOrDateTimeFilter(method="filter_created_after")
    created_before = DateOrDateTimeFilter(method="filter_created_before")

    class Meta:
        model = Order
        fields = ("outlet", "status", "type")

    @staticmethod
    def _bound(value):
        if hasattr(value, "hour"):  # a datetime, already in UTC (DateOrDateTimeField)
            return "created_at", value
        return "business_date", value

    def filter_created_after(self, queryset: QuerySet[Order], name, value) -> QuerySet[Order]:
        field, bound = self._bound(value)
        return queryset.filter(**{f"{field}__gte": bound})

    def filter_created_before(self, queryset: QuerySet[Order], name, value) -> QuerySet[Order]:
        field, bound = self._bound(value)
        return queryset.filter(**{f"{field}__lte": bound})
