"""What the maps draw besides the registry: every layer on GCJ-02 tiles, the camera-coverage layer,
devices' batteries (issue #20, device upkeep, first half)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from shapely.geometry import Point, shape
from sqlalchemy import select

from analytics.worker import Worker
from auth.principal import Principal
from auth.service import create_token
from core.timefmt import SHANGHAI
from ingest.service import IngestService
from layouts.wall_data import alert_layer, feed_items, guard_layer, guard_roster
from registry import importers, queries
from registry.coverage import View, coverage_layer, view_of
from registry.models import Building, Device
from reports.collect import collect
from reports.request import build_request
from store.stores import Stores
from tests.conftest import LiveServer
from tests.test_pipeline import drain

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
GCJ02_TILES = {"tile_url": "http://tiles.invalid/{z}/{x}/{y}.png", "tile_crs": "gcj02"}
M_PER_DEG = 111_320


def now_ms() -> int:
    return int(time.time() * 1000)


def feed(world: Stores, events: list[dict[str, Any]]) -> None:
    """Ingest events and let a worker process them, as the running system would."""
    IngestService(world).ingest("wanhu", events)
    worker = Worker(world)
    worker.start_community("wanhu", seed_timers=False)
    drain(worker)


def fetch_layer(server: LiveServer, token: str, layer: str) -> dict[str, Any]:
    """One map layer as the browser loads it."""
    request = urllib.request.Request(
        f"{server.url}/api/v1/map/wanhu/{layer}.geojson", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def police_token(world: Stores) -> str:
    with world.sessions.begin() as session:
        _, token = create_token(session, scope="role", role="police", community="wanhu", name="map test")
    return token


def metres_from(footprint: Any, lon: float, lat: float) -> float:
    """How far (m) a point lies outside a footprint (0 inside)."""
    return float(footprint.distance(Point(lon, lat))) * M_PER_DEG


def footprints(layer: dict[str, Any]) -> dict[str, Any]:
    return {f["properties"]["id"]: shape(f["geometry"]) for f in layer["features"]}


# --- GCJ-02 applies to every layer --------------------------------------------------------------


@pytest.fixture
def guard_at_a_fire(world: Stores) -> Iterator[tuple[str, str]]:
    """A guard standing in a building whose household smoke detector is ringing."""
    with world.sessions() as session:
        detector = session.scalars(
            select(Device)
            .where(Device.community_id == "wanhu", Device.type == "smoke_detector", Device.building_id.is_not(None))
            .order_by(Device.id)
        ).first()
        assert detector is not None and detector.building_id is not None
        building_id = detector.building_id
        wearable = session.scalars(
            select(Device.id).where(Device.community_id == "wanhu", Device.type == "wearable").order_by(Device.id)
        ).first()
        centre = shape(
            next(
                f["geometry"]
                for f in queries.building_layer(session, POLICE.scope, "wanhu")["features"]
                if f["properties"]["id"] == building_id
            )
        ).representative_point()
    t = now_ms()
    feed(
        world,
        [
            {"type": "guard.position", "device": wearable, "ts": t - 1_000, "data": {"lat": centre.y, "lon": centre.x}},
            {"type": "smoke.alarm", "device": detector.id, "ts": t - 500, "data": {"level": "alarm"}},
        ],
    )
    yield building_id, str(wearable)


def wall_layers(s: Stores) -> tuple[dict[str, Any], dict[str, Any]]:
    """The wall's guards and alerts layers as its refresh sends them."""
    roster = guard_roster(s, POLICE, "wanhu", "zh")
    guards, _ = guard_layer(s, roster, "wanhu", (33.388, 120.152), now_ms())
    alerts = alert_layer(feed_items(s, POLICE, "wanhu", "zh"), s.settings)
    return guards, alerts


def test_on_gcj02_tiles_a_guard_and_an_alert_sit_on_their_building_as_on_plain_tiles(
    world: Stores, guard_at_a_fire: tuple[str, str]
) -> None:
    building, _ = guard_at_a_fire
    gcj = dataclasses.replace(world, settings=world.settings.model_copy(update=GCJ02_TILES))
    server = LiveServer(gcj.settings)
    try:
        token = police_token(world)
        shifted_buildings = footprints(fetch_layer(server, token, "buildings"))
        shifted_sectors = footprints(fetch_layer(server, token, "coverage"))
    finally:
        server.stop()
    with world.sessions() as session:
        plain_buildings = footprints(queries.building_layer(session, POLICE.scope, "wanhu"))
    assert shifted_buildings[building].centroid.distance(plain_buildings[building].centroid) * M_PER_DEG > 100

    for s, buildings in ((world, plain_buildings), (gcj, shifted_buildings)):
        guards, alerts = wall_layers(s)
        (guard,) = [f for f in guards["features"] if f["properties"]["active"]]
        (alert,) = [f for f in alerts["features"] if f["properties"]["severity"] == "critical"]
        assert metres_from(buildings[building], *guard["geometry"]["coordinates"]) == 0  # inside, on both tiles
        assert metres_from(buildings[building], *alert["geometry"]["coordinates"]) < 15  # at its door
    for camera, watched in throw_cameras(world).items():  # the coverage layer is shifted with the rest
        assert shifted_sectors[camera].contains(facade_centre(shifted_buildings[watched]))


# --- the camera-coverage layer -------------------------------------------------------------------


def facade_points(footprint: Any) -> list[Point]:
    """The middle and the two ends of a building's south façade (the demo's thrown-object cameras look
    up at it), a metre inside the walls."""
    minx, miny, maxx, _ = footprint.bounds
    inset = 0.00001
    return [Point(x, miny + inset) for x in ((minx + maxx) / 2, minx + inset, maxx - inset)]


def facade_centre(footprint: Any) -> Point:
    """The middle of a building's south façade."""
    return facade_points(footprint)[0]


def throw_cameras(world: Stores) -> dict[str, str]:
    """thrown-object camera → its building."""
    with world.sessions() as session:
        rows = session.execute(
            select(Device.id, Device.building_id).where(Device.community_id == "wanhu", Device.type == "throw_camera")
        )
        return {str(d): str(b) for d, b in rows}


def test_a_thrown_object_cameras_sector_covers_its_buildings_facade(world: Stores) -> None:
    cameras = throw_cameras(world)
    with world.sessions() as session:
        sectors = footprints(coverage_layer(session, POLICE.scope, "wanhu"))
        buildings = footprints(queries.building_layer(session, POLICE.scope, "wanhu"))
    assert len(cameras) == 10
    for camera, building in cameras.items():  # the whole façade, not only its middle
        assert all(sectors[camera].contains(p) for p in facade_points(buildings[building]))
    # every camera, gate face camera and thrown-object camera has a sector; no lock or sensor has one
    kinds = {f["properties"]["type"] for f in coverage_layer_features(world)}
    assert kinds == {"camera", "throw_camera", "face_gate"}


def coverage_layer_features(world: Stores) -> list[dict[str, Any]]:
    with world.sessions() as session:
        return list(coverage_layer(session, POLICE.scope, "wanhu")["features"])


def test_a_camera_without_a_heading_looks_at_its_building() -> None:
    square = shape({"type": "Polygon", "coordinates": [[[0, 0], [0.001, 0], [0.001, 0.001], [0, 0.001], [0, 0]]]})
    view = view_of("camera", {}, lat=0.0005, lon=0.0015, footprint=square)  # east of the building
    assert view.heading == pytest.approx(270)
    assert (view.fov, view.range_m) == (90.0, 30.0)
    assert view_of("camera", {"heading": 45, "fov": 120, "range_m": 60}, 0, 0, square) == View(45.0, 120.0, 60.0)


def test_a_device_import_with_a_bad_field_of_view_is_refused_with_its_row(world: Stores, tmp_path: Path) -> None:
    with world.sessions() as session:
        building = session.scalars(select(Building.id).where(Building.community_id == "wanhu")).first()
    path = tmp_path / "devices.csv"
    pd.DataFrame(
        [
            {"id": "CAM-NEW-1", "type": "camera", "building": building, "heading": 90, "fov": 70, "range_m": 25},
            {"id": "CAM-NEW-2", "type": "camera", "building": building, "heading": 180, "fov": 400, "range_m": 25},
            {"id": "CAM-NEW-3", "type": "camera", "building": building, "heading": "", "fov": "wide", "range_m": ""},
        ]
    ).to_csv(path, index=False)
    with world.sessions() as session:
        with pytest.raises(importers.ImportRejected) as caught:
            importers.import_table(session, "devices", path, "wanhu", id_hash_key=b"k")
        session.rollback()
    reasons = {(e.row, e.column): e.reason for e in caught.value.report.errors}
    assert reasons == {(2, "fov"): "must be from 1 to 360 (was 400)", (3, "fov"): "must be a number"}
    with world.sessions() as session:  # all or nothing: not even the good row
        assert session.get(Device, "CAM-NEW-1") is None


# --- batteries: on the device's popup and in the report ------------------------------------------


@pytest.fixture
def low_and_full(world: Stores) -> tuple[str, str]:
    """Two smoke detectors of a building's stairwells: one reports 12 %, the other 90 %."""
    with world.sessions() as session:
        low, full = session.scalars(
            select(Device.id)
            .where(Device.community_id == "wanhu", Device.type == "smoke_detector", Device.building_id.is_not(None))
            .order_by(Device.id)
            .limit(2)
        ).all()
    t = now_ms()
    feed(
        world,
        [
            {"type": "device.heartbeat", "device": low, "ts": t - 60_000, "data": {"battery": 12}},
            {"type": "device.heartbeat", "device": full, "ts": t - 60_000, "data": {"battery": 90}},
        ],
    )
    return low, full


def test_a_devices_popup_carries_its_battery_and_a_low_mark(world: Stores, low_and_full: tuple[str, str]) -> None:
    low, full = low_and_full
    server = LiveServer(world.settings)
    try:
        layer = fetch_layer(server, police_token(world), "devices")
    finally:
        server.stop()
    props = {f["properties"]["id"]: f["properties"] for f in layer["features"]}
    assert props[low]["battery"] == 12 and props[low]["battery_low"] is True
    assert props[full]["battery"] == 90 and props[full]["battery_low"] is False
    assert len(props[low]["battery_at"]) == len("12-06 21:03")  # Beijing time, as the popup shows it
    assert "battery" not in props[next(d for d in props if d not in (low, full))]  # never reported: nothing shown


def test_the_report_lists_low_batteries_by_name_and_place(world: Stores, low_and_full: tuple[str, str]) -> None:
    low, _ = low_and_full
    with world.sessions() as session:
        request = build_request(
            session,
            Principal(kind="user", id="admin", role="admin"),
            world.settings,
            communities="wanhu",
            start=dt.datetime.now(SHANGHAI).date().isoformat(),
            end=dt.datetime.now(SHANGHAI).date().isoformat(),
            lang="zh",
        )
        device = session.get(Device, low)
        assert device is not None and device.building_id is not None
        place = queries.entity_labels(session, [device.building_id], "zh")[device.building_id]
    data = collect(world, request, now_ms=now_ms())
    rows = data.tables["device_upkeep"].rows
    (row,) = [r for r in rows if r["upkeep"] == "更换电池"]
    assert row["battery"] == 12 and row["place"] == place and row["device"] == device.name
    assert row["reported_at"].startswith(dt.datetime.now(SHANGHAI).strftime("%Y-%m-%d"))
    assert all(r["battery"] != 90 for r in rows)
