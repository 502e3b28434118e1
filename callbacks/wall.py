"""Callbacks of the wall screen: the live refresh (deltas only), fly-to, building drill-down.

The community and the scope come from the server session; the browser's Store only says what
it already has (a version and a time), never what it may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dash import ALL, Input, Output, Patch, State, clientside_callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from alerts.live import AlertStore
from api.context import clock, services, stores
from auth.callbacks import page_callback
from auth.masking import NAMED_ROLES
from auth.policy import can
from auth.principal import current_principal
from callbacks.gate import gated
from callbacks.requests import WALL_REFRESH_OUTPUTS
from callbacks.util import time_ms
from core.i18n import t
from core.timefmt import parse_rfc3339
from geodata.gcj02 import latlng_for_display, place_for_display
from geodata.solid import Projection
from layouts import ids
from layouts.drill import building_detail, load_building
from layouts.drill3d import drill_figure
from layouts.map import DEVICE_COLORS
from layouts.scene3d import (
    guard_xy,
    live_devices,
    patch_alerts,
    patch_devices,
    patch_guards,
    projection_of,
    scene_figure,
    scene_key,
    static_scene,
)
from layouts.wall import feed_cards, kpi_tiles
from layouts.wall_data import (
    GUARD_ON_DUTY_MS,
    alert_layer,
    alerts_by_type_24h,
    feed_items,
    guard_layer,
    guard_roster,
    key_figures,
    low_batteries,
    response_minutes,
    visible_alerts,
)
from registry import queries
from store import live

FULL_EVERY_MS = 30_000  # figures and charts are recomputed at most this often without a change
STAGE_COLORS = ("#38e1ff", "#2f7bff", "#ffb020", "#35d07f")
# the wall's tick reaches the refresh only once the previous refresh has answered (callbacks/gate.py)
WALL_TICK, (WALL_BUSY,) = gated(ids.REFRESH)

# The clock ticks in the browser: no server round trip per second.
clientside_callback(
    "function(n){return window.sandtable.clockText();}",
    Output(ids.CLOCK, "children"),
    Input(ids.CLOCK_TICK, "n_intervals"),
)

# Switching community reloads the page for that community (keeping kiosk mode and language). The
# switcher reports its first value when the page mounts: that is the community already shown (at /,
# the default one), and navigating to it again would cancel whatever page the user opens next.
clientside_callback(
    """function(value, shown){
        if(!value || value === shown){return window.dash_clientside.no_update;}
        var params = new URLSearchParams(window.location.search);
        params.set("community", value);
        return window.location.pathname + "?" + params.toString();
    }""",
    Output(ids.URL, "href"),
    Input(ids.COMMUNITY_SELECT, "value"),
    State(ids.COMMUNITY_SHOWN, "data"),
    prevent_initial_call=True,
)

# A 4K wall draws the charts' text twice as large (plotly sizes fonts in pixels, not rem).
clientside_callback(
    """function(_n, current){
        var scale = window.innerWidth >= 2500 ? 2 : 1;
        return scale === current ? window.dash_clientside.no_update : scale;
    }""",
    Output(ids.VIEWPORT, "data"),
    Input(ids.CLOCK_TICK, "n_intervals"),
    State(ids.VIEWPORT, "data"),
)

# A new serious alert: fly to it (at most one flight at a time; back to the overview later).
clientside_callback(
    "function(alerts){return window.sandtable.flyToNewAlert(alerts);}",
    Output(ids.MAP, "viewport"),
    Input(ids.ALERT_STATE, "data"),
    prevent_initial_call=True,
)


# The 2D/3D toggle shows one view or the other (the refresh fills the one shown).
clientside_callback(
    """function(view){ return "st-map-wrap" + (view === "3d" ? " st-view-3d" : ""); }""",
    Output(ids.MAP_WRAP, "className"),
    Input(ids.WALL_VIEW, "value"),
)

# A new serious alert: the 3D camera flies to it (assets/js/scene3d.js; it also turns the kiosk's model).
clientside_callback(
    "function(alerts){return window.sandtable.sceneAlerts(alerts);}",
    Output(ids.SCENE_FLY, "data"),
    Input(ids.ALERT_STATE, "data"),
    prevent_initial_call=True,
)


def is_household_device(s: Any, community: str, device: str) -> bool:
    """True for an in-home device (drawn on the in-home layer)."""
    info = ingest_directory(s).device(community, device)
    return info is not None and info.type in queries.HOUSEHOLD_DEVICE_TYPES


def ingest_directory(s: Any) -> Any:
    """The process's cached registry facts (shared with ingest)."""
    return services().directory


def chart_alert_types(counts: dict[str, int], lang: str, scale: int = 1) -> dict[str, Any]:
    """Horizontal bars: alerts by type in the last 24 hours."""
    items = sorted(counts.items(), key=lambda kv: kv[1])
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [v for _, v in items],
                "y": [t(f"alert.type.{k}", lang) for k, _ in items],
                "marker": {"color": "#38e1ff"},
                "text": [str(v) for _, v in items],
                "textposition": "outside",
                "cliponaxis": False,
            }
        ],
        "layout": chart_layout(t("wall.no_data", lang) if not items else None, left=150, scale=scale),
    }


def chart_response(stages: dict[str, list[float]], lang: str, scale: int = 1) -> dict[str, Any]:
    """Box plots: minutes from detection to each handling stage."""
    data = [
        {
            "type": "box",
            "name": t(f"stage.{stage}", lang),
            "y": values,
            "boxpoints": False,
            "marker": {"color": color},
            "line": {"color": color},
        }
        for (stage, values), color in zip(stages.items(), ("#38e1ff", "#2f7bff", "#ffb020", "#35d07f"), strict=False)
        if values
    ]
    return {"data": data, "layout": chart_layout(t("wall.no_data", lang) if not data else None, left=40, scale=scale)}


def chart_layout(empty: str | None, *, left: int, scale: int = 1) -> dict[str, Any]:
    """The wall's chart look; ``scale`` 2 on a 4K wall (fonts and margins in pixels)."""
    layout: dict[str, Any] = {
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": "#e6edf7", "size": 12 * scale},
        "margin": {"l": left * scale, "r": 30 * scale, "t": 8 * scale, "b": 24 * scale},
        "showlegend": False,
        "xaxis": {"gridcolor": "#1d3557", "zeroline": False},
        "yaxis": {"gridcolor": "#1d3557", "zeroline": False},
    }
    if empty:
        layout["annotations"] = [{"text": empty, "showarrow": False, "font": {"color": "#8da2c0", "size": 14 * scale}}]
        layout["xaxis"] = {"visible": False}
        layout["yaxis"] = {"visible": False}
    return layout


@page_callback(
    "view.wall",
    *(Output(i, p) for i, p in WALL_REFRESH_OUTPUTS),
    WALL_TICK,
    Input(ids.WALL_VIEW, "value"),
    State(ids.LIVE_STATE, "data"),
    State(ids.VIEWPORT, "data"),
    **WALL_BUSY,
)
def refresh(_tick: Any, view_value: Any, state: dict[str, Any] | None, viewport: Any = 1) -> tuple[Any, ...]:
    """One tick of the wall: nothing when nothing changed, else only what changed, for the view
    shown (the 2D map's layers or the 3D scene; switching view draws the new one whole)."""
    principal = current_principal()
    if not can(principal, "view.wall") or not isinstance(state, dict):
        raise PreventUpdate
    community = str(state.get("community", ""))
    s = stores()
    with s.sessions() as session:
        found = queries.community(session, principal.scope, community)
        if found is None:
            raise PreventUpdate
        center = (found.center_lat, found.center_lon)
        projection = projection_of(found)
    lang = "en" if state.get("lang") == "en" else "zh"
    now = clock().now_ms()
    version = live.version(s, community)
    since = time_ms(state, "since")
    scale = 2 if viewport == 2 else 1
    view = "3d" if view_value == "3d" else "2d"
    # a full refresh also when the charts were drawn for another screen size (a 4K wall's first tick),
    # and when the view was switched (the view now shown was not kept up to date)
    full = (
        since == 0
        or now - time_ms(state, "full_at") > FULL_EVERY_MS
        or state.get("scale", 1) != scale
        or state.get("view", "2d") != view
    )
    if version == state.get("ver") and not full:
        raise PreventUpdate  # nothing changed: a 204, no bytes
    changes = live.changes_since(s, community, since) if since else {"device": [], "guard": [], "alert": []}
    roster = guard_roster(s, principal, community, lang)
    new_state = {
        **state,
        "ver": version,
        "since": now - 1000,
        "scale": scale,
        "view": view,
        "opened": time_ms(state, "opened") or now,  # the page's first refresh: alerts after it are new
    }  # a second of overlap: no change falls between

    feed: Any
    alerts_data: Any
    serious: Any
    kpis: Any
    types_fig: Any
    response_fig: Any
    # alerts: the feed and the map layer when an alert changed (or on a full refresh)
    items: list[dict[str, Any]] = []
    if full or changes["alert"]:
        items = feed_items(s, principal, community, lang)
        feed, alerts_data = feed_cards(items, lang), alert_layer(items, s.settings)
        serious = [  # fly-to targets: on the 2D map (as it draws them) and in the 3D scene (metres)
            {
                "id": i["id"],
                "severity": i["severity"],
                "status": i["status"],
                **place_for_display(s.settings, i["location"]),
                "scene": scene_point(projection, i["location"]),
                # detected since the page opened: a fly-to target even in the page's first alert list
                "new": parse_rfc3339(i["detected_at"]) >= new_state["opened"],
            }
            for i in items
            if i["open"] and i["severity"] in ("high", "critical") and i["location"] and not i.get("flapping")
        ]
    else:
        feed = alerts_data = serious = no_update

    # guards: the whole (small) layer on a full refresh, else patches of the ones that moved: the new
    # position, and the new point added to the trail (the oldest dropped)
    guards_data: Any = no_update
    trails_data: Any = no_update
    flat = view == "2d"
    if flat and full:
        guards_data, trails_data = guard_layer(s, roster, community, center, now)
    elif flat and changes["guard"]:
        index = {g["id"]: i for i, g in enumerate(roster)}
        moved = [g for g in changes["guard"] if g in index]
        guards_data, trails_data = Patch(), Patch()
        for p in live.guard_positions(s, community, moved, trail=False):
            i = index[p.guard]
            lat, lon = latlng_for_display(s.settings, [round(p.lat, 7), round(p.lon, 7)])
            guards_data["features"][i]["geometry"]["coordinates"] = [lon, lat]
            trails_data["features"][i]["geometry"]["coordinates"].append([lon, lat])
            del trails_data["features"][i]["geometry"]["coordinates"][0]

    # devices: offline ones are drawn grey; a patch of the changed ones, on the layer that holds them
    doors = {d.id for d in ingest_directory(s).facts(community).devices.values() if d.type == "door_sensor"}
    offline = live.offline_devices(s, community, now, doors)
    threshold = s.settings.battery_low_percent
    front: Any
    home: Any
    if flat and full:
        low = low_batteries(dict(live.batteries(s, community)), threshold)
        front = {
            "offline": {d: 1 for d in offline if not is_household_device(s, community, d)},
            "low_battery": {d: v for d, v in low.items() if not is_household_device(s, community, d)},
            "lang": lang,
            "colors": DEVICE_COLORS,
            # patrol coverage: minutes since each checkpoint's last check-in
            "visited": {cp: round((now - ts) / 60_000) for cp, ts in live.checkpoint_visits(s, community).items()},
        }
        home = {
            "offline": {d: 1 for d in offline if is_household_device(s, community, d)},
            "low_battery": {d: v for d, v in low.items() if is_household_device(s, community, d)},
            "lang": lang,
            "colors": DEVICE_COLORS,
        }
    elif flat and changes["device"]:
        front, home = Patch(), Patch()
        low = low_batteries(dict(live.batteries(s, community, changes["device"])), threshold)
        for device in changes["device"]:
            patch = home if is_household_device(s, community, device) else front
            if device in offline:
                patch["offline"][device] = 1
            else:
                del patch["offline"][device]
            if device in low:  # a new battery takes the mark away at its next heartbeat
                patch["low_battery"][device] = low[device]
            else:
                del patch["low_battery"][device]
    else:
        front = home = no_update

    if full:
        kpis = kpi_tiles(key_figures(s, principal, community, now), lang)
        types_fig = chart_alert_types(alerts_by_type_24h(s, principal, community, now), lang, scale)
        response_fig = chart_response(response_minutes(s, principal, community, now), lang, scale)
        new_state["full_at"] = now
    elif changes["alert"]:
        kpis = kpi_tiles(key_figures(s, principal, community, now), lang)
        types_fig = response_fig = no_update
    else:
        kpis = types_fig = response_fig = no_update
    scene: Any = no_update
    if view == "3d":
        # the 3D view shows: its scene is drawn or patched; the 2D map's live layers wait (a switch back
        # draws them whole)
        alerts_data = no_update
        scene = scene_update(
            SceneTick(community, lang, now, full, changes, items if (full or changes["alert"]) else None, scale),
            principal,
            state,
            new_state,
            offline,
            roster,
        )
    else:
        new_state["scene"] = None
    if since:
        live.forget_changes(s, community, now - 600_000)
    return (
        kpis,
        feed,
        alerts_data,
        guards_data,
        trails_data,
        front,
        home,
        types_fig,
        response_fig,
        serious,
        new_state,
        scene,
    )


def scene_point(projection: Projection, location: dict[str, Any]) -> dict[str, float] | None:
    """An alert's place in the 3D scene (metres from the community's centre, at roof height), or None."""
    if location.get("lat") is None or location.get("lon") is None:
        return None
    x, y = projection.xy(float(location["lon"]), float(location["lat"]))
    return {"x": round(x, 1), "y": round(y, 1), "z": 10.0}


@dataclass(frozen=True)
class SceneTick:
    """What one refresh of the 3D view works from."""

    community: str
    lang: str
    now: int
    full: bool
    changes: dict[str, list[str]]
    items: list[dict[str, Any]] | None  # the feed's items when an alert changed (or on a full refresh)
    scale: int


def scene_update(
    tick: SceneTick,
    principal: Any,
    state: dict[str, Any],
    new_state: dict[str, Any],
    offline: set[str],
    roster: list[dict[str, Any]],
) -> Any:
    """The 3D scene's update: the whole figure when it is not drawn yet (or its devices or guards are not
    the ones drawn), else a Patch of what changed: the devices' colours by index, every guard's position
    (they all move), the alert columns."""
    s = stores()
    facts = ingest_directory(s).facts(tick.community)
    devices = live_devices(facts.devices.values(), principal.scope)
    key = scene_key(devices, roster)
    new_state["scene"] = key
    community = tick.community
    if state.get("scene") != key or state.get("view") != "3d" or state.get("scale", 1) != tick.scale:
        with s.sessions() as session:
            found = queries.community(session, principal.scope, community)
            if found is None:
                return no_update
            static = static_scene(session, principal.scope, found, tick.lang, tick.scale)
        items = tick.items if tick.items is not None else feed_items(s, principal, community, tick.lang)
        positions = {p.guard: p for p in live.guard_positions(s, community, [g["id"] for g in roster], trail=False)}
        xy = guard_xy(roster, positions, static.projection, tick.now, GUARD_ON_DUTY_MS)
        return scene_figure(static, devices, offline, roster, xy, items, tick.lang, scale=tick.scale)
    with s.sessions() as session:
        found = queries.community(session, principal.scope, community)
        if found is None:
            return no_update
        projection = projection_of(found)
    patch = Patch()
    touched = False
    if tick.full or tick.changes["device"]:
        touched = patch_devices(patch, devices, None if tick.full else tick.changes["device"], offline) > 0
    if tick.full or tick.changes["guard"]:
        positions = {p.guard: p for p in live.guard_positions(s, community, [g["id"] for g in roster], trail=False)}
        patch_guards(patch, *guard_xy(roster, positions, projection, tick.now, GUARD_ON_DUTY_MS))
        touched = True
    if tick.items is not None:
        patch_alerts(patch, tick.items, projection)
        touched = True
    return patch if touched else no_update


@page_callback(
    "view.wall",
    Output(ids.DRILL, "children"),
    Output(ids.DRILL, "className"),
    Input(ids.MAP_BUILDINGS, "clickData"),
    Input(ids.SCENE, "clickData"),
    Input({"type": "drill-3d", "id": ALL}, "n_clicks"),
    Input({"type": "drill-close", "id": ALL}, "n_clicks"),
    State(ids.LIVE_STATE, "data"),
    State(ids.VIEWPORT, "data"),
    prevent_initial_call=True,
)
def building_drill(
    click: Any, scene_click: Any, _open_3d: Any, _close: Any, state: dict[str, Any] | None, viewport: Any = 1
) -> tuple[Any, str]:
    """Floors and households of the clicked building, masked per role: as a table (a click on the 2D
    map), or in 3D (a click on the 3D model, or the panel's 3D button)."""
    lang = "en" if isinstance(state, dict) and state.get("lang") == "en" else "zh"
    trigger = ctx.triggered_id
    if trigger == ids.MAP_BUILDINGS and isinstance(click, dict):
        building_id = str((click.get("properties") or {}).get("id", ""))
        content = building_detail(stores(), current_principal(), building_id, lang)
        if content is None:
            raise PreventUpdate
        return content, "st-drill"
    building_3d: str | None = None
    if trigger == ids.SCENE and isinstance(scene_click, dict):
        points = scene_click.get("points")
        first = points[0] if isinstance(points, list) and points and isinstance(points[0], dict) else {}
        picked = first.get("customdata")
        building_3d = picked if isinstance(picked, str) and picked else None
    elif isinstance(trigger, dict) and trigger.get("type") == "drill-3d" and ctx.triggered[0].get("value"):
        building_3d = str(trigger.get("id", ""))
    if building_3d is None:
        if trigger == ids.SCENE or (isinstance(trigger, dict) and trigger.get("type") == "drill-3d"):
            raise PreventUpdate  # a click on the ground, or a button just drawn
        return no_update, "st-drill st-hidden"
    content = building_in_3d(building_3d, lang, 2 if viewport == 2 else 1)
    if content is None:
        raise PreventUpdate
    return content, "st-drill st-drill-3d"


def building_in_3d(building_id: str, lang: str, scale: int) -> html.Div | None:
    """The 3D drill-down panel of a building, with the live state of its households (devices offline,
    open alerts the caller may see, a thrown object's window), or None outside the caller's scope."""
    s = stores()
    principal = current_principal()
    facts = load_building(s, principal, building_id, lang)
    if facts is None:
        return None
    directory = ingest_directory(s).facts(facts.community)
    doors = {d.id for d in directory.devices.values() if d.type == "door_sensor"}
    offline = live.offline_devices(s, facts.community, clock().now_ms(), doors)
    households = {h.id for h in facts.households}
    alerts = [
        a
        for a in visible_alerts(s, AlertStore(s.redis, s.keys).open_alerts(facts.community), principal)
        if (a.get("subject") or {}).get("building") == building_id
        or (a.get("subject") or {}).get("household") in households
    ]
    figure = drill_figure(
        principal,
        facts,
        lang,
        offline=offline,
        alerts=alerts,
        facades=directory.facades,
        landings=directory.landings,
        scale=scale,
    )
    return html.Div(
        className="st-drill-body",
        children=[
            html.Div(
                className="st-drill-head",
                children=[
                    html.Span(f"{t('model3d.drill.title', lang)} · {facts.title}"),
                    html.Button(
                        t("wall.drill.close", lang),
                        id={"type": "drill-close", "id": building_id},
                        className="st-drill-close",
                    ),
                ],
            ),
            html.Div(t("wall.drill.hidden", lang), className="st-drill-note")
            if principal.role not in NAMED_ROLES
            else None,
            dcc.Graph(
                id=ids.DRILL_GRAPH,
                figure=figure,
                responsive=True,
                className="st-drill-graph",
                config={"displayModeBar": False, "displaylogo": False},
            ),
        ],
    )
