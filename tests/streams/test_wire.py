"""``pos.streams.wire``: the envelope's text, and the bytes websockets itself would put on the
wire."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from websockets.frames import Frame, Opcode

from pos.models import StreamEvent
from pos.streams import outbox
from pos.streams.wire import envelope, envelope_text, frame_of, text_frame


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_is_what_websockets_sends_for_the_same_text(length):
    text = ("é" * length)[: max(0, length // 2)] + "x" * (length - length // 2)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert text_frame(text) == expected


def test_frame_of_builds_once_and_keeps_the_frame_with_the_message():
    message = {"text": '{"type":"event","seq":1}'}
    frame = frame_of(message)
    assert frame == text_frame(message["text"])
    assert frame_of(message) is frame and message["frame"] is frame


def test_a_live_event_is_enveloped_as_dumping_the_envelope_whole_would(world):
    # emit keeps the text it dumped; the envelope is built around it, not dumped again.
    data = {"name": "Es teh \u00e9\u00e9 \U0001f375 \"quoted\"", "total": Decimal("18018.00"),
            "at": datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "id": uuid.uuid4(),
            "items": [{"note": "", "n": 1.5, "none": None, "yes": True}]}
    with outbox.atomic():
        event = outbox.emit(outlet=world.outlet, name="order.updated", data=data)
    assert event.data_text
    expected = json.dumps(envelope(event), cls=DjangoJSONEncoder, separators=(",", ":"))
    assert envelope_text(event) == expected
    # Read back, the row has no text kept: it is dumped anew (keys in jsonb's order).
    stored = StreamEvent.objects.get(pk=event.pk)
    assert stored.data == event.data
    assert json.loads(envelope_text(stored)) == json.loads(expected)
