"""Map layers as GeoJSON, scoped to the caller, for dash-leaflet's ``url=`` loading."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from analytics.rules.battery import battery_state
from api.access import require
from api.context import clock, stores
from auth.principal import current_principal
from core.timefmt import local_text
from geodata.gcj02 import for_display
from registry import queries
from registry.coverage import coverage_layer
from store import live

bp = Blueprint("map", __name__, url_prefix="/api/v1/map")

LAYERS = ("boundary", "grids", "buildings", "paths", "devices", "coverage")


def with_batteries(devices: dict[str, Any], readings: dict[str, tuple[float, int]], threshold: float) -> None:
    """Each device's last reported battery on its feature (``battery``, ``battery_at`` in Beijing time,
    ``battery_low`` at or below the threshold of device.battery_low), for its popup and mark."""
    for f in devices["features"]:
        reading = readings.get(f["properties"]["id"])
        if reading is not None:
            level, ts = reading
            f["properties"].update(
                battery=round(level),
                battery_at=local_text(ts, "%m-%d %H:%M"),
                battery_low=battery_state(level, threshold) == "low",
            )


@bp.get("/<community>/<layer>.geojson")
@require("read.registry")
def layer(community: str, layer: str) -> Response:
    """One layer of a community's map (404 when unknown or outside the caller's scope)."""
    if layer not in LAYERS:
        abort(404)
    principal = current_principal()
    s = stores()
    scope = principal.scope
    with s.sessions() as session:
        found = queries.community(session, scope, community)
        if found is None:
            abort(404)
        if layer == "boundary":
            data = queries.boundary_layer(found)
        elif layer == "grids":
            data = queries.grid_layer(session, scope, community)
        elif layer == "buildings":
            data = queries.building_layer(session, scope, community)
        elif layer == "paths":
            data = queries.path_layer(session, community)
        elif layer == "coverage":
            data = coverage_layer(session, scope, community)
        else:
            group = request.args.get("group")
            data = queries.device_layer(
                session,
                scope,
                community,
                group if group in ("household", "frontend") else None,
                now_ms=clock().now_ms(),
            )
            with_batteries(data, live.batteries(s, community), s.settings.battery_low_percent)
    response = jsonify(for_display(s.settings, data))
    # the survey layers change with an import; the devices carry live marks (maintenance, batteries):
    # a page opened just after a device was put in maintenance must not draw it from the browser's cache
    live_marks = layer not in ("boundary", "grids", "buildings", "paths", "coverage")
    response.headers["Cache-Control"] = "private, no-cache" if live_marks else "private, max-age=60"
    return response
