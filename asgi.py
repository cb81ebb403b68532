"""ASGI entry point: HTTP to Django; WebSockets through origin check, JWT auth, the app routers."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pos.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from kds.routing import websocket_urlpatterns as kds_ws  # noqa: E402
from orders.routing import websocket_urlpatterns as orders_ws  # noqa: E402
from payments.routing import websocket_urlpatterns as payments_ws  # noqa: E402
from pos.embedded import start_embedded_scheduler  # noqa: E402
from pos.ws_auth import JWTAuthMiddleware, OriginCheckMiddleware  # noqa: E402

# Embedded mode has no Celery beat: run the periodic tasks in this process instead.
start_embedded_scheduler()

websocket_urlpatterns = [*kds_ws, *orders_ws, *payments_ws]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginCheckMiddleware(JWTAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far (Django, the apps, URL patterns: over 100,000 objects) lives as long
# as the process. Moved out of the collector's reach, it is not walked again by every full
# collection, which otherwise pauses the event loop, and every socket with it, for tens of ms.
gc.freeze()
