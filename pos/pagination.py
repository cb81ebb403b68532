"""List pagination: ``{"results": [...], "next": url|null, "previous": url|null}``."""

from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response


class _Envelope:
    def get_paginated_response(self, data):
        return Response(
            {"results": data, "next": self.get_next_link(), "previous": self.get_previous_link()}
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next", "previous"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
            },
        }


class PagePagination(_Envelope, PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


class NewestFirstCursorPagination(_Envelope, CursorPagination):
    """Stable under inserts: for orders, newest first."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 200
