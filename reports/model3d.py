"""The situation report's 3D still (issue 26): the community as a model, buildings at their heights in
their category's colour, a column of light over every building with alerts in the period (the most
serious one's colour). Drawn on the server by plotly and kaleido, which renders in the machine's own
Chromium, offline (plotly.js comes from the plotly package, MathJax is not loaded): docs/3d.md.

When it cannot be drawn (kaleido or Chromium missing, a rendering failure), ``Unavailable`` says why
and the report prints that sentence instead of the picture.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Sequence
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


class _Renderer:
    """One kaleido Chromium per process, kept open between reports: starting Chromium costs seconds,
    drawing a still a fraction of that. It lives on an event loop in a daemon thread of its own (a
    report job may run inside an event loop), is closed after ``IDLE_S`` unused or at exit, and is
    started afresh after any failure (a Chromium that crashed or hung is never asked again)."""

    IDLE_S = 300.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kaleido: Any = None
        self._idle: threading.Timer | None = None
        self._pid = 0
        atexit.register(self.close)

    def draw(self, figures: Sequence[dict[str, Any]], timeout_s: float) -> list[Any]:
        import kaleido  # noqa: PLC0415 — heavy, only the PDF's 3D still needs it

        with self._lock:
            if self._pid != os.getpid():  # a forked child: its parent's thread and Chromium are not its own
                self._kaleido = self._loop = self._idle = None
            if self._idle is not None:
                self._idle.cancel()
            try:
                if self._kaleido is None:
                    self._open(kaleido, timeout_s)
                opts = {"format": "png", "width": WIDTH_PX, "height": HEIGHT_PX, "scale": 1}
                out = [self._run(self._kaleido.calc_fig(fig, opts=opts), timeout_s) for fig in figures]
            except BaseException:
                self._close()
                raise
            self._idle = threading.Timer(self.IDLE_S, self.close)
            self._idle.daemon = True
            self._idle.start()
            return out

    def _run(self, coro: Any, timeout_s: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout_s)

    def _open(self, kaleido: Any, timeout_s: float) -> None:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="kaleido", daemon=True).start()
        self._loop, self._pid = loop, os.getpid()
        # MathJax off: kaleido's default loads it from a CDN
        k = kaleido.Kaleido(n=1, mathjax=False, timeout=timeout_s)
        self._kaleido = k
        self._run(k.open(), timeout_s)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        k, loop = self._kaleido, self._loop
        self._kaleido = self._loop = None
        if loop is None:
            return
        try:
            if k is not None:
                asyncio.run_coroutine_threadsafe(k.close(), loop).result(timeout=10)
        except BaseException as err:  # noqa: BLE001 — closing a broken Chromium: nothing more to do
            log.debug("closing the 3D stills' Chromium: %s", err)
        loop.call_soon_threadsafe(loop.stop)


_renderer = _Renderer()


def stills(maps: Sequence[MapData], timeout_s: float = 120.0) -> dict[str, bytes | str]:
    """community → its 3D still as a PNG, or the sentence why it could not be drawn. The process's
    one kaleido Chromium draws them all (``_Renderer``)."""
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
        pngs = _renderer.draw(list(figures.values()), timeout_s)
    except ImportError as err:
        return {**out, **dict.fromkeys(figures, f"kaleido is not installed ({err})")}
    except Exception as err:  # noqa: BLE001 — kaleido's and Chromium's failures share no class
        reason = (str(err).splitlines() or [""])[0][:200] or type(err).__name__
        log.warning("the 3D stills could not be drawn: %s", reason)
        return {**out, **dict.fromkeys(figures, reason)}
    for community, png in zip(figures, pngs, strict=True):
        out[community] = png if isinstance(png, bytes) and png else "kaleido returned no image"
    return out
