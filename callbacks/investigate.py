"""Callbacks of the Investigate page (研判); the investigation itself is memory.investigation.
Role and scope come from the server session: the community is checked against the caller's scope,
a grid worker's area is clipped to their grid and their searches carry their grid
(``SearchQuery.grids``), alerts pass ``alerts.access``, names are shown as the reader may see them
(``auth.labels``). The browser sends only the area, the window and what was clicked; a pinned
entry is read again from the archive, never taken from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash_leaflet as dl
from dash import ALL, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.access import alert_for
from alerts.history import record_view
from alerts.models import AlertRecord
from api.context import clock, stores
from auth.callbacks import page_callback
from auth.principal import Principal, current_principal
from callbacks.util import as_dict, as_list
from core.errors import SandtableError
from core.i18n import t
from core.timefmt import iso_utc, local_text
from geodata.gcj02 import geojson_from_display, latlng_for_display
from layouts import ids
from layouts.attrs import data_attrs
from layouts.investigate import KINDS, draw_control, place_options
from memory.cases import create_case, pin
from memory.investigation import (
    KIND_OF_TYPE,
    MAX_ENTRIES,
    WEEK_MS,
    area_text,
    box_around,
    drawn_area,
    follow,
    investigate,
    picked_points,
    read_window,
)
from memory.models import ArchivedEvent
from memory.search import item_of

KIND_COLORS = {
    "door": "#ffb020",
    "lock": "#2f7bff",
    "face": "#38e1ff",
    "vehicle": "#00d1b2",
    "patrol": "#e6edf7",
    "guard": "#35d07f",
    "alert": "#ff1f5a",
}


def _lang(state: Any) -> str:
    return "en" if as_dict(state).get("lang") == "en" else "zh"


def _community(principal: Principal, state: Any) -> str:
    community = str(as_dict(state).get("community", ""))
    if not principal.scope.allows_community(community):
        raise PreventUpdate
    return community


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
        center=latlng_for_display(stores().settings, [entry["lat"], entry["lon"]]),
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


def clicked(clicks: Any) -> Mapping[str, Any]:
    """The dict id of the clicked button of an ALL pattern (no update when the buttons were only
    rendered, with no click yet)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, Mapping) or not any(isinstance(c, int) and c > 0 for c in as_list(clicks)):
        raise PreventUpdate
    return trigger


INV_DRAW_ANY = {"type": ids.INV_DRAW, "index": ALL}  # the drawing tools, once they are there


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
    Output(INV_DRAW_ANY, "editToolbar"),
    Input(INV_DRAW_ANY, "geojson"),
    Input(ids.INV_BOX, "n_clicks"),
    Input(ids.INV_CLEAR, "n_clicks"),
    State(ids.INV_PLACE, "value"),
    State(ids.INV_STATE, "data"),
    State(ids.INV_AREA_LAYER, "children"),
    prevent_initial_call=True,
)
def set_area(drawings: Any, _box: Any, cleared: Any, picks: Any, state: Any, box_shown: Any) -> tuple[Any, ...]:
    """The searched area: the last drawn polygon, a rectangle around the picked places, or none.

    The drawing tools arrive a moment after the page (``INV_DRAW_TIMER``): they are matched as a
    pattern (``INV_DRAW_ANY``, none or one), so that the box and clear buttons work before they are
    there (a plain id made Dash refuse the whole callback: a box clicked early did nothing). And an
    empty drawing, which the tools report when they arrive, leaves a rectangle around the picks in place."""
    principal = current_principal()
    community = _community(principal, state)
    lang = _lang(state)
    tools = len(drawings or [])
    toolbar: Any = [no_update] * tools
    if ctx.triggered_id == ids.INV_CLEAR:
        area = None
        toolbar = [{"mode": "remove", "action": "clear all", "n_clicks": int(cleared or 0)}] * tools
    elif ctx.triggered_id == ids.INV_BOX:
        with stores().sessions() as session:
            area = box_around(picked_points(session, community, as_list(picks)))
        if area is None:
            return no_update, no_update, t("inv.need_place", lang), toolbar
    else:
        area = drawn_area(geojson_from_display(stores().settings, (drawings or [None])[-1]))
        if area is None and box_shown:
            return no_update, no_update, no_update, toolbar
    layer = (
        [
            dl.Polygon(
                positions=latlng_for_display(stores().settings, [[lat, lon] for lon, lat in area["coordinates"][0]]),
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
            results = investigate(session, principal, community, area, window, lang, stores().settings)
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
    trigger = clicked(clicks)
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
                                [
                                    html.Button(
                                        p.get("plate"),
                                        id={"type": ids.INV_FOLLOW_BTN, "index": f"p{n}|plate:{p.get('plate')}"},
                                        className="st-inv-followbtn",
                                    ),
                                    html.Span(
                                        t(
                                            "inv.who.registered_car" if p.get("registered") else "inv.who.visitor_car",
                                            lang,
                                        ),
                                        className="st-inv-cartag",
                                    ),
                                ]
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
    if isinstance(ctx.triggered_id, Mapping):
        target = str(clicked(clicks).get("index", "")).partition("|")[2]
    else:
        target = str(as_dict(current).get("target", ""))
    window = [int(v) for v in as_list(as_dict(results).get("window")) if isinstance(v, int)]
    if not target or len(window) != 2:
        raise PreventUpdate
    if span == "week":
        middle = (window[0] + window[1]) // 2
        window = [min(window[0], middle - WEEK_MS // 2), max(window[1], middle + WEEK_MS // 2)]
    try:
        with stores().sessions() as session:
            found = follow(
                session, principal, community, target, (window[0], window[1]), _lang(state), stores().settings
            )
    except SandtableError:
        raise PreventUpdate from None  # not a plate or a person: the page never sends that
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
    trigger = clicked(clicks)
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
