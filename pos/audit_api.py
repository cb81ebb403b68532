"""``GET /api/audit/``: the audit trail, for owners (their tenant) and platform admins (all)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers

from pos.audit import AUDIT_ACTIONS, AUDIT_READER_ROLES, audit_entries_visible_to
from pos.filters import UtcDateTimeFilter
from pos.models import AuditEntry
from pos.pagination import NewestFirstCursorPagination
from pos.permissions import RolePermission


class AuditEntrySerializer(serializers.ModelSerializer):
    tenant = serializers.UUIDField(source="tenant_id", read_only=True, allow_null=True)
    outlet = serializers.UUIDField(source="outlet_id", read_only=True, allow_null=True)
    actor = serializers.UUIDField(source="actor_id", read_only=True, allow_null=True)
    details = serializers.DictField(read_only=True)

    class Meta:
        model = AuditEntry
        fields = (
            "id",
            "tenant",
            "outlet",
            "actor",
            "actor_username",
            "actor_role",
            "action",
            "target_type",
            "target_id",
            "details",
            "created_at",
        )
        read_only_fields = fields


class AuditEntryFilter(django_filters.FilterSet):
    """Every filter narrows the entries the caller may already see; bounds are inclusive."""

    tenant = django_filters.UUIDFilter(
        field_name="tenant_id", help_text="Platform admins: one tenant's entries."
    )
    outlet = django_filters.UUIDFilter(field_name="outlet_id")
    actor = django_filters.UUIDFilter(field_name="actor_id")
    action = django_filters.MultipleChoiceFilter(
        choices=[(name, name) for name in sorted(AUDIT_ACTIONS)],
        help_text="One or more actions (repeat the parameter).",
    )
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    # django-filter reads a date-time without an offset in the server's zone (TIME_ZONE, UTC).
    created_after = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Inclusive ISO-8601 date-time."
    )
    created_before = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="Inclusive ISO-8601 date-time."
    )

    class Meta:
        model = AuditEntry
        fields = ("tenant", "outlet", "actor", "action", "target_type", "target_id")


@extend_schema(
    tags=["audit"],
    responses={
        200: AuditEntrySerializer(many=True),
        400: OpenApiResponse(description="validation_error (a malformed filter)"),
        403: OpenApiResponse(description="permission_denied: only owners and platform admins"),
    },
)
class AuditEntryListView(generics.ListAPIView):
    """The audit trail of sensitive actions, newest first (cursor pagination).

    Owners see their tenant's entries; platform admins see every entry and may narrow with
    ``tenant``. Everyone else gets 403. ``created_after``/``created_before`` are inclusive
    ISO-8601 date-times (UTC when no offset is given). Entries are kept indefinitely.
    """

    serializer_class = AuditEntrySerializer
    pagination_class = NewestFirstCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEntryFilter
    permission_classes = [RolePermission]
    allowed_roles = {"read": AUDIT_READER_ROLES}

    def get_queryset(self) -> QuerySet[AuditEntry]:
        return audit_entries_visible_to(self.request.user)
