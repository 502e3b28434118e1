"""The situation report's 3D still (issue 26): the community as a model, buildings at their heights in
their category's colour, a column of light over every building with alerts in the period (the most
serious one's colour). Drawn on the server by plotly and kaleido, which renders in the machine's own
Chromium, offline (plotly.js comes from the plotly package, MathJax is not loaded): docs/3d.md.

When it cannot be drawn (kaleido or Chromium missing, a rendering failure), ``Unavailable`` says why
and the report prints that sentence instead of the picture.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from geodata.solid import Lines, Mesh, Projection, blocks, geometry_lines, ground, scene_box
from reports.charts import BUILDING_COLORS, SEVERITY_COLORS
from reports.model import MapData

log = logging.getLogger(__name__)

WIDTH_PX, HEIGHT_PX = 1600, 1050
COLUMN_M = 70.0  # an alert building's column of light, above its roof
CATEGORIES = ("owner", "rental", "group_rental", "vacant", "public")


class Unavailable(Exception):
    """The 3D still cannot be drawn on this machine; the message says why (for the report and the log)."""


def figure(m: MapData) -> dict[str, Any]:
    """The still's plotly figure (a plain dict)."""
    if m.center is None:
        raise Unavailable("the community has no centre")
    projection = Projection(*m.center)
    solid = blocks(m.solids, projection, CATEGORIES)
    data: list[dict[str, Any]] = [
        solid.meshes[c].trace(
            color=BUILDING_COLORS.get(c, BUILDING_COLORS["owner"]),
            flatshading=True,
            lighting={"ambient": 0.6, "diffuse": 0.8, "specular": 0.05},
            lightposition={"x": 1000, "y": 600, "z": 2000},
        )
        for c in CATEGORIES
    ]
    data.append(solid.slabs.trace(color="#ffffff", flatshading=True, lighting={"ambient": 0.9}))
    if m.boundary:
        area, edge = Mesh(), Lines()
        ground(area, m.boundary, projection)
        for line in geometry_lines(m.boundary, projection):
            edge.add(line, 0.3)
        data.append(area.trace(color="#eef2f7", flatshading=True, lighting={"ambient": 1.0}))
        data.append(edge.trace(line={"color": "#2f6fdb", "width": 3}))
    data.append(solid.flat.trace(line={"color": "#56657a", "width": 3, "dash": "dot"}))
    for severity, color in SEVERITY_COLORS.items():
        columns = Lines()
        for building, worst in m.alert_buildings.items():
            if worst == severity and building in solid.roofs:
                x, y, roof = solid.roofs[building]
                columns.add3d([(x, y, roof), (x, y, roof + COLUMN_M)])
        data.append(columns.trace(line={"color": color, "width": 14}, opacity=0.85))
    reach = solid.reach
    if m.boundary:
        minx, miny, maxx, maxy = projection.geometry(m.boundary).bounds
        reach = max(reach, abs(minx), abs(miny), abs(maxx), abs(maxy))
    half = reach * 1.02
    height = solid.top + COLUMN_M
    layout = {
        "paper_bgcolor": "#ffffff",
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "showlegend": False,
        "scene": scene_box(half, height, eye=0.8, eye_z=0.62, centre_z=-0.16),
    }
    return {"data": data, "layout": layout}


def stills(maps: Sequence[MapData], timeout_s: float = 120.0) -> dict[str, bytes | str]:
    """community → its 3D still as a PNG, or the sentence why it could not be drawn. One Chromium
    (kaleido) draws them all, in a thread of its own (a report job may run inside an event loop);
    MathJax is off, so nothing is fetched (kaleido's default loads it from a CDN)."""
    out: dict[str, bytes | str] = {}
    figures: dict[str, dict[str, Any]] = {}
    for m in maps:
        try:
            figures[m.community] = figure(m)
        except Unavailable as err:
            out[m.community] = str(err)
    if not figures:
        return out
    try:
        import kaleido  # noqa: PLC0415 — heavy, only the PDF's 3D still needs it
    except ImportError as err:
        return {**out, **dict.fromkeys(figures, f"kaleido is not installed ({err})")}

    async def draw() -> list[Any]:
        async with kaleido.Kaleido(n=1, mathjax=False, timeout=timeout_s) as k:
            opts = {"format": "png", "width": WIDTH_PX, "height": HEIGHT_PX, "scale": 1}
            return [await k.calc_fig(fig, opts=opts) for fig in figures.values()]

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaleido") as pool:
            pngs = pool.submit(asyncio.run, draw()).result(timeout=timeout_s * (1 + len(figures)))
    except Exception as err:  # noqa: BLE001 — kaleido's and Chromium's failures share no class
        reason = (str(err).splitlines() or [""])[0][:200] or type(err).__name__
        log.warning("the 3D stills could not be drawn: %s", reason)
        return {**out, **dict.fromkeys(figures, reason)}
    for community, png in zip(figures, pngs, strict=True):
        out[community] = png if isinstance(png, bytes) and png else "kaleido returned no image"
    return out
