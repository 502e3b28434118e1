"""WGS-84 ↔ GCJ-02, applied inside mainland China only."""

from __future__ import annotations

import math
from typing import Any

import pytest

from core.settings import load_settings
from geodata.gcj02 import (
    for_display,
    from_display,
    gcj02_to_wgs84,
    geojson_from_display,
    in_mainland_china,
    latlng_for_display,
    place_for_display,
    shift_geojson,
    wgs84_to_gcj02,
)

INSIDE = {
    "Yancheng": (33.38, 120.16),
    "Beijing": (39.9, 116.4),
    "Urumqi": (43.8, 87.6),
    "Lhasa": (29.65, 91.1),
    "Harbin": (45.75, 126.6),
    "Kashgar": (39.47, 75.99),
    "Sanya": (18.25, 109.5),
    "Shenzhen": (22.54, 114.06),
    "Dalian": (38.9, 121.6),
    "Mohe": (52.97, 122.5),
}
# Every one of these lies inside China's bounding box: a bounding-box test would shift them.
OUTSIDE = {
    "Seoul": (37.57, 126.98),
    "Pyongyang": (39.03, 125.75),
    "Ulaanbaatar": (47.9, 106.9),
    "Hanoi": (21.03, 105.85),
    "Hong Kong": (22.30, 114.17),
    "Macau": (22.19, 113.55),
    "Taipei": (25.04, 121.56),
    "Vladivostok": (43.1, 131.9),
    "Almaty": (43.2, 76.9),
    "Kathmandu": (27.7, 85.3),
    "Bishkek": (42.9, 74.6),
}


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[0] - b[0]) * 111_320
    dlon = (a[1] - b[1]) * 111_320 * math.cos(math.radians(a[0]))
    return math.hypot(dlat, dlon)


@pytest.mark.parametrize("place", sorted(INSIDE))
def test_positions_in_mainland_china_are_shifted_by_hundreds_of_metres(place: str) -> None:
    lat, lon = INSIDE[place]
    assert in_mainland_china(lat, lon)
    assert 50 < metres((lat, lon), wgs84_to_gcj02(lat, lon)) < 1000


@pytest.mark.parametrize("place", sorted(OUTSIDE))
def test_positions_outside_mainland_china_are_not_shifted(place: str) -> None:
    lat, lon = OUTSIDE[place]
    assert not in_mainland_china(lat, lon)
    assert wgs84_to_gcj02(lat, lon) == (lat, lon)


def test_gcj02_back_to_wgs84_is_exact_to_the_millimetre() -> None:
    lat, lon = INSIDE["Yancheng"]
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon))
    assert metres((lat, lon), back) < 0.001


def test_a_known_beijing_offset() -> None:
    # Tiananmen: the GCJ-02 offset there is about 0.0014° north and 0.0062° east.
    glat, glon = wgs84_to_gcj02(39.90734, 116.39089)
    assert glat - 39.90734 == pytest.approx(0.0014, abs=0.0003)
    assert glon - 116.39089 == pytest.approx(0.0062, abs=0.0003)


def test_geojson_is_shifted_for_display_and_keeps_its_properties() -> None:
    data: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "x"},
                "geometry": {"type": "Point", "coordinates": [120.16, 33.38]},
            }
        ],
    }
    shifted = shift_geojson(data)
    lon, lat = shifted["features"][0]["geometry"]["coordinates"]
    assert (lat, lon) != (33.38, 120.16)
    assert shifted["features"][0]["properties"] == {"name": "x"}
    assert data["features"][0]["geometry"]["coordinates"] == [120.16, 33.38]


def test_what_the_user_draws_on_gcj02_tiles_comes_back_where_it_was_drawn() -> None:
    plain = load_settings(tile_url="")
    gcj = load_settings(tile_url="http://tiles.invalid/{z}/{x}/{y}.png", tile_crs="gcj02")
    lat, lon = INSIDE["Yancheng"]
    area: dict[str, Any] = {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + 0.001, lat], [lon, lat + 0.001], [lon, lat]]],
    }
    # plain tiles: nothing moves
    assert latlng_for_display(plain, [lat, lon]) == [lat, lon]
    assert for_display(plain, area) is area and from_display(plain, lat, lon) == (lat, lon)
    # GCJ-02 tiles: drawn where the tiles show it, read back in WGS-84
    shown = latlng_for_display(gcj, [[lat, lon], [lat + 0.001, lon + 0.001]])
    assert metres((lat, lon), (shown[0][0], shown[0][1])) > 50
    assert metres((lat, lon), from_display(gcj, *shown[0])) < 0.02
    assert place_for_display(gcj, {"lat": lat, "lon": lon, "id": "a"})["lat"] == shown[0][0]
    back = geojson_from_display(gcj, for_display(gcj, area))
    for (x, y), (x0, y0) in zip(back["coordinates"][0], area["coordinates"][0], strict=True):
        assert metres((y, x), (y0, x0)) < 0.02
