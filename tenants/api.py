"""REST endpoints of the tenancy app: auth, tenants, outlets, staff users. Thin by design."""

from __future__ import annotations

import hashlib

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenViewBase

from pos.permissions import (
    ALL_ROLES,
    MANAGEMENT_ROLES,
    SUPER_ADMIN,
    TENANT_ADMIN_ROLES,
    RolePermission,
)
from pos.throttling import SimpleRateThrottle
from tenants import services
from tenants.selectors import (
    outlets_visible_to,
    tenant_for_write,
    tenants_visible_to,
    users_visible_to,
)
from tenants.serializers import (
    OutletSerializer,
    TenantSerializer,
    TokenObtainSerializer,
    TokenPairResponseSerializer,
    UserSerializer,
)

# --- Auth ------------------------------------------------------------------------------------


class LoginIpThrottle(SimpleRateThrottle):
    """Login attempts per client address (rate of the ``login`` scope)."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": "login-ip", "ident": self.get_ident(request)}


class LoginUsernameThrottle(SimpleRateThrottle):
    """Login attempts per username, so guessing one account's password from many addresses
    is throttled too (rate of the ``login`` scope)."""

    scope = "login"

    def get_cache_key(self, request, view):
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        # Hashed: a username is arbitrary client text, not a safe cache key.
        ident = hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass"))
        return self.cache_format % {"scope": "login-user", "ident": ident.hexdigest()}


class TokenRefreshThrottle(SimpleRateThrottle):
    scope = "token_refresh"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenObtainView(TokenViewBase):
    """Log in: ``{username, password}`` -> ``{access, refresh, user}``.

    Wrong credentials or an inactive account: 401 ``not_authenticated``. Too many attempts
    from one address or for one username: 429 ``throttled``.
    """

    serializer_class = TokenObtainSerializer
    throttle_classes = [LoginIpThrottle, LoginUsernameThrottle]

    @extend_schema(responses={200: TokenPairResponseSerializer}, tags=["auth"])
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()

    def validate(self, attrs):
        try:
            refresh = RefreshToken(attrs["refresh"])  # signature, expiry, blacklist
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return services.token_rotate(refresh=refresh)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenRefreshView(TokenViewBase):
    """``{refresh}`` -> a new ``{access, refresh}``; the old refresh token is blacklisted, so
    using it again is 401 ``not_authenticated``."""

    serializer_class = TokenRefreshSerializer
    throttle_classes = [TokenRefreshThrottle]

    @extend_schema(responses={200: TokenPairSerializer}, tags=["auth"])
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class MeView(APIView):
    """The authenticated user."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UserSerializer}, tags=["auth"])
    def get(self, request):
        user = users_visible_to(request.user).select_related("tenant").prefetch_related(
            "tenant__outlets"
        ).get(pk=request.user.pk)
        return Response(UserSerializer(user, context={"request": request}).data)


# --- Tenants, outlets, users -----------------------------------------------------------------

_READ = {"list": ALL_ROLES, "retrieve": ALL_ROLES}


class TenantViewSet(viewsets.ModelViewSet):
    """Tenants. Platform admins: all. Owners read and update their own; other staff read it."""

    serializer_class = TenantSerializer
    permission_classes = [RolePermission]
    allowed_roles = {
        **_READ,
        "create": {SUPER_ADMIN},
        "update": TENANT_ADMIN_ROLES,
        "partial_update": TENANT_ADMIN_ROLES,
        "destroy": {SUPER_ADMIN},
    }
    search_fields = ("name", "slug")
    ordering_fields = ("name", "slug")

    def get_queryset(self):
        return tenants_visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.tenant_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.tenant_update(
            tenant=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.tenant_delete(tenant=instance)


class OutletViewSet(viewsets.ModelViewSet):
    """Outlets. Owners: CRUD in their tenant (a platform admin names ``tenant`` on creation).
    Managers, cashiers and kitchen staff read the outlets they work at."""

    serializer_class = OutletSerializer
    permission_classes = [RolePermission]
    allowed_roles = {
        **_READ,
        "create": TENANT_ADMIN_ROLES,
        "update": TENANT_ADMIN_ROLES,
        "partial_update": TENANT_ADMIN_ROLES,
        "destroy": TENANT_ADMIN_ROLES,
    }
    filterset_fields = ("tenant",)
    search_fields = ("name",)
    ordering_fields = ("name", "created_at")

    def get_queryset(self):
        return outlets_visible_to(self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        tenant = tenant_for_write(self.request.user, data.pop("tenant", None))
        serializer.instance = services.outlet_create(tenant=tenant, **data)

    def perform_update(self, serializer):
        serializer.instance = services.outlet_update(
            outlet=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.outlet_delete(outlet=instance)


@extend_schema_view(
    create=extend_schema(description="Owners create staff in their tenant (not super_admin); "
                         "managers create cashier and kitchen staff of their own outlets."),
)
class UserViewSet(viewsets.ModelViewSet):
    """Staff users. Owners: CRUD in their tenant. Managers: cashier and kitchen staff of their
    outlets. Everyone: read themselves and change their own password (with
    ``current_password``)."""

    serializer_class = UserSerializer
    permission_classes = [RolePermission]
    allowed_roles = {
        **_READ,
        "create": MANAGEMENT_ROLES,
        "update": ALL_ROLES,
        "partial_update": ALL_ROLES,
        "destroy": MANAGEMENT_ROLES,
    }
    filterset_fields = ("role", "is_active", "tenant", "outlets")
    search_fields = ("username",)
    ordering_fields = ("username", "date_joined")

    def get_queryset(self):
        return users_visible_to(self.request.user).select_related("tenant").prefetch_related(
            "outlets", "tenant__outlets"
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("current_password", None)
        user = services.user_create(actor=request.user, **data)
        return Response(self._render(user.pk), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(
            actor=request.user, user=instance, data=serializer.validated_data
        )
        return Response(self._render(user.pk))

    def perform_destroy(self, instance):
        services.user_delete(actor=self.request.user, user=instance)

    def _render(self, pk):
        # Re-read with the prefetches the serializer needs (outlets may have just changed).
        return self.get_serializer(self.get_queryset().get(pk=pk)).data
