from django.urls import path
from rest_framework.routers import SimpleRouter

from payments.api import PaymentViewSet, PaymentWebhookView

router = SimpleRouter()
router.register("payments", PaymentViewSet, basename="payment")

urlpatterns = [
    path(
        "payments/webhook/<slug:provider>/",
        PaymentWebhookView.as_view(),
        name="payment-webhook",
    ),
    *router.urls,
]
