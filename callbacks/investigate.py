"""Callbacks of the Investigate page (研判). Role and scope come from the server session: the
community is checked against the caller's scope, a grid worker's area is clipped to their grid
and their searches carry their grid (``SearchQuery.grids``), alerts pass ``alerts.access``, names
are shown as the reader may see them (``auth.labels``). The browser sends only the area, the
window and what was clicked; a pinned entry is read again from the archive, never taken from it."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dash_leaflet as dl
from dash import ALL, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from shapely import Point, Polygon, box, prepare
from shapely.geometry import mapping, shape
from shapely.validation import explain_validity
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.access import alert_filter, alert_for, sees_wanted_list
from alerts.history import record_view
from alerts.models import AlertRecord
from api.context import clock, stores
from auth.callbacks import page_callback
from auth.labels import labels
from auth.principal import Principal, current_principal
from callbacks.util import as_dict, as_list
from core.errors import InvalidInput, SandtableError
from core.i18n import t
from core.timefmt import SHANGHAI, iso_utc, local_text, ms_to_utc
from layouts import ids
from layouts.attrs import data_attrs
from layouts.investigate import KINDS, draw_control, place_options
from memory.cases import create_case, pin
from memory.models import ArchivedEvent
from memory.search import SearchQuery, item_of, rows
from registry.models import Building, Community, Device, Grid, Household, Vehicle, WatchlistEntry

KIND_OF_TYPE = {
    "door.contact": "door",
    "lock.open": "lock",
    "gate.face": "face",
    "gate.vehicle": "vehicle",
    "patrol.checkin": "patrol",
    "guard.position": "guard",
}
KIND_COLORS = {
    "door": "#ffb020",
    "lock": "#2f7bff",
    "face": "#38e1ff",
    "vehicle": "#00d1b2",
    "patrol": "#e6edf7",
    "guard": "#35d07f",
    "alert": "#ff1f5a",
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


def _lang(state: Any) -> str:
    return "en" if as_dict(state).get("lang") == "en" else "zh"


def _community(principal: Principal, state: Any) -> str:
    community = str(as_dict(state).get("community", ""))
    if not principal.scope.allows_community(community):
        raise PreventUpdate
    return community


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
    """昨晚 22:00–06:00 (the last night that has ended) or the last 24 hours."""
    if preset == "last_24h":
        return now_ms - DAY_MS, now_ms
    now = ms_to_utc(now_ms).astimezone(SHANGHAI)
    midnight = int(dt.datetime(now.year, now.month, now.day, tzinfo=SHANGHAI).timestamp() * 1000)
    if now_ms < midnight + 6 * HOUR_MS:
        midnight -= DAY_MS
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
    for feature in reversed(as_list(as_dict(geojson).get("features"))):
        geometry = as_dict(as_dict(feature).get("geometry"))
        if geometry.get("type") == "Polygon":
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
        raise PreventUpdate
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
    session: Session, principal: Principal, archived: list[ArchivedEvent], lang: str
) -> list[dict[str, Any]]:
    """The archive rows as people read them: one entry per event, one per guard per stay."""
    events = [r for r in archived if r.type != "guard.position" and r.type in KIND_OF_TYPE]
    stays = guard_stays([r for r in archived if r.type == "guard.position"])
    found = labels(
        session,
        principal,
        [v for r in events for v in (r.device_id, r.building_id, r.household_id, r.guard_id, r.person)]
        + [s[0].guard_id for s in stays],
        lang,
    )
    hashes = sorted({(r.person or "")[3:] for r in events if (r.person or "").startswith("id:")})
    wanted: set[str] = set()
    if hashes and sees_wanted_list(principal, stores().settings):
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
    for stay in stays:
        first, last = stay[0], stay[-1]
        middle = stay[len(stay) // 2]
        text = t(
            "inv.what.guard",
            lang,
            start=local_text(first.ts, "%H:%M"),
            end=local_text(last.ts, "%H:%M"),
            n=len(stay),
        )
        entry = entry_of(first, "guard", place="", who=found.get(first.guard_id or "", first.device_id), what=text)
        entry.update(lat=middle.lat, lon=middle.lon, guard=first.guard_id)
        out.append(entry)
    return out


def alert_entries(
    session: Session, principal: Principal, community: str, window: tuple[int, int], area: Scoped, lang: str
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
    settings = stores().settings
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
    days around the window (the whole community), ``once`` when all of them fall in the window."""
    in_window: dict[str, int] = defaultdict(int)
    for row in archived:
        if row.type == "gate.vehicle" and row.plate:
            in_window[row.plate] += 1
    middle = (window[0] + window[1]) // 2
    week = (min(window[0], middle - WEEK_MS // 2), max(window[1], middle + WEEK_MS // 2))
    out = []
    for plate in sorted(in_window, key=lambda p: (-in_window[p], p))[:MAX_PLATES]:
        around = sum(
            1
            for _ in rows(
                session,
                SearchQuery(community, week[0], week[1], plate=plate, types=("gate.vehicle",), grids=grids),
            )
        )
        out.append({"plate": plate, "window": in_window[plate], "week": around, "once": around <= in_window[plate]})
    out.sort(key=lambda p: (not p["once"], p["plate"]))
    return out


def investigate(
    session: Session, principal: Principal, community: str, area: Any, window: tuple[int, int], lang: str
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
    entries = event_entries(session, principal, archived, lang) if archived else []
    entries += alert_entries(session, principal, community, window, scoped, lang)
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
    session: Session, principal: Principal, community: str, target: str, window: tuple[int, int], lang: str
) -> dict[str, Any]:
    """Every passage of a plate or a person in the whole community (the caller's grid for a grid worker)."""
    kind, _, value = target.partition(":")
    if kind not in ("plate", "person") or not value or len(value) > 80:
        raise PreventUpdate
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
    entries = event_entries(session, principal, found, lang) if found else []
    who = value if kind == "plate" else labels(session, principal, [value], lang).get(value, t("label.person", lang))
    return {"title": t("inv.follow.title", lang, who=who, n=len(entries)), "entries": entries}


# --- rendering ----------------------------------------------------------------------------


def shown(results: Any, kinds: Any) -> list[tuple[int, dict[str, Any]]]:
    """The entries of the kinds the user keeps, with their index in the results."""
    keep = {k for k in as_list(kinds) if k in KINDS}
    return [(i, e) for i, e in enumerate(as_list(as_dict(results).get("entries"))) if e.get("kind") in keep]


def follow_buttons(index: int, entry: Mapping[str, Any]) -> list[Any]:
    """Buttons that follow the entry's plate or person across the community."""
    out = []
    if entry.get("plate"):
        out.append(
            html.Button(
                entry["plate"],
                id={"type": ids.INV_FOLLOW_BTN, "index": f"{index}|plate:{entry['plate']}"},
                className="st-inv-followbtn",
            )
        )
    if entry.get("person"):
        out.append(
            html.Button(
                "↪",
                id={"type": ids.INV_FOLLOW_BTN, "index": f"{index}|person:{entry['person']}"},
                className="st-inv-followbtn",
            )
        )
    return out


def entry_row(index: int, entry: Mapping[str, Any], selected: bool, lang: str, *, pin: bool = True) -> html.Div:
    """One line of the timeline."""
    kind = str(entry.get("kind"))
    return html.Div(
        className=f"st-inv-entry st-inv-k-{kind}" + (" st-inv-selected" if selected else ""),
        children=[
            html.Span(entry.get("time", ""), className="st-inv-time"),
            html.Span(t(f"inv.kind.{kind}", lang), className="st-inv-kind"),
            html.Span(entry.get("place", ""), className="st-inv-place"),
            html.Span([entry.get("who", ""), *follow_buttons(index, entry)], className="st-inv-who"),
            html.Span(entry.get("what", ""), className="st-inv-what"),
            html.Button(
                t("inv.pin", lang), id={"type": ids.INV_PIN, "index": index}, className="st-inv-pin", n_clicks=0
            )
            if pin
            else None,
        ],
        id={"type": ids.INV_ENTRY, "index": index} if pin else {"type": "inv-followed", "index": index},
        n_clicks=0,
        **data_attrs(kind=kind, entry=str(entry.get("entry", ""))),
    )


def marker(entry: Mapping[str, Any], *, extra: str = "", radius: int = 7) -> Any:
    """A point of the timeline on the map."""
    kind = str(entry.get("kind"))
    return dl.CircleMarker(
        center=[entry["lat"], entry["lon"]],
        radius=radius,
        color=KIND_COLORS.get(kind, "#ffffff"),
        fillOpacity=0.8,
        weight=2,
        className=f"st-inv-marker st-inv-m-{kind} {extra}".strip(),
        children=dl.Tooltip(
            f"{entry.get('time', '')} {entry.get('place', '')} {entry.get('who', '')} {entry.get('what', '')}"
        ),
    )


# --- callbacks ----------------------------------------------------------------------------


@page_callback(
    "investigate",
    Output(ids.INV_DRAW_SLOT, "children"),
    Input(ids.INV_DRAW_TIMER, "n_intervals"),
    prevent_initial_call=True,
)
def add_draw_control(_ticks: Any) -> Any:
    """The drawing tools, once the page's other components have loaded (layouts.investigate.draw_control)."""
    return draw_control()


@page_callback(
    "investigate",
    Output(ids.INV_PLACE, "options"),
    Input(ids.INV_PLACE, "search_value"),
    State(ids.INV_PLACE, "value"),
    State(ids.INV_STATE, "data"),
    prevent_initial_call=True,
)
def search_places(search: Any, picked: Any, state: Any) -> Any:
    """The picker's places with the households whose address holds what the user typed."""
    principal = current_principal()
    community = _community(principal, state)
    keep = frozenset(str(p) for p in as_list(picked))
    with stores().sessions() as session:
        return place_options(
            session, community, principal.scope.grid, _lang(state), search=str(search or "")[:40], keep=keep
        )


@page_callback(
    "investigate",
    Output(ids.INV_AREA, "data"),
    Output(ids.INV_AREA_LAYER, "children"),
    Output(ids.INV_AREA_TEXT, "children"),
    Output(ids.INV_DRAW, "editToolbar"),
    Input(ids.INV_DRAW, "geojson"),
    Input(ids.INV_BOX, "n_clicks"),
    Input(ids.INV_CLEAR, "n_clicks"),
    State(ids.INV_PLACE, "value"),
    State(ids.INV_STATE, "data"),
    prevent_initial_call=True,
)
def set_area(geojson: Any, _box: Any, cleared: Any, picks: Any, state: Any) -> tuple[Any, ...]:
    """The searched area: the last drawn polygon, a rectangle around the picked places, or none."""
    principal = current_principal()
    community = _community(principal, state)
    lang = _lang(state)
    toolbar: Any = no_update
    if ctx.triggered_id == ids.INV_CLEAR:
        area = None
        toolbar = {"mode": "remove", "action": "clear all", "n_clicks": int(cleared or 0)}
    elif ctx.triggered_id == ids.INV_BOX:
        with stores().sessions() as session:
            area = box_around(picked_points(session, community, as_list(picks)))
        if area is None:
            return no_update, no_update, t("inv.need_place", lang), no_update
    else:
        area = drawn_area(geojson)
    layer = (
        [
            dl.Polygon(
                positions=[[lat, lon] for lon, lat in area["coordinates"][0]],
                className="st-inv-area",
                color="#ffd54a",
                weight=2,
                fillOpacity=0.08,
            )
        ]
        if area and ctx.triggered_id == ids.INV_BOX
        else []
    )
    return area, layer, area_text(area, lang), toolbar


@page_callback(
    "investigate",
    Output(ids.INV_RESULTS, "data"),
    Output(ids.INV_MSG, "children"),
    Output(ids.INV_SELECTED, "data", allow_duplicate=True),
    Output(ids.INV_FOLLOW, "data", allow_duplicate=True),
    Input(ids.INV_SEARCH, "n_clicks"),
    State(ids.INV_AREA, "data"),
    State(ids.INV_PRESET, "value"),
    State(ids.INV_FROM_DATE, "value"),
    State(ids.INV_FROM_TIME, "value"),
    State(ids.INV_TO_DATE, "value"),
    State(ids.INV_TO_TIME, "value"),
    State(ids.INV_PLACE, "value"),
    State(ids.INV_STATE, "data"),
    prevent_initial_call=True,
)
def run_search(
    _clicks: Any,
    area: Any,
    preset: Any,
    from_date: Any,
    from_time: Any,
    to_date: Any,
    to_time: Any,
    picks: Any,
    state: Any,
) -> tuple[Any, ...]:
    """Search the archive and the alert history for the area and window."""
    principal = current_principal()
    community = _community(principal, state)
    lang = _lang(state)
    try:
        window = read_window(preset, (from_date, from_time, to_date, to_time), clock().now_ms())
        with stores().sessions() as session:
            if not area:
                area = box_around(picked_points(session, community, as_list(picks)))
            if not area:
                return no_update, t("inv.need_place", lang), no_update, no_update
            results = investigate(session, principal, community, area, window, lang)
    except SandtableError as err:
        return no_update, err.text(lang), no_update, no_update
    notes = [
        t(
            "inv.count",
            lang,
            n=results["total"],
            start=local_text(window[0], "%Y-%m-%d %H:%M"),
            end=local_text(window[1], "%Y-%m-%d %H:%M"),
        )
    ]
    if results["total"] > MAX_ENTRIES:
        notes.append(t("inv.more", lang, n=MAX_ENTRIES))
    if results["clipped"]:
        notes.append(t("inv.clipped", lang))
    message = [html.Div(n, className="st-inv-clipped" if n == t("inv.clipped", lang) else "") for n in notes]
    return results, message, None, None


@page_callback(
    "investigate",
    Output(ids.INV_SELECTED, "data"),
    Input({"type": ids.INV_ENTRY, "index": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def select_entry(clicks: Any) -> Any:
    """The clicked entry (its marker is highlighted)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, Mapping) or not any(isinstance(c, int) and c > 0 for c in as_list(clicks)):
        raise PreventUpdate
    return trigger.get("index")


@page_callback(
    "investigate",
    Output(ids.INV_TIMELINE, "children"),
    Output(ids.INV_MARKERS, "children"),
    Output(ids.INV_PLATES, "children"),
    Input(ids.INV_RESULTS, "data"),
    Input(ids.INV_KINDS, "value"),
    Input(ids.INV_SELECTED, "data"),
    State(ids.INV_STATE, "data"),
    prevent_initial_call=True,
)
def render(results: Any, kinds: Any, selected: Any, state: Any) -> tuple[Any, ...]:
    """The timeline, its markers and the plates of the window (from the search's answer)."""
    lang = _lang(state)
    if not results:
        return html.Div(t("inv.none", lang), className="st-empty"), [], []
    entries = shown(results, kinds)
    timeline = [entry_row(i, e, i == selected, lang) for i, e in entries] or [
        html.Div(t("inv.none", lang), className="st-empty")
    ]
    markers = [marker(e) for _, e in entries if e.get("lat") is not None]
    markers += [
        marker(e, extra="st-inv-hl", radius=13) for i, e in entries if i == selected and e.get("lat") is not None
    ]
    plates = as_list(as_dict(results).get("plates"))
    table = (
        html.Table(
            className="st-inv-platetable",
            children=[
                html.Tr([html.Th(t(f"inv.plates.{c}", lang)) for c in ("plate", "window", "week")] + [html.Th("")]),
                *(
                    html.Tr(
                        className="st-inv-once" if p.get("once") else "",
                        children=[
                            html.Td(
                                html.Button(
                                    p.get("plate"),
                                    id={"type": ids.INV_FOLLOW_BTN, "index": f"p{n}|plate:{p.get('plate')}"},
                                    className="st-inv-followbtn",
                                )
                            ),
                            html.Td(p.get("window")),
                            html.Td(p.get("week")),
                            html.Td(t("inv.plates.once", lang) if p.get("once") else "", className="st-inv-oncemark"),
                        ],
                        **data_attrs(plate=str(p.get("plate"))),
                    )
                    for n, p in enumerate(plates)
                ),
            ],
        )
        if plates
        else html.Div(t("inv.plates.none", lang), className="st-empty")
    )
    return timeline, markers, table


@page_callback(
    "investigate",
    Output(ids.INV_FOLLOW, "data"),
    Input({"type": ids.INV_FOLLOW_BTN, "index": ALL}, "n_clicks"),
    Input(ids.INV_FOLLOW_SPAN, "value"),
    State(ids.INV_FOLLOW, "data"),
    State(ids.INV_RESULTS, "data"),
    State(ids.INV_STATE, "data"),
    prevent_initial_call=True,
)
def run_follow(clicks: Any, span: Any, current: Any, results: Any, state: Any) -> Any:
    """Follow a plate or a person over the window (or the week around it) in the whole community."""
    principal = current_principal()
    community = _community(principal, state)
    trigger = ctx.triggered_id
    if isinstance(trigger, Mapping):
        if not any(isinstance(c, int) and c > 0 for c in as_list(clicks)):
            raise PreventUpdate
        target = str(trigger.get("index", "")).partition("|")[2]
    else:
        target = str(as_dict(current).get("target", ""))
    window = [int(v) for v in as_list(as_dict(results).get("window")) if isinstance(v, int)]
    if not target or len(window) != 2:
        raise PreventUpdate
    if span == "week":
        middle = (window[0] + window[1]) // 2
        window = [min(window[0], middle - WEEK_MS // 2), max(window[1], middle + WEEK_MS // 2)]
    with stores().sessions() as session:
        found = follow(session, principal, community, target, (window[0], window[1]), _lang(state))
    return {"target": target, **found}


@page_callback(
    "investigate",
    Output(ids.INV_FOLLOW_PANEL, "children"),
    Output(ids.INV_FOLLOW_MARKERS, "children"),
    Input(ids.INV_FOLLOW, "data"),
    State(ids.INV_STATE, "data"),
    prevent_initial_call=True,
)
def render_follow(followed: Any, state: Any) -> tuple[Any, ...]:
    """The followed plate's or person's passages, listed and drawn."""
    lang = _lang(state)
    found = as_dict(followed)
    if not found:
        return [], []
    entries = [e for e in as_list(found.get("entries")) if isinstance(e, dict)]
    return (
        [
            html.Div(found.get("title", ""), className="st-panel-title st-inv-followtitle"),
            *(entry_row(i, e, False, lang, pin=False) for i, e in enumerate(entries)),
        ],
        [marker(e, extra="st-inv-follow", radius=9) for e in entries if e.get("lat") is not None],
    )


# --- cases (memory.cases, the case files part of issue #19) -------------------------------


def case_query(results: Mapping[str, Any]) -> dict[str, Any]:
    """The investigation as a §9 search body, kept with the case."""
    window = [v for v in as_list(results.get("window")) if isinstance(v, int)]
    query: dict[str, Any] = {"types": [*KIND_OF_TYPE, "alert"]}
    if len(window) == 2:
        query.update({"from": iso_utc(window[0]), "to": iso_utc(window[1])})
    area = as_dict(results.get("area"))
    if area:
        query["polygon"] = area
    return query


@page_callback(
    "investigate",
    Output(ids.INV_CASE, "data"),
    Output(ids.INV_CASE_MSG, "children"),
    Input(ids.INV_SAVE, "n_clicks"),
    State(ids.INV_CASE_NAME, "value"),
    State(ids.INV_RESULTS, "data"),
    State(ids.INV_STATE, "data"),
    prevent_initial_call=True,
)
def save_case(_clicks: Any, name: Any, results: Any, state: Any) -> tuple[Any, ...]:
    """Save the investigation as a case (its name and query), then link to it."""
    principal = current_principal()
    community = _community(principal, state)
    lang = _lang(state)
    if not as_dict(results):
        return no_update, html.Span(t("inv.save.need_search", lang), className="st-msg-error")
    try:
        with stores().sessions.begin() as session:
            case_id = create_case(
                session, principal, community=community, name=str(name or ""), query=case_query(as_dict(results))
            )
    except SandtableError as err:
        return no_update, html.Span(err.text(lang), className="st-msg-error")
    return case_id, html.Span(
        [
            t("inv.saved", lang),
            " ",
            html.A(t("inv.open_case", lang), href=f"/cases?case={case_id}", className="st-inv-caselink"),
        ],
        className="st-msg-ok",
    )


def pinned_item(
    session: Session, principal: Principal, community: str, entry: Mapping[str, Any]
) -> tuple[dict[str, Any], str] | None:
    """The item of a timeline entry read again from the archive or the alert history, as the
    principal may see it (the browser names the entry; it never supplies its content)."""
    if entry.get("kind") == "alert":
        record = session.get(AlertRecord, str(entry.get("entry", "")))
        if record is None or record.community_id != community:
            return None
        seen = alert_for(principal, record_view(record), stores().settings)
        return (seen, "alert") if seen is not None else None
    ts = entry.get("ts")
    if not isinstance(ts, int):
        return None
    row = session.scalar(
        select(ArchivedEvent).where(
            ArchivedEvent.community_id == community,
            ArchivedEvent.ts == ts,
            ArchivedEvent.entry == str(entry.get("entry", "")),
        )
    )
    grid = principal.scope.grid
    if row is None or (grid is not None and row.grid_id != grid):
        return None
    return item_of(row), "event"


@page_callback(
    "investigate",
    Output(ids.INV_CASE_MSG, "children", allow_duplicate=True),
    Input({"type": ids.INV_PIN, "index": ALL}, "n_clicks"),
    State(ids.INV_RESULTS, "data"),
    State(ids.INV_CASE, "data"),
    State(ids.INV_STATE, "data"),
    prevent_initial_call=True,
)
def pin_entry(clicks: Any, results: Any, case_id: Any, state: Any) -> Any:
    """Pin one timeline entry to the case saved from this investigation."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, Mapping) or not any(isinstance(c, int) and c > 0 for c in as_list(clicks)):
        raise PreventUpdate
    principal = current_principal()
    community = _community(principal, state)
    lang = _lang(state)
    if not isinstance(case_id, str) or not case_id:
        return html.Span(t("inv.pin.no_case", lang), className="st-msg-error")
    entries = as_list(as_dict(results).get("entries"))
    index = trigger.get("index")
    if not isinstance(index, int) or not 0 <= index < len(entries) or not isinstance(entries[index], dict):
        raise PreventUpdate
    try:
        with stores().sessions.begin() as session:
            found = pinned_item(session, principal, community, entries[index])
            if found is None:
                raise PreventUpdate
            pin(session, principal, case_id, found[0], kind=found[1])
    except SandtableError as err:
        return html.Span(err.text(lang), className="st-msg-error")
    return html.Span(
        [
            f"{t('inv.pinned', lang)}: {entries[index].get('time', '')} {entries[index].get('what', '')} ",
            html.A(t("inv.open_case", lang), href=f"/cases?case={case_id}", className="st-inv-caselink"),
        ],
        className="st-msg-ok",
    )
