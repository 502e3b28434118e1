"""What the maps draw besides the registry: every layer on GCJ-02 tiles, the camera-coverage layer,
devices' batteries (issue #20, device upkeep, first half)."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from shapely.geometry import Point, shape
from sqlalchemy import select

from analytics.worker import Worker
from auth.principal import Principal
from auth.service import create_token
from ingest.service import IngestService
from layouts.wall_data import alert_layer, feed_items, guard_layer, guard_roster
from registry import queries
from registry.models import Device
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
        shifted_buildings = footprints(fetch_layer(server, police_token(world), "buildings"))
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
