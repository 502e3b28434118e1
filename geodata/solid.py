"""Geometry of the 3D sand-table: a local metric projection, footprints checked and extruded into
triangle meshes (plotly ``Mesh3d`` arrays), outlines as polylines. Pure: no session, no Redis.

Coordinates are metres east (x) and north (y) of a community's centre, z up. At a community's
size (a kilometre) the equirectangular projection below is off by centimetres, well under a
building's drawing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import explain_validity

FLOOR_HEIGHT_M = 3.0  # a storey of a residential block
SLAB_OUTSET_M = 0.35  # how far a floor slab stands out of the façade
SLAB_THICKNESS_M = 0.35
EARTH_RADIUS_M = 6_371_008.8

# why a building is drawn flat (translated as model3d.flat.<reason>; doctor lists them)
NO_FLOORS = "no_floors"
NOT_POLYGON = "not_polygon"
INVALID_POLYGON = "invalid_polygon"


@dataclass(frozen=True)
class Projection:
    """Metres east and north of a centre (lat0, lon0), from WGS-84 degrees."""

    lat0: float
    lon0: float

    @property
    def _kx(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        """(x, y) in metres of a point given in degrees."""
        return (lon - self.lon0) * self._kx, (lat - self.lat0) * math.radians(1) * EARTH_RADIUS_M

    def ring(self, coords: Iterable[Sequence[float]]) -> list[tuple[float, float]]:
        """A ring or line of [lon, lat] pairs, projected."""
        return [self.xy(float(c[0]), float(c[1])) for c in coords]

    def geometry(self, geometry: dict[str, Any]) -> Any:
        """A GeoJSON geometry (degrees) as a shapely geometry in metres."""
        return shapely.transform(shape(geometry), self._array_xy)

    def _array_xy(self, coords: Any) -> Any:
        out = coords.copy()
        out[:, 0] = (coords[:, 0] - self.lon0) * self._kx
        out[:, 1] = (coords[:, 1] - self.lat0) * math.radians(1) * EARTH_RADIUS_M
        return out


@dataclass(frozen=True)
class Footprint:
    """A building's footprint as the 3D model takes it: a valid polygon in metres, or why not."""

    polygon: Polygon | MultiPolygon | None
    outline: list[list[tuple[float, float]]]  # the rings as drawn (even when the polygon is invalid)
    problem: str | None  # NOT_POLYGON / INVALID_POLYGON, None when valid
    detail: str = ""  # shapely's explanation of an invalid polygon


def footprint(text_or_geometry: str | dict[str, Any] | None, projection: Projection) -> Footprint:
    """Parse and check a footprint (GeoJSON text or dict, WGS-84): never raises."""
    try:
        geometry = json.loads(text_or_geometry) if isinstance(text_or_geometry, str) else text_or_geometry
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError(f"a {geometry.get('type') if isinstance(geometry, dict) else type(geometry).__name__}")
        rings = (
            geometry["coordinates"]
            if geometry["type"] == "Polygon"
            else [r for poly in geometry["coordinates"] for r in poly]
        )
        outline = [projection.ring(r) for r in rings if len(r) >= 2]
        polygon = projection.geometry(geometry)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as err:
        return Footprint(None, [], NOT_POLYGON, str(err)[:120])
    if polygon.is_empty or not polygon.is_valid or polygon.area <= 0:
        detail = "empty" if polygon.is_empty else explain_validity(polygon)
        return Footprint(None, outline, INVALID_POLYGON, detail)
    return Footprint(polygon, outline, None)


def flat_reason(floors: int | None, fp: Footprint) -> str | None:
    """Why a building is drawn as a flat outline instead of a block, or None."""
    if fp.problem is not None:
        return fp.problem
    if floors is None or floors < 1:
        return NO_FLOORS
    return None


def r1(value: float) -> float:
    """Metres to a tenth (a figure's payload: a model needs no finer)."""
    return round(value, 1)


@dataclass
class Mesh:
    """Triangles in plotly ``Mesh3d`` form: vertex arrays x, y, z and index arrays i, j, k, with
    optional per-vertex hover text and custom data."""

    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    z: list[float] = field(default_factory=list)
    i: list[int] = field(default_factory=list)
    j: list[int] = field(default_factory=list)
    k: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    data: list[Any] = field(default_factory=list)

    def vertex(self, x: float, y: float, z: float, text: str = "", data: Any = None) -> int:
        """Add a vertex; its index."""
        self.x.append(r1(x))
        self.y.append(r1(y))
        self.z.append(r1(z))
        self.text.append(text)
        self.data.append(data)
        return len(self.x) - 1

    def triangle(self, a: int, b: int, c: int) -> None:
        """Add a triangle of three vertex indexes."""
        self.i.append(a)
        self.j.append(b)
        self.k.append(c)

    def prism(
        self, polygon: Polygon, z0: float, z1: float, *, cap: bool = True, text: str = "", data: Any = None
    ) -> None:
        """The polygon extruded from z0 to z1: its walls (every ring), and its top when ``cap``."""
        index: dict[tuple[float, float], int] = {}
        for ring in (polygon.exterior, *polygon.interiors):
            coords = list(ring.coords)[:-1]
            bottom = [self.vertex(x, y, z0, text, data) for x, y in coords]
            top = []
            for x, y in coords:
                top.append(self.vertex(x, y, z1, text, data))
                index[(r1(x), r1(y))] = top[-1]
            n = len(coords)
            for a in range(n):
                b = (a + 1) % n
                self.triangle(bottom[a], bottom[b], top[b])
                self.triangle(bottom[a], top[b], top[a])
        if cap:
            for tri in shapely.constrained_delaunay_triangles(polygon).geoms:
                corners = [index.get((r1(x), r1(y))) for x, y in list(tri.exterior.coords)[:3]]
                if all(c is not None for c in corners):
                    self.triangle(*corners)  # type: ignore[arg-type]

    def box(
        self, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, *, text: str = "", data: Any = None
    ) -> None:
        """An axis-aligned box (a household's cell), all six faces."""
        v = [self.vertex(x, y, z, text, data) for z in (z0, z1) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        faces = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))
        for a, b, c, d in faces:
            self.triangle(v[a], v[b], v[c])
            self.triangle(v[a], v[c], v[d])

    def trace(self, **extra: Any) -> dict[str, Any]:
        """The ``Mesh3d`` trace (a figure's dict form)."""
        out: dict[str, Any] = {"type": "mesh3d", "x": self.x, "y": self.y, "z": self.z, "i": self.i, "j": self.j}
        out["k"] = self.k
        if any(self.text):
            out["hovertext"] = self.text
        if any(d is not None for d in self.data):
            out["customdata"] = self.data
        out.update(extra)
        return out


def polygons(geometry: Polygon | MultiPolygon) -> list[Polygon]:
    """The polygons of a polygon or multipolygon."""
    return list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]


def building_block(mesh: Mesh, slabs: Mesh, fp: Footprint, floors: int, *, text: str, data: Any) -> float:
    """A building extruded to floors × 3 m into ``mesh``, with a thin slab standing out of the
    façade at every floor into ``slabs``; the roof's height."""
    assert fp.polygon is not None
    height = floors * FLOOR_HEIGHT_M
    for polygon in polygons(fp.polygon):
        mesh.prism(polygon, 0.0, height, text=text, data=data)
        outset = polygon.buffer(SLAB_OUTSET_M, join_style="mitre")
        for shell in polygons(outset):
            band = Polygon(shell.exterior)
            for floor in range(1, floors + 1):
                z = floor * FLOOR_HEIGHT_M
                if floor < floors:
                    slabs.prism(band, z - SLAB_THICKNESS_M, z, cap=False)
                else:  # the parapet: its top stands clear of the roof (no two faces at one height)
                    slabs.prism(band, z - SLAB_THICKNESS_M, z + 0.3, cap=False)
    return height


@dataclass
class Lines:
    """Polylines in plotly ``Scatter3d`` form (separated by None)."""

    x: list[float | None] = field(default_factory=list)
    y: list[float | None] = field(default_factory=list)
    z: list[float | None] = field(default_factory=list)
    text: list[str | None] = field(default_factory=list)

    def add(self, points: Iterable[tuple[float, float]], z: float, text: str = "") -> None:
        """One polyline at height z (``text``: its hover)."""
        for px, py in points:
            self.x.append(r1(px))
            self.y.append(r1(py))
            self.z.append(z)
            self.text.append(text)
        self.x.append(None)
        self.y.append(None)
        self.z.append(None)
        self.text.append(None)

    def add3d(self, points: Iterable[tuple[float, float, float]]) -> None:
        """One polyline through 3D points."""
        for px, py, pz in points:
            self.x.append(r1(px))
            self.y.append(r1(py))
            self.z.append(r1(pz))
            self.text.append("")
        self.x.append(None)
        self.y.append(None)
        self.z.append(None)
        self.text.append(None)

    def trace(self, **extra: Any) -> dict[str, Any]:
        """The ``Scatter3d`` lines trace (with its hover text when any point has one)."""
        out: dict[str, Any] = {"type": "scatter3d", "mode": "lines", "x": self.x, "y": self.y, "z": self.z}
        if any(self.text):
            out["hovertext"] = self.text
        return {**out, **extra}


def geometry_lines(geometry: dict[str, Any], projection: Projection) -> list[list[tuple[float, float]]]:
    """The lines of a GeoJSON (Multi)LineString or the rings of a (Multi)Polygon, projected."""
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "LineString":
        parts = [coords]
    elif kind in ("MultiLineString", "Polygon"):
        parts = coords
    elif kind == "MultiPolygon":
        parts = [ring for poly in coords for ring in poly]
    else:
        parts = []
    return [projection.ring(p) for p in parts if len(p) >= 2]


def ground(mesh: Mesh, geometry: dict[str, Any], projection: Projection, z: float = 0.0) -> None:
    """A flat, filled area (the community's ground) into ``mesh``."""
    area = projection.geometry(geometry)
    if not area.is_valid:
        area = area.buffer(0)
    for polygon in polygons(area):
        if polygon.is_empty:
            continue
        index: dict[tuple[float, float], int] = {}
        for ring in (polygon.exterior, *polygon.interiors):
            for x, y in list(ring.coords)[:-1]:
                index[(r1(x), r1(y))] = mesh.vertex(x, y, z)
        for tri in shapely.constrained_delaunay_triangles(polygon).geoms:
            corners = [index.get((r1(x), r1(y))) for x, y in list(tri.exterior.coords)[:3]]
            if all(c is not None for c in corners):
                mesh.triangle(*corners)  # type: ignore[arg-type]


FLAT_Z_M = 0.4  # a building drawn flat lies just above the ground


@dataclass(frozen=True)
class BuildingInput:
    """A building as the 3D model takes it (from the registry's building layer)."""

    id: str
    geometry: Any  # GeoJSON (WGS-84), possibly not a polygon at all
    floors: int | None
    category: str
    elder: bool = False
    label: str = ""  # its hover text


@dataclass
class Blocks:
    """A community's buildings as a few batched meshes: one per category, one of all the slabs, the
    elders' roof outlines, and the flat outlines of the buildings that cannot stand."""

    meshes: dict[str, Mesh]
    slabs: Mesh = field(default_factory=Mesh)
    elders: Lines = field(default_factory=Lines)
    flat: Lines = field(default_factory=Lines)
    flat_found: list[tuple[str, str, str]] = field(default_factory=list)  # (building, reason, detail)
    roofs: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # building → x, y, roof
    reach: float = 50.0  # metres from the centre to the farthest building
    top: float = FLOOR_HEIGHT_M  # the highest roof


def blocks(
    buildings: Iterable[BuildingInput],
    projection: Projection,
    categories: Iterable[str],
    flat_label: Any = lambda building, reason: "",
) -> Blocks:
    """Every building extruded into its category's mesh, or drawn flat with ``flat_label(building, reason)``
    as its hover when its floor count or footprint will not do (never raises)."""
    out = Blocks({c: Mesh() for c in categories})
    for b in buildings:
        fp = footprint(b.geometry, projection)
        why = flat_reason(b.floors, fp)
        if why is not None or b.category not in out.meshes:
            why = why or NOT_POLYGON
            out.flat_found.append((b.id, why, fp.detail))
            for ring in fp.outline:
                out.flat.add(ring, FLAT_Z_M, flat_label(b, why))
            x, y = fp.outline[0][0] if fp.outline and fp.outline[0] else (0.0, 0.0)
            out.roofs[b.id] = (r1(x), r1(y), FLAT_Z_M)
            continue
        assert fp.polygon is not None and b.floors is not None
        height = building_block(out.meshes[b.category], out.slabs, fp, b.floors, text=b.label, data=b.id)
        centre = fp.polygon.representative_point()
        out.roofs[b.id] = (r1(centre.x), r1(centre.y), height)
        out.top = max(out.top, height)
        minx, miny, maxx, maxy = fp.polygon.bounds
        out.reach = max(out.reach, abs(minx), abs(maxx), abs(miny), abs(maxy))
        if b.elder:
            for ring in fp.outline:
                out.elders.add(ring, height + 0.3)
    return out


def scene_box(half: float, height: float, eye: float, eye_z: float, centre_z: float) -> dict[str, Any]:
    """A plotly 3D scene with no axes, metres to scale (x and y ±half, z 0..height), seen from the
    south-east at 45° (the wall's model and the report's still)."""
    axis = {"visible": False, "showspikes": False, "showbackground": False}
    return {
        "xaxis": {**axis, "range": [-half, half]},
        "yaxis": {**axis, "range": [-half, half]},
        "zaxis": {**axis, "range": [0, height]},
        "aspectmode": "manual",
        "aspectratio": {"x": 1, "y": 1, "z": round(height / (2 * half), 4)},
        "camera": {"eye": {"x": eye, "y": -eye, "z": eye_z}, "center": {"x": 0, "y": 0, "z": centre_z}},
    }
