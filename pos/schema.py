"""OpenAPI post-processing: every operation documents the error envelope.

Every status >= 400 of this API (validation, authentication, permissions, missing objects,
conflicts, throttling) answers ``{"error": {"code", "message", "details"}}``. Views describe
their notable errors; this hook gives each of those descriptions the envelope schema and adds
a ``default`` response, so clients and schema checkers know the shape of any error.
"""

from __future__ import annotations

from typing import Any

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "snake_case, stable: validation_error, not_authenticated, "
                    "permission_denied, not_found, invalid_transition, version_conflict, "
                    "insufficient_stock, idempotency_in_progress, idempotency_key_reused, "
                    "throttled, ...",
                },
                "message": {"type": "string", "description": "A sentence for people."},
                "details": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Field errors for validation_error; context otherwise.",
                },
            },
        }
    },
}
_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorEnvelope"] = (
        ERROR_ENVELOPE
    )
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code == "default" or (code.isdigit() and int(code) >= 400):
                    response["content"] = {"application/json": {"schema": _REF}}
            responses.setdefault(
                "default",
                {
                    "description": "Any error, in the error envelope.",
                    "content": {"application/json": {"schema": _REF}},
                },
            )
    return result
