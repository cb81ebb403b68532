"""The relay: publish committed events that their on-commit publication never sent.

Safe to run twice, or concurrently: a re-published event is dropped by sockets (seq dedup).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from pos import metrics
from pos.models import StreamEvent
from pos.streams.publisher import publish

logger = logging.getLogger(__name__)

RELAY_BATCH = 500


def relay_unpublished(*, older_than_s: float | None = None, limit: int = 5000) -> int:
    """Publish events unpublished for ``older_than_s`` seconds, oldest first per outlet."""
    if older_than_s is None:
        older_than_s = settings.OUTBOX_RELAY_AFTER_S
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    total = 0
    while total < limit:
        batch = list(
            StreamEvent.objects.filter(published_at__isnull=True, created_at__lte=cutoff)
            .order_by("outlet_id", "seq")[:RELAY_BATCH]
        )
        if not batch:
            break
        sent = publish(batch, path="relay", mark_now=True)
        total += sent
        if sent < len(batch):
            break  # the layer is failing: try again on the next run
    if total:
        logger.info("relay published events", extra={"count": total})
    return total


def prune_events(*, retention_days: int | None = None) -> int:
    """Delete log rows older than the retention; the cursor (last seq) is kept."""
    days = settings.EVENT_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = StreamEvent.objects.filter(
        created_at__lt=cutoff, published_at__isnull=False
    ).delete()
    return deleted


def refresh_backlog_metrics() -> None:
    pending = StreamEvent.objects.filter(published_at__isnull=True)
    summary = pending.aggregate(oldest=Min("created_at"))
    metrics.relay_backlog.set(pending.count())
    oldest = summary["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    metrics.oldest_unpublished_age.set(age)
