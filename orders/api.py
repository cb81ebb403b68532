"""``/api/orders/``: create, list, retrieve, and ``PATCH /api/orders/{id}/status/``."""

from __future__ import annotations

import re

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from orders.filters import OrderFilter
from orders.models import Order
from orders.selectors import order_for_user, orders_visible_to
from orders.serializers import OrderCreateSerializer, OrderSerializer, OrderStatusSerializer
from orders.services import ORDER_WRITER_ROLES, order_create, order_transition
from pos.idempotency import idempotent
from pos.pagination import NewestFirstCursorPagination
from pos.permissions import ALL_ROLES, RolePermission

_IF_MATCH_RE = re.compile(r'^(?:W/)?"?(\d{1,10})"?$')

IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description='The version the client saw: `3` (or the ETag form `"3"`). A stale one is '
    "409 version_conflict and nothing changes.",
)


def etag(order: Order) -> str:
    return f'"{order.version}"'


def expected_version(request) -> int | None:
    """The version named by ``If-Match``, or None when absent or ``*``."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() in ("", "*"):
        return None
    match = _IF_MATCH_RE.match(raw.strip())
    if match is None:
        raise ValidationError({"If-Match": ['Expected the order version, e.g. 3 or "3".']})
    return int(match.group(1))


def _order_response(order: Order, *, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(OrderSerializer(order).data, status=status_code, headers={"ETag": etag(order)})


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OrderSerializer
    pagination_class = NewestFirstCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = OrderFilter
    permission_classes = [RolePermission]
    allowed_roles = {
        "read": ALL_ROLES,
        "create": ORDER_WRITER_ROLES,
        "set_status": ORDER_WRITER_ROLES,
    }

    def get_queryset(self):
        return orders_visible_to(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        return _order_response(self.get_object())

    @extend_schema(
        request=OrderCreateSerializer,
        responses={
            201: OrderSerializer,
            400: OpenApiResponse(description="validation_error"),
            409: OpenApiResponse(description="idempotency_in_progress"),
            422: OpenApiResponse(description="idempotency_key_reused"),
        },
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        payload = OrderCreateSerializer(data=request.data, context={"request": request})
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        order = order_create(
            actor=request.user,
            outlet=data["outlet"],
            type=data["type"],
            table=data["table"],
            customer_name=data["customer_name"],
            note=data["note"],
            status=data["status"],
            items=[dict(item) for item in data["items"]],
        )
        return _order_response(order, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        request=OrderStatusSerializer,
        parameters=[IF_MATCH_PARAMETER],
        responses={
            200: OrderSerializer,
            403: OpenApiResponse(description="permission_denied"),
            404: OpenApiResponse(description="not_found"),
            409: OpenApiResponse(
                description="invalid_transition, version_conflict or insufficient_stock"
            ),
        },
    )
    @action(detail=True, methods=["patch"], url_path="status")
    def set_status(self, request, pk=None):
        payload = OrderStatusSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        version = expected_version(request)
        order = order_for_user(request.user, pk)
        if order is None:
            raise NotFound()
        order = order_transition(
            order_id=order.pk,
            to_status=payload.validated_data["status"],
            actor=request.user,
            expected_version=version,
        )
        return _order_response(order)
