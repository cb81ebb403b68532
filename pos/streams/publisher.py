"""Publication of committed outbox rows to the channel layer.

Publication is at-most-once (the channel layer drops silently when a channel is over
capacity, and Redis may be down): delivery guarantees come from the log, which sockets read
to fill any gap. A row is marked published once its ``group_send`` returned; rows left
unpublished (a crash between commit and publication, a Redis outage) are picked up by the
relay task.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from pos import metrics
from pos.models import StreamEvent
from pos.streams.wire import group_for_outlet, message_for

logger = logging.getLogger(__name__)


def _mark_published(ids: Sequence[int]) -> None:
    StreamEvent.objects.filter(pk__in=ids, published_at__isnull=True).update(
        published_at=timezone.now()
    )


async def publish_events(events: Iterable[StreamEvent], *, path: str = "commit") -> int:
    """Send each event to its outlet's group; mark the sent ones published. Returns the count."""
    layer = get_channel_layer()
    sent: list[int] = []
    for event in events:
        try:
            await layer.group_send(group_for_outlet(event.outlet_id), message_for(event))
        except Exception:
            metrics.publish_failures.inc()
            logger.warning(
                "publication failed; the relay will retry",
                extra={"outlet": str(event.outlet_id), "seq": event.seq, "event": event.name},
                exc_info=True,
            )
            break  # keep order: later events wait for the relay too
        sent.append(event.pk)
    if sent:
        metrics.events_published.labels(path=path).inc(len(sent))
        # Plain sync_to_async: publication is always driven from a sync caller (on_commit, the
        # relay), so this runs on that caller's thread and connection, inside its lifecycle.
        await sync_to_async(_mark_published)(sent)
    return len(sent)


def publish_after_commit(events: Sequence[StreamEvent]) -> None:
    """on_commit callback: publish now, never raise (the transaction is already committed)."""
    try:
        async_to_sync(publish_events)(events)
    except Exception:
        logger.exception("on-commit publication failed; the relay will retry")
