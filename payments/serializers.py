"""Payment input and output. ``PaymentSerializer`` feeds REST responses and event ``data``."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from payments.models import Payment, PaymentMethod, Refund

MONEY = {"max_digits": 14, "decimal_places": 2}
CENT = Decimal("0.01")


# --- output ---------------------------------------------------------------------------------
class OrderPaymentSummarySerializer(serializers.Serializer):
    """Where the order stands after this payment, so a tablet needs no second request."""

    payment_status = serializers.CharField(read_only=True)
    total = serializers.DecimalField(**MONEY, read_only=True)
    paid_amount = serializers.DecimalField(**MONEY, read_only=True)
    refunded_amount = serializers.DecimalField(**MONEY, read_only=True)
    balance_due = serializers.SerializerMethodField()

    def get_balance_due(self, order) -> str:
        due = max(order.total - (order.paid_amount - order.refunded_amount), Decimal("0"))
        return f"{due.quantize(CENT)}"


class PaymentSerializer(serializers.ModelSerializer):
    """The whole payment. Read it through ``payments.selectors`` (order joined).

    Fields that do not apply to the method are null: ``provider``, ``qr_string`` and
    ``expires_at`` for cash and card, ``tendered`` and ``change_due`` for all but cash.
    """

    order = serializers.UUIDField(source="order_id", read_only=True)
    outlet = serializers.UUIDField(source="outlet_id", read_only=True)
    provider = serializers.SerializerMethodField()
    provider_ref = serializers.SerializerMethodField()
    qr_string = serializers.SerializerMethodField()
    reference = serializers.CharField(read_only=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)
    order_payment = OrderPaymentSummarySerializer(source="order", read_only=True)

    class Meta:
        model = Payment
        fields = (
            "id",
            "order",
            "outlet",
            "method",
            "amount",
            "status",
            "provider",
            "provider_ref",
            "qr_string",
            "expires_at",
            "tendered",
            "change_due",
            "reference",
            "refunded_amount",
            "created_by",
            "created_at",
            "updated_at",
            "settled_at",
            "order_payment",
        )
        read_only_fields = fields

    def get_provider(self, payment: Payment) -> str | None:
        return payment.provider or None

    def get_provider_ref(self, payment: Payment) -> str | None:
        return payment.provider_ref or None

    def get_qr_string(self, payment: Payment) -> str | None:
        return payment.qr_string or None


class RefundSerializer(serializers.ModelSerializer):
    """A refund, with the refunded payment as it stands afterwards."""

    payment = PaymentSerializer(read_only=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Refund
        fields = ("id", "payment", "amount", "reason", "created_by", "created_at")
        read_only_fields = fields


# --- input ----------------------------------------------------------------------------------
class PaymentCreateSerializer(serializers.Serializer):
    order = serializers.UUIDField()
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    amount = serializers.DecimalField(**MONEY, min_value=CENT)
    tendered = serializers.DecimalField(**MONEY, min_value=CENT, required=False)
    reference = serializers.CharField(max_length=128, required=False, allow_blank=True,
                                      default="")

    def validate(self, attrs):
        method, tendered = attrs["method"], attrs.get("tendered")
        if method == PaymentMethod.CASH:
            if tendered is None:
                raise serializers.ValidationError(
                    {"tendered": ["Required for cash: what the customer handed over."]}
                )
            if tendered < attrs["amount"]:
                raise serializers.ValidationError(
                    {"tendered": ["Must be at least the amount."]}
                )
        elif tendered is not None:
            raise serializers.ValidationError({"tendered": ["Only cash payments take it."]})
        return attrs


class RefundCreateSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        **MONEY, min_value=CENT, required=False,
        help_text="Omit to refund everything not refunded yet.",
    )
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class SimulateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[("succeeded", "succeeded"), ("failed", "failed")])
    deliver = serializers.BooleanField(
        default=True,
        help_text="false: the customer pays but the webhook is lost (the polling task "
        "will find the payment).",
    )
