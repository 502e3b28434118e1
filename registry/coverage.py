"""Cameras' fields of view (摄像头覆盖): a sector per camera from the registry, for the map's
coverage layer, and the check of the keys a device import may give.

A camera's ``Device.config`` may hold ``heading`` (degrees clockwise from north, where it looks),
``fov`` (the angle it sees, degrees) and ``range_m`` (how far it sees usefully, metres). What is
missing comes from the defaults of its type; a camera with no heading that stands outside its
building's footprint looks at the building (the thrown-object cameras look up at a façade, the
cameras around a building watch it), any other looks north.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shapely.geometry import Point, shape
from shapely.ops import nearest_points
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import Building, Device
from registry.queries import Scope, collection, feature

M_PER_DEG = 111_320.0
ARC_STEP_DEG = 10.0  # one vertex of the arc per this many degrees


@dataclass(frozen=True)
class View:
    """Where a camera looks (degrees from north), how wide (degrees) and how far (metres)."""

    heading: float
    fov: float
    range_m: float


# per type: (field of view, range) when the registry gives none
DEFAULTS: dict[str, tuple[float, float]] = {
    "camera": (90.0, 30.0),
    "throw_camera": (120.0, 30.0),  # a wide lens looking up a façade from 10–20 m
    "face_gate": (60.0, 5.0),  # a face is recognised within a few metres of the gate
}
COVERAGE_TYPES = tuple(DEFAULTS)
LIMITS = {"heading": (0.0, 360.0), "fov": (1.0, 360.0), "range_m": (1.0, 500.0)}


def config_problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, reason) of each field-of-view key of a device's config that is not a number in range."""
    problems = []
    for key, (low, high) in LIMITS.items():
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append((key, f"must be a number from {low:g} to {high:g}"))
        elif not low <= value <= high:
            problems.append((key, f"must be from {low:g} to {high:g} (was {value:g})"))
    return problems


def bearing(lat: float, lon: float, to_lat: float, to_lon: float) -> float:
    """Degrees clockwise from north from one position to another (a local, flat approximation)."""
    north = to_lat - lat
    east = (to_lon - lon) * math.cos(math.radians(lat))
    return math.degrees(math.atan2(east, north)) % 360


def view_of(dtype: str, config: Mapping[str, Any], lat: float, lon: float, footprint: Any | None) -> View:
    """The camera's field of view: its config's, else its type's defaults, facing its building."""
    fov, range_m = DEFAULTS.get(dtype, DEFAULTS["camera"])
    heading = _number(config.get("heading"), -1.0)
    if heading < 0:
        heading = 0.0
        here = Point(lon, lat)
        if footprint is not None and not footprint.is_empty and not footprint.contains(here):
            target = nearest_points(footprint, here)[0]  # the nearest point of its outline
            heading = bearing(lat, lon, target.y, target.x)
    return View(
        heading=float(heading) % 360,
        fov=_number(config.get("fov"), fov),
        range_m=_number(config.get("range_m"), range_m),
    )


def facing(lat: float, lon: float, footprint: Any) -> View:
    """The view of a camera outside a building that takes in the whole of its nearest façade: looking
    at the façade's nearest point, as wide as the building seen from there, as far as the façade's
    corners (how the demo places its thrown-object cameras)."""
    here = Point(lon, lat)
    nearest = nearest_points(footprint, here)[0]
    heading = bearing(lat, lon, nearest.y, nearest.x)
    corners = list(footprint.convex_hull.exterior.coords)[:-1]
    turns = [((bearing(lat, lon, y, x) - heading + 180) % 360) - 180 for x, y in corners]
    cos_lat = math.cos(math.radians(lat))
    distances = sorted(math.hypot((y - lat) * M_PER_DEG, (x - lon) * M_PER_DEG * cos_lat) for x, y in corners)
    fov = min(170.0, 2 * max(abs(a) for a in turns) + 10)
    return View(heading=round(heading, 1), fov=round(fov), range_m=round(distances[min(1, len(distances) - 1)] + 3))


def _number(value: Any, default: float) -> float:
    """A config number, or the default when it is missing or not a number."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def sector(lat: float, lon: float, view: View) -> dict[str, Any]:
    """The field of view as a GeoJSON polygon (a full circle for 360°)."""
    steps = max(2, math.ceil(view.fov / ARC_STEP_DEG))
    start = view.heading - view.fov / 2
    cos_lat = math.cos(math.radians(lat))
    arc = []
    for i in range(steps + 1):
        angle = math.radians(start + view.fov * i / steps)
        north, east = view.range_m * math.cos(angle), view.range_m * math.sin(angle)
        arc.append([round(lon + east / (M_PER_DEG * cos_lat), 7), round(lat + north / M_PER_DEG, 7)])
    ring = [*arc, arc[0]] if view.fov >= 360 else [[lon, lat], *arc, [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def coverage_layer(session: Session, scope: Scope, community_id: str) -> dict[str, Any]:
    """Every camera's field of view as a sector (scoped like the devices layer; no personal data)."""
    outlines = {
        bid: shape(json.loads(geometry))
        for bid, geometry in session.execute(
            select(Building.id, Building.footprint).where(Building.community_id == community_id)
        )
    }
    query = (
        select(
            Device.id,
            Device.type,
            Device.name,
            Device.lat,
            Device.lon,
            Device.grid_id,
            Device.building_id,
            Device.config,
        )
        .where(Device.community_id == community_id, Device.type.in_(COVERAGE_TYPES))
        .order_by(Device.id)
    )
    features = []
    for did, dtype, name, lat, lon, grid, building, config in session.execute(query):
        if not scope.allows_grid(grid):
            continue
        view = view_of(dtype, config or {}, lat, lon, outlines.get(building) if building else None)
        features.append(
            feature(
                sector(lat, lon, view),
                id=did,
                type=dtype,
                name=name,
                heading=round(view.heading, 1),
                fov=view.fov,
                range_m=view.range_m,
            )
        )
    return collection(features)
