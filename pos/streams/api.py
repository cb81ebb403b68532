"""``GET /api/events/?outlet=&since=``: the outlet's event log, as sockets see it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from pos.models import StreamEvent
from pos.streams.wire import envelope

MAX_PAGE = 500


def resolve_outlet(user, outlet_id):
    """The outlet if ``user`` may see it, else None: delegated to the tenancy app by setting."""
    return import_string(settings.STREAM_OUTLET_RESOLVER)(user, outlet_id)


class StreamEventEnvelopeSerializer(serializers.Serializer):
    """Documentation only: the envelope of one event."""


    type = serializers.CharField()
    seq = serializers.IntegerField()
    event = serializers.CharField()
    outlet = serializers.UUIDField()
    at = serializers.DateTimeField()
    data = serializers.DictField()


class EventLogView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("outlet", OpenApiTypes.UUID, required=True),
            OpenApiParameter("since", OpenApiTypes.INT, description="last seq already seen"),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"at most {MAX_PAGE}"),
        ],
        responses=inline_serializer(
            "StreamEventPage",
            {
                "results": StreamEventEnvelopeSerializer(many=True),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
            },
        ),
    )
    def get(self, request):
        errors = {}
        try:
            outlet_id = uuid.UUID(request.query_params.get("outlet", ""))
        except ValueError:
            errors["outlet"] = ["A valid outlet id is required."]
        try:
            since = int(request.query_params.get("since", "0"))
            if since < 0:
                raise ValueError
        except ValueError:
            errors["since"] = ["A non-negative integer is required."]
        try:
            limit = min(int(request.query_params.get("limit", "100")), MAX_PAGE)
            if limit < 1:
                raise ValueError
        except ValueError:
            errors["limit"] = ["A positive integer is required."]
        if errors:
            raise ValidationError(errors)
        if resolve_outlet(request.user, outlet_id) is None:
            raise NotFound()
        rows = list(
            StreamEvent.objects.filter(outlet_id=outlet_id, seq__gt=since).order_by("seq")[
                : limit + 1
            ]
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        url = request.build_absolute_uri()
        next_url = (
            replace_query_param(url, "since", rows[-1].seq) if has_more and rows else None
        )
        return Response(
            {"results": [envelope(e) for e in rows], "next": next_url, "previous": None}
        )
