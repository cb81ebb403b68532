"""Property-based fuzz of ``/ws/kitchen/`` and ``/ws/orders/``: bad frames get errors, the
socket stays usable, and nothing changes in the database.

Each Hypothesis example opens a socket (``asgi.application`` through
``WebsocketCommunicator``, so origin check, JWT auth and routing are the real ones), sends a
burst of frames drawn from: text that is not JSON, binary frames, JSON that is not an object,
objects without a string ``type``, unknown types, frames over 64 KiB, JSON nested deeper than
the parser allows, and kitchen commands that must be refused (another tenant's tickets and
items, unknown ids, ids of the wrong type, bad statuses, missing or odd ``request_id``s,
commands from a cashier, who may only watch). Every frame must be answered by exactly one
``error`` (a ``pong`` for a ping), a ping at the end must still get its pong, and every row of
the watched tables must be as before.
"""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi import application
from kds.models import Ticket, TicketItem
from tenants.models import Role
from tests.factories import access_token
from tests.fuzz.conftest import fingerprint

pytestmark = pytest.mark.django_db(transaction=True)

MAX_FRAME = 64 * 1024
ERROR_CODES = frozenset({
    "malformed_json", "invalid_message", "unknown_type", "frame_too_large",
    "validation_error", "not_found", "permission_denied", "invalid_transition",
})
HYPOTHESIS = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _text(frame) -> str:
    return json.dumps(frame)


def frames(targets: dict[str, list]):
    """Strategy of (kind, payload) frames; payload is str (text frame) or bytes (binary)."""
    foreign_ids = st.sampled_from(targets["foreign_tickets"] + targets["foreign_items"])
    own_ids = st.sampled_from(targets["own_tickets"])
    odd_ids = st.one_of(st.uuids().map(str), st.integers(), st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                        st.text(max_size=40), st.just("x" * 5000), st.none())
    request_ids = st.one_of(st.uuids().map(str), st.integers(min_value=0),
                            st.booleans(), st.none(), st.just(""), st.just("r" * 200),
                            st.lists(st.integers(), max_size=2))
    command = st.fixed_dictionaries({
        "type": st.sampled_from(["bump", "recall", "item_status"]),
        "request_id": request_ids,
        "ticket": st.one_of(foreign_ids, odd_ids),
        "item": st.one_of(foreign_ids, odd_ids),
        "status": st.one_of(st.sampled_from(["cooking", "done", "queued", "voided", ""]),
                            json_scalars),
    })
    return st.one_of(
        st.text(max_size=200).filter(lambda t: not _is_json(t)).map(lambda t: ("text", t)),
        st.binary(max_size=200).map(lambda b: ("binary", b)),
        json_values.filter(lambda v: not isinstance(v, dict)).map(
            lambda v: ("not_object", _text(v))),
        st.dictionaries(st.text(max_size=8).filter(lambda k: k != "type"), json_values,
                        max_size=4).map(lambda d: ("no_type", _text(d))),
        json_values.filter(lambda v: not isinstance(v, str)).map(
            lambda v: ("type_not_string", _text({"type": v}))),
        st.text(min_size=1, max_size=30).filter(
            lambda t: t not in ("ping", "bump", "recall", "item_status")).map(
            lambda t: ("unknown_type", _text({"type": t, "ticket": str(uuid.uuid4())}))),
        st.integers(min_value=MAX_FRAME + 1, max_value=MAX_FRAME + 4096).map(
            lambda n: ("huge", _text({"type": "ping", "pad": "x" * n}))),
        st.integers(min_value=5000, max_value=30000).map(lambda d: ("deep", _nested(d))),
        st.integers(min_value=5000, max_value=20000).map(
            lambda d: ("deep", '{"type": "bump", "ticket": ' + _nested(d) + "}")),
        command.map(lambda c: ("command", _text(c))),
        st.tuples(st.sampled_from(["bump", "recall"]), own_ids, st.uuids()).map(
            lambda t: ("own_command", _text({"type": t[0], "ticket": t[1],
                                             "request_id": str(t[2])}))),
        st.just(("ping", _text({"type": "ping", "extra": [1, {"a": None}]}))),
    )


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def _exchange(path: str, burst: list[tuple[str, str | bytes]]) -> list[tuple[str, dict]]:
    comm = WebsocketCommunicator(application, path)
    connected, _ = await comm.connect()
    assert connected
    first = json.loads(await comm.receive_from(timeout=10))
    assert first["type"] == "snapshot", first
    answers = []
    try:
        for kind, payload in burst:
            # send_input, not send_to: an empty frame is bad input too.
            key = "bytes" if isinstance(payload, bytes) else "text"
            await comm.send_input({"type": "websocket.receive", key: payload})
            answers.append((kind, json.loads(await comm.receive_from(timeout=10))))
        await comm.send_to(text_data='{"type": "ping"}')
        answers.append(("final_ping", json.loads(await comm.receive_from(timeout=10))))
        assert await comm.receive_nothing(timeout=0.05), "an answer too many"
    finally:
        await comm.disconnect()
    return answers


def _check(answers, *, socket: str, may_command: bool) -> None:
    kind, last = answers[-1]
    assert last["type"] == "pong", f"the socket stopped answering pings: {last}"
    for kind, answer in answers[:-1]:
        if kind == "ping":
            assert answer["type"] == "pong", answer
            continue
        assert answer["type"] == "error", (kind, answer)
        assert answer["code"] in ERROR_CODES, (kind, answer)
        assert isinstance(answer["message"], str) and answer["message"]
        expected = {
            "text": {"malformed_json"},
            "binary": {"malformed_json", "invalid_message"},
            "not_object": {"invalid_message"},
            "no_type": {"invalid_message"},
            "type_not_string": {"invalid_message"},
            "unknown_type": {"unknown_type"},
            "huge": {"frame_too_large"},
            "deep": {"invalid_message", "malformed_json"},
        }.get(kind)
        if expected is not None:
            assert answer["code"] in expected, (kind, answer)
        elif socket == "orders":
            assert answer["code"] == "unknown_type", (kind, answer)
        elif kind == "own_command" and not may_command:
            assert answer["code"] == "permission_denied", (kind, answer)


@pytest.fixture
def targets(seeded, settings):
    settings.WS_CONNECTS_PER_MINUTE = 10_000
    other = seeded.other_outlet
    return {
        "foreign_tickets": [str(pk) for pk in
                            Ticket.objects.filter(outlet=other).values_list("pk", flat=True)],
        "foreign_items": [str(pk) for pk in TicketItem.objects.filter(ticket__outlet=other)
                          .values_list("pk", flat=True)],
        "own_tickets": [str(pk) for pk in
                        Ticket.objects.filter(outlet=seeded.outlet).values_list("pk", flat=True)],
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("socket", "role"), [
    ("kitchen", Role.KITCHEN), ("kitchen", Role.CASHIER), ("orders", Role.CASHIER),
])
def test_bad_frames_get_errors_and_change_nothing(socket, role, seeded, targets):
    assert targets["foreign_tickets"] and targets["own_tickets"], "seed data without tickets"
    path = (f"/ws/{socket}/{seeded.outlet.pk}/"
            f"?token={access_token(seeded.users[role])}")
    before = fingerprint()

    @HYPOTHESIS
    @given(burst=st.lists(frames(targets), min_size=1, max_size=12))
    def fuzz(burst) -> None:
        # A cashier's own-ticket command is refused, but a kitchen user's would bump: keep
        # the burst to what must be refused.
        if role == Role.KITCHEN:
            burst = [f for f in burst if f[0] != "own_command"]
        answers = async_to_sync(_exchange)(path, burst)
        _check(answers, socket=socket, may_command=role == Role.KITCHEN)
        assert fingerprint() == before, "a refused frame changed the database"

    fuzz()
