"""``/ws/kitchen/<outlet_id>/?station=<station_id>``: the kitchen screens' stream.

Forwards ``ticket.*`` (only the station's when ``station`` is given; every station's for an
expo screen without it) and ``product.availability_changed``. The snapshot holds the open
tickets, the all-day counts, the outlet's time thresholds and its stations.

Commands (``bump``, ``recall``, ``item_status``) carry a ``request_id``. The first answer to
a ``request_id`` is kept (on the socket, and per user in the cache for a few minutes, so a
screen that reconnects and resends gets it too): a repeat returns that answer and changes
nothing again. The consumer holds no ORM code: it calls selectors and services in a worker
thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from rest_framework.exceptions import APIException

from kds import selectors, services
from kds.models import TicketItemStatus
from pos.api_errors import ApiError
from pos.permissions import KITCHEN, MANAGEMENT_ROLES, user_has_role
from pos.process_cache import process_cache
from pos.streams.consumers import Access, CommandError, StreamConsumer

logger = logging.getLogger(__name__)

#: Roles that may send commands (the REST ticket actions' roles); a cashier only watches.
COMMAND_ROLES = frozenset(MANAGEMENT_ROLES | {KITCHEN})
COMMANDS = frozenset({"bump", "recall", "item_status"})
#: How long an answered request_id is remembered per user.
COMMAND_MEMORY_S = 300
#: Answers remembered per socket (the oldest go first).
SOCKET_MEMORY = 1000
MAX_REQUEST_ID_LENGTH = 128


def _fingerprint(content: dict[str, Any]) -> str:
    body = {k: v for k, v in content.items() if k != "request_id"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _command_error(exc: APIException) -> CommandError:
    code = exc.error_code if isinstance(exc, ApiError) else exc.default_code
    if code == "invalid":
        code = "validation_error"
    return CommandError(str(code), str(exc.detail))


class KitchenStreamConsumer(StreamConsumer):
    stream_name = "kitchen"

    station_id: str | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._answers: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    # --- hooks ------------------------------------------------------------------------------
    def authorize(self, user) -> Access:
        outlet_id = self.scope["url_route"]["kwargs"]["outlet_id"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        station = query.get("station", [None])[0]
        access = selectors.kitchen_socket_access(user, outlet_id, station)
        if access.close_code is not None:
            return Access.refuse(access.close_code)
        self.station_id = str(access.station_id) if access.station_id else None
        return Access(outlet_id=str(access.outlet.pk))

    def accepts(self, name: str, order_id: str | None, station_id: str | None) -> bool:
        if name == "product.availability_changed":
            return True
        if not name.startswith("ticket."):
            return False
        return self.station_id is None or station_id == self.station_id

    def snapshot(self) -> dict[str, Any]:
        return selectors.kitchen_snapshot(self.subscription.outlet_id, self.station_id)

    # --- commands ---------------------------------------------------------------------------
    async def handle_command(self, content: dict[str, Any]) -> dict[str, Any]:
        if content["type"] not in COMMANDS:
            return await super().handle_command(content)
        request_id = content.get("request_id")
        if (
            not isinstance(request_id, str | int)
            or isinstance(request_id, bool)
            or not str(request_id)
            or len(str(request_id)) > MAX_REQUEST_ID_LENGTH
        ):
            raise CommandError(
                "invalid_message",
                f"A command needs a request_id: a string of 1 to {MAX_REQUEST_ID_LENGTH} "
                "characters (or an integer).",
            )
        if not user_has_role(self.user, COMMAND_ROLES):
            raise CommandError("permission_denied", "Your role may watch this screen only.")

        key, fingerprint = str(request_id), _fingerprint(content)
        remembered = self._answers.get(key)
        if remembered is not None:
            return self._replay(remembered, fingerprint)
        cache_key = f"kds:command:{self.user.pk}:{hashlib.sha256(key.encode()).hexdigest()}"
        shared = True  # the per-user memory lives in the cache; the socket's own always works
        cache = process_cache()
        try:
            if not await cache.aadd(cache_key, (fingerprint, None), COMMAND_MEMORY_S):
                stored = await cache.aget(cache_key)
                if stored is not None:
                    if stored[1] is None and stored[0] == fingerprint:
                        raise CommandError(
                            "in_progress", "This request is still being carried out."
                        )
                    return self._replay(stored, fingerprint)
                # It expired between the two calls: claim it again.
                await cache.aset(cache_key, (fingerprint, None), COMMAND_MEMORY_S)
        except CommandError:
            raise
        except Exception:
            # Redis is down: carry on with the socket's memory only, as a kitchen in the
            # middle of service must still be able to bump.
            logger.warning("command memory unreachable; using the socket's", exc_info=True)
            shared = False
        try:
            seq = await database_sync_to_async(self._run)(content)
        except BaseException:
            if shared:
                with contextlib.suppress(Exception):
                    await cache.adelete(cache_key)  # nothing changed: it may be retried
            raise
        ack = {"type": "ack", "request_id": request_id, "seq": seq}
        if shared:
            with contextlib.suppress(Exception):
                await cache.aset(cache_key, (fingerprint, ack), COMMAND_MEMORY_S)
        self._remember(key, fingerprint, ack)
        return ack

    def _replay(self, remembered: tuple[str, dict[str, Any] | None], fingerprint: str
                ) -> dict[str, Any]:
        stored_fingerprint, ack = remembered
        if stored_fingerprint != fingerprint:
            raise CommandError(
                "request_id_reused", "This request_id was already used for another command."
            )
        return ack

    def _remember(self, key: str, fingerprint: str, ack: dict[str, Any]) -> None:
        self._answers[key] = (fingerprint, ack)
        while len(self._answers) > SOCKET_MEMORY:
            self._answers.popitem(last=False)

    # Runs in a worker thread: selectors and services only.
    def _run(self, content: dict[str, Any]) -> int:
        try:
            change = self._dispatch(content)
        except CommandError:
            raise
        except APIException as exc:
            raise _command_error(exc) from exc
        except Exception as exc:
            logger.exception("kitchen command failed", extra={"command": content.get("type")})
            raise CommandError("server_error", "The command failed on the server.") from exc
        return change.event.seq

    def _dispatch(self, content: dict[str, Any]) -> services.TicketChange:
        kind = content["type"]
        if kind == "item_status":
            status = content.get("status")
            if status not in (TicketItemStatus.COOKING, TicketItemStatus.DONE):
                raise CommandError("validation_error", 'status must be "cooking" or "done".')
            item = selectors.ticket_item_for_user(self.user, content.get("item"))
            if item is None or str(item.ticket.outlet_id) != self.subscription.outlet_id:
                raise CommandError("not_found", "No such ticket item at this outlet.")
            return services.ticket_item_set_status(item_id=item.pk, status=status,
                                                   actor=self.user)
        if kind == "recall" and content.get("ticket") is None:
            return self._recall_last(content.get("station") or self.station_id)
        ticket = selectors.ticket_for_user(self.user, content.get("ticket"))
        if ticket is None or str(ticket.outlet_id) != self.subscription.outlet_id:
            raise CommandError("not_found", "No such ticket at this outlet.")
        if kind == "bump":
            return services.ticket_bump(ticket_id=ticket.pk, actor=self.user)
        return services.ticket_recall(ticket_id=ticket.pk, actor=self.user)

    def _recall_last(self, station_id: Any) -> services.TicketChange:
        """``{"type": "recall"}`` without a ticket: the station's last bumped one."""
        if station_id is None:
            raise CommandError(
                "validation_error", "Name the ticket (or the station) to recall."
            )
        station = selectors.station_for_user(self.user, station_id)
        if station is None or str(station.outlet_id) != self.subscription.outlet_id:
            raise CommandError("not_found", "No such station at this outlet.")
        return services.station_recall_last(station_id=station.pk, actor=self.user)
