"""Assertions shared by the tenancy and catalog API tests."""

from __future__ import annotations


def assert_envelope(response, status: int, code: str) -> dict:
    """The response has ``status`` and the error envelope with ``code``; returns the error."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def assert_status(response, status: int) -> None:
    """``status``, and the envelope whenever it is an error."""
    if status >= 400:
        code = {400: "validation_error", 401: "not_authenticated", 403: "permission_denied",
                404: "not_found", 409: "conflict"}[status]
        assert_envelope(response, status, code)
    else:
        assert response.status_code == status, response.content


def ids(response) -> set[str]:
    """Ids of a paginated list response."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    return {row["id"] for row in body["results"]}
