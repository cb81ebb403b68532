"""Root URLs. Each app owns its own ``urls.py``; this file only mounts them."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from pos import health
from pos.audit_api import AuditEntryListView
from pos.streams.api import EventLogView

handler400 = "pos.api_errors.handler400"
handler403 = "pos.api_errors.handler403"
handler404 = "pos.api_errors.handler404"
handler500 = "pos.api_errors.handler500"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/events/", EventLogView.as_view(), name="events"),
    path("api/audit/", AuditEntryListView.as_view(), name="audit"),
    path("api/", include("tenants.urls")),
    path("api/", include("catalog.urls")),
    path("api/", include("orders.urls")),
    path("api/", include("kds.urls")),
    path("api/", include("payments.urls")),
    path("kds/", include("kds.screen_urls")),
    path("admin/", admin.site.urls),
]
