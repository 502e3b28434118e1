"""Search of the event archive by place and time (the domain side of ``POST /api/v1/events/search``
and of the Investigate page).

A query names one community and a window, and any of: a polygon, a building, a household, a
device, event types, a plate, a person. The answer is ordered by (ts, entry) and paged by keyset:
the cursor is the (ts, entry) of the last row returned. A polygon is read from the cell index
(``memory.models.cell_of``) under its bounding box, then each point is kept only when the polygon
covers it. The caller's scope (a grid worker's grids) is a filter here, in the data layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shapely import Point, Polygon, prepare
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from memory.models import ArchivedEvent, cells_of_box

MAX_CELLS = 400  # a polygon whose bounding box touches more cells is read by a latitude/longitude range
FETCH = 500  # rows read per round while a polygon's filter keeps fewer than a page


@dataclass(frozen=True)
class SearchQuery:
    """What to look for (validated by the caller: api/memory.py)."""

    community: str
    start_ms: int  # inclusive
    end_ms: int  # exclusive
    polygon: Polygon | None = None  # WGS-84, x = longitude, y = latitude
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


def item_of(row: ArchivedEvent) -> dict[str, Any]:
    """An archived event as the API gives it (interfaces §9)."""
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


def statement(query: SearchQuery) -> Select[ArchivedEvent]:
    """The SQL of a query, before paging (ordered by ts, then entry)."""
    a = ArchivedEvent
    conditions: list[Any] = [a.community_id == query.community, a.ts >= query.start_ms, a.ts < query.end_ms]
    if query.polygon is not None:
        min_lon, min_lat, max_lon, max_lat = query.polygon.bounds
        cells = cells_of_box(min_lat, min_lon, max_lat, max_lon)
        if len(cells) <= MAX_CELLS:
            conditions.append(a.cell.in_(cells))
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
    return select(a).where(and_(*conditions)).order_by(a.ts, a.entry)


def _after(stmt: Select[ArchivedEvent], cursor: tuple[int, str] | None) -> Select[ArchivedEvent]:
    if cursor is None:
        return stmt
    ts, entry = cursor
    a = ArchivedEvent
    return stmt.where(or_(a.ts > ts, and_(a.ts == ts, a.entry > entry)))


def rows(session: Session, query: SearchQuery, cursor: tuple[int, str] | None = None) -> Iterator[ArchivedEvent]:
    """Every matching row after the cursor, in order (read in rounds; a polygon's points filtered)."""
    shape = query.polygon
    if shape is not None:
        prepare(shape)
    base = statement(query)
    while True:
        batch = list(session.scalars(_after(base, cursor).limit(FETCH)))
        for row in batch:
            if shape is None or (row.lat is not None and shape.covers(Point(row.lon, row.lat))):
                yield row
        if len(batch) < FETCH:
            return
        cursor = (batch[-1].ts, batch[-1].entry)


def search(session: Session, query: SearchQuery, cursor: tuple[int, str] | None = None) -> SearchPage:
    """One page of matching events after the cursor."""
    page = SearchPage()
    for row in rows(session, query, cursor):
        if len(page.items) == query.limit:
            last = page.items[-1]
            page.next = (last["ts"], last["entry"])
            break
        page.items.append(item_of(row))
    return page
