"""Query parameters of the HTTP API, parsed in one place: a bad value is a 400 that names the
parameter and says what it must be, never a traceback."""

from __future__ import annotations

import datetime as dt

from flask import request

from core.errors import InvalidInput
from core.timefmt import parse_utc


class BadParameter(InvalidInput):
    """A query parameter that cannot be used (answered 400 with this message)."""


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    """An integer parameter, clamped to [low, high]; BadParameter when it is not an integer."""
    text = request.args.get(name, "")
    if not text:
        return default
    if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 12:
        raise BadParameter(f"{name} must be an integer from {low} to {high}", field=name)
    return max(low, min(high, int(text)))


def query_time(name: str) -> dt.datetime | None:
    """An RFC 3339 time parameter with an offset, in UTC; None when absent."""
    text = request.args.get(name, "")
    if not text:
        return None
    try:
        return parse_utc(text)
    except ValueError as err:
        example = "2026-11-25T00:00:00+08:00"
        raise BadParameter(f"{name} must be RFC 3339 with an offset, e.g. {example} ({err})", field=name) from err
