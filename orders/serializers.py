"""Order input and output. ``OrderSerializer`` feeds REST responses and event ``data`` alike."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from orders.lifecycle import INITIAL_STATUSES
from orders.models import Order, OrderItem, OrderStatus, OrderType
from pos.rendering import SharedRenderer
from tenants.selectors import outlet_for_user, outlet_in_user_tenant

MAX_ITEMS = 200
MAX_MODIFIERS_PER_ITEM = 50


# --- output ---------------------------------------------------------------------------------
class OrderItemModifierSerializer(serializers.Serializer):
    """A chosen option as snapshotted at creation."""

    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    price_delta = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)


class OrderItemSerializer(serializers.ModelSerializer):
    product = serializers.UUIDField(source="product_id", read_only=True, allow_null=True)
    modifiers = OrderItemModifierSerializer(many=True, read_only=True)

    class Meta:
        model = OrderItem
        fields = ("id", "product", "name", "unit_price", "quantity", "modifiers", "note", "total")
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    """The whole order. Read it from ``orders.selectors`` (items prefetched)."""

    outlet = serializers.UUIDField(source="outlet_id", read_only=True)
    items = OrderItemSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = (
            "id",
            "number",
            "outlet",
            "business_date",
            "status",
            "version",
            "type",
            "table",
            "customer_name",
            "note",
            "items",
            "subtotal",
            "service_charge_amount",
            "discount_amount",
            "tax_amount",
            "total",
            "payment_status",
            "paid_amount",
            "refunded_amount",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


_order_renderer = SharedRenderer(OrderSerializer)


def order_data(order: Order) -> dict[str, Any]:
    """``dict(OrderSerializer(order).data)``, rendered by one serializer per process
    (``pos.rendering``): services render the whole order on every change (each event's
    ``data``). ``order`` is read as ``OrderSerializer`` reads it (from ``orders.selectors``).
    """
    return _order_renderer(order)


# --- input ----------------------------------------------------------------------------------
class OrderItemInputSerializer(serializers.Serializer):
    product = serializers.UUIDField()
    quantity = serializers.IntegerField(min_value=1, max_value=999)
    modifiers = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list,
        max_length=MAX_MODIFIERS_PER_ITEM,
        help_text="Ids of the chosen modifier options.",
    )
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class OrderCreateSerializer(serializers.Serializer):
    """Shape of ``POST /api/orders/``; the outlet is resolved against what the user may see.

    Products and options are checked by ``orders.services.order_create``, which reports them
    in DRF's layout for nested lists: ``{"items": {"<index>": {"<field>": [messages]}}}``.
    """

    outlet = serializers.UUIDField()
    type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.DINE_IN)
    table = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    customer_name = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default=""
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(
        choices=[c for c in OrderStatus.choices if c[0] in INITIAL_STATUSES],
        default=OrderStatus.PENDING,
        help_text='"draft" to park the order; anything else starts "pending".',
    )
    items = OrderItemInputSerializer(many=True, allow_empty=False, max_length=MAX_ITEMS)

    def validate_outlet(self, value):
        user = self.context["request"].user
        outlet = outlet_for_user(user, value)
        if outlet is not None:
            return outlet
        if outlet_in_user_tenant(user, value) is not None:
            raise serializers.ValidationError("You are not assigned to this outlet.")
        # Unknown and another tenant's outlets answer alike.
        raise serializers.ValidationError("Unknown outlet.")


class OrderStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices)
