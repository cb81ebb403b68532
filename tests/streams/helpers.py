"""A minimal stream socket over the shared consumer base, and event-writing helpers."""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.serializers.json import DjangoJSONEncoder
from django.test import override_settings
from django.urls import re_path

from pos.streams import outbox
from pos.streams.consumers import Access, StreamConsumer
from pos.ws_auth import JWTAuthMiddleware
from tenants import selectors
from tests.factories import access_token


class ProbeConsumer(StreamConsumer):
    """Follows an outlet stream; ``?only=<order id>`` narrows it to one order."""

    stream_name = "probe"

    def authorize(self, user) -> Access:
        outlet_id = self.scope["url_route"]["kwargs"]["outlet_id"]
        if selectors.outlet_in_user_tenant(user, outlet_id) is None:
            return Access.refuse(4404)
        if selectors.outlet_for_user(user, outlet_id) is None:
            return Access.refuse(4403)
        return Access(outlet_id=outlet_id)

    def accepts(self, name, order_id, station_id) -> bool:
        only = self.scope.get("query_string", b"").decode()
        if "only=" in only:
            return order_id == only.split("only=")[1].split("&")[0]
        return True

    def snapshot(self) -> dict:
        return {"probe": True}


application = JWTAuthMiddleware(
    URLRouter([re_path(r"^ws/probe/(?P<outlet_id>[^/]+)/$", ProbeConsumer.as_asgi())])
)


def communicator(user, outlet, query: str = "") -> WebsocketCommunicator:
    qs = f"token={access_token(user)}" if user is not None else ""
    if query:
        qs = f"{qs}&{query}" if qs else query
    return WebsocketCommunicator(application, f"/ws/probe/{outlet.id}/?{qs}")


def write_events(outlet, count: int, *, order_id=None, publish: bool | None = True) -> list[int]:
    """Commit ``count`` events (one transaction each); returns their seqs.

    ``publish=False`` skips their on-commit publication, as a crash would. ``None`` leaves the
    setting alone: threads must not override settings (override_settings is process-wide).
    """
    seqs = []
    skip = {} if publish is None else {"OUTBOX_SKIP_ON_COMMIT_PUBLISH": not publish}
    with override_settings(**skip):
        for i in range(count):
            with outbox.atomic():
                event = outbox.emit(outlet=outlet, name="order.updated", data={"n": i},
                                    order_id=order_id)
            seqs.append(event.seq)
    return seqs


awrite_events = database_sync_to_async(write_events)


async def receive(comm: WebsocketCommunicator, timeout: float = 3.0) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def receive_events(comm: WebsocketCommunicator, count: int, timeout: float = 5.0):
    return [await receive(comm, timeout) for _ in range(count)]


def record_emits(monkeypatch, module) -> list[tuple[str, str]]:
    """``(name, data as JSON)`` of every event ``module``'s services hand to ``emit`` from now
    on (key order included: what is stored and published), in order."""
    calls: list[tuple[str, str]] = []
    real_emit = module.emit

    def recording_emit(*, name, data, **kwargs):
        calls.append((name, json.dumps(data, cls=DjangoJSONEncoder)))
        return real_emit(name=name, data=data, **kwargs)

    monkeypatch.setattr(module, "emit", recording_emit)
    return calls
