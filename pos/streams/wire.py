"""How an outbox row travels: the group it is published to and the message it becomes.

The socket envelope is serialised to JSON text once, at publication; every socket that
forwards it sends that same text. A server process also frames it once (``frame_of``): a
server's text frame carries no mask and, without compression, is the same bytes for every
socket, so sockets served by ``pos.ws_protocol`` write those bytes as they are.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from pos.models import StreamEvent

MESSAGE_TYPE = "stream.event"
# One channel-layer message carrying, in seq order, several events of one outlet committed in
# one transaction: one Redis group send, and one socket write per screen, for all of them.
BATCH_TYPE = "stream.events"
BATCH_MAX_EVENTS = 50


def group_for_outlet(outlet_id: uuid.UUID | str) -> str:
    return f"outlet.{uuid.UUID(str(outlet_id)).hex}"


def iso(dt) -> str:
    value = dt.isoformat()
    return value[:-6] + "Z" if value.endswith("+00:00") else value


def envelope(event: StreamEvent) -> dict[str, Any]:
    return {
        "type": "event",
        "seq": event.seq,
        "event": event.name,
        "outlet": str(event.outlet_id),
        "at": iso(event.created_at),
        "data": event.data,
    }


def data_text(data: Any) -> str:
    """``data`` as JSON text, as the envelope carries it (compact, ASCII, Django's encoder for
    decimals, dates and UUIDs)."""
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))


def _envelope_text(seq: int, name: str, outlet_id: str, created_at, text: str) -> str:
    """``envelope`` as text, around ``data`` already in JSON ``text``: the same bytes as
    dumping the envelope whole."""
    return (
        f'{{"type":"event","seq":{seq},"event":{json.dumps(name)},'
        f'"outlet":"{outlet_id}","at":"{iso(created_at)}","data":{text}}}'
    )


def envelope_text(event: StreamEvent) -> str:
    """The envelope as text. ``emit`` keeps the text of the data it wrote on the event
    (``data_text``), so a live event is not dumped again; a row read back is."""
    text = getattr(event, "data_text", None)
    if text is None:
        text = data_text(event.data)
    return _envelope_text(event.seq, event.name, str(event.outlet_id), event.created_at, text)


def message_from_row(outlet_id: str, row: tuple) -> dict[str, Any]:
    """The message of a log row read by ``log.event_rows_after`` (data already JSON text)."""
    seq, name, order_id, station_id, created_at, text = row
    text = _envelope_text(seq, name, outlet_id, created_at, text)
    return {
        "type": MESSAGE_TYPE,
        "outlet": outlet_id,
        "seq": seq,
        "name": name,
        "order": str(order_id) if order_id else None,
        "station": str(station_id) if station_id else None,
        "text": text,
        "committed": created_at.timestamp(),
    }


def message_for(event: StreamEvent) -> dict[str, Any]:
    """The channel-layer message for one event (msgpack-friendly: strings and numbers)."""
    return {
        "type": MESSAGE_TYPE,
        "outlet": str(event.outlet_id),
        "seq": event.seq,
        "name": event.name,
        "order": str(event.order_id) if event.order_id else None,
        "station": str(event.station_id) if event.station_id else None,
        "text": envelope_text(event),
        "committed": event.created_at.timestamp(),
        "published": time.time(),
    }


def text_frame(text: str) -> bytes:
    """``text`` as one unmasked, unfragmented WebSocket text frame (RFC 6455, section 5.2):
    FIN and the text opcode, then the payload length in 7, 7+16 or 7+64 bits."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x81, length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, length)
    else:
        head = struct.pack("!BBQ", 0x81, 127, length)
    return head + payload


def frame_of(message: dict[str, Any]) -> bytes:
    """The message's text as a frame, built on first use and kept with the message, so that
    every socket of the process sends the same bytes."""
    frame = message.get("frame")
    if frame is None:
        frame = message["frame"] = text_frame(message["text"])
    return frame


def frames_of(messages: list[dict[str, Any]]) -> bytes:
    """The frames of ``messages`` back to back, for one write."""
    if len(messages) == 1:
        return frame_of(messages[0])
    return b"".join(frame_of(message) for message in messages)


def by_outlet(events: Iterable[StreamEvent]) -> list[tuple[uuid.UUID, list[StreamEvent]]]:
    """Events grouped per outlet, outlets in a fixed order (so two transactions touching the
    same outlets lock their cursors in the same order), events in the order given."""
    groups: dict[uuid.UUID, list[StreamEvent]] = {}
    for event in events:
        groups.setdefault(event.outlet_id, []).append(event)
    return [(outlet_id, groups[outlet_id]) for outlet_id in sorted(groups, key=str)]


def batches_for(events: Iterable[StreamEvent]) -> list[tuple[str, list[StreamEvent]]]:
    """``events`` (in commit order) as (outlet id, events) publications: each outlet's events
    in their order, at most ``BATCH_MAX_EVENTS`` to a message."""
    return [
        (str(outlet_id), run[i : i + BATCH_MAX_EVENTS])
        for outlet_id, run in by_outlet(events)
        for i in range(0, len(run), BATCH_MAX_EVENTS)
    ]


def batch_message(outlet_id: str, events) -> dict[str, Any]:
    """The channel-layer message for ``events`` of one outlet: one event's message as it is,
    several as a ``BATCH_TYPE`` message holding theirs."""
    if len(events) == 1:
        return message_for(events[0])
    return {"type": BATCH_TYPE, "outlet": outlet_id,
            "messages": [message_for(event) for event in events]}


def messages_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The event messages a channel-layer message carries (one, or a batch's)."""
    if message.get("type") == BATCH_TYPE:
        return message["messages"]
    return [message]
