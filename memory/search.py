"""Search of the event archive by place and time (the domain side of ``POST /api/v1/events/search``
and of the Investigate page).

A query names one community and a window, and any of: a polygon, a building, a household, a
device, event types, a plate, a person. The answer is ordered by (ts, entry) and paged by keyset:
the cursor is the (ts, entry) of the last row returned. A polygon is read from the cell index
(``memory.models.cell_of``) under its bounding box, then each point is kept only when the polygon
covers it. The caller's scope (a grid worker's grids) is a filter here, in the data layer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import numpy as np
from shapely import Polygon, intersects_xy, prepare
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from auth.principal import Principal
from core.errors import Forbidden, InvalidInput
from core.timefmt import iso_utc, local_text, parse_rfc3339
from ingest.schema import EVENT_DEVICE_TYPES
from memory.models import ArchivedEvent, cells_of_box
from registry.models import Building, Community, Device, Grid, Household

MAX_CELLS = 400  # a polygon whose bounding box touches more cells is read by a latitude/longitude range
FETCH = 2000  # keys (ts, entry, position) read per round while a polygon's filter keeps fewer than a page
LOAD = 500  # rows read at once by their keys


@dataclass(frozen=True)
class SearchQuery:
    """What to look for (validated by the caller: api/memory.py)."""

    community: str
    start_ms: int  # inclusive
    end_ms: int  # exclusive
    polygon: BaseGeometry | None = None  # WGS-84, x = longitude, y = latitude (a clipped one may be a multipolygon)
    building: str | None = None
    household: str | None = None
    device: str | None = None
    types: tuple[str, ...] = ()
    plate: str | None = None
    person: str | None = None
    grids: frozenset[str] | None = None  # the caller's scope: None is the whole community
    limit: int = 200


@dataclass
class SearchPage:
    """One page of the answer; ``next`` is the cursor of the following page, or None at the end."""

    items: list[dict[str, Any]] = field(default_factory=list)
    next: tuple[int, str] | None = None


def item_of(row: Any) -> dict[str, Any]:
    """An archived event (an ArchivedEvent, or a row of its columns) as the API gives it (interfaces §9)."""
    return {
        "id": row.event_id or row.entry,
        "type": row.type,
        "device": row.device_id,
        "ts": row.ts,
        "data": row.data,
        "community": row.community_id,
        "building": row.building_id,
        "household": row.household_id,
        "guard": row.guard_id,
        "person": row.person,
        "plate": row.plate,
        "location": {"lat": row.lat, "lon": row.lon} if row.lat is not None else None,
        "entry": row.entry,
    }


_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])


def statement(query: SearchQuery) -> Select[ArchivedEvent]:
    """The SQL of a query, before paging (ordered by ts, then entry)."""
    a = ArchivedEvent
    conditions: list[Any] = [a.community_id == query.community, a.ts >= query.start_ms, a.ts < query.end_ms]
    first: Any = a.ts
    if query.polygon is not None:
        min_lon, min_lat, max_lon, max_lat = query.polygon.bounds
        cells = cells_of_box(min_lat, min_lon, max_lat, max_lon)
        if len(cells) <= MAX_CELLS:
            conditions.append(a.cell.in_(cells))
            # ordered by an expression, so that no index can give the order: otherwise a planner
            # without statistics (SQLite) walks the whole window on the time index to skip a sort,
            # instead of reading the few rows of these cells on (community, cell, ts) and sorting them
            first = a.ts + 0
        else:
            conditions += [a.lat.between(min_lat, max_lat), a.lon.between(min_lon, max_lon)]
    for column, value in (
        (a.building_id, query.building),
        (a.household_id, query.household),
        (a.device_id, query.device),
        (a.plate, query.plate),
        (a.person, query.person),
    ):
        if value is not None:
            conditions.append(column == value)
    if query.types:
        conditions.append(a.type.in_(query.types))
    if query.grids is not None:
        conditions.append(a.grid_id.in_(sorted(query.grids)))
    return select(a).where(and_(*conditions)).order_by(first, a.entry)


def _after(stmt: _S, cursor: tuple[int, str] | None) -> _S:
    if cursor is None:
        return stmt
    ts, entry = cursor
    a = ArchivedEvent
    return stmt.where(or_(a.ts > ts, and_(a.ts == ts, a.entry > entry)))


def keys(
    session: Session, query: SearchQuery, cursor: tuple[int, str] | None = None, *, fetch: int = FETCH
) -> Iterator[tuple[int, str]]:
    """The (ts, entry) of every matching row after the cursor, in order. Read in rounds of light
    columns (no event data), a polygon's points kept by one vectorised test per round: a place's
    cells hold many more points than its polygon does."""
    shape = query.polygon
    if shape is not None:
        if shape.is_empty:
            return  # a grid worker's polygon wholly outside their grid: nothing they may see
        prepare(shape)
    a = ArchivedEvent
    base = statement(query).with_only_columns(a.ts, a.entry, a.lat, a.lon)
    while True:
        batch = session.connection().execute(_after(base, cursor).limit(fetch)).all()  # Core rows: no ORM loading
        if shape is None:
            yield from ((r.ts, r.entry) for r in batch)
        elif batch:
            lat_lon = np.array([(r[2], r[3]) for r in batch], dtype=float)  # None (no position): NaN, outside
            inside = intersects_xy(shape, lat_lon[:, 1], lat_lon[:, 0])  # a point on the boundary counts (covers)
            yield from ((r.ts, r.entry) for r, keep in zip(batch, inside, strict=True) if keep)
        if len(batch) < fetch:
            return
        cursor = (batch[-1].ts, batch[-1].entry)


def rows(session: Session, query: SearchQuery, cursor: tuple[int, str] | None = None) -> Iterator[ArchivedEvent]:
    """Every matching row after the cursor, in order (read in rounds; a polygon's points filtered)."""
    batch: list[tuple[int, str]] = []
    for key in keys(session, query, cursor):
        batch.append(key)
        if len(batch) == LOAD:
            yield from _rows_of(session, query.community, batch)
            batch = []
    yield from _rows_of(session, query.community, batch)


def _rows_of(session: Session, community: str, wanted: list[tuple[int, str]]) -> list[ArchivedEvent]:
    if not wanted:
        return []
    a = ArchivedEvent
    found = session.scalars(select(a).where(*_by_keys(community, wanted)))
    by_key = {(row.ts, row.entry): row for row in found}
    return [by_key[k] for k in wanted if k in by_key]


def _by_keys(community: str, wanted: list[tuple[int, str]]) -> list[Any]:
    a = ArchivedEvent
    return [
        a.community_id == community,
        a.entry.in_([entry for _ts, entry in wanted]),
        a.ts.between(wanted[0][0], wanted[-1][0]),  # PostgreSQL: only the partitions of these times
    ]


def search(session: Session, query: SearchQuery, cursor: tuple[int, str] | None = None) -> SearchPage:
    """One page of matching events after the cursor (its rows read as plain rows, not ORM objects)."""
    fetch = FETCH if query.polygon is not None else query.limit + 1  # without a polygon every key read is kept
    wanted = list(itertools.islice(keys(session, query, cursor, fetch=fetch), query.limit + 1))
    page_keys = wanted[: query.limit]
    page = SearchPage()
    if page_keys:
        found = session.connection().execute(
            select(*ArchivedEvent.__table__.columns).where(*_by_keys(query.community, page_keys))
        )
        by_key = {(row.ts, row.entry): row for row in found}
        page.items = [item_of(by_key[k]) for k in page_keys if k in by_key]
    if len(wanted) > query.limit:
        page.next = page_keys[-1]
    return page


# --- the request of POST /api/v1/events/search (interfaces §9), checked in the domain so that the
# route and the Investigate page refuse the same things with the same keyed sentences -------------

LIMIT_MAX = 1000
LIMIT_DEFAULT = 200
RING_MAX = 2000  # positions per ring: a drawn area has tens; a megabyte of them is an abuse
DAY_MS = 86_400_000
MINUTE_MS = 60_000
TEXT_MAX = {"building": 40, "household": 48, "device": 48, "plate": 16, "person": 80}
JSON_TYPES = {"str": "string", "int": "integer", "object": "object", "array": "array", "float": "number"}
_AT = re.compile(r"`\$\.(\w+)")
_NAMED = re.compile(r"field `(\w+)`")
_EXPECTED = re.compile(r"Expected `(\w+)")


class SearchBody(msgspec.Struct, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}):
    """The body as sent: its shape only (what the values mean is checked by ``check_search``)."""

    community: str
    start: str
    end: str
    polygon: dict[str, Any] | None = None
    building: str | None = None
    household: str | None = None
    device: str | None = None
    types: list[str] | None = None
    plate: str | None = None
    person: str | None = None
    limit: int = LIMIT_DEFAULT
    cursor: str | None = None


@dataclass(frozen=True)
class CheckedSearch:
    """A search request that may run: the query, where to resume, and the query's canonical form
    (what a cursor is signed over, and what the audit log records)."""

    query: SearchQuery
    cursor: tuple[int, str] | None
    canonical: str
    clipped: bool = False  # a grid worker's polygon reached beyond their grid: only the grid is searched


def refuse(key: str, field_name: str, **values: Any) -> InvalidInput:
    """A refusal naming the field (the API answers ``400 {"error", "field"}``)."""
    return InvalidInput(key=key, field=field_name, **values)


def decode_body(body: Any) -> SearchBody:
    """The body's shape: a JSON object with the fields of §9, each of its type."""
    if not isinstance(body, dict):
        raise refuse("search.error.body", "body")
    try:
        return msgspec.convert(body, SearchBody)
    except msgspec.ValidationError as err:
        message = str(err)
        named = _NAMED.search(message)
        if named and "missing required" in message:
            raise refuse("search.error.missing", named.group(1)) from err
        if named and "unknown field" in message:
            raise refuse("search.error.unknown_field", named.group(1)) from err
        at = _AT.search(message)
        expected = _EXPECTED.search(message)
        kind = JSON_TYPES.get(expected.group(1), expected.group(1)) if expected else "?"
        raise refuse("search.error.type", at.group(1) if at else "body", expected=kind) from err


def _position(value: Any) -> tuple[float, float]:
    numbers = isinstance(value, list) and len(value) in (2, 3)
    if not numbers or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise refuse("search.error.polygon_position", "polygon", position=json.dumps(value)[:60])
    lon, lat = float(value[0]), float(value[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise refuse("search.error.polygon_position", "polygon", position=json.dumps(value)[:60])
    return lon, lat


def _ring(value: Any) -> list[tuple[float, float]]:
    if not isinstance(value, list) or len(value) < 4:
        raise refuse("search.error.polygon_positions", "polygon", n=len(value) if isinstance(value, list) else 0)
    if len(value) > RING_MAX:
        raise refuse("search.error.polygon_large", "polygon", n=RING_MAX)
    points = [_position(p) for p in value]
    if points[0] != points[-1]:
        raise refuse("search.error.polygon_open", "polygon")
    return points


def parse_polygon(value: dict[str, Any]) -> Polygon:
    """A GeoJSON Polygon (WGS-84) as a valid shapely polygon, or a refusal naming the problem."""
    if value.get("type") != "Polygon":
        raise refuse("search.error.polygon_type", "polygon")
    rings = value.get("coordinates")
    if not isinstance(rings, list) or not rings:
        raise refuse("search.error.polygon_positions", "polygon", n=0)
    parsed = [_ring(ring) for ring in rings[:50]]
    polygon = Polygon(parsed[0], parsed[1:])
    if not polygon.is_valid:
        reason = explain_validity(polygon)
        if "Self-intersection" in reason:
            raise refuse("search.error.polygon_crossing", "polygon", at=reason[reason.find("[") :])
        raise refuse("search.error.polygon_invalid", "polygon", reason=reason)
    return polygon


def check_window(start_text: str, end_text: str, *, now_ms: int, retain_days: int) -> tuple[int, int]:
    """The window [from, to) in epoch ms: RFC 3339, in order, no longer than the events' retention
    and not starting before the oldest event kept (the refusal says the earliest time to search)."""
    bounds = []
    for name, text in (("from", start_text), ("to", end_text)):
        try:
            bounds.append(parse_rfc3339(text))
        except (ValueError, OverflowError) as err:
            raise refuse("search.error.time", name, value=text[:40]) from err
    start, end = bounds
    if end <= start:
        raise refuse("search.error.window_order", "to")
    retention = retain_days * DAY_MS
    earliest = -(-(now_ms - retention) // MINUTE_MS) * MINUTE_MS  # the next whole minute: still valid on a retry
    when = {"days": retain_days, "earliest": local_text(earliest, "%Y-%m-%d %H:%M"), "earliest_iso": iso_utc(earliest)}
    if end - start > retention:
        raise refuse("search.error.window_long", "to", **when)
    if start < earliest:
        raise refuse("search.error.window_early", "from", **when)
    return start, end


def canonical_form(
    body: SearchBody, start: int, end: int, polygon: Polygon | None, grids: frozenset[str] | None
) -> str:
    """The query as one canonical JSON text (the limit left out: a page size may change between pages)."""
    rings = [] if polygon is None else [polygon.exterior, *polygon.interiors]
    return json.dumps(
        {
            "community": body.community,
            "from": start,
            "to": end,
            "polygon": [[list(c) for c in ring.coords] for ring in rings] or None,
            "building": body.building,
            "household": body.household,
            "device": body.device,
            "types": sorted(set(body.types or ())),
            "plate": body.plate,
            "person": body.person,
            "grids": sorted(grids) if grids is not None else None,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _mac(key: bytes, canonical: str, payload: str) -> str:
    return hmac.new(key, f"{canonical}\n{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def write_cursor(key: bytes, canonical: str, position: tuple[int, str]) -> str:
    """An opaque cursor: the (ts, entry) to resume after, signed together with the query."""
    payload = base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")
    return f"{payload}.{_mac(key, canonical, payload)}"


def read_cursor(key: bytes, canonical: str, token: str) -> tuple[int, str]:
    """The position of a cursor issued for this very query; a refusal for any other."""
    payload, _, mac = token.partition(".")
    expected = _mac(key, canonical, payload)
    if len(token) > 200 or not hmac.compare_digest(mac.encode(), expected.encode()):
        raise refuse("search.error.cursor", "cursor")
    try:
        ts, entry = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(ts), str(entry)
    except (ValueError, TypeError, binascii.Error) as err:  # signed by us, so only a change of format
        raise refuse("search.error.cursor", "cursor") from err


def _check_text(name: str, value: str | None) -> None:
    if value is not None and not 0 < len(value) <= TEXT_MAX[name]:
        raise refuse("search.error.text", name, n=TEXT_MAX[name])


def check_search(
    session: Session, principal: Principal, body: Any, *, now_ms: int, retain_days: int, key: bytes
) -> CheckedSearch:
    """A search request checked for this principal: Forbidden outside their communities, a refusal
    naming the field for bad input; a grid worker's query is limited to their grid."""
    raw = decode_body(body)
    if not principal.scope.allows_community(raw.community):
        raise Forbidden(key="search.error.scope", community=raw.community[:40])
    community = session.get(Community, raw.community)
    if community is None:
        raise refuse("search.error.community", "community", community=raw.community[:40])
    start, end = check_window(raw.start, raw.end, now_ms=now_ms, retain_days=retain_days)
    if not 1 <= raw.limit <= LIMIT_MAX:
        raise refuse("search.error.limit", "limit", high=LIMIT_MAX)
    types = tuple(sorted(set(raw.types or ())))
    unknown = [name for name in types if name not in EVENT_DEVICE_TYPES]
    if unknown:
        raise refuse(
            "search.error.types", "types", unknown=", ".join(unknown)[:200], known=", ".join(EVENT_DEVICE_TYPES)
        )
    for name in TEXT_MAX:
        _check_text(name, getattr(raw, name))
    for name, model in (("building", Building), ("household", Household), ("device", Device)):
        value = getattr(raw, name)
        record = session.get(model, value) if value is not None else None
        if value is not None and getattr(record, "community_id", None) != raw.community:
            raise refuse("search.error.place", name, value=value, community=raw.community)
    polygon = parse_polygon(raw.polygon) if raw.polygon is not None else None
    if polygon is not None and not polygon.intersects(shape(json.loads(community.boundary))):
        raise refuse("search.error.polygon_outside", "polygon", community=raw.community)
    grid = principal.scope.grid
    grids = frozenset({grid}) if grid else None
    area: BaseGeometry | None = polygon
    clipped = False
    if grid and polygon is not None:
        own = session.get(Grid, grid)
        grid_shape = shape(json.loads(own.polygon)) if own is not None else None
        if grid_shape is None or not grid_shape.covers(polygon):
            area = polygon.intersection(grid_shape) if grid_shape is not None else Polygon()
            clipped = True
    query = SearchQuery(
        community=raw.community,
        start_ms=start,
        end_ms=end,
        polygon=area,
        building=raw.building,
        household=raw.household,
        device=raw.device,
        types=types,
        plate=raw.plate,
        person=raw.person,
        grids=grids,
        limit=raw.limit,
    )
    canonical = canonical_form(raw, start, end, polygon, grids)
    cursor = read_cursor(key, canonical, raw.cursor) if raw.cursor is not None else None
    return CheckedSearch(query, cursor, canonical, clipped)


def answer(session: Session, checked: CheckedSearch, key: bytes) -> dict[str, Any]:
    """The JSON answer of a checked search: a page of items and the signed cursor of the next one."""
    page = search(session, checked.query, checked.cursor)
    following = write_cursor(key, checked.canonical, page.next) if page.next is not None else None
    return {"items": page.items, "next": following}
