"""A thrown object points to a household in any registry: an imported community whose household ids
follow no pattern, resolved through the façade the camera faces (docs/rules.md#throw)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from alerts.live import AlertStore
from analytics.video.calibration import parse_calibration
from analytics.worker import Worker
from core.clock import ManualClock
from core.errors import InvalidInput
from ingest.directory import Directory
from ingest.service import IngestService
from registry import importers
from registry.facade import Facade, natural_key
from store.stores import Stores
from tests.test_pipeline import drain

pytestmark = pytest.mark.also_on_pg

T0 = 1_790_000_000_000
LON, LAT = 120.30, 31.50
C = "hillside"


def square(lon: float, lat: float, half: float) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def write_geojson(path: Path, features: list[tuple[dict[str, Any], dict[str, Any]]]) -> Path:
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in features],
    }
    path.write_text(json.dumps(collection), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    return path


# floor 3 of 北楼: unit 1 has rooms 301 and 302, unit 2 has rooms 3-2 and 3-10 (natural order: 3-2 first)
HOUSEHOLDS = {
    ("1", "301"): "HH-7f3a",
    ("1", "302"): "HH-01bc",
    ("2", "3-10"): "HH-a9d2",
    ("2", "3-2"): "HH-c001",
}


@pytest.fixture
def hillside(stores: Stores, tmp_path: Path) -> Stores:
    """A community imported from files written here: one building, four households, two throw cameras."""
    boundary = write_geojson(tmp_path / "boundary.geojson", [({"name": "山坡小区"}, square(LON, LAT, 0.002))])
    buildings = write_geojson(
        tmp_path / "buildings.geojson",
        [({"id": "BLD-north", "name": "北楼", "floors": 6, "units": 2}, square(LON, LAT, 0.0002))],
    )
    households = write_csv(
        tmp_path / "households.csv",
        [
            ["id", "building", "unit", "floor", "room", "category"],
            *([hid, "BLD-north", unit, 3, room, "owner"] for (unit, room), hid in HOUSEHOLDS.items()),
        ],
    )
    facade = {"building": "BLD-north", "floors": 6, "columns": 4}
    front = {"calibration": {"camera": "TC-front", **facade, "units": [1, 2]}}
    back = {"calibration": {"camera": "TC-back", **facade, "reverse": True}}
    devices = write_csv(
        tmp_path / "devices.csv",
        [
            ["id", "type", "name", "building", "lat", "lon", "config"],
            ["TC-front", "throw_camera", "北楼南侧高空抛物相机", "BLD-north", LAT - 0.0003, LON, json.dumps(front)],
            ["TC-back", "throw_camera", "北楼北侧高空抛物相机", "BLD-north", LAT + 0.0003, LON, json.dumps(back)],
        ],
    )
    with stores.sessions.begin() as session:
        importers.import_geo(session, "boundary", boundary, C, community_name="山坡小区")
        importers.import_geo(session, "buildings", buildings, C)
        for kind, path in (("households", households), ("devices", devices)):
            importers.import_table(session, kind, path, C, id_hash_key=stores.id_hash_key)
    return stores


def throw(stores: Stores, camera: str, floor: int, column: int) -> dict[str, Any]:
    """The open throw alert after the camera reported an object from floor and column."""
    clock = ManualClock(T0)
    directory = Directory(stores.sessions)
    worker = Worker(stores, consumer="rules", clock=clock, directory=directory)
    worker.start_community(C, seed_timers=False)
    event = {
        "type": "camera.throw",
        "device": camera,
        "ts": T0,
        "data": {
            "origin": {"building": "BLD-north", "floor": floor, "column": column},
            "trajectory": [[0, 400, 100], [100, 402, 140]],
        },
    }
    result = IngestService(stores, directory=directory, clock=clock).ingest(C, [event])
    assert not result.rejected, result.rejected
    drain(worker, C)
    (alert,) = [a for a in AlertStore(stores.redis, stores.keys).open_alerts(C) if a["type"] == "throw"]
    return alert


@pytest.mark.parametrize(
    ("camera", "column", "household"),
    [
        ("TC-front", 1, "HH-7f3a"),  # unit 1, first room: 301
        ("TC-front", 3, "HH-c001"),  # unit 2, first room in natural order: 3-2 (not 3-10)
        ("TC-back", 1, "HH-a9d2"),  # seen from the back, column 1 is the front's last: unit 2, room 3-10
    ],
)
def test_a_throw_names_the_household_behind_the_window(
    hillside: Stores, camera: str, column: int, household: str
) -> None:
    alert = throw(hillside, camera, 3, column)
    assert alert["subject"]["household"] == household
    assert alert["evidence"].get("household_reason") is None


def test_a_column_beyond_the_facade_names_no_household_and_says_why(hillside: Stores) -> None:
    alert = throw(hillside, "TC-front", 3, 5)
    assert alert["subject"].get("household") is None
    assert alert["evidence"]["household_reason"] == "column_beyond_facade"


@pytest.mark.parametrize(
    ("facade", "column", "expected"),
    [
        (Facade("B", 6, 5, (1, 2)), 3, (1, 2)),  # 5 columns over 2 units: the first unit one column wider
        (Facade("B", 6, 5, (1, 2)), 4, (2, 0)),
        (Facade("B", 6, 5, (1, 2), reverse=True), 1, (2, 1)),  # counted from the right
        (Facade("B", 6, 4, (3, 1)), 1, (3, 0)),  # the units as the façade shows them
        (Facade("B", 6, 4, (1, 2)), 0, None),
    ],
)
def test_a_column_falls_in_a_unit_of_the_facade(facade: Facade, column: int, expected: tuple[int, int] | None) -> None:
    assert facade.unit_and_position(column) == expected


def test_rooms_are_in_natural_order() -> None:
    labels = ["3-10", "B", "3-2", "1201", "A", "301"]
    assert sorted(labels, key=natural_key) == ["3-2", "3-10", "301", "1201", "A", "B"]


def test_the_video_detector_reads_the_same_calibration_with_units_and_reverse() -> None:
    facade = {"camera": "TC-front", "building": "BLD-north", "floors": 6, "columns": 4}
    corners = {"facade": [[0, 0], [400, 0], [400, 600], [0, 600]]}
    parsed = parse_calibration({**facade, **corners, "units": [1, 2], "reverse": True})
    assert (parsed.units, parsed.reverse) == ([1, 2], True)
    with pytest.raises(InvalidInput, match="units"):
        parse_calibration({**facade, **corners, "units": [0]})
