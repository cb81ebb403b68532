"""The one event path: ``emit`` writes an outbox row inside the caller's transaction.

``emit`` allocates the outlet's next ``seq`` under a row lock (so per outlet seq starts at 1
and has no gaps and no repeats, whatever the number of concurrent writers), stores the event,
runs the reactions other apps registered for its name (inside the same transaction: they
commit or roll back with the change), and asks for publication after commit. A rolled-back
transaction leaves no event and no hole, since the seq increment rolls back with it.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from pos import metrics
from pos.models import StreamCursor, StreamEvent

logger = logging.getLogger(__name__)

EVENT_NAMES = frozenset(
    {
        "order.created",
        "order.status_changed",
        "order.updated",
        "ticket.created",
        "ticket.updated",
        "ticket.bumped",
        "ticket.recalled",
        "ticket.voided",
        "product.availability_changed",
        "payment.created",
        "payment.succeeded",
        "payment.failed",
        "payment.expired",
        "payment.refunded",
    }
)


class OutletLike(Protocol):
    id: uuid.UUID
    tenant_id: uuid.UUID


Reaction = Callable[[StreamEvent], None]
_reactions: dict[str, list[Reaction]] = defaultdict(list)


def on_event(name: str, reaction: Reaction) -> None:
    """Register ``reaction(event)`` to run inside the transaction that emits ``name``.

    Call from ``AppConfig.ready()`` of the app that depends on the emitting one: orders knows
    nothing of kitchens, yet confirming an order fires its tickets in the same transaction.
    """
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event name {name!r}")
    if reaction not in _reactions[name]:
        _reactions[name].append(reaction)


def _next_seq(outlet_id: uuid.UUID) -> int:
    """Increment the outlet's cursor; the updated row stays locked until commit."""
    for _ in range(2):
        if StreamCursor.objects.filter(pk=outlet_id).update(last_seq=F("last_seq") + 1):
            return StreamCursor.objects.values_list("last_seq", flat=True).get(pk=outlet_id)
        try:
            with transaction.atomic():  # savepoint: a racing creator must not poison our txn
                StreamCursor.objects.create(outlet_id=outlet_id, last_seq=1)
            return 1
        except IntegrityError:
            continue  # another transaction created it first: increment theirs
    raise RuntimeError(f"could not allocate a seq for outlet {outlet_id}")


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def emit(
    *,
    outlet: OutletLike,
    name: str,
    data: dict[str, Any],
    order_id: uuid.UUID | str | None = None,
    station_id: uuid.UUID | str | None = None,
) -> StreamEvent:
    """Write event ``name`` for ``outlet``. Call inside the transaction of the change.

    ``data`` is the whole current object as its output serializer renders it. ``order_id`` and
    ``station_id`` are routing keys the sockets filter on (the order a ticket or payment
    belongs to; the station of a ticket).
    """
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event name {name!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit() must run inside the transaction of the change it reports")
    event = StreamEvent.objects.create(
        tenant_id=outlet.tenant_id,
        outlet_id=outlet.id,
        seq=_next_seq(outlet.id),
        name=name,
        data=_jsonable(data),
        order_id=order_id,
        station_id=station_id,
        created_at=timezone.now(),
    )
    metrics.events_emitted.labels(event=name).inc()
    _schedule_publication(event)
    for reaction in list(_reactions.get(name, ())):
        reaction(event)
    return event


def _schedule_publication(event: StreamEvent) -> None:
    from django.conf import settings

    from pos.streams.publisher import publish_after_commit

    if settings.OUTBOX_SKIP_ON_COMMIT_PUBLISH:
        return  # fault-test hook: behave as a process that died right after commit
    transaction.on_commit(lambda: publish_after_commit([event]))
