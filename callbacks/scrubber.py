"""Callbacks of the time scrubber (回放, issue #19) on the wall: pick T, play, back to live; while not
live, the map's guards, trails, alerts, devices' offline marks and the alert feed show the moment T
(memory/state.py), the live polling is held, and a banner says "回放 <time>". Back to live restarts
the polling with a full refresh.

The community and the principal come from the server session (the Store only says which moment the
browser wants); the state is scoped and masked like the live wall."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from api.context import clock, stores
from auth.callbacks import page_callback
from auth.principal import Principal, current_principal
from core.errors import InvalidInput
from core.i18n import t
from core.timefmt import local_text, parse_rfc3339
from layouts import ids
from layouts.map import DEVICE_COLORS
from layouts.scrubber import (
    SCRUB_BANNER,
    SCRUB_GO,
    SCRUB_LIVE,
    SCRUB_MSG,
    SCRUB_OPEN,
    SCRUB_PANEL,
    SCRUB_PLAY,
    SCRUB_SLIDER,
    SCRUB_SPEED,
    SCRUB_STATE,
    SCRUB_TICK,
    SCRUB_TIME,
    next_state,
    whole,
)
from layouts.wall import feed_cards
from layouts.wall_data import alert_layer, building_names, feed_item, guard_layer, guard_roster, low_batteries
from memory.state import check_time, state_at, trails_at
from registry import queries
from store.live import GuardPosition

MINUTE = 60_000


@page_callback(
    "view.wall",
    Output(SCRUB_STATE, "data"),
    Output(SCRUB_PANEL, "className"),
    Output(SCRUB_TICK, "disabled"),
    Output(SCRUB_PLAY, "children"),
    Output(SCRUB_SLIDER, "value"),
    Output(SCRUB_MSG, "children"),
    Input(SCRUB_OPEN, "n_clicks"),
    Input(SCRUB_SLIDER, "value"),
    Input(SCRUB_GO, "n_clicks"),
    Input(SCRUB_TIME, "value"),
    Input(SCRUB_PLAY, "n_clicks"),
    Input(SCRUB_SPEED, "value"),
    Input(SCRUB_TICK, "n_intervals"),
    Input(SCRUB_LIVE, "n_clicks"),
    State(SCRUB_STATE, "data"),
    prevent_initial_call=True,
)
def control(
    _open: Any,
    slider: Any,
    _go: Any,
    typed: Any,
    _play: Any,
    speed: Any,
    _tick: Any,
    _live: Any,
    state: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """One action on the scrubber."""
    if not isinstance(state, dict):
        raise PreventUpdate
    lang = "en" if state.get("lang") == "en" else "zh"
    now = clock().now_ms()
    try:
        new = next_state(state, ctx.triggered_id, {"slider": slider, "time": typed, "speed": speed}, now)
        if new.get("at") is not None:
            check_time(stores(), int(new["at"]), now)
    except InvalidInput as err:
        return no_update, no_update, no_update, no_update, no_update, err.text(lang)
    at = new.get("at")
    position = max(-10_080, min(0, round((at - now) / MINUTE))) if at is not None else no_update
    return (
        new,
        "st-scrub-panel" + ("" if new.get("open") else " st-hidden"),
        not (new.get("playing") and at is not None),
        t("scrubber.pause" if new.get("playing") else "scrubber.play", lang),
        position if ctx.triggered_id != SCRUB_SLIDER else no_update,
        "",
    )


def replay_layers(principal: Principal, community: str, at: int, lang: str) -> dict[str, Any]:
    """The wall's map layers and feed as they were at ``at``."""
    s = stores()
    with s.sessions() as session:
        found = queries.community(session, principal.scope, community)
        if found is None:
            raise PreventUpdate
        center = (found.center_lat, found.center_lon)
        home_types = queries.HOUSEHOLD_DEVICE_TYPES
    state = state_at(s, principal, community, at, now_ms=clock().now_ms())
    trails = trails_at(s, principal, community, at)
    positions = {  # trails newest first, as the live trail lists hold them
        g["id"]: GuardPosition(
            g["id"],
            g["lat"],
            g["lon"],
            parse_rfc3339(g["ts"]),
            [(p[0], p[1]) for p in reversed(trails.get(g["id"], []))],
        )
        for g in state["guards"]
    }
    roster = guard_roster(s, principal, community, lang)
    guards, lines = guard_layer(s, roster, community, center, at, positions)
    names = building_names(s, community, lang)
    items = [feed_item(a, names, lang) for a in state["alerts"]]
    offline_front = {d["id"]: 1 for d in state["devices"] if not d["online"] and d["type"] not in home_types}
    offline_home = {d["id"]: 1 for d in state["devices"] if not d["online"] and d["type"] in home_types}
    readings: dict[str, tuple[float, int | None]] = {
        d["id"]: (float(d["state"]["battery"]), None)
        for d in state["devices"]
        if isinstance(d["state"].get("battery"), int | float)
    }
    low = low_batteries(readings, s.settings.battery_low_percent)
    home_ids = {d["id"] for d in state["devices"] if d["type"] in home_types}
    return {
        "guards": guards,
        "trails": lines,
        "alerts": alert_layer(items, s.settings),
        "feed": feed_cards(items, lang),
        "front": {
            "offline": offline_front,
            "low_battery": {d: v for d, v in low.items() if d not in home_ids},
            "lang": lang,
            "colors": DEVICE_COLORS,
            "visited": {},
        },
        "home": {
            "offline": offline_home,
            "low_battery": {d: v for d, v in low.items() if d in home_ids},
            "lang": lang,
            "colors": DEVICE_COLORS,
        },
        "count": len(items),
    }


@page_callback(
    "view.wall",
    Output(ids.MAP_GUARDS, "data", allow_duplicate=True),
    Output(ids.MAP_TRAILS, "data", allow_duplicate=True),
    Output(ids.MAP_ALERTS, "data", allow_duplicate=True),
    Output(ids.ALERT_FEED, "children", allow_duplicate=True),
    Output(ids.MAP_DEVICES, "hideout", allow_duplicate=True),
    Output(ids.MAP_HOUSEHOLD_DEVICES, "hideout", allow_duplicate=True),
    Output(ids.REFRESH, "disabled"),
    Output(ids.LIVE_STATE, "data", allow_duplicate=True),
    Output(SCRUB_BANNER, "children"),
    Output(SCRUB_BANNER, "className"),
    Input(SCRUB_STATE, "data"),
    State(ids.LIVE_STATE, "data"),
    prevent_initial_call=True,
)
def show(state: dict[str, Any] | None, live_state: dict[str, Any] | None) -> tuple[Any, ...]:
    """Draw the moment the scrubber holds, or hand the map back to the live refresh."""
    if not isinstance(state, dict) or not isinstance(live_state, dict):
        raise PreventUpdate
    principal = current_principal()
    community = str(live_state.get("community", ""))
    lang = "en" if live_state.get("lang") == "en" else "zh"
    at = whole(state.get("at"))
    if at is None:  # live: the next tick of the wall redraws everything
        reset = {**live_state, "since": 0, "ver": -1, "full_at": 0}
        keep = (no_update,) * 6
        return (*keep, False, reset, "", "st-replay-banner st-hidden")
    try:
        layers = replay_layers(principal, community, at, lang)
    except InvalidInput as err:  # a moment the control would not have let through
        raise PreventUpdate from err
    banner = [
        t("scrubber.banner", lang, when=local_text(at, "%Y-%m-%d %H:%M")),
        " · ",
        t("scrubber.alerts", lang, n=layers["count"]),
    ]
    return (
        layers["guards"],
        layers["trails"],
        layers["alerts"],
        layers["feed"],
        layers["front"],
        layers["home"],
        True,
        no_update,
        banner,
        "st-replay-banner",
    )
