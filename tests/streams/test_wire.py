"""``pos.streams.wire.text_frame``: the bytes websockets itself would put on the wire."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from pos.streams.wire import frame_of, text_frame


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
