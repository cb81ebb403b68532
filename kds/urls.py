"""Kitchen REST routes, mounted under ``/api/``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from kds import api

router = SimpleRouter()
router.register("stations", api.StationViewSet, basename="station")
router.register("kds/tickets", api.TicketViewSet, basename="kds-ticket")

urlpatterns = [
    path("kds/ticket-items/<str:pk>/status/", api.TicketItemStatusView.as_view(),
         name="kds-ticket-item-status"),
    path("kds/stations/<str:pk>/recall/", api.StationRecallView.as_view(),
         name="kds-station-recall"),
    path("kds/all-day/", api.AllDayView.as_view(), name="kds-all-day"),
    path("kds/metrics/", api.MetricsView.as_view(), name="kds-metrics"),
    *router.urls,
]
