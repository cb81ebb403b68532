"""Liveness, readiness and metrics endpoints (no authentication, no tenant data)."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

logger = logging.getLogger(__name__)


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0] == 1
    except Exception:
        logger.warning("readiness: database unreachable", exc_info=True)
        return False


async def _ping_layer(timeout: float) -> None:
    layer = get_channel_layer()
    if not settings.REDIS_URL:
        return  # the in-memory layer lives in this process
    import redis.asyncio as redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout)
    try:
        await asyncio.wait_for(client.ping(), timeout)
    finally:
        await client.aclose()
    assert layer is not None


def _channel_layer_ok() -> bool:
    try:
        async_to_sync(_ping_layer)(2.0)
        return True
    except Exception:
        logger.warning("readiness: channel layer unreachable", exc_info=True)
        return False


@require_GET
def readyz(request):
    checks = {"database": _database_ok(), "channel_layer": _channel_layer_ok()}
    if all(checks.values()):
        return JsonResponse({"status": "ready", "checks": checks})
    body = {
        "error": {
            "code": "not_ready",
            "message": "A dependency is unreachable: "
            + ", ".join(name for name, ok in checks.items() if not ok),
            "details": {"checks": checks},
        }
    }
    return JsonResponse(body, status=503)


@require_GET
def metrics(request):
    from pos.streams.relay import refresh_backlog_metrics

    refresh_backlog_metrics()
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
