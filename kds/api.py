"""Kitchen REST API: stations and routing, tickets and their actions, all-day, prep metrics.

Roles (CONTRACT.md section 2): stations are read by every role that works at the outlet and
written by super admin, owner and manager (a manager in its own outlets); tickets are read by
every role and acted on (bump, recall, priority, item status) by all but the cashier.
"""

from __future__ import annotations

import datetime as dt
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kds import selectors, services
from kds.models import Station, Ticket, TicketStatus
from kds.serializers import (
    AllDaySerializer,
    KitchenMetricsSerializer,
    RoutePreviewResultSerializer,
    RoutePreviewSerializer,
    StationSerializer,
    StationWriteSerializer,
    TicketItemStatusSerializer,
    TicketPrioritySerializer,
    TicketSerializer,
)
from pos.ids import parse_uuid
from pos.permissions import ALL_ROLES, KITCHEN, MANAGEMENT_ROLES, RolePermission
from tenants.models import Outlet
from tenants.selectors import outlet_for_user, outlet_in_user_tenant, user_can_manage_outlet

#: Who may bump, recall, set priority and item status (cashiers only read tickets).
TICKET_ACTION_ROLES = frozenset(MANAGEMENT_ROLES | {KITCHEN})

_CONFLICT = OpenApiResponse(description="invalid_transition (nothing changed)")


def _uuid_param(request: Request, name: str, *, required: bool = False) -> uuid.UUID | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        if required:
            raise ValidationError({name: ["This query parameter is required."]})
        return None
    value = parse_uuid(raw)
    if value is None:
        raise ValidationError({name: ["Must be a valid UUID."]})
    return value


def _outlet_for_read(request: Request, outlet_id: uuid.UUID) -> Outlet:
    """The outlet named by a query parameter: 404 if unknown or another tenant's, 403 if the
    user's tenant's but not one the user works at."""
    outlet = outlet_for_user(request.user, outlet_id)
    if outlet is not None:
        return outlet
    if outlet_in_user_tenant(request.user, outlet_id) is not None:
        raise PermissionDenied("You are not assigned to this outlet.")
    raise NotFound()


def _outlet_from_body(request: Request, outlet_id: uuid.UUID) -> Outlet:
    """The outlet named in a request body: 400 if unknown or another tenant's (an unknown id
    in a body), 403 if the user's tenant's but not one the user works at."""
    outlet = outlet_for_user(request.user, outlet_id)
    if outlet is not None:
        return outlet
    if outlet_in_user_tenant(request.user, outlet_id) is not None:
        raise PermissionDenied("You are not assigned to this outlet.")
    raise ValidationError({"outlet": ["Unknown outlet."]})


def _station_of_outlet(request: Request, outlet: Outlet, station_id: uuid.UUID | None
                       ) -> uuid.UUID | None:
    if station_id is None:
        return None
    station = selectors.station_for_user(request.user, station_id)
    if station is None or station.outlet_id != outlet.pk:
        raise NotFound("No such station at this outlet.")
    return station.pk


def _ticket_response(change: services.TicketChange) -> Response:
    return Response(TicketSerializer(change.ticket).data)


# --- stations -------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("outlet", OpenApiTypes.UUID, description="only this outlet's"),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=["prep", "expo"]),
        ]
    )
)
class StationViewSet(viewsets.ModelViewSet):
    """Kitchen stations and the routing they hold (``categories``, ``products``), per outlet.

    PUT and PATCH both change only the fields sent; ``categories`` and ``products`` replace
    the station's lists when sent.
    """

    serializer_class = StationSerializer
    permission_classes = [RolePermission]
    allowed_roles = {
        "route_preview": ALL_ROLES,  # a POST that only reads
        "read": ALL_ROLES,
        "write": MANAGEMENT_ROLES,
    }

    def get_queryset(self):
        qs = selectors.stations_visible_to(self.request.user)
        if self.action == "list":
            outlet_id = _uuid_param(self.request, "outlet")
            if outlet_id is not None:
                qs = qs.filter(outlet_id=outlet_id)
            kind = self.request.query_params.get("kind")
            if kind:
                if kind not in ("prep", "expo"):
                    raise ValidationError({"kind": ['Must be "prep" or "expo".']})
                qs = qs.filter(kind=kind)
        return qs.order_by("outlet_id", "name", "id")

    def _require_manager_of(self, outlet: Outlet) -> None:
        if not user_can_manage_outlet(self.request.user, outlet):
            raise PermissionDenied("You do not manage this outlet.")

    @extend_schema(request=StationWriteSerializer, responses={201: StationSerializer})
    def create(self, request, *args, **kwargs):
        payload = StationWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        outlet = _outlet_from_body(request, data["outlet"])
        self._require_manager_of(outlet)
        station = services.station_create(
            outlet=outlet,
            name=data["name"],
            kind=data.get("kind", "prep"),
            is_default=data.get("is_default", False),
            category_ids=data.get("categories", ()),
            product_ids=data.get("products", ()),
        )
        return Response(StationSerializer(station).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=StationWriteSerializer, responses={200: StationSerializer})
    def update(self, request, *args, **kwargs):
        station: Station = self.get_object()
        self._require_manager_of(station.outlet)
        payload = StationWriteSerializer(station, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        station = services.station_update(
            station_id=station.pk,
            name=data.get("name"),
            kind=data.get("kind"),
            is_default=data.get("is_default"),
            category_ids=data.get("categories"),
            product_ids=data.get("products"),
        )
        return Response(StationSerializer(station).data)

    @extend_schema(request=StationWriteSerializer, responses={200: StationSerializer})
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, **kwargs)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="station_in_use")})
    def destroy(self, request, *args, **kwargs):
        station: Station = self.get_object()
        self._require_manager_of(station.outlet)
        services.station_delete(station_id=station.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_object(self):
        station = self.get_queryset().select_related("outlet").filter(
            pk=parse_uuid(self.kwargs["pk"])
        ).first()
        if station is None:
            raise NotFound()
        return station

    @extend_schema(request=RoutePreviewSerializer, responses={200: RoutePreviewResultSerializer})
    @action(detail=False, methods=["post"], url_path="route-preview")
    def route_preview(self, request):
        """Where each product would be cooked at the outlet, and which rule decided it."""
        payload = RoutePreviewSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        outlet = _outlet_from_body(request, data["outlet"])
        rows = selectors.route_preview(outlet, [item["product"] for item in data["items"]])
        return Response({"outlet": str(outlet.pk), "items": rows})


# --- tickets --------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("outlet", OpenApiTypes.UUID),
            OpenApiParameter("station", OpenApiTypes.UUID),
            OpenApiParameter("status", OpenApiTypes.STR, enum=TicketStatus.values),
        ]
    )
)
class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Kitchen tickets, oldest fired first, and the kitchen's actions on them."""

    serializer_class = TicketSerializer
    permission_classes = [RolePermission]
    allowed_roles = {
        "read": ALL_ROLES,
        "bump": TICKET_ACTION_ROLES,
        "recall": TICKET_ACTION_ROLES,
        "priority": TICKET_ACTION_ROLES,
    }

    def get_queryset(self):
        params = self.request.query_params
        status_filter = params.get("status") or None
        if status_filter is not None and status_filter not in TicketStatus.values:
            raise ValidationError({"status": [f"Must be one of {', '.join(TicketStatus.values)}."]})
        return selectors.tickets_visible_to(
            self.request.user,
            outlet_id=_uuid_param(self.request, "outlet"),
            station_id=_uuid_param(self.request, "station"),
            status=status_filter,
        )

    def get_object(self) -> Ticket:
        ticket = selectors.ticket_for_user(self.request.user, self.kwargs["pk"])
        if ticket is None:
            raise NotFound()
        return ticket

    @extend_schema(request=None, responses={200: TicketSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def bump(self, request, pk=None):
        """Bump an open ticket: items done, ``bumped_at`` set by the server."""
        ticket = self.get_object()
        return _ticket_response(services.ticket_bump(ticket_id=ticket.pk, actor=request.user))

    @extend_schema(request=None, responses={200: TicketSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def recall(self, request, pk=None):
        """Reopen this ticket; it must be the last one bumped at its station."""
        ticket = self.get_object()
        return _ticket_response(services.ticket_recall(ticket_id=ticket.pk, actor=request.user))

    @extend_schema(request=TicketPrioritySerializer,
                   responses={200: TicketSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def priority(self, request, pk=None):
        """Mark an open ticket ``rush`` or back to ``normal``."""
        payload = TicketPrioritySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ticket = self.get_object()
        return _ticket_response(
            services.ticket_set_priority(
                ticket_id=ticket.pk, priority=payload.validated_data["priority"]
            )
        )


class TicketItemStatusView(APIView):
    """``POST /api/kds/ticket-items/{id}/status/`` ``{"status": "cooking"|"done"}``."""

    permission_classes = [RolePermission.for_roles(TICKET_ACTION_ROLES)]

    @extend_schema(request=TicketItemStatusSerializer,
                   responses={200: TicketSerializer, 409: _CONFLICT})
    def post(self, request, pk):
        payload = TicketItemStatusSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = selectors.ticket_item_for_user(request.user, pk)
        if item is None:
            raise NotFound()
        return _ticket_response(
            services.ticket_item_set_status(
                item_id=item.pk, status=payload.validated_data["status"], actor=request.user
            )
        )


class StationRecallView(APIView):
    """``POST /api/kds/stations/{id}/recall/``: reopen the station's last bumped ticket."""

    permission_classes = [RolePermission.for_roles(TICKET_ACTION_ROLES)]

    @extend_schema(
        request=None,
        responses={200: TicketSerializer,
                   409: OpenApiResponse(description="nothing_to_recall or invalid_transition")},
    )
    def post(self, request, pk):
        station = selectors.station_for_user(request.user, pk)
        if station is None:
            raise NotFound()
        return _ticket_response(
            services.station_recall_last(station_id=station.pk, actor=request.user)
        )


# --- aggregates -----------------------------------------------------------------------------
class AllDayView(APIView):
    """Quantities still to cook per product at an outlet (or one of its stations)."""

    permission_classes = [RolePermission.for_roles(ALL_ROLES)]

    @extend_schema(
        parameters=[
            OpenApiParameter("outlet", OpenApiTypes.UUID, required=True),
            OpenApiParameter("station", OpenApiTypes.UUID),
        ],
        responses={200: AllDaySerializer},
    )
    def get(self, request):
        outlet = _outlet_for_read(request, _uuid_param(request, "outlet", required=True))
        station_id = _station_of_outlet(request, outlet, _uuid_param(request, "station"))
        return Response(
            {
                "outlet": str(outlet.pk),
                "station": str(station_id) if station_id else None,
                "results": selectors.all_day(outlet.pk, station_id),
            }
        )


class MetricsView(APIView):
    """Prep metrics of one day (the outlet's calendar day), per prep station."""

    permission_classes = [RolePermission.for_roles(ALL_ROLES)]

    @extend_schema(
        parameters=[
            OpenApiParameter("outlet", OpenApiTypes.UUID, required=True),
            OpenApiParameter("date", OpenApiTypes.DATE,
                             description="YYYY-MM-DD in the outlet's time zone; today if absent"),
        ],
        responses={200: KitchenMetricsSerializer},
    )
    def get(self, request):
        outlet = _outlet_for_read(request, _uuid_param(request, "outlet", required=True))
        raw_date = request.query_params.get("date")
        if raw_date:
            try:
                day = dt.date.fromisoformat(raw_date)
            except ValueError as exc:
                raise ValidationError({"date": ["Use the format YYYY-MM-DD."]}) from exc
            if not dt.date.min < day < dt.date.max:
                # The day's bounds are computed with its neighbours, which must exist.
                raise ValidationError({"date": ["That date is outside the supported range."]})
        else:
            day = selectors.outlet_today(outlet)
        return Response(selectors.kitchen_metrics(outlet, day))
