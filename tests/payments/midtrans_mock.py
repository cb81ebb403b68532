"""An ``httpx.MockTransport`` that answers from the recordings and remembers the requests."""

from __future__ import annotations

import json
from typing import Any

import httpx


def fill(template: Any, **values: str) -> Any:
    """The recording with ``{name}`` placeholders replaced (recursively)."""
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, dict):
        return {k: fill(v, **values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, **values) for v in template]
    return template


class RecordedMidtrans:
    """Routes ``(METHOD, path suffix)`` to a recording; every request is kept for asserts."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.values: dict[str, str] = {}

    def on(self, method: str, suffix: str, recording: tuple[int, Any]) -> RecordedMidtrans:
        self.routes[(method, suffix)] = recording
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for (method, suffix), (status, body) in self.routes.items():
            if request.method == method and request.url.path.endswith(suffix):
                return httpx.Response(status, json=fill(body, **self.values))
        return httpx.Response(404, json={"status_code": "404", "status_message": "no route"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def json_of(self, index: int) -> Any:
        return json.loads(self.requests[index].content)
