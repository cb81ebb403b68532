"""Shared plumbing tables: the event outbox, its per-stream cursor, idempotency records, and
the audit trail.

``pos`` sits at the bottom of the dependency order, so these tables hold outlet and tenant
ids as plain UUIDs instead of foreign keys to ``tenants``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class StreamCursor(models.Model):
    """The last ``seq`` allocated on an outlet's stream; row-locked to allocate the next."""

    outlet_id = models.UUIDField(primary_key=True)
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.outlet_id}@{self.last_seq}"


class StreamEvent(models.Model):
    """One outbox row: an event written in the same transaction as the change it reports."""

    # Not indexed: every read of the log goes by outlet (the tenant's outlets are checked
    # before), and each index costs every event row's insert and its published mark.
    tenant_id = models.UUIDField()
    outlet_id = models.UUIDField()
    # outbox.atomic writes its events with their seqs just before commit, so every row has
    # one; the column stays nullable because rows written by earlier releases were inserted
    # without it and numbered later in their transaction (a process of one during an upgrade).
    seq = models.BigIntegerField(null=True)
    name = models.CharField(max_length=64)
    data = models.JSONField()
    # Routing keys, so sockets filter the live path and the log alike without parsing data.
    order_id = models.UUIDField(null=True, blank=True)
    station_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("outlet_id", "seq")
        constraints = [
            models.UniqueConstraint(fields=("outlet_id", "seq"), name="stream_event_seq_unique"),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="stream_event_seq_gte_1"),
        ]
        indexes = [
            models.Index(
                fields=("created_at",),
                name="stream_event_unpublished",
                condition=models.Q(published_at__isnull=True),
            ),
            models.Index(fields=("outlet_id", "order_id", "seq"), name="stream_event_order"),
        ]

    def __str__(self) -> str:
        return f"{self.outlet_id}#{self.seq} {self.name}"


class IdempotencyRecord(models.Model):
    """A creation request seen with an ``Idempotency-Key``: its fingerprint and response."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=120)  # "METHOD path", so one key per endpoint
    fingerprint = models.CharField(max_length=64)  # sha256 of the request body
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # null: in progress
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("user", "scope", "key"), name="idempotency_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class AuditEntry(models.Model):
    """One sensitive action, written by ``pos.audit.audit_record`` in the action's transaction.

    Append-only: rows are never updated, and kept indefinitely (docs/audit.md). The actor's
    username and role are snapshots, so an entry still reads right after the actor is renamed,
    demoted or deleted (``actor`` then becomes null). ``actor`` null with an empty snapshot
    means the system acted (a kitchen reaction, a periodic task).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant_id = models.UUIDField(null=True, blank=True)  # null: a platform-level action
    outlet_id = models.UUIDField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=("tenant_id", "created_at"), name="audit_tenant_created"),
            models.Index(fields=("target_type", "target_id"), name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs) -> None:
        # The trail is evidence: an entry that could be edited afterwards proves nothing.
        if not self._state.adding:
            raise RuntimeError("audit entries are append-only")
        super().save(*args, **kwargs)
