"""The investigation of one place between two times (issue #19, the Investigate page 研判): the
window and the area as the user gives them, checked (keyed errors); a grid worker's area clipped to
their grid; one merged timeline from the event archive (``memory.search``) and the alert history
(``alerts.access`` decides what each role sees): door, lock and gate events with identity outcomes,
barrier plates, patrol check-ins, one entry per guard per stay in the area, alerts; the window's
plates with their passages in the week around; a plate or a person followed across the community.
Entries are plain dicts with what people read (labels through ``auth.labels``, times in
Asia/Shanghai): the page (callbacks/investigate.py) renders them."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shapely import Point, Polygon, box, prepare
from shapely.geometry import mapping, shape
from shapely.validation import explain_validity
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.access import alert_filter, alert_for, sees_wanted_list
from alerts.history import record_view
from alerts.models import AlertRecord
from auth.labels import labels
from auth.principal import Principal
from core.errors import Forbidden, InvalidInput
from core.i18n import t
from core.settings import Settings
from core.timefmt import SHANGHAI, local_text, ms_to_utc
from memory.models import ArchivedEvent
from memory.search import SearchQuery, rows
from registry.models import Building, Community, Device, Grid, Household, Vehicle, WatchlistEntry

KIND_OF_TYPE = {
    "door.contact": "door",
    "lock.open": "lock",
    "gate.face": "face",
    "gate.vehicle": "vehicle",
    "patrol.checkin": "patrol",
    "guard.position": "guard",
}
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
MAX_WINDOW_DAYS = 31
MAX_ROWS = 20_000  # archive rows read for one timeline (guards' positions are most of them)
MAX_ENTRIES = 400  # timeline entries shown
MAX_PLATES = 60
STAY_GAP_MS = 10 * 60_000  # a guard's positions further apart than this are two stays
BOX_MARGIN_M = 40
M_PER_DEG_LAT = 111_320.0


# --- the window ---------------------------------------------------------------------------


def local_ms(date_text: Any, time_text: Any) -> int:
    """Epoch ms of a local (Asia/Shanghai) date and time typed as 2026-12-05 and 19:00."""
    try:
        day = dt.date.fromisoformat(str(date_text).strip())
        hour, minute = (int(part) for part in str(time_text).strip().split(":"))
        moment = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)
    except (TypeError, ValueError):
        raise InvalidInput(key="inv.error.time") from None
    return int(moment.timestamp() * 1000)


def preset_window(preset: str, now_ms: int) -> tuple[int, int]:
    """昨晚 22:00–06:00, or the last 24 hours. After 06:00 "last night" is the night that has ended;
    before 06:00 it is the night still going on, from 22:00 to now (at 01:38 the officer asking about
    "last night" means the break-in of 01:12, not the night before)."""
    if preset == "last_24h":
        return now_ms - DAY_MS, now_ms
    now = ms_to_utc(now_ms).astimezone(SHANGHAI)
    midnight = int(dt.datetime(now.year, now.month, now.day, tzinfo=SHANGHAI).timestamp() * 1000)
    if now_ms < midnight + 6 * HOUR_MS:
        return midnight - 2 * HOUR_MS, now_ms
    return midnight - 2 * HOUR_MS, midnight + 6 * HOUR_MS


def read_window(preset: Any, parts: tuple[Any, Any, Any, Any], now_ms: int) -> tuple[int, int]:
    """The searched window from the preset or the custom dates and times."""
    if preset in ("last_night", "last_24h"):
        return preset_window(str(preset), now_ms)
    start, end = local_ms(parts[0], parts[1]), local_ms(parts[2], parts[3])
    if start >= end:
        raise InvalidInput(key="inv.error.window")
    if end - start > MAX_WINDOW_DAYS * DAY_MS:
        raise InvalidInput(key="inv.error.long", days=MAX_WINDOW_DAYS)
    return start, end


# --- the area -----------------------------------------------------------------------------


def box_around(points: Iterable[tuple[float, float]], margin_m: float = BOX_MARGIN_M) -> dict[str, Any] | None:
    """A GeoJSON rectangle around (lat, lon) points, with a margin in metres."""
    found = list(points)
    if not found:
        return None
    lats = [p[0] for p in found]
    lons = [p[1] for p in found]
    dlat = margin_m / M_PER_DEG_LAT
    dlon = margin_m / (M_PER_DEG_LAT * math.cos(math.radians(sum(lats) / len(lats))))
    return dict(mapping(box(min(lons) - dlon, min(lats) - dlat, max(lons) + dlon, max(lats) + dlat)))


def picked_points(session: Session, community: str, picks: list[Any]) -> list[tuple[float, float]]:
    """Where the picked places are: gates (devices), buildings, households (their building)."""
    wanted: dict[str, list[str]] = defaultdict(list)
    for pick in picks:
        kind, _, key = str(pick).partition(":")
        wanted[kind].append(key)
    points: list[tuple[float, float]] = []
    if wanted["d"]:
        points += session.execute(
            select(Device.lat, Device.lon).where(Device.community_id == community, Device.id.in_(wanted["d"]))
        ).all()
    buildings = set(wanted["b"])
    if wanted["h"]:
        buildings |= set(
            session.scalars(
                select(Household.building_id).where(Household.community_id == community, Household.id.in_(wanted["h"]))
            )
        )
    if buildings:
        points += session.execute(
            select(Building.lat, Building.lon).where(Building.community_id == community, Building.id.in_(buildings))
        ).all()
    return [(float(lat), float(lon)) for lat, lon in points if lat is not None and lon is not None]


def drawn_area(geojson: Any) -> dict[str, Any] | None:
    """The last polygon or rectangle drawn with the EditControl (its ``geojson`` property)."""
    features = geojson.get("features") if isinstance(geojson, dict) else None
    for feature in reversed(features if isinstance(features, list) else []):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if isinstance(geometry, dict) and geometry.get("type") == "Polygon":
            return geometry
    return None


def area_text(area: dict[str, Any] | None, lang: str) -> str:
    """The size of the searched area, for the user to see what they drew."""
    if not area:
        return t("inv.place.hint", lang)
    min_lon, min_lat, max_lon, max_lat = shape(area).bounds
    w = (max_lon - min_lon) * M_PER_DEG_LAT * math.cos(math.radians((min_lat + max_lat) / 2))
    return t("inv.place.area", lang, w=round(w), h=round((max_lat - min_lat) * M_PER_DEG_LAT))


def valid_area(session: Session, community: str, area: Any) -> Polygon:
    """The searched polygon, refused with a keyed error when it is invalid or outside the community."""
    try:
        polygon = shape(area)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        raise InvalidInput(key="inv.error.polygon", problem="GeoJSON") from None
    if not isinstance(polygon, Polygon) or polygon.is_empty:
        raise InvalidInput(key="inv.error.polygon", problem=getattr(polygon, "geom_type", "?"))
    if not polygon.is_valid:
        raise InvalidInput(key="inv.error.polygon", problem=explain_validity(polygon))
    boundary = session.scalar(select(Community.boundary).where(Community.id == community))
    if boundary is None or not shape(json.loads(boundary)).intersects(polygon):
        raise InvalidInput(key="inv.error.outside")
    return polygon


@dataclass(frozen=True)
class Scoped:
    """The area as the caller may search it."""

    polygon: Polygon
    grids: frozenset[str] | None
    clipped: bool


def scoped_area(session: Session, principal: Principal, polygon: Polygon) -> Scoped:
    """A grid worker's area clipped to their grid (``clipped`` when it reached beyond it)."""
    grid = principal.scope.grid
    if grid is None:
        return Scoped(polygon, None, clipped=False)
    outline = session.scalar(select(Grid.polygon).where(Grid.id == grid))
    if outline is None:
        raise Forbidden(key="error.forbidden")
    mine = shape(json.loads(outline))
    inside = polygon.intersection(mine)
    if not isinstance(inside, Polygon) or inside.is_empty:
        inside = mine.envelope if inside.is_empty else inside.envelope
    return Scoped(inside if isinstance(inside, Polygon) else polygon, frozenset({grid}), not mine.covers(polygon))


# --- the timeline -------------------------------------------------------------------------


def guard_stays(positions: list[ArchivedEvent]) -> list[list[ArchivedEvent]]:
    """A guard's positions inside the area, one list per stay (a gap of STAY_GAP_MS splits them)."""
    by_guard: dict[str, list[ArchivedEvent]] = defaultdict(list)
    for row in positions:
        by_guard[row.guard_id or row.device_id].append(row)
    stays: list[list[ArchivedEvent]] = []
    for seen in by_guard.values():
        current: list[ArchivedEvent] = []
        for row in sorted(seen, key=lambda r: r.ts):
            if current and row.ts - current[-1].ts > STAY_GAP_MS:
                stays.append(current)
                current = []
            current.append(row)
        if current:
            stays.append(current)
    return stays


def nearest_buildings(session: Session, community: str, points: list[ArchivedEvent]) -> list[str | None]:
    """The building nearest to each point (where a guard's stay is said to be)."""
    buildings = session.execute(
        select(Building.id, Building.lat, Building.lon).where(Building.community_id == community)
    ).all()
    out: list[str | None] = []
    for point in points:
        if point.lat is None or point.lon is None or not buildings:
            out.append(None)
            continue
        scale = math.cos(math.radians(point.lat))
        out.append(min(buildings, key=lambda b: (b.lat - point.lat) ** 2 + ((b.lon - point.lon) * scale) ** 2).id)
    return out


def identity(row: ArchivedEvent, found: Mapping[str, str], wanted: set[str], lang: str) -> str:
    """Who opened a door or passed a gate: a registered resident, an unregistered face, an ID
    card, a wanted-list match (``wanted``: only for the roles that may see the wanted list)."""
    person = row.person or ""
    if person.startswith("face:"):
        return t("inv.who.stranger", lang)
    if person.startswith("id:"):
        return t("inv.who.wanted" if person[3:] in wanted else "inv.who.id", lang)
    if person:
        return t("inv.who.resident", lang, name=found.get(person, t("label.person", lang)))
    return ""


def what_of(row: ArchivedEvent, lang: str) -> str:
    """What happened, in words."""
    data = row.data if isinstance(row.data, dict) else {}
    direction = "out" if data.get("direction") == "out" else "in"
    if row.type == "door.contact":
        return t("inv.what.door.closed" if data.get("state") == "closed" else "inv.what.door.open", lang)
    if row.type == "lock.open":
        method = str(data.get("method", ""))
        named = t(f"inv.method.{method}", lang)
        return t("inv.what.lock", lang, method=method if named == f"inv.method.{method}" else named)
    if row.type == "gate.face":
        return t(f"inv.what.face.{direction}", lang)
    if row.type == "gate.vehicle":
        return t(f"inv.what.vehicle.{direction}", lang, plate=row.plate or "")
    if row.type == "patrol.checkin":
        return t("inv.what.patrol", lang)
    return t("inv.what.other", lang, type=row.type)


def entry_of(row: ArchivedEvent, kind: str, **fields: Any) -> dict[str, Any]:
    """A timeline entry (what the browser's Store holds: texts, the point, what to follow)."""
    return {
        "kind": kind,
        "ts": row.ts,
        "entry": row.entry,
        "lat": row.lat,
        "lon": row.lon,
        "time": local_text(row.ts, "%m-%d %H:%M:%S"),
        "plate": row.plate,
        "person": row.person if kind in ("face", "lock") and row.person else None,
        **fields,
    }


def event_entries(
    session: Session, principal: Principal, archived: list[ArchivedEvent], lang: str, settings: Settings
) -> list[dict[str, Any]]:
    """The archive rows as people read them: one entry per event, one per guard per stay."""
    events = [r for r in archived if r.type != "guard.position" and r.type in KIND_OF_TYPE]
    stays = guard_stays([r for r in archived if r.type == "guard.position"])
    near = nearest_buildings(session, archived[0].community_id, [s[len(s) // 2] for s in stays]) if stays else []
    found = labels(
        session,
        principal,
        [v for r in events for v in (r.device_id, r.building_id, r.household_id, r.guard_id, r.person)]
        + [s[0].guard_id for s in stays]
        + [b for b in near if b],
        lang,
    )
    hashes = sorted({(r.person or "")[3:] for r in events if (r.person or "").startswith("id:")})
    wanted: set[str] = set()
    if hashes and sees_wanted_list(principal, settings):
        wanted = set(session.scalars(select(WatchlistEntry.id_hash).where(WatchlistEntry.id_hash.in_(hashes))))
    plates = sorted({r.plate for r in events if r.plate})
    registered = (
        set(
            session.scalars(
                select(Vehicle.plate).where(Vehicle.community_id == events[0].community_id, Vehicle.plate.in_(plates))
            )
        )
        if plates
        else set()
    )
    out: list[dict[str, Any]] = []
    for row in events:
        kind = KIND_OF_TYPE[row.type]
        place = found.get(row.device_id) or found.get(row.household_id or "") or found.get(row.building_id or "", "")
        if row.type == "gate.vehicle":
            who = t("inv.who.registered_car" if row.plate in registered else "inv.who.visitor_car", lang)
        elif row.type == "patrol.checkin":
            who = found.get(row.guard_id or "", "")
        else:
            who = identity(row, found, wanted, lang)
        out.append(
            entry_of(row, kind, place=place, who=who, what=what_of(row, lang), follow=found.get(row.person or ""))
        )
    for stay, building in zip(stays, near, strict=True):
        first, last = stay[0], stay[-1]
        middle = stay[len(stay) // 2]
        text = t(
            "inv.what.guard",
            lang,
            start=local_text(first.ts, "%H:%M"),
            end=local_text(last.ts, "%H:%M"),
            n=len(stay),
        )
        place = t("inv.near", lang, place=found[building]) if building in found else ""
        entry = entry_of(first, "guard", place=place, who=found.get(first.guard_id or "", first.device_id), what=text)
        entry.update(lat=middle.lat, lon=middle.lon, guard=first.guard_id)
        out.append(entry)
    return out


def alert_entries(
    session: Session,
    principal: Principal,
    community: str,
    window: tuple[int, int],
    area: Scoped,
    lang: str,
    settings: Settings,
) -> list[dict[str, Any]]:
    """The alerts opened in the window inside the area, as the principal may see them."""
    start, end = (ms_to_utc(v) for v in window)
    min_lon, min_lat, max_lon, max_lat = area.polygon.bounds
    query = (
        select(AlertRecord)
        .where(AlertRecord.community_id == community, AlertRecord.opened_at >= start, AlertRecord.opened_at < end)
        .where(AlertRecord.lat.between(min_lat, max_lat), AlertRecord.lon.between(min_lon, max_lon))
        .order_by(AlertRecord.opened_at)
        .limit(MAX_ENTRIES)
    )
    prepare(area.polygon)
    out = []
    for record in session.scalars(alert_filter(principal, settings).narrow(query)):
        if record.lat is None or record.lon is None or not area.polygon.covers(Point(record.lon, record.lat)):
            continue
        seen = alert_for(principal, record_view(record), settings)
        if seen is None:
            continue
        ts = int(dt.datetime.fromisoformat(seen["opened_at"].replace("Z", "+00:00")).timestamp() * 1000)
        out.append(
            {
                "kind": "alert",
                "ts": ts,
                "entry": record.id,
                "lat": record.lat,
                "lon": record.lon,
                "time": local_text(ts, "%m-%d %H:%M:%S"),
                "place": "",
                "who": t(f"status.{seen['status']}", lang),
                "what": t("inv.what.alert", lang, type=t(f"alert.type.{seen['type']}", lang)),
                "plate": None,
                "person": None,
            }
        )
    return out


def plate_summary(
    session: Session,
    community: str,
    window: tuple[int, int],
    grids: frozenset[str] | None,
    archived: list[ArchivedEvent],
) -> list[dict[str, Any]]:
    """Each plate that passed a barrier in the area and window: its passages then and in the 7
    days around the window (the whole community), ``once`` for a visiting car (not in the registry)
    whose passages all fall in the window (a resident's car seen once is no lead), ``registered`` for
    a car of the registry; visiting cars seen once first."""
    in_window: dict[str, int] = defaultdict(int)
    for row in archived:
        if row.type == "gate.vehicle" and row.plate:
            in_window[row.plate] += 1
    middle = (window[0] + window[1]) // 2
    week = (min(window[0], middle - WEEK_MS // 2), max(window[1], middle + WEEK_MS // 2))
    plates = sorted(in_window)
    registered = set(
        session.scalars(select(Vehicle.plate).where(Vehicle.community_id == community, Vehicle.plate.in_(plates)))
    )
    out = []
    for plate in sorted(in_window, key=lambda p: (-in_window[p], p))[:MAX_PLATES]:
        around = sum(
            1
            for _ in rows(
                session,
                SearchQuery(community, week[0], week[1], plate=plate, types=("gate.vehicle",), grids=grids),
            )
        )
        out.append(
            {
                "plate": plate,
                "window": in_window[plate],
                "week": around,
                "once": around <= in_window[plate] and plate not in registered,
                "registered": plate in registered,
            }
        )
    out.sort(key=lambda p: (not p["once"], p["registered"], p["plate"]))
    return out


def investigate(
    session: Session,
    principal: Principal,
    community: str,
    area: Any,
    window: tuple[int, int],
    lang: str,
    settings: Settings,
) -> dict[str, Any]:
    """The whole answer of one search: timeline entries, plates, and whether the area was clipped."""
    scoped = scoped_area(session, principal, valid_area(session, community, area))
    query = SearchQuery(
        community, window[0], window[1], polygon=scoped.polygon, types=tuple(KIND_OF_TYPE), grids=scoped.grids
    )
    archived: list[ArchivedEvent] = []
    for row in rows(session, query):
        archived.append(row)
        if len(archived) >= MAX_ROWS:
            break
    entries = event_entries(session, principal, archived, lang, settings) if archived else []
    entries += alert_entries(session, principal, community, window, scoped, lang, settings)
    entries.sort(key=lambda e: (e["ts"], e["entry"]))
    return {
        "entries": entries[:MAX_ENTRIES],
        "total": len(entries),
        "plates": plate_summary(session, community, window, scoped.grids, archived),
        "window": list(window),
        "clipped": scoped.clipped,
        "area": dict(mapping(scoped.polygon)),
    }


def follow(
    session: Session,
    principal: Principal,
    community: str,
    target: str,
    window: tuple[int, int],
    lang: str,
    settings: Settings,
) -> dict[str, Any]:
    """Every passage of a plate or a person in the whole community (the caller's grid for a grid worker)."""
    kind, _, value = target.partition(":")
    if kind not in ("plate", "person") or not value or len(value) > 80:
        raise InvalidInput(key="inv.error.follow")
    grid = principal.scope.grid
    query = SearchQuery(
        community,
        window[0],
        window[1],
        plate=value if kind == "plate" else None,
        person=value if kind == "person" else None,
        grids=frozenset({grid}) if grid else None,
        limit=MAX_ENTRIES,
    )
    found = list(rows(session, query))[:MAX_ENTRIES]
    entries = event_entries(session, principal, found, lang, settings) if found else []
    who = value if kind == "plate" else labels(session, principal, [value], lang).get(value, t("label.person", lang))
    span = {"start": local_text(window[0], "%m-%d %H:%M"), "end": local_text(window[1], "%m-%d %H:%M")}
    return {"title": t("inv.follow.title", lang, who=who, n=len(entries), **span), "entries": entries}
