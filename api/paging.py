"""Paging of the list endpoints (``GET /api/v1/alerts``, ``/devices``, ``/households``, ``/people``,
``/audit``): the body stays the JSON array of interfaces §3; ``?limit=N`` (1–``LIMIT_MAX``, default
``LIMIT_DEFAULT``) and ``?cursor=C`` page it, and a page that is not the last one says where the next
one starts in a ``Link: <…>; rel="next"`` header (RFC 8288) and an ``X-Next-Cursor`` header. The
cursor is opaque to the client; a cursor that cannot be read is a 400 naming ``cursor``.

The OpenAPI fragments below are what api/openapi.py puts on every paged route, so that the document
says the limit the code applies."""

from __future__ import annotations

from typing import Any

LIMIT_DEFAULT = 500
LIMIT_MAX = 1000

# the list routes that are paged (OpenAPI path → method)
PAGED_ROUTES: dict[str, str] = {
    "/api/v1/alerts": "get",
    "/api/v1/devices": "get",
    "/api/v1/households": "get",
    "/api/v1/people": "get",
    "/api/v1/audit": "get",
}


def openapi_parameters() -> list[dict[str, Any]]:
    """The ``limit`` and ``cursor`` query parameters of a paged route."""
    return [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": f"rows per page, 1–{LIMIT_MAX} (default {LIMIT_DEFAULT}); a larger value is clamped",
            "schema": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": LIMIT_DEFAULT},
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "where the page starts: the X-Next-Cursor of the previous page (opaque)",
            "schema": {"type": "string", "maxLength": 512},
        },
    ]


def openapi_headers() -> dict[str, Any]:
    """The response headers of a paged route's 200 (absent on the last page)."""
    return {
        "Link": {
            "description": 'the next page, as <URL>; rel="next" (RFC 8288); absent on the last page',
            "schema": {"type": "string"},
        },
        "X-Next-Cursor": {
            "description": "the cursor of the next page; absent on the last page",
            "schema": {"type": "string"},
        },
    }
