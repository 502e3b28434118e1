"""Paging of the list endpoints (``GET /api/v1/alerts``, ``/devices``, ``/households``, ``/people``,
``/audit``): the body stays the JSON array of interfaces §3; ``?limit=N`` (1–``LIMIT_MAX``, default
``LIMIT_DEFAULT``) and ``?cursor=C`` page it, and a page that is not the last one says where the next
one starts in a ``Link: <…>; rel="next"`` header (RFC 8288) and an ``X-Next-Cursor`` header. The
cursor is opaque to the client; a cursor that cannot be read is a 400 naming ``cursor``.

The cursor is a keyset, never an OFFSET: the base64url of a JSON array holding a fingerprint of
the route and its filters (the query string without ``limit`` and ``cursor``) and the last row's
sort key. The next page holds the rows strictly after that key in the route's order, so rows inserted
between two pages never shift or repeat a row; a cursor from another route or another filter set is
refused like an unreadable one. Scope is applied in the query itself, before the limit, so that a page
is full whenever more visible rows exist.

The OpenAPI fragments below are what api/openapi.py puts on every paged route, so that the document
says the limit the code applies."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Response, jsonify, request
from sqlalchemy import Select, TypeDecorator, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from api.params import BadParameter, query_int

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

CURSOR_MAX = 512  # characters, as the OpenAPI fragment says
FINGERPRINT_CHARS = 12
Q = TypeVar("Q", bound=Select[Any])


@dataclass(frozen=True)
class SortKey:
    """A route's order: unique together, all ascending or all descending (the keyset compares them
    as one tuple)."""

    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: bool = False

    def of(self, row: Any) -> tuple[Any, ...]:
        """The sort key of a row (an ORM object with these columns)."""
        return tuple(getattr(row, column.key) for column in self.columns)

    def after(self, values: tuple[Any, ...]) -> Any:
        """The condition "strictly after this key in the order" (a lexicographic tuple comparison
        spelled out, so that every database uses the index)."""
        clauses = []
        for i, column in enumerate(self.columns):
            equal = [self.columns[j] == values[j] for j in range(i)]
            beyond = column < values[i] if self.descending else column > values[i]
            clauses.append(and_(*equal, beyond))
        return or_(*clauses)

    def order(self) -> list[Any]:
        """The ORDER BY clauses."""
        return [c.desc() if self.descending else c.asc() for c in self.columns]


def bad_cursor() -> BadParameter:
    """The 400 of a cursor that cannot be used here."""
    return BadParameter(key="paging.error.cursor", field="cursor")


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.astimezone(dt.UTC).isoformat()}
    return value


def _typed(value: Any, column: InstrumentedAttribute[Any]) -> Any:
    """A decoded key value checked against its column's Python type (BadParameter otherwise)."""
    sql_type = column.type
    kind = (sql_type.impl_instance if isinstance(sql_type, TypeDecorator) else sql_type).python_type
    if kind is dt.datetime:
        if not (isinstance(value, dict) and isinstance(value.get("t"), str)):
            raise bad_cursor()
        try:
            when = dt.datetime.fromisoformat(value["t"])
            return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        except (ValueError, OverflowError):  # not a time, or one that leaves the calendar in UTC
            raise bad_cursor() from None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63):
        raise bad_cursor()  # (a 64-bit column: a larger number would fail in the database, not here)
    if kind is str and not isinstance(value, str):
        raise bad_cursor()
    return value


def fingerprint() -> str:
    """The request's route and filters, hashed: a cursor is only valid for the same ones."""
    filters = sorted((k, v) for k, v in request.args.items(multi=True) if k not in ("limit", "cursor"))
    text = json.dumps([request.path, filters], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_CHARS]


def encode_cursor(mark: str, key: tuple[Any, ...]) -> str:
    """The opaque cursor of a sort key."""
    raw = json.dumps([mark, *(_plain(v) for v in key)], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, mark: str, sort: SortKey) -> tuple[Any, ...]:
    """The sort key in a cursor; BadParameter naming ``cursor`` when it is unreadable or was made
    for another route or filter set."""
    if len(text) > CURSOR_MAX:
        raise bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise bad_cursor() from None
    if not isinstance(data, list) or len(data) != len(sort.columns) + 1 or data[0] != mark:
        raise bad_cursor()
    return tuple(_typed(v, c) for v, c in zip(data[1:], sort.columns, strict=True))


@dataclass
class Pager:
    """One page of a list route, read from the request's ``limit`` and ``cursor``."""

    sort: SortKey
    limit: int
    mark: str
    start: tuple[Any, ...] | None
    next_cursor: str | None = field(default=None, init=False)

    @classmethod
    def from_request(cls, sort: SortKey) -> Pager:
        """The page the request asks for (BadParameter on a bad limit or cursor)."""
        limit = query_int("limit", LIMIT_DEFAULT, low=1, high=LIMIT_MAX)
        mark = fingerprint()
        text = request.args.get("cursor", "")
        return cls(sort, limit, mark, decode_cursor(text, mark, sort) if text else None)

    def apply(self, query: Q) -> Q:
        """The query ordered, started after the cursor, and limited to one row more than the page
        (that row only tells whether there is a next page)."""
        if self.start is not None:
            query = query.where(self.sort.after(self.start))
        return query.order_by(*self.sort.order()).limit(self.limit + 1)

    def trim(self, rows: Sequence[Any]) -> list[Any]:
        """The page's rows; remembers the next page's cursor when there are more."""
        page = list(rows[: self.limit])
        if len(rows) > self.limit:
            self.next_cursor = encode_cursor(self.mark, self.sort.of(page[-1]))
        return page

    def respond(self, data: list[Any]) -> Response:
        """The JSON array, with ``Link`` and ``X-Next-Cursor`` when a next page exists."""
        response = jsonify(data)
        if self.next_cursor is not None:
            args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
            url = f"{request.base_url}?{urlencode([*args, ('cursor', self.next_cursor)])}"
            response.headers["Link"] = f'<{url}>; rel="next"'
            response.headers["X-Next-Cursor"] = self.next_cursor
        return response


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
