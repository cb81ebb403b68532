"""Input validation and output shapes of the menu.

``ProductSerializer`` is also the ``data`` of ``product.availability_changed`` events. Related
fields only accept rows the requesting user can see, so another tenant's id in a body is a 400
``validation_error`` exactly like an unknown one.
"""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from catalog.models import Category, ModifierGroup, ModifierOption, Product
from catalog.selectors import categories_visible_to, modifier_groups_visible_to
from tenants.models import Tenant
from tenants.selectors import tenants_visible_to, user_is_super_admin

TENANT_HELP = (
    "The owning tenant. Required when a platform admin (super_admin) creates a row; everyone "
    "else always writes into their own tenant. Cannot change after creation."
)


class TenantOwnedSerializer(serializers.ModelSerializer):
    """Base of tenant-owned rows: ``tenant`` is writable only by a platform admin, on create.

    Subclasses list the related fields to narrow in ``scoped_fields``: field name -> function
    ``user -> queryset`` of the rows the user may reference.
    """

    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.all(), required=False, help_text=TENANT_HELP
    )
    scoped_fields: dict = {}

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if self.instance is not None or user is None or not user_is_super_admin(user):
            fields["tenant"].read_only = True
        else:
            fields["tenant"].queryset = tenants_visible_to(user)
        if user is not None and user.is_authenticated:
            for name, selector in self.scoped_fields.items():
                field = fields[name]
                target = getattr(field, "child_relation", field)
                target.queryset = selector(user)
        return fields


class CategorySerializer(TenantOwnedSerializer):
    scoped_fields = {"parent": categories_visible_to}

    class Meta:
        model = Category
        fields = ("id", "tenant", "name", "parent", "sort_order")
        # Uniqueness is checked by the service, where the tenant is known.
        validators = []


class ProductSerializer(TenantOwnedSerializer):
    price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), coerce_to_string=True
    )
    stock_quantity = serializers.IntegerField(min_value=0, required=False)
    scoped_fields = {
        "category": categories_visible_to,
        "modifier_groups": modifier_groups_visible_to,
    }

    class Meta:
        model = Product
        fields = (
            "id",
            "tenant",
            "category",
            "name",
            "sku",
            "price",
            "track_stock",
            "stock_quantity",
            "is_available",
            "modifier_groups",
        )
        validators = []

    def validate_sku(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value


class ModifierOptionSerializer(serializers.ModelSerializer):
    """An option inside a group. On update, send ``id`` to keep an option; options left out
    are deleted and options without ``id`` are created."""

    id = serializers.UUIDField(required=False)
    price_delta = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, coerce_to_string=True
    )

    class Meta:
        model = ModifierOption
        fields = ("id", "name", "price_delta")
        validators = []


class ModifierGroupSerializer(TenantOwnedSerializer):
    options = ModifierOptionSerializer(many=True, required=False)

    class Meta:
        model = ModifierGroup
        fields = ("id", "tenant", "name", "min_select", "max_select", "options")
        validators = []

    def validate_options(self, value: list[dict]) -> list[dict]:
        names = [option["name"].strip().lower() for option in value]
        if len(names) != len(set(names)):
            raise serializers.ValidationError("Option names must be unique within a group.")
        ids = [option["id"] for option in value if option.get("id")]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("An option id appears twice.")
        return value

    def validate(self, attrs):
        instance = self.instance
        low = attrs.get("min_select", getattr(instance, "min_select", 0))
        high = attrs.get("max_select", getattr(instance, "max_select", 1))
        if high < low:
            raise serializers.ValidationError(
                {"max_select": ["Must be greater than or equal to min_select."]}
            )
        return attrs
