from django.urls import re_path

from payments.consumers import PaymentsStreamConsumer

# Any path segment reaches the consumer, which answers a malformed id with 4404 like an
# unknown one.
websocket_urlpatterns = [
    re_path(r"^ws/payments/(?P<order_id>[^/]+)/$", PaymentsStreamConsumer.as_asgi()),
]
