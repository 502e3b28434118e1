"""Builds the survey layers of the two demo communities and the offline vector basemap.

The files it writes under ``geodata/`` are committed: they stand for the surveyed real-scene
map a deployment would import (boundary, grids, building footprints, walkable paths, gates),
and the demo registry is imported from them with the same importers a deployment uses.
Run ``python -m geodata.build`` to regenerate; the output is deterministic.

Places are modelled on Yancheng (盐城): Wanhu Xincun (万户新村) in Tinghu district, an open
1983 estate of 127 walk-ups on a street grid, and Xingbang Central Park (兴邦中央公园) in the
Yannan high-tech zone, a gated high-rise community. Coordinates are WGS-84.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
M_PER_DEG_LAT = 111_320.0

Coord = tuple[float, float]  # (lon, lat)


class LocalFrame:
    """Metres east/north of an origin, converted to WGS-84 lon/lat."""

    def __init__(self, lat: float, lon: float) -> None:
        self.lat0 = lat
        self.lon0 = lon
        self.m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(lat))

    def ll(self, x: float, y: float) -> Coord:
        """(lon, lat) of the point x m east and y m north of the origin."""
        return (round(self.lon0 + x / self.m_per_deg_lon, 7), round(self.lat0 + y / M_PER_DEG_LAT, 7))

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> list[list[Coord]]:
        """A closed rectangle ring (counter-clockwise)."""
        ring = [self.ll(x0, y0), self.ll(x1, y0), self.ll(x1, y1), self.ll(x0, y1), self.ll(x0, y0)]
        return [ring]

    def line(self, points: Sequence[tuple[float, float]]) -> list[Coord]:
        """A line through local points."""
        return [self.ll(x, y) for x, y in points]


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    """A GeoJSON Feature."""
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def polygon(rings: list[list[Coord]]) -> dict[str, Any]:
    """A GeoJSON Polygon."""
    return {"type": "Polygon", "coordinates": rings}


def linestring(coords: list[Coord]) -> dict[str, Any]:
    """A GeoJSON LineString."""
    return {"type": "LineString", "coordinates": coords}


def point(coord: Coord) -> dict[str, Any]:
    """A GeoJSON Point."""
    return {"type": "Point", "coordinates": list(coord)}


def collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection in WGS-84."""
    return {"type": "FeatureCollection", "features": features}


def write(path: Path, data: dict[str, Any]) -> None:
    """Write GeoJSON compactly, one feature per line (diff-friendly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in data["features"]]
    path.write_text('{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")


# --- Wanhu Xincun -------------------------------------------------------------------------
WANHU_ORIGIN = (33.3868, 120.1505)  # south-west corner of the estate
WANHU_COLS, WANHU_ROWS = 8, 16
BLD_W, BLD_D, GAP_X, GAP_Y = 58.0, 11.0, 17.0, 21.0
MARGIN = 20.0


def build_wanhu() -> dict[str, dict[str, Any]]:
    """Layers of Wanhu Xincun: boundary, grids, buildings, paths, gates."""
    frame = LocalFrame(*WANHU_ORIGIN)
    rng = random.Random(1983)
    width = MARGIN * 2 + WANHU_COLS * BLD_W + (WANHU_COLS - 1) * GAP_X
    height = MARGIN * 2 + WANHU_ROWS * BLD_D + (WANHU_ROWS - 1) * GAP_Y
    boundary = collection([feature(polygon(frame.rect(0, 0, width, height)), name="万户新村", name_en="Wanhu Xincun")])

    # Grids: 5 vertical-ish bands (columns 0-1, 2-3, 4-5, 6-7 split north/south for the last).
    col_x = [MARGIN + c * (BLD_W + GAP_X) for c in range(WANHU_COLS)]
    row_y = [MARGIN + r * (BLD_D + GAP_Y) for r in range(WANHU_ROWS)]
    mid_y = (row_y[7] + BLD_D + row_y[8]) / 2
    split_x = [
        0.0,
        (col_x[1] + BLD_W + col_x[2]) / 2,
        (col_x[3] + BLD_W + col_x[4]) / 2,
        (col_x[5] + BLD_W + col_x[6]) / 2,
        width,
    ]
    grid_defs = [
        ("G1", "第一网格", "Grid 1", split_x[0], 0.0, split_x[1], height, "#4f8ef7"),
        ("G2", "第二网格", "Grid 2", split_x[1], 0.0, split_x[2], height, "#35b37e"),
        ("G3", "第三网格", "Grid 3", split_x[2], 0.0, split_x[3], height, "#f0a030"),
        ("G4", "第四网格", "Grid 4", split_x[3], mid_y, split_x[4], height, "#c061f0"),
        ("G5", "第五网格", "Grid 5", split_x[3], 0.0, split_x[4], mid_y, "#f05f7a"),
    ]
    grids = collection(
        [
            feature(polygon(frame.rect(x0, y0, x1, y1)), id=f"wanhu-{gid}", name=name, name_en=name_en, color=color)
            for gid, name, name_en, x0, y0, x1, y1, color in grid_defs
        ]
    )

    buildings: list[dict[str, Any]] = []
    number = 0
    for r in reversed(range(WANHU_ROWS)):  # numbered from the north-west, as on the estate's signs
        for c in range(WANHU_COLS):
            if r == 8 and c == 3:
                continue  # the community centre and police office (社区警务室) stand here
            number += 1
            x0, y0 = col_x[c], row_y[r]
            floors = 6 if rng.random() < 0.55 else 5
            units = 3 if BLD_W >= 55 and rng.random() < 0.7 else 2
            buildings.append(
                feature(
                    polygon(frame.rect(x0, y0, x0 + BLD_W, y0 + BLD_D)),
                    id=f"wanhu-B{number:03d}",
                    name=f"{number}幢",
                    name_en=f"Bldg {number}",
                    floors=floors,
                    units=units,
                    address=f"万户新村{number}幢",
                )
            )
    assert len(buildings) == 127
    centre = feature(
        polygon(frame.rect(col_x[3], row_y[8], col_x[3] + BLD_W, row_y[8] + BLD_D)),
        id="wanhu-C01",
        name="社区服务中心·警务室",
        name_en="Community centre · police office",
        floors=3,
        units=1,
        address="万户新村社区服务中心",
        kind="public",
    )
    buildings.append(centre)

    # Walkable network: lanes between rows, streets between columns, the perimeter road.
    paths: list[dict[str, Any]] = []
    lane_ys = [MARGIN / 2] + [row_y[r] + BLD_D + GAP_Y / 2 for r in range(WANHU_ROWS - 1)] + [height - MARGIN / 2]
    street_xs = [MARGIN / 2] + [col_x[c] + BLD_W + GAP_X / 2 for c in range(WANHU_COLS - 1)] + [width - MARGIN / 2]
    for i, y in enumerate(lane_ys):
        kind = "road" if i in (0, 4, 8, 12, len(lane_ys) - 1) else "path"
        paths.append(feature(linestring(frame.line([(street_xs[0], y), (street_xs[-1], y)])), kind=kind, name=""))
    for j, x in enumerate(street_xs):
        kind = "road" if j in (0, 4, len(street_xs) - 1) else "path"
        paths.append(feature(linestring(frame.line([(x, lane_ys[0]), (x, lane_ys[-1])])), kind=kind, name=""))
    gates_local = [
        ("wanhu-GATE-N", "北门(主入口)", "North gate (main)", street_xs[4], height, street_xs[4], lane_ys[-1]),
        ("wanhu-GATE-E", "东门", "East gate", width, lane_ys[8], street_xs[-1], lane_ys[8]),
        ("wanhu-GATE-S", "南门", "South gate", street_xs[2], 0.0, street_xs[2], lane_ys[0]),
    ]
    gates = []
    for gid, name, name_en, gx, gy, ix, iy in gates_local:
        gates.append(feature(point(frame.ll(gx, gy)), id=gid, name=name, name_en=name_en))
        paths.append(feature(linestring(frame.line([(gx, gy), (ix, iy)])), kind="gate", name=name))
        # the street outside the gate, so that the network reaches the city
    return {
        "boundary": boundary,
        "grids": grids,
        "buildings": collection(buildings),
        "paths": collection(paths),
        "gates": collection(gates),
    }


# --- Xingbang Central Park ----------------------------------------------------------------
XINGBANG_ORIGIN = (33.3318, 120.1788)


def build_xingbang() -> dict[str, dict[str, Any]]:
    """Layers of Xingbang Central Park: a gated community of high-rise towers around a park."""
    frame = LocalFrame(*XINGBANG_ORIGIN)
    rng = random.Random(2016)
    width, height = 420.0, 360.0
    boundary = collection(
        [feature(polygon(frame.rect(0, 0, width, height)), name="兴邦中央公园", name_en="Xingbang Central Park")]
    )
    grids = collection(
        [
            feature(
                polygon(frame.rect(0, 0, width / 2, height)),
                id="xingbang-G1",
                name="西区网格",
                name_en="West grid",
                color="#4f8ef7",
            ),
            feature(
                polygon(frame.rect(width / 2, 0, width, height)),
                id="xingbang-G2",
                name="东区网格",
                name_en="East grid",
                color="#35b37e",
            ),
        ]
    )
    buildings = []
    number = 0
    tower_w, tower_d = 34.0, 16.0
    xs = [40.0, 110.0, 250.0, 320.0]
    ys = [40.0, 110.0, 180.0, 250.0, 300.0]
    for y in reversed(ys):
        for x in xs:
            if 150 < y < 260 and 100 < x < 300:
                continue  # the central park
            number += 1
            floors = rng.choice([18, 26, 33])
            buildings.append(
                feature(
                    polygon(frame.rect(x, y, x + tower_w, y + tower_d)),
                    id=f"xingbang-B{number:02d}",
                    name=f"{number}号楼",
                    name_en=f"Tower {number}",
                    floors=floors,
                    units=2,
                    address=f"兴邦中央公园{number}号楼",
                )
            )
    paths = []
    for y in [25.0, 95.0, 165.0, 235.0, 290.0, 340.0]:
        paths.append(feature(linestring(frame.line([(20, y), (width - 20, y)])), kind="road", name=""))
    for x in [20.0, 90.0, 160.0, 230.0, 300.0, width - 20]:
        paths.append(feature(linestring(frame.line([(x, 25), (x, 340)])), kind="path", name=""))
    gates_local = [
        ("xingbang-GATE-S", "南门(主入口)", "South gate (main)", 230.0, 0.0, 230.0, 25.0),
        ("xingbang-GATE-W", "西门", "West gate", 0.0, 235.0, 20.0, 235.0),
    ]
    gates = []
    for gid, name, name_en, gx, gy, ix, iy in gates_local:
        gates.append(feature(point(frame.ll(gx, gy)), id=gid, name=name, name_en=name_en))
        paths.append(feature(linestring(frame.line([(gx, gy), (ix, iy)])), kind="gate", name=name))
    return {
        "boundary": boundary,
        "grids": grids,
        "buildings": collection(buildings),
        "paths": collection(paths),
        "gates": collection(gates),
    }


# --- basemap ------------------------------------------------------------------------------
def build_basemap() -> dict[str, Any]:
    """An offline vector basemap of the part of Yancheng around both communities."""
    frame = LocalFrame(33.3200, 120.1300)  # south-west corner of the basemap
    feats: list[dict[str, Any]] = []
    span_x, span_y = 6500.0, 8800.0
    feats.append(feature(polygon(frame.rect(0, 0, span_x, span_y)), kind="land", name="", name_en=""))
    # The Chuanchang river (串场河) meanders north-south west of the city centre.
    river = [(900 + 250 * math.sin(y / 900.0), y) for y in range(0, int(span_y) + 1, 200)]
    left = [(x - 45, y) for x, y in river]
    right = [(x + 45, y) for x, y in reversed(river)]
    feats.append(
        feature(
            polygon([frame.line(left + right + [left[0]])]), kind="water", name="串场河", name_en="Chuanchang River"
        )
    )
    # A lake park in the Yannan zone.
    cx, cy = 4200.0, 900.0
    lake = [(cx + 260 * math.cos(a / 20 * math.tau), cy + 170 * math.sin(a / 20 * math.tau)) for a in range(21)]
    feats.append(feature(polygon([frame.line(lake)]), kind="water", name="聚龙湖", name_en="Julong Lake"))
    feats.append(
        feature(polygon(frame.rect(3700, 500, 4750, 1150)), kind="park", name="聚龙湖公园", name_en="Julong Lake Park")
    )
    feats.append(
        feature(polygon(frame.rect(1600, 6600, 2000, 7000)), kind="park", name="人民公园", name_en="People's Park")
    )
    roads: list[tuple[str, str, str, list[tuple[float, float]]]] = [
        ("main", "开放大道", "Kaifang Avenue", [(3300, 0), (3300, span_y)]),
        ("main", "解放南路", "Jiefang S. Rd", [(1900, 0), (1900, span_y)]),
        ("main", "世纪大道", "Century Avenue", [(0, 1200), (span_x, 1200)]),
        ("main", "人民中路", "Renmin Rd", [(0, 7300), (span_x, 7300)]),
        ("main", "希望大道", "Xiwang Avenue", [(0, 3600), (span_x, 3600)]),
        ("secondary", "建军东路", "Jianjun E. Rd", [(0, 6950), (span_x, 6950)]),
        ("secondary", "青年路", "Qingnian Rd", [(0, 8250), (span_x, 8250)]),
        ("secondary", "毓龙路", "Yulong Rd", [(0, 5400), (span_x, 5400)]),
        ("secondary", "新都路", "Xindu Rd", [(0, 2500), (span_x, 2500)]),
        ("secondary", "迎宾大道", "Yingbin Avenue", [(5600, 0), (5600, span_y)]),
        ("secondary", "文港路", "Wengang Rd", [(1350, 6300), (3300, 6300)]),
        ("secondary", "东进路", "Dongjin Rd", [(2700, 3600), (2700, span_y)]),
        ("minor", "", "", [(4300, 0), (4300, 3600)]),
        ("minor", "", "", [(5100, 0), (5100, 2500)]),
        ("minor", "", "", [(1900, 4500), (3300, 4500)]),
        ("minor", "", "", [(3300, 7700), (span_x, 7700)]),
    ]
    for kind, name, name_en, pts in roads:
        feats.append(feature(linestring(frame.line(pts)), kind=kind, name=name, name_en=name_en))
    return collection(feats)


def main() -> None:
    """Write every layer under geodata/."""
    for name, layers in (("wanhu", build_wanhu()), ("xingbang", build_xingbang())):
        for layer, data in layers.items():
            write(HERE / name / f"{layer}.geojson", data)
    write(HERE / "basemap.geojson", build_basemap())


if __name__ == "__main__":
    main()
