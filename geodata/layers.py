"""Reads the offline basemap and the survey layers kept under geodata/."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SURVEY_LAYERS = ("boundary", "grids", "buildings", "paths", "gates")


def basemap_path() -> Path:
    """The vector basemap (GeoJSON, WGS-84) drawn when no tile server is configured."""
    return HERE / "basemap.geojson"


def survey_dir(community: str) -> Path:
    """The folder of a demo community's survey layers."""
    return HERE / community


@lru_cache(maxsize=32)
def load_geojson(path: Path) -> dict[str, Any]:
    """A GeoJSON file, parsed (cached: these files do not change at run time)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def bounds(geojson: dict[str, Any]) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of every coordinate in a FeatureCollection."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords: Any) -> None:
        if coords and isinstance(coords[0], (int, float)):
            xs.append(float(coords[0]))
            ys.append(float(coords[1]))
        else:
            for item in coords:
                walk(item)

    for feat in geojson.get("features", []):
        walk(feat["geometry"]["coordinates"])
    return min(xs), min(ys), max(xs), max(ys)
