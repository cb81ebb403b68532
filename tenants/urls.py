"""Auth and tenancy endpoints, mounted under ``/api/``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants import api

router = SimpleRouter()
router.register("tenants", api.TenantViewSet, basename="tenant")
router.register("outlets", api.OutletViewSet, basename="outlet")
router.register("users", api.UserViewSet, basename="user")

urlpatterns = [
    path("auth/token/", api.TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", api.TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/me/", api.MeView.as_view(), name="me"),
    *router.urls,
]
