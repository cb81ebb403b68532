"""Kitchen socket routes (``asgi.py`` mounts them)."""

from django.urls import re_path

from kds.consumers import KitchenStreamConsumer

# Any path segment reaches the consumer, so a malformed outlet id gets the protocol's 4404
# rather than a dropped handshake.
websocket_urlpatterns = [
    re_path(r"^ws/kitchen/(?P<outlet_id>[^/]+)/$", KitchenStreamConsumer.as_asgi()),
]
