"""Periodic payment tasks (CELERY_BEAT_SCHEDULE). Both are idempotent and safe to overlap:
every change happens under the order and payment row locks, and only to pending payments."""

from celery import shared_task

from payments import services


@shared_task(name="payments.tasks.payments_expire")
def payments_expire() -> int:
    """Expire pending QR and e-wallet payments past their ``expires_at``."""
    return services.payments_expire_due()


@shared_task(name="payments.tasks.payments_poll_pending")
def payments_poll_pending() -> int:
    """Ask the gateway about payments pending for over a minute: webhooks do get lost."""
    return services.payments_poll_pending()
