"""Throttles that fail open.

Throttle counters live in the cache (Redis in production). When the cache is unreachable a
throttle cannot count, and refusing every request would turn a Redis outage into a full
outage of ordering and payments; so the request is let through and the failure is logged.
The limits are back as soon as the cache is.
"""

from __future__ import annotations

import logging

from rest_framework import throttling

logger = logging.getLogger(__name__)


class FailOpenMixin:
    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning(
                "throttle store unreachable; request allowed",
                extra={"throttle": type(self).__name__},
                exc_info=True,
            )
            return True


class SimpleRateThrottle(FailOpenMixin, throttling.SimpleRateThrottle):
    """``SimpleRateThrottle`` that lets requests through while the cache is down."""


class ScopedRateThrottle(FailOpenMixin, throttling.ScopedRateThrottle):
    """``ScopedRateThrottle`` that lets requests through while the cache is down."""
