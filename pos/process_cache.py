"""One cache client per process for code that runs on behalf of sockets.

``django.core.cache.cache`` is per async context: under ASGI each socket's task would open
and keep its own connection pool to Redis, so 5,000 screens meant 5,000 Redis connections in
one process. Socket code (connection budgets, kitchen command memory) uses this shared client
instead; the Redis client's pool is thread-safe.
"""

from __future__ import annotations

import functools

from django.core.cache import BaseCache, caches


@functools.cache
def process_cache() -> BaseCache:
    return caches.create_connection("default")
