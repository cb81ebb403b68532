"""``/api/payments/``: take, list and read payments; refund, cancel, simulate; gateway webhooks."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from payments import selectors, services
from payments.serializers import (
    PaymentCreateSerializer,
    PaymentSerializer,
    RefundCreateSerializer,
    RefundSerializer,
    SimulateSerializer,
)
from pos.idempotency import idempotent
from pos.permissions import RolePermission
from pos.throttling import ScopedRateThrottle

_WRITE_ACTIONS = frozenset({"create", "refund", "cancel", "simulate"})

WebhookResultSerializer = inline_serializer(
    "PaymentWebhookResult",
    {
        "status": serializers.ChoiceField(choices=["applied", "ignored", "duplicate"]),
        "payment": serializers.UUIDField(),
        "payment_status": serializers.CharField(),
    },
)


class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PaymentSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ("order", "outlet", "status", "method")
    permission_classes = [RolePermission]
    allowed_roles = {
        "read": services.PAYMENT_WRITER_ROLES,
        "create": services.PAYMENT_WRITER_ROLES,
        "cancel": services.PAYMENT_WRITER_ROLES,
        "simulate": services.PAYMENT_WRITER_ROLES,
        "refund": services.REFUND_ROLES,
    }
    throttle_scope = "payments"
    # Only UUID-shaped ids reach the lookup; anything else is a plain 404.
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_throttles(self):
        # Reads are cheap and tablets may refresh often; writes are rate limited per user.
        if self.action in _WRITE_ACTIONS:
            return [ScopedRateThrottle()]
        return []

    def get_queryset(self):
        return selectors.payments_visible_to(self.request.user)

    def get_object(self):
        payment = selectors.payment_for_user(self.request.user, self.kwargs["pk"])
        if payment is None:
            raise NotFound()
        return payment

    @extend_schema(
        request=PaymentCreateSerializer,
        responses={
            201: PaymentSerializer,
            400: OpenApiResponse(description="validation_error (amount above the remaining "
                                 "balance, unknown order, tendered below amount)"),
            409: OpenApiResponse(description="idempotency_in_progress"),
            422: OpenApiResponse(description="idempotency_key_reused"),
            502: OpenApiResponse(description="gateway_error"),
        },
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        payload = PaymentCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        payment = services.payment_create(
            actor=request.user,
            order_id=data["order"],
            method=data["method"],
            amount=data["amount"],
            tendered=data.get("tendered"),
            reference=data["reference"],
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=RefundCreateSerializer,
        responses={
            201: RefundSerializer,
            400: OpenApiResponse(description="validation_error (more than is left to refund)"),
            403: OpenApiResponse(description="permission_denied (managers and owners only)"),
            404: OpenApiResponse(description="not_found"),
            409: OpenApiResponse(description="invalid_transition (not a succeeded payment), "
                                 "idempotency_in_progress"),
            502: OpenApiResponse(description="gateway_error"),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def refund(self, request, pk=None):
        payload = RefundCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        refund = services.payment_refund(
            actor=request.user,
            payment_id=pk,
            amount=payload.validated_data.get("amount"),
            reason=payload.validated_data["reason"],
        )
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            200: PaymentSerializer,
            404: OpenApiResponse(description="not_found"),
            409: OpenApiResponse(description="invalid_transition (not pending)"),
            502: OpenApiResponse(description="gateway_error"),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        payment = services.payment_cancel(actor=request.user, payment_id=pk)
        return Response(PaymentSerializer(payment).data)

    @extend_schema(
        request=SimulateSerializer,
        responses={
            200: inline_serializer(
                "PaymentSimulation",
                {
                    "delivered": serializers.BooleanField(),
                    "webhook": serializers.CharField(allow_null=True),
                    "payment": PaymentSerializer(),
                },
            ),
            404: OpenApiResponse(description="not_found (unknown, or not a sandbox payment)"),
        },
    )
    @action(detail=True, methods=["post"])
    def simulate(self, request, pk=None):
        payload = SimulateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = services.payment_simulate(
            actor=request.user,
            payment_id=pk,
            status=payload.validated_data["status"],
            deliver=payload.validated_data["deliver"],
        )
        payment = selectors.payment_for_user(request.user, pk)
        return Response(
            {
                "delivered": result is not None,
                "webhook": result.outcome if result is not None else None,
                "payment": PaymentSerializer(payment).data,
            }
        )


class PaymentWebhookView(APIView):
    """``POST /api/payments/webhook/<provider>/``: called by gateways, not by staff.

    No JWT: the gateway's signature is the authentication, checked over the raw body.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhooks"

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter(
                "X-Signature", OpenApiTypes.STR, location=OpenApiParameter.HEADER,
                required=False,
                description="sandbox: HMAC-SHA256 of the raw body, hex. Midtrans signs "
                "inside the body (signature_key).",
            )
        ],
        responses={
            200: WebhookResultSerializer,
            400: OpenApiResponse(description="amount_mismatch or validation_error"),
            401: OpenApiResponse(description="invalid_signature"),
            404: OpenApiResponse(description="not_found (unknown provider or payment)"),
        },
    )
    def post(self, request, provider: str):
        result = services.payment_webhook_receive(
            provider=provider, raw_body=request.body, headers=request.headers
        )
        return Response(
            {"status": result.outcome, "payment": result.payment_id,
             "payment_status": result.status}
        )
