"""Periodic plumbing tasks (scheduled by Celery beat; see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from pos.streams.relay import prune_events, relay_unpublished


@shared_task(name="pos.tasks.outbox_relay")
def outbox_relay() -> int:
    return relay_unpublished()


@shared_task(name="pos.tasks.outbox_prune")
def outbox_prune() -> int:
    return prune_events()


@shared_task(name="pos.tasks.idempotency_prune")
def idempotency_prune() -> int:
    from pos.idempotency import prune_idempotency_records

    return prune_idempotency_records()
