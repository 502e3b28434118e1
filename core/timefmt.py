"""Times are stored in UTC and shown in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ms_to_utc(ms: int) -> dt.datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def utc_to_ms(value: dt.datetime) -> int:
    """An aware datetime as epoch milliseconds (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def iso_utc(ms: int) -> str:
    """RFC 3339 in UTC with a Z, to the millisecond."""
    return ms_to_utc(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> int:
    """RFC 3339 text (an offset required) as epoch milliseconds; ValueError when it is not."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return utc_to_ms(value)


def parse_utc(text: str) -> dt.datetime:
    """RFC 3339 text with an offset as an aware UTC datetime; ValueError (with the reason) for text
    that is not one, has no offset, or lies outside what a datetime can hold once in UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("the time has no UTC offset")
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as err:
        raise ValueError("the time is out of range") from err


def local_text(ms: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Epoch milliseconds shown in Asia/Shanghai."""
    return ms_to_utc(ms).astimezone(SHANGHAI).strftime(fmt)


def aware(value: dt.datetime) -> dt.datetime:
    """A datetime read back from SQLite (naive, UTC) made timezone-aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
