"""Input validation and output shapes of tenants, outlets, staff users and the auth endpoints.

Querysets of related fields are narrowed to what the requesting user may see, so an id of
another tenant's row inside a body is a 400 ``validation_error`` exactly like an unknown one.
"""

from __future__ import annotations

import re
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from tenants.models import Outlet, Role, Tenant, User
from tenants.selectors import outlets_visible_to, tenants_visible_to, user_is_super_admin

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def validate_timezone_name(value: str) -> str:
    """An IANA zone name that ``zoneinfo`` knows (``Asia/Jakarta``), else a validation error."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise serializers.ValidationError(f"Unknown time zone {value!r}.") from exc
    return value


class RateField(serializers.DecimalField):
    """A rate from 0 to 1 as a decimal string (``"0.11"`` = 11 %), up to 4 decimal places.

    Rendered without trailing zeros beyond two places, so ``0.1100`` reads ``"0.11"``.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 5)
        kwargs.setdefault("decimal_places", 4)
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("max_value", Decimal("1"))
        super().__init__(**kwargs)

    def to_representation(self, value):
        value = Decimal(value)
        if value == value.quantize(Decimal("0.01")):
            return str(value.quantize(Decimal("0.01")))
        return str(value.normalize())


def _request_user(serializer: serializers.Serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ("id", "name", "slug", "currency", "timezone")

    def validate_timezone(self, value: str) -> str:
        return validate_timezone_name(value)

    def validate_currency(self, value: str) -> str:
        value = value.strip().upper()
        if not _CURRENCY.match(value):
            raise serializers.ValidationError("An ISO 4217 code of three letters is required.")
        return value


class OutletSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.all(),
        required=False,
        help_text=(
            "Required when a platform admin (super_admin) creates an outlet; an owner's outlets "
            "always belong to the owner's tenant. Cannot change after creation."
        ),
    )
    tax_rate = RateField(required=False)
    service_charge_rate = RateField(required=False)

    class Meta:
        model = Outlet
        fields = (
            "id",
            "tenant",
            "name",
            "timezone",
            "tax_rate",
            "service_charge_rate",
            "kds_warn_after_s",
            "kds_late_after_s",
        )

    def get_fields(self):
        fields = super().get_fields()
        user = _request_user(self)
        if self.instance is not None or user is None or not user_is_super_admin(user):
            fields["tenant"].read_only = True
        else:
            fields["tenant"].queryset = tenants_visible_to(user)
        return fields

    def validate_timezone(self, value: str) -> str:
        return validate_timezone_name(value)

    def validate(self, attrs):
        instance = self.instance
        warn = attrs.get("kds_warn_after_s", getattr(instance, "kds_warn_after_s", 480))
        late = attrs.get("kds_late_after_s", getattr(instance, "kds_late_after_s", 900))
        if late < warn:
            raise serializers.ValidationError(
                {"kds_late_after_s": ["Must be greater than or equal to kds_warn_after_s."]}
            )
        return attrs


class UserSerializer(serializers.ModelSerializer):
    """A staff user. ``outlets`` of an owner lists every outlet of its tenant (it works at all).

    ``password`` is write-only and required on creation. A user changing its own password must
    also send ``current_password``.
    """

    password = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False, style={"input_type": "password"}
    )
    current_password = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Required when users change their own password.",
    )
    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.all(),
        required=False,
        allow_null=True,
        help_text=(
            "Set by a platform admin only (required for every role but super_admin); "
            "owners and managers create users in their own tenant."
        ),
    )
    outlets = serializers.PrimaryKeyRelatedField(
        queryset=Outlet.objects.all(), many=True, required=False
    )

    class Meta:
        model = User
        fields = (
            "id",
            "username",
            "password",
            "current_password",
            "role",
            "tenant",
            "outlets",
            "is_active",
        )

    def get_fields(self):
        fields = super().get_fields()
        user = _request_user(self)
        if user is None or not user.is_authenticated:
            return fields
        if user_is_super_admin(user):
            fields["tenant"].queryset = tenants_visible_to(user)
        else:
            fields["tenant"].read_only = True
        # Outlets a user may hand out: its own (all of the tenant for an owner).
        fields["outlets"].child_relation.queryset = outlets_visible_to(user)
        return fields

    def validate(self, attrs):
        if self.instance is None and not attrs.get("password"):
            raise serializers.ValidationError({"password": ["This field is required."]})
        return attrs

    def to_representation(self, instance: User):
        data = super().to_representation(instance)
        if instance.role == Role.OWNER and instance.tenant_id is not None:
            # Prefetched by the selectors as tenant__outlets: no query per row.
            data["outlets"] = [str(o.pk) for o in instance.tenant.outlets.all()]
        else:
            data["outlets"] = [str(pk) for pk in data["outlets"]]
        return data


class TokenObtainSerializer(TokenObtainPairSerializer):
    """``{username, password}`` -> ``{access, refresh, user}``."""

    def validate(self, attrs):
        data = super().validate(attrs)
        user = (
            User.objects.select_related("tenant")
            .prefetch_related("outlets", "tenant__outlets")
            .get(pk=self.user.pk)
        )
        data["user"] = UserSerializer(user).data
        return data


class TokenPairResponseSerializer(serializers.Serializer):
    """Documentation of the login response."""

    access = serializers.CharField()
    refresh = serializers.CharField()
    user = UserSerializer()
