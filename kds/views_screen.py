"""The kitchen screen page: one static page that signs in through the REST API.

The page itself needs no session or login: everything it shows comes from the API and the
kitchen socket, both authorised with the JWT the page obtains.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


@require_safe
@never_cache
def kitchen_screen(request: HttpRequest) -> HttpResponse:
    response = render(request, "kds/screen.html")
    host = request.get_host()  # validated against ALLOWED_HOSTS
    # Everything is served by this service; the socket goes back to the same host.
    response["Content-Security-Policy"] = (
        "default-src 'self'; "
        f"connect-src 'self' ws://{host} wss://{host}; "
        "img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    )
    return response
