"""The requests the live pages' refresh callbacks receive, as the browser sends them: their
outputs are declared here once, for the callbacks (callbacks/wall.py, callbacks/city.py) and for
the tests and benchmarks that post a tick. Imports no page (safe before the app exists)."""

from __future__ import annotations

from typing import Any

from callbacks.util import dash_request, prop
from layouts import ids

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
        [prop(ids.REFRESH, "n_intervals", 1), prop(ids.WALL_VIEW, "value", view)],
        [prop(ids.LIVE_STATE, "data", state), prop(ids.VIEWPORT, "data", viewport)],
        f"{ids.REFRESH}.n_intervals",
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
        [prop(ids.CITY_REFRESH, "n_intervals", 1)],
        [prop(ids.CITY_STATE, "data", state)],
        f"{ids.CITY_REFRESH}.n_intervals",
    )
