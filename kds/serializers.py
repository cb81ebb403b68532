"""Input validation and output shapes of the kitchen API.

``TicketSerializer`` is the one output shape of a ticket: REST responses, socket snapshots and
the ``data`` of every ``ticket.*`` event.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kds.models import (
    Station,
    StationKind,
    Ticket,
    TicketItem,
    TicketItemStatus,
    TicketPriority,
)
from pos.rendering import SharedRenderer


class StationSerializer(serializers.ModelSerializer):
    """Output of a station. Needs ``categories`` and ``products`` prefetched (selectors do)."""

    outlet = serializers.UUIDField(source="outlet_id", read_only=True)
    categories = serializers.SerializerMethodField()
    products = serializers.SerializerMethodField()

    class Meta:
        model = Station
        fields = ("id", "outlet", "name", "kind", "is_default", "categories", "products")
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_categories(self, station: Station) -> list[str]:
        return sorted(str(c.pk) for c in station.categories.all())

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_products(self, station: Station) -> list[str]:
        return sorted(str(p.pk) for p in station.products.all())


class StationWriteSerializer(serializers.Serializer):
    """Input of create (every field but ``outlet`` optional) and update (all optional).

    Ids are only checked for shape here; the service checks they belong to the tenant.
    """

    outlet = serializers.UUIDField(required=False)
    name = serializers.CharField(max_length=80, required=False)
    kind = serializers.ChoiceField(choices=StationKind.choices, required=False)
    is_default = serializers.BooleanField(required=False)
    categories = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=500
    )
    products = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=2000
    )

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("A station needs a name.")
        return value

    def validate(self, attrs: dict) -> dict:
        creating = self.instance is None
        if creating:
            missing = {f: ["This field is required."] for f in ("outlet", "name") if f not in attrs}
            if missing:
                raise serializers.ValidationError(missing)
        elif "outlet" in attrs and attrs["outlet"] != self.instance.outlet_id:
            raise serializers.ValidationError(
                {"outlet": ["A station cannot move to another outlet; create a new one."]}
            )
        return attrs


class RoutePreviewItemSerializer(serializers.Serializer):
    product = serializers.UUIDField()


class RoutePreviewSerializer(serializers.Serializer):
    outlet = serializers.UUIDField()
    items = RoutePreviewItemSerializer(many=True, allow_empty=False, max_length=500)


class RoutePreviewResultItemSerializer(serializers.Serializer):
    product = serializers.UUIDField()
    station = serializers.UUIDField(allow_null=True)
    station_name = serializers.CharField(allow_null=True)
    rule = serializers.ChoiceField(choices=["product", "category", "ancestor", "default", "none"])


class RoutePreviewResultSerializer(serializers.Serializer):
    outlet = serializers.UUIDField()
    items = RoutePreviewResultItemSerializer(many=True)


class TicketItemSerializer(serializers.ModelSerializer):
    product = serializers.UUIDField(source="product_id", read_only=True, allow_null=True)

    class Meta:
        model = TicketItem
        fields = ("id", "product", "name", "quantity", "modifiers", "note", "status")
        read_only_fields = fields


class TicketSerializer(serializers.ModelSerializer):
    """Output of a ticket. Needs ``items`` prefetched (selectors do)."""

    order = serializers.UUIDField(source="order_id", read_only=True)
    outlet = serializers.UUIDField(source="outlet_id", read_only=True)
    station = serializers.UUIDField(source="station_id", read_only=True)
    items = TicketItemSerializer(many=True, read_only=True)

    class Meta:
        model = Ticket
        fields = (
            "id",
            "order",
            "order_number",
            "outlet",
            "station",
            "status",
            "priority",
            "type",
            "table",
            "customer_name",
            "items",
            "fired_at",
            "bumped_at",
        )
        read_only_fields = fields


_ticket_renderer = SharedRenderer(TicketSerializer)


def ticket_data(ticket: Ticket) -> dict[str, Any]:
    """``dict(TicketSerializer(ticket).data)`` by one serializer per process
    (``pos.rendering``): the kitchen renders a ticket into every ticket event's ``data``.
    ``ticket`` has its items prefetched (``kds.selectors``)."""
    return _ticket_renderer(ticket)


class TicketPrioritySerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=TicketPriority.choices)


class TicketItemStatusSerializer(serializers.Serializer):
    # queued and voided are the system's to set: an item is never un-started by hand.
    status = serializers.ChoiceField(
        choices=[TicketItemStatus.COOKING.value, TicketItemStatus.DONE.value]
    )


class AllDayRowSerializer(serializers.Serializer):
    product = serializers.UUIDField(allow_null=True)
    name = serializers.CharField()
    quantity = serializers.IntegerField()


class AllDaySerializer(serializers.Serializer):
    outlet = serializers.UUIDField()
    station = serializers.UUIDField(allow_null=True)
    results = AllDayRowSerializer(many=True)


class StationMetricsSerializer(serializers.Serializer):
    station = serializers.UUIDField()
    name = serializers.CharField()
    tickets = serializers.IntegerField(help_text="tickets fired that day (voided ones excluded)")
    bumped = serializers.IntegerField(help_text="of those, tickets bumped")
    p50_prep_s = serializers.FloatField(allow_null=True)
    p90_prep_s = serializers.FloatField(allow_null=True)
    late = serializers.IntegerField(help_text="bumped tickets whose prep took > late_after_s")


class KitchenMetricsSerializer(serializers.Serializer):
    outlet = serializers.UUIDField()
    date = serializers.DateField()
    timezone = serializers.CharField()
    late_after_s = serializers.IntegerField()
    stations = StationMetricsSerializer(many=True)
