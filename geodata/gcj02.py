"""WGS-84 ↔ GCJ-02 for display on Chinese tile sources.

Coordinates are stored in WGS-84. Chinese map providers (GCJ-02, "Mars coordinates") shift
positions inside mainland China by a few hundred metres; when a GCJ-02 tile source is
configured, geometry is shifted for display only. The shift applies inside mainland China
(a simplified boundary polygon, ``china_gcj02_area.geojson``), not in Hong Kong, Macau,
Taiwan or neighbouring countries, which a bounding box of China would wrongly include.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

from shapely import prepared
from shapely.geometry import Point, shape

from core.settings import Settings
from geodata.layers import load_geojson

G = TypeVar("G")
L = TypeVar("L")

HERE = Path(__file__).resolve().parent
_A = 6378245.0  # Krasovsky 1940 semi-major axis
_EE = 0.00669342162296594323  # its eccentricity squared
# China's bounding box widened by more than the largest shift (< 0.01°): no GCJ-02 position outside it is shifted
_LON_NEAR = (72.9, 136.1)
_LAT_NEAR = (17.4, 54.1)


@lru_cache(maxsize=1)
def _china() -> Any:
    data = load_geojson(HERE / "china_gcj02_area.geojson")
    return prepared.prep(shape(data["features"][0]["geometry"]))


def in_mainland_china(lat: float, lon: float) -> bool:
    """True when GCJ-02 applies at this WGS-84 position."""
    if not (73.0 <= lon <= 136.0 and 17.5 <= lat <= 54.0):
        return False  # cheap reject before the polygon test
    return bool(_china().contains(Point(lon, lat)))


def _delta(lat: float, lon: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """The GCJ-02 position of a WGS-84 one (unchanged outside mainland China)."""
    if not in_mainland_china(lat, lon):
        return lat, lon
    dlat, dlon = _delta(lat, lon)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 position of a GCJ-02 one, by fixed-point iteration (error below 1 mm).

    Near the border a GCJ-02 position can have two WGS-84 ones: a position inside mainland China
    shifted across the border, and the same position outside, not shifted. The one inside wins, so
    that every stored position inside China comes back from the map as itself.
    """
    if not (_LON_NEAR[0] <= lon <= _LON_NEAR[1] and _LAT_NEAR[0] <= lat <= _LAT_NEAR[1]):
        return lat, lon
    wlat, wlon = lat, lon
    for _ in range(30):
        # iterate on the shift formula itself: testing the border inside the loop would stop it
        # (no shift) as soon as an estimate fell outside China
        dlat, dlon = _delta(wlat, wlon)
        elat, elon = wlat + dlat - lat, wlon + dlon - lon
        wlat, wlon = wlat - elat, wlon - elon
        if abs(elat) < 1e-10 and abs(elon) < 1e-10:
            break
    return (wlat, wlon) if in_mainland_china(wlat, wlon) else (lat, lon)


def shift_geojson(obj: Any) -> Any:
    """A copy of a GeoJSON object with every position shifted WGS-84 → GCJ-02."""
    return _transform(obj, wgs84_to_gcj02)


def _transform(obj: Any, move: Callable[[float, float], tuple[float, float]]) -> Any:
    """A copy of a GeoJSON object with every position moved by ``move(lat, lon)``."""

    def coords(value: Any) -> Any:
        if value and isinstance(value[0], (int, float)):
            lat, lon = move(float(value[1]), float(value[0]))
            return [round(lon, 7), round(lat, 7), *value[2:]]
        return [coords(v) for v in value]

    return _map_coordinates(obj, coords)


def _map_coordinates(obj: Any, coords: Callable[[Any], Any]) -> Any:
    """A copy of a GeoJSON object with each ``coordinates`` value passed through ``coords``."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key == "coordinates":
                out[key] = coords(value)
            elif key in ("geometry", "features", "geometries") or isinstance(value, (dict, list)):
                out[key] = _map_coordinates(value, coords)
            else:
                out[key] = value
        return out
    if isinstance(obj, list):
        return [_map_coordinates(v, coords) for v in obj]
    return obj


# --- what a map is drawn in ----------------------------------------------------------------
# Every coordinate sent to a leaflet map passes through one of these, and every position the user
# gives on a map (a click, a drawn polygon) comes back through ``from_display``: with a GCJ-02
# tile source the whole map (registry layers, guards, trails, alerts, fly-to targets, bounds,
# the city view, the investigation's results) is shifted alike, and nothing is stored shifted.


def shifts(settings: Settings) -> bool:
    """True when maps are drawn on GCJ-02 tiles (``SANDTABLE_TILE_URL`` with ``SANDTABLE_TILE_CRS=gcj02``)."""
    return bool(settings.tile_url) and settings.tile_crs == "gcj02"


def for_display(settings: Settings, geojson: G) -> G:
    """A GeoJSON object (WGS-84) as the map draws it: shifted to GCJ-02 on such tiles, else itself."""
    return cast(G, shift_geojson(geojson)) if shifts(settings) else geojson


def latlng_for_display(settings: Settings, value: L) -> L:
    """A leaflet ``[lat, lon]`` (a centre) or nested lists of them (bounds, a polygon's positions) as the
    map draws it."""
    if not shifts(settings):
        return value

    def walk(v: Any) -> Any:
        if len(v) >= 2 and isinstance(v[0], (int, float)):
            lat, lon = wgs84_to_gcj02(float(v[0]), float(v[1]))
            return [round(lat, 7), round(lon, 7)]
        return [walk(x) for x in v]

    return cast(L, walk(value))


def place_for_display(settings: Settings, place: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a dict with ``lat`` and ``lon`` (an alert's location, a fly-to target, a timeline
    entry) as the map draws it; without a position it is copied as is."""
    out = dict(place)
    lat, lon = place.get("lat"), place.get("lon")
    if shifts(settings) and isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
        out["lat"], out["lon"] = latlng_for_display(settings, [lat, lon])
    return out


def from_display(settings: Settings, lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 position of a point the user gave on a map (a click, a drawn vertex)."""
    return gcj02_to_wgs84(lat, lon) if shifts(settings) else (lat, lon)


def geojson_from_display(settings: Settings, geojson: G) -> G:
    """A GeoJSON object the user drew on a map, back in WGS-84."""
    return cast(G, _transform(geojson, gcj02_to_wgs84)) if shifts(settings) else geojson
