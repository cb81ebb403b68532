from django.urls import re_path

from orders.consumers import OrdersStreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/orders/(?P<outlet_id>[0-9a-f-]+)/$", OrdersStreamConsumer.as_asgi()),
]
