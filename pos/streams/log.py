"""Reads of the event log (the outbox), shared by sockets and ``GET /api/events/``."""

from __future__ import annotations

import uuid

from django.db.models import Min, TextField
from django.db.models.functions import Cast

from pos.models import StreamCursor, StreamEvent

REPLAY_BATCH = 1000


def last_seq(outlet_id: uuid.UUID | str) -> int:
    value = StreamCursor.objects.filter(pk=outlet_id).values_list("last_seq", flat=True).first()
    return value or 0


def first_kept_seq(outlet_id: uuid.UUID | str) -> int | None:
    return StreamEvent.objects.filter(outlet_id=outlet_id).aggregate(m=Min("seq"))["m"]


def since_is_replayable(outlet_id, since: int, current: int) -> bool:
    """True when every event after ``since`` is still in the log (and ``since`` is not ahead)."""
    if since < 0 or since > current:
        return False
    if since == current:
        return True
    first = first_kept_seq(outlet_id)
    return first is not None and first <= since + 1


def event_rows_after(outlet_id, after: int, limit: int = REPLAY_BATCH) -> list[tuple]:
    """``(seq, name, order_id, station_id, created_at, data as JSON text)`` after ``after``.

    Replay reads the stored JSON as text and wraps the envelope around it: no model
    instances, no decoding and re-encoding of each event's data.
    """
    return list(
        StreamEvent.objects.filter(outlet_id=outlet_id, seq__gt=after)
        .order_by("seq")
        .values_list(
            "seq", "name", "order_id", "station_id", "created_at", Cast("data", TextField())
        )[:limit]
    )
