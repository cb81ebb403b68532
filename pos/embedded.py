"""Periodic tasks for the embedded mode, where no Celery beat runs.

In embedded mode (no Redis) Celery runs tasks eagerly and there is no beat process, yet QR
payments must still expire and the relay must still publish what a failed publication left.
The ASGI entry point starts this scheduler: a daemon thread that runs the beat schedule's
tasks in process. With Redis configured, Celery beat does this instead and this never starts.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_started = threading.Event()


def _run_forever(stop: threading.Event) -> None:
    from pos.celery import app

    app.loader.import_default_modules()
    schedule = {
        entry["task"]: float(entry["schedule"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    due = dict.fromkeys(schedule, time.monotonic())
    while not stop.is_set():
        now = time.monotonic()
        for name, interval in schedule.items():
            if now < due[name]:
                continue
            due[name] = now + interval
            task = app.tasks.get(name)
            if task is None:
                logger.error("embedded scheduler: no task %s", name)
                continue
            try:
                task.apply()
            except Exception:
                logger.exception("embedded scheduler: task %s failed", name)
            finally:
                close_old_connections()
        stop.wait(max(0.2, min(due.values()) - time.monotonic()))


def start_embedded_scheduler() -> threading.Event | None:
    """Start the scheduler thread once per process, in embedded mode only."""
    if not settings.EMBEDDED or _started.is_set():
        return None
    _started.set()
    stop = threading.Event()
    thread = threading.Thread(
        target=_run_forever, args=(stop,), name="embedded-scheduler", daemon=True
    )
    thread.start()
    return stop
