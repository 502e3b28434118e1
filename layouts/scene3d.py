"""The 3D sand-table of a community (plotly ``Mesh3d``/``Scatter3d``): buildings extruded from their
footprints to floors × 3 m with a slab at every floor, coloured by category as on the 2D map, roads
and grid boundaries on the ground, guards standing at their live positions, open alerts as columns
of light in their severity's colour.

The figure is a plain dict. Its first traces are the live ones, at fixed indexes (``DEVICES``,
``GUARDS``, ``ALERT_TRACES``), so that a refresh patches them by index (``scene_patch``); every
static trace follows. Buildings are batched: one ``Mesh3d`` per category, one for all the slabs.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dash import Patch
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import t
from geodata.solid import (
    BuildingInput,
    Lines,
    Mesh,
    Projection,
    blocks,
    geometry_lines,
    ground,
    r1,
    scene_box,
)
from ingest.schema import DeviceInfo
from layouts.map import DEVICE_COLORS, LEGEND_CATEGORIES
from layouts.wall_data import GUARD_COLORS
from registry import queries
from registry.models import Community, Grid, PathSegment
from store.live import GuardPosition

CATEGORY_COLORS = dict(LEGEND_CATEGORIES)
SEVERITY_COLORS = {"critical": "#ff1f5a", "high": "#ff5a36", "medium": "#ffb020", "low": "#4fc3f7"}  # theme.css
ELDER_COLOR = "#ffb020"  # the 2D map's elder outline
OFFLINE_COLOR = "#4a5263"
BACKGROUND = "#070d18"

DEVICES = 0  # front-end devices (gates, cameras, …), grey when offline
GUARDS = 1  # guards: a marker on a pole (error_z) at their live position
ALERT_TRACES = {"critical": 2, "high": 3, "medium": 4, "low": 5}  # columns of light
LIVE_TRACES = 6

DEVICE_Z_M = 4.0  # cameras and gates on their poles
GUARD_POLE_M = 14.0  # exaggerated, as map pins are: a guard must be seen across a kilometre
ALERT_COLUMN_M = 90.0
BUILDING_LIGHT = {"ambient": 0.55, "diffuse": 0.8, "specular": 0.05, "roughness": 0.9}
SLAB_COLOR = "#d6e2f5"


@dataclass(frozen=True)
class FlatBuilding:
    """A building the model draws as a flat outline, and why."""

    id: str
    name: str
    reason: str  # geodata.solid NO_FLOORS / NOT_POLYGON / INVALID_POLYGON
    detail: str = ""


@dataclass
class SceneStatic:
    """The static part of a community's scene: its traces and what the live part needs."""

    projection: Projection
    traces: list[dict[str, Any]]
    half_width: float  # metres from the centre to the farthest drawn point (x and y)
    top: float  # the highest roof
    roofs: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # building → x, y, roof height
    flat: list[FlatBuilding] = field(default_factory=list)


def projection_of(community: Community) -> Projection:
    """The community's local metric projection (metres from its centre)."""
    return Projection(community.center_lat, community.center_lon)


def live_devices(devices: Iterable[DeviceInfo], scope: queries.Scope) -> list[DeviceInfo]:
    """The front-end devices the scene draws, in their fixed order (the trace's point indexes)."""
    return sorted(
        (
            d
            for d in devices
            if d.type not in queries.HOUSEHOLD_DEVICE_TYPES and d.type != "wearable" and scope.allows_grid(d.grid)
        ),
        key=lambda d: d.id,
    )


def scene_key(devices: Sequence[DeviceInfo], roster: Sequence[dict[str, Any]]) -> int:
    """A fingerprint of the live traces' point order: a patch by index is valid only for the same key."""
    text = "\n".join(d.id for d in devices) + "\n#\n" + "\n".join(g["id"] for g in roster)
    return zlib.crc32(text.encode())


def static_scene(
    session: Session, scope: queries.Scope, community: Community, lang: str, scale: int = 1
) -> SceneStatic:
    """Ground, boundary, grids, roads and buildings of the community."""
    projection = projection_of(community)
    traces: list[dict[str, Any]] = []
    boundary = json.loads(community.boundary)
    area = Mesh()
    ground(area, boundary, projection)
    traces.append(
        area.trace(color="#0b2a3d", opacity=1.0, hoverinfo="skip", flatshading=True, lighting={"ambient": 1.0})
    )
    edge = Lines()
    for line in geometry_lines(boundary, projection):
        edge.add(line, 0.3)
    traces.append(edge.trace(line={"color": "#38e1ff", "width": 4 * scale}, hoverinfo="skip"))
    for grid in session.scalars(select(Grid).where(Grid.community_id == community.id).order_by(Grid.id)):
        if not scope.allows_grid(grid.id):
            continue
        lines = Lines()
        for line in geometry_lines(json.loads(grid.polygon), projection):
            lines.add(line, 0.5)
        name = grid.name if lang == "zh" else (grid.name_en or grid.name)
        traces.append(
            lines.trace(line={"color": grid.color, "width": 3 * scale, "dash": "dash"}, hoverinfo="skip", name=name)
        )
    roads, paths = Lines(), Lines()
    for kind, geometry in session.execute(
        select(PathSegment.kind, PathSegment.geometry).where(PathSegment.community_id == community.id)
    ):
        target = roads if kind in ("road", "gate") else paths
        for line in geometry_lines(json.loads(geometry), projection):
            target.add(line, 0.2)
    traces.append(roads.trace(line={"color": "#5a6f99", "width": 7 * scale}, hoverinfo="skip"))
    traces.append(paths.trace(line={"color": "#34466a", "width": 3 * scale}, hoverinfo="skip"))

    found = queries.building_layer(session, scope, community.id)["features"]
    names = {f["properties"]["id"]: name_of(f["properties"], lang) for f in found}
    solid = blocks(
        [building_input(f, lang) for f in found],
        projection,
        CATEGORY_COLORS,
        lambda b, why: f"{names[b.id]} · {t('model3d.flat', lang)}（{t(f'model3d.flat.{why}', lang)}）",
    )
    for cat, _ in LEGEND_CATEGORIES:
        traces.append(
            solid.meshes[cat].trace(
                color=CATEGORY_COLORS[cat],
                opacity=1.0,
                flatshading=True,
                lighting=BUILDING_LIGHT,
                lightposition={"x": 1000, "y": 600, "z": 2000},
                hoverinfo="text",
                name=t(f"legend.{cat}", lang),
            )
        )
    traces.append(
        solid.slabs.trace(color=SLAB_COLOR, opacity=1.0, flatshading=True, lighting={"ambient": 0.8}, hoverinfo="skip")
    )
    traces.append(
        solid.elders.trace(
            line={"color": ELDER_COLOR, "width": 5 * scale}, hoverinfo="skip", name=t("legend.elder", lang)
        )
    )
    traces.append(
        solid.flat.trace(
            line={"color": "#e6edf7", "width": 4 * scale, "dash": "dot"}, hoverinfo="text", name=t("model3d.flat", lang)
        )
    )
    flat = [FlatBuilding(b, names[b], why, detail) for b, why, detail in solid.flat_found]
    reach = max([solid.reach, *(max(abs(x), abs(y)) for x, y, _ in solid.roofs.values())])
    return SceneStatic(projection, traces, reach * 1.08, solid.top, solid.roofs, flat)


def name_of(properties: dict[str, Any], lang: str) -> str:
    """A building's name in the page's language."""
    return str(properties["name"] if lang == "zh" else (properties.get("name_en") or properties["name"]))


def building_input(feature: dict[str, Any], lang: str) -> BuildingInput:
    """A feature of the registry's building layer as the model takes it."""
    p = feature["properties"]
    category = "public" if p["kind"] != "residential" else str(p["category"])
    return BuildingInput(
        id=str(p["id"]),
        geometry=feature["geometry"],
        floors=p.get("floors"),
        category=category,
        elder=bool(p.get("elder")),
        label=f"{name_of(p, lang)} · {t(f'legend.{category}', lang)}",
    )


def device_trace(
    devices: Sequence[DeviceInfo], offline: set[str], projection: Projection, lang: str, scale: int = 1
) -> dict[str, Any]:
    """Front-end devices as points on their poles, grey when offline."""
    xy = [projection.xy(d.lon, d.lat) for d in devices]
    return {
        "type": "scatter3d",
        "mode": "markers",
        "x": [r1(x) for x, _ in xy],
        "y": [r1(y) for _, y in xy],
        "z": [DEVICE_Z_M] * len(devices),
        "marker": {"size": 3 * scale, "color": [device_color(d, offline) for d in devices], "opacity": 0.95},
        "hovertext": [t(f"device.{d.type}", lang) for d in devices],
        "hoverinfo": "text",
    }


def device_color(device: DeviceInfo, offline: set[str]) -> str:
    """A device's colour: its type's, or grey when offline."""
    return OFFLINE_COLOR if device.id in offline else DEVICE_COLORS.get(device.type, "#e6edf7")


def guard_xy(
    roster: Sequence[dict[str, Any]],
    positions: dict[str, GuardPosition],
    projection: Projection,
    now: int,
    fresh_ms: int,
) -> tuple[list[float | None], list[float | None]]:
    """x and y of each guard of the roster (None for a guard not on the move: not drawn)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for g in roster:
        p = positions.get(g["id"])
        if p is None or now - p.ts >= fresh_ms:
            xs.append(None)
            ys.append(None)
            continue
        x, y = projection.xy(p.lon, p.lat)
        xs.append(r1(x))
        ys.append(r1(y))
    return xs, ys


def guard_trace(
    roster: Sequence[dict[str, Any]], xs: list[float | None], ys: list[float | None], scale: int = 1
) -> dict[str, Any]:
    """Guards as standing markers: a ball on a pole down to the ground (a one-sided error bar)."""
    return {
        "type": "scatter3d",
        "mode": "markers",
        "x": xs,
        "y": ys,
        "z": [GUARD_POLE_M] * len(roster),
        "marker": {
            "size": 7 * scale,
            "color": [GUARD_COLORS.get(g["kind"], "#ffffff") for g in roster],
            "line": {"color": "#ffffff", "width": 1},
        },
        "error_z": {
            "type": "constant",
            "symmetric": False,
            "value": 0,
            "valueminus": GUARD_POLE_M,
            "thickness": 3 * scale,
            "width": 0,
            "color": "#e6edf7",
        },
        "hovertext": [f"{g['kind_label']} {g['name']}".strip() for g in roster],
        "hoverinfo": "text",
    }


def alert_traces(items: Sequence[dict[str, Any]], projection: Projection, scale: int = 1) -> dict[str, dict[str, Any]]:
    """Open alerts as vertical columns of light, one trace per severity."""
    columns = {s: Lines() for s in ALERT_TRACES}
    texts: dict[str, list[str | None]] = {s: [] for s in ALERT_TRACES}
    for item in items:
        where = item.get("location") or {}
        if not item.get("open") or where.get("lat") is None or item["severity"] not in columns:
            continue
        x, y = projection.xy(float(where["lon"]), float(where["lat"]))
        columns[item["severity"]].add3d([(x, y, 0.0), (x, y, ALERT_COLUMN_M)])
        label = f"{item['label']} · {item['where']}".strip(" ·")
        texts[item["severity"]] += [label, label, None]
    return {
        s: columns[s].trace(
            line={"color": SEVERITY_COLORS[s], "width": (16 if s in ("critical", "high") else 10) * scale},
            opacity=0.75,
            hovertext=texts[s],
            hoverinfo="text",
        )
        for s in ALERT_TRACES
    }


def layout(static: SceneStatic, *, scale: int = 1) -> dict[str, Any]:
    """The scene's layout: no axes, metres to scale, seen from the south-east at 45°."""
    half = static.half_width
    height = max(static.top, ALERT_COLUMN_M) * 1.15
    return {
        "paper_bgcolor": BACKGROUND,
        "plot_bgcolor": BACKGROUND,
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "showlegend": False,
        "uirevision": "scene",  # the camera the user or the kiosk rotation set survives every refresh
        "hoverlabel": {"font": {"size": 13 * scale}},
        "scene": {
            **scene_box(half, height, eye=0.78, eye_z=0.6, centre_z=-0.1),
            "dragmode": "turntable",
            "bgcolor": BACKGROUND,
        },
    }


def scene_figure(
    static: SceneStatic,
    devices: Sequence[DeviceInfo],
    offline: set[str],
    roster: Sequence[dict[str, Any]],
    guards_xy: tuple[list[float | None], list[float | None]],
    items: Sequence[dict[str, Any]],
    lang: str,
    *,
    scale: int = 1,
) -> dict[str, Any]:
    """The whole figure: live traces first (fixed indexes), then the static ones."""
    alerts = alert_traces(items, static.projection, scale)
    data = [
        device_trace(devices, offline, static.projection, lang, scale),
        guard_trace(roster, *guards_xy, scale),
        *(alerts[s] for s in ALERT_TRACES),
        *static.traces,
    ]
    return {"data": data, "layout": layout(static, scale=scale)}


PATCH_OP_BYTES = 100  # about what one Patch operation (an index's new colour) costs on the wire
COLOR_BYTES = 10  # about what one colour costs in a whole array


def patch_devices(patch: Patch, devices: Sequence[DeviceInfo], changed: Sequence[str] | None, offline: set[str]) -> int:
    """Recolour the changed devices (``None``: all of them): one operation per device, or the whole
    colour array when that is smaller; how many devices were recoloured."""
    index = {d.id: i for i, d in enumerate(devices)}
    hits = [index[d] for d in (changed if changed is not None else ()) if d in index]
    if changed is None or len(hits) * PATCH_OP_BYTES > len(devices) * COLOR_BYTES:
        patch["data"][DEVICES]["marker"]["color"] = [device_color(d, offline) for d in devices]
        return len(devices)
    for i in hits:
        patch["data"][DEVICES]["marker"]["color"][i] = device_color(devices[i], offline)
    return len(hits)


def patch_guards(patch: Patch, xs: list[float | None], ys: list[float | None]) -> None:
    """Every guard's position at once (they all move: two short arrays beat one operation per guard)."""
    patch["data"][GUARDS]["x"] = xs
    patch["data"][GUARDS]["y"] = ys


def patch_alerts(patch: Patch, items: Sequence[dict[str, Any]], projection: Projection) -> None:
    """The alert columns, replaced (a handful of points; their look stays as drawn)."""
    for severity, trace in alert_traces(items, projection).items():
        i = ALERT_TRACES[severity]
        for key in ("x", "y", "z", "hovertext"):
            patch["data"][i][key] = trace[key]
