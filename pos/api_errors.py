"""One error envelope for every response with status >= 400.

``{"error": {"code": "<snake_case>", "message": "<sentence>", "details": {...}}}``
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """A domain error with a stable ``code``: raise it from services and views alike."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request cannot be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(detail=message or self.default_detail, code=code or self.default_code)
        self.error_code = code or self.default_code
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class InvalidTransition(Conflict):
    default_code = "invalid_transition"
    default_detail = "That status change is not allowed."


class VersionConflict(Conflict):
    default_code = "version_conflict"
    default_detail = "The object was changed by someone else; reload and retry."


class InsufficientStock(Conflict):
    default_code = "insufficient_stock"
    default_detail = "Not enough stock."


class DomainValidationError(ApiError):
    """400 ``validation_error`` raised below the serializer layer (in a service)."""

    default_code = "validation_error"
    default_detail = "Invalid input."


_CODE_BY_EXCEPTION: list[tuple[type[Exception], str]] = [
    (exceptions.ValidationError, "validation_error"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
    (exceptions.ParseError, "parse_error"),
]

_MESSAGES = {
    "validation_error": "Invalid input.",
    "not_found": "Not found.",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _flatten_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _flatten_message(detail[0])
    if isinstance(detail, dict) and detail:
        return _flatten_message(next(iter(detail.values())))
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler: wraps every error in the envelope."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unhandled: Django's handler500 answers with the envelope

    if isinstance(exc, ApiError):
        code, message, details = exc.error_code, str(exc.detail), exc.details
    else:
        code = next(
            (name for klass, name in _CODE_BY_EXCEPTION if isinstance(exc, klass)), None
        )
        if code is None:
            code = getattr(exc, "default_code", "error")
        if code == "validation_error":
            raw = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            details = raw
            message = "Invalid input: " + _flatten_message(raw)
        else:
            details = {}
            message = _flatten_message(getattr(exc, "detail", "")) or _MESSAGES.get(code, code)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_s": int(exc.wait)}
    response.data = error_body(code, message, details)
    return response


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request, exception=None):
    return _json_error(400, "bad_request", "Bad request.")


def handler403(request, exception=None):
    return _json_error(403, "permission_denied", "You do not have permission to do this.")


def handler404(request, exception=None):
    return _json_error(404, "not_found", "Not found.")


def handler500(request):
    return _json_error(500, "server_error", "Something went wrong on our side; it was logged.")
