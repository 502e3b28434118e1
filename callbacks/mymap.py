"""Callbacks of the grid worker's map (layouts/mymap.py). What it shows is decided here, on the
server, from the signed-in principal: a grid worker gets their grid's buildings and their own
tasks, whatever the browser sends; the browser only says which of those tasks it looks at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dash import ALL, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from api.context import services, stores
from auth.callbacks import page_callback
from auth.policy import can
from auth.principal import Principal, current_principal
from callbacks.gate import gated
from callbacks.util import as_dict, as_list, task_places
from closedloop.models import Task
from closedloop.service import Loop
from core.i18n import t
from geodata.gcj02 import for_display, latlng_for_display
from layouts import ids
from registry import queries
from store import live
from store.stores import Stores

BUSY = ("accepted", "on_scene")  # a task being worked on is the one shown first

# a refresh is never asked again before it has answered, on a phone's slow link too (callbacks/gate.py)
MYMAP_TICK, MYMAP_FLAGS = gated(ids.MYMAP_REFRESH)


@dataclass
class MyMap:
    """What the grid worker's map shows (GeoJSON collections and texts), for one principal."""

    targets: dict[str, Any]
    route: dict[str, Any]
    me: dict[str, Any]
    selected: str | None
    choices: list[tuple[str, str]] = field(default_factory=list)  # (task id, label) of the tasks with a target
    metres: float | None = None
    bounds: list[list[float]] | None = None


def area(s: Stores, principal: Principal) -> dict[str, dict[str, Any]]:
    """The principal's grid (or community) boundary, its buildings and the community's paths, as the
    map draws them."""
    community = principal.community
    empty = queries.collection([])
    if community is None:
        return {"grid": empty, "buildings": empty, "paths": empty}
    scope = principal.scope
    with s.sessions() as session:
        if queries.community(session, scope, community) is None:
            return {"grid": empty, "buildings": empty, "paths": empty}
        grids = queries.grid_layer(session, scope, community)
        if principal.grid:
            grids["features"] = [f for f in grids["features"] if f["properties"]["id"] == principal.grid]
        buildings = queries.building_layer(session, scope, community)
        if principal.grid:
            buildings["features"] = [f for f in buildings["features"] if f["properties"]["grid"] == principal.grid]
        for f in buildings["features"]:  # the outline and the name; the counts stay on the police's map
            p = f["properties"]
            f["properties"] = {k: p[k] for k in ("id", "name", "name_en", "kind", "category")}
        paths = queries.path_layer(session, community)
    return {
        name: for_display(s.settings, layer)
        for name, layer in (("grid", grids), ("buildings", buildings), ("paths", paths))
    }


def choose(tasks: list[Task], wanted: Any) -> Task | None:
    """The task the map shows: the one asked for when it is among the principal's own tasks, else
    the first being worked on, else the first offered."""
    placed = [task for task in tasks if task.lat is not None and task.lon is not None]
    asked = next((task for task in placed if isinstance(wanted, str) and task.id == wanted), None)
    return asked or next((task for task in placed if task.status in BUSY), None) or next(iter(placed), None)


def point(lat: float, lon: float, **properties: Any) -> dict[str, Any]:
    """A GeoJSON point feature."""
    return queries.feature({"type": "Point", "coordinates": [lon, lat]}, **properties)


def my_map(s: Stores, loop: Loop, principal: Principal, lang: str, wanted: Any = None) -> MyMap:
    """The principal's targets, the walk from where they are to the chosen one, and their position, as
    the map draws them."""
    tasks = [task for task in loop.my_tasks(principal) if task.community_id == principal.community]
    chosen = choose(tasks, wanted)
    with s.sessions() as session:
        places = task_places(session, principal, tasks, lang)
    choices: list[tuple[str, str]] = []
    targets = []
    for task in tasks:
        if task.lat is None or task.lon is None:
            continue
        what = t(f"alert.type.{task.title}", lang) if task.title else t(f"task.{task.kind}", lang)
        label = f"{what} · {places[task.id]}" if places.get(task.id) else what
        choices.append((task.id, label))
        targets.append(point(task.lat, task.lon, id=task.id, label=label, selected=task is chosen))
    me = None
    if principal.guard and principal.community:
        found = live.guard_positions(s, principal.community, [principal.guard], trail=False)
        me = found[0] if found else None
    mine = [point(me.lat, me.lon, label=t("mymap.me", lang))] if me else []
    route, metres, bounds = queries.collection([]), None, None
    if chosen is not None and chosen.lat is not None and chosen.lon is not None:
        target = (chosen.lat, chosen.lon)
        points = [target]
        if me is not None and principal.community:
            walk = loop.network(principal.community).route((me.lat, me.lon), target)
            route = queries.collection([queries.feature(walk.geojson(), metres=round(walk.metres))])
            metres, points = walk.metres, walk.points
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        bounds = [[min(lats), min(lons)], [max(lats), max(lons)]]
    return MyMap(
        targets=for_display(s.settings, queries.collection(targets)),
        route=for_display(s.settings, route),
        me=for_display(s.settings, queries.collection(mine)),
        selected=chosen.id if chosen else None,
        choices=choices,
        metres=metres,
        bounds=latlng_for_display(s.settings, bounds) if bounds else None,
    )


def lang_of(state: Any) -> str:
    """The page's language from the map's Store."""
    return "en" if as_dict(state).get("lang") == "en" else "zh"


@page_callback(
    "view.tasks",
    Output(ids.MYMAP_GRID, "data"),
    Output(ids.MYMAP_BUILDINGS, "data"),
    Output(ids.MYMAP_PATHS, "data"),
    Input(ids.MYMAP, "id"),
)
def my_area(_loaded: Any) -> tuple[Any, Any, Any]:
    """The grid, its buildings and the paths, once when the page opens."""
    layers = area(stores(), current_principal())
    return layers["grid"], layers["buildings"], layers["paths"]


@page_callback(
    "view.tasks",
    Output(ids.MYMAP_TARGETS, "data"),
    Output(ids.MYMAP_ROUTE, "data"),
    Output(ids.MYMAP_ME, "data"),
    Output(ids.MYMAP_INFO, "children"),
    Output(ids.MYMAP_PICK, "children"),
    Output(ids.MYMAP, "viewport"),
    MYMAP_TICK,
    Input(ids.MYMAP_SELECTED, "data"),
    **MYMAP_FLAGS[0],
)
def my_targets(_tick: Any, selected: Any) -> tuple[Any, ...]:
    """My tasks' targets, the walk to the chosen one and my position (refreshed)."""
    principal = current_principal()
    if not can(principal, "view.tasks"):
        raise PreventUpdate
    lang = lang_of(selected)
    view = my_map(stores(), services().loop, principal, lang, as_dict(selected).get("task"))
    if view.selected is None:
        info = t("mymap.no_target", lang)
    elif view.metres is None:
        info = t("mymap.no_position", lang)
    else:
        minutes = view.metres / stores().settings.walking_speed_m_s / 60  # the dispatch ranking's speed
        info = t("mymap.walk", lang, d=round(view.metres), m=max(1, round(minutes)))
    pick = [
        html.Button(
            label,
            id={"type": "mymap-task", "task": tid},
            className="st-mymap-choice" + (" st-mymap-chosen" if tid == view.selected else ""),
            n_clicks=0,
        )
        for tid, label in view.choices
    ]
    # the walk in view when the page opens and when a task is tapped; a refresh leaves the view alone
    fit = ctx.triggered_id in (None, ids.MYMAP_SELECTED) and view.bounds is not None
    room = {
        "paddingTopLeft": [30, 60],
        "paddingBottomRight": [30, 30],
        "maxZoom": 19,
    }  # the target's label sits above it
    viewport = {"bounds": view.bounds, "options": room} if fit else no_update
    return view.targets, view.route, view.me, info, pick, viewport


@page_callback(
    "view.tasks",
    Output(ids.MYMAP_SELECTED, "data"),
    Input({"type": "mymap-task", "task": ALL}, "n_clicks"),
    State(ids.MYMAP_SELECTED, "data"),
    prevent_initial_call=True,
)
def pick_task(clicks: list[Any], selected: Any) -> Any:
    """Show the walk to the task the user tapped."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(as_list(clicks)):
        raise PreventUpdate
    return {**as_dict(selected), "task": str(trigger.get("task", ""))}
