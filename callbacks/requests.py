"""The requests the live pages' refresh callbacks receive, as the browser sends them: their
outputs are declared here once, for the callbacks (callbacks/wall.py, callbacks/city.py) and for
the tests and benchmarks that post a tick. Imports no page (safe before the app exists)."""

from __future__ import annotations

from typing import Any

from callbacks.util import dash_request, prop
from layouts import ids
from layouts.gate import tick_id

TICK = {"n": 1, "at": 0}  # a gated tick as callbacks/gate.py writes it (the refresh reads none of it)

WALL_REFRESH_OUTPUTS = (
    (ids.KPIS, "children"),
    (ids.ALERT_FEED, "children"),
    (ids.MAP_ALERTS, "data"),
    (ids.MAP_GUARDS, "data"),
    (ids.MAP_TRAILS, "data"),
    (ids.MAP_DEVICES, "hideout"),
    (ids.MAP_HOUSEHOLD_DEVICES, "hideout"),
    (ids.CHART_ALERT_TYPES, "figure"),
    (ids.CHART_RESPONSE, "figure"),
    (ids.ALERT_STATE, "data"),
    (ids.LIVE_STATE, "data"),
    (ids.SCENE, "figure"),
)


def wall_refresh_request(state: dict[str, Any], viewport: int = 1, view: str = "2d") -> dict[str, Any]:
    """The request of one wall tick as the browser sends it (tests and benchmarks post it); ``view``:
    the 2D/3D toggle's value."""
    return dash_request(
        WALL_REFRESH_OUTPUTS,
        [prop(tick_id(ids.REFRESH), "data", TICK), prop(ids.WALL_VIEW, "value", view)],
        [prop(ids.LIVE_STATE, "data", state), prop(ids.VIEWPORT, "data", viewport)],
        f"{tick_id(ids.REFRESH)}.data",
    )


CITY_REFRESH_OUTPUTS = (
    (ids.CITY_POINTS, "data"),
    (ids.CITY_KPIS, "children"),
    (ids.CITY_CHART_DISTRICTS, "figure"),
    (ids.CITY_CHART_TOP, "figure"),
    (ids.CITY_CHART_TYPES, "figure"),
    (ids.CITY_STATE, "data"),
)


def city_refresh_request(state: dict[str, Any]) -> dict[str, Any]:
    """The request of one city-view tick as the browser sends it (tests and benchmarks post it)."""
    return dash_request(
        CITY_REFRESH_OUTPUTS,
        [prop(tick_id(ids.CITY_REFRESH), "data", TICK)],
        [prop(ids.CITY_STATE, "data", state)],
        f"{tick_id(ids.CITY_REFRESH)}.data",
    )
