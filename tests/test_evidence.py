"""Evidence images belong to a community: kept in its folder, named by an opaque id, served only
to those who may see the alert, never to the wall, and no server path ever leaves the server."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from alerts.live import AlertStore
from app import create_app
from registry.models import Device
from store.stores import Stores
from tests.test_wall import feed, now_ms
from tests.test_wanted_list import signed_in, wall_client

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

ORIGIN = {"Origin": "http://localhost"}


@dataclass
class Camera:
    """A thrown-object camera of Wanhu Xincun and the grid it is in."""

    id: str
    building: str
    grid: str


@pytest.fixture
def camera(world: Stores) -> Camera:
    with world.sessions() as session:
        found = session.execute(
            select(Device.id, Device.building_id, Device.grid_id)
            .where(Device.type == "throw_camera", Device.community_id == "wanhu", Device.grid_id.is_not(None))
            .order_by(Device.id)
        ).first()
    assert found is not None
    camera, building, grid = found
    assert building and grid
    return Camera(camera, building, grid)


def jpeg(seed: int) -> bytes:
    """A small JPEG of its own."""
    image = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


def evidence_file(world: Stores, community: str, seed: int) -> tuple[str, Path, bytes]:
    """An evidence image of the community as the video pipeline leaves it: <var>/evidence/<community>/<id>.jpg."""
    eid = secrets.token_hex(16)
    data = jpeg(seed)
    path = world.settings.var_dir / "evidence" / community / f"{eid}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return eid, path, data


def throw(camera: Camera, floor: int, image: str) -> dict[str, Any]:
    """A camera.throw event from a given floor (each floor is an alert of its own)."""
    return {
        "type": "camera.throw",
        "device": camera.id,
        "ts": now_ms() - 5_000,
        "data": {
            "origin": {"building": camera.building, "floor": floor, "column": 1},
            "trajectory": [[0, 100.0, 50.0], [40, 100.5, 60.0], [80, 101.0, 75.0]],
            "image": image,
        },
    }


def throw_alerts(world: Stores) -> dict[int, dict[str, Any]]:
    """floor → the open throw alert from it."""
    return {
        a["evidence"]["origin"]["floor"]: a
        for a in AlertStore(world.redis, world.keys).open_alerts("wanhu")
        if a["type"] == "throw"
    }


def image_url(alert: dict[str, Any]) -> str:
    return f"/api/v1/alerts/wanhu/{alert['id']}/evidence.jpg"


def test_a_wanhu_alert_cannot_serve_a_xingbang_evidence_file(world: Stores, camera: Camera) -> None:
    xb_id, xb_path, xb_bytes = evidence_file(world, "xingbang", seed=1)
    # a link in Wanhu's folder that leads to Xingbang's file
    link_id = secrets.token_hex(16)
    link = world.settings.var_dir / "evidence" / "wanhu" / f"{link_id}.jpg"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(xb_path)
    references = [str(xb_path), xb_id, str(xb_path.parent), link_id, str(link)]
    feed(world, [throw(camera, floor, ref) for floor, ref in enumerate(references, start=2)])
    alerts = throw_alerts(world)
    assert set(alerts) == {2, 3, 4, 5, 6}  # the throws are alerts all the same: only the image is refused
    police = signed_in(create_app(world), "police.wanhu")
    for alert in alerts.values():
        response = police.get(image_url(alert))
        assert response.status_code == 404
        assert response.get_data() != xb_bytes


def test_police_of_the_community_get_the_image_bytes(world: Stores, camera: Camera) -> None:
    by_id, _, id_bytes = evidence_file(world, "wanhu", seed=2)
    _, by_path, path_bytes = evidence_file(world, "wanhu", seed=3)
    # the id the video pipeline now sends, and the path older producers sent (inside the community's folder)
    feed(world, [throw(camera, 2, by_id), throw(camera, 3, str(by_path))])
    alerts = throw_alerts(world)
    police = signed_in(create_app(world), "police.wanhu")
    for floor, expected in ((2, id_bytes), (3, path_bytes)):
        response = police.get(image_url(alerts[floor]))
        assert response.status_code == 200
        assert response.mimetype == "image/jpeg" and response.get_data() == expected


def test_the_alert_json_carries_no_server_path(world: Stores, camera: Camera) -> None:
    eid, path, _ = evidence_file(world, "wanhu", seed=4)
    feed(world, [throw(camera, 2, str(path))])
    response = signed_in(create_app(world), "police.wanhu").get("/api/v1/alerts?status=all")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and '"throw"' in body
    evidence_dir = str(world.settings.var_dir / "evidence")
    assert "/var/" not in body and evidence_dir not in body and str(world.settings.var_dir) not in body
    (alert,) = [a for a in response.get_json() if a["type"] == "throw"]
    assert alert["evidence"]["image"] == eid  # an opaque id
    # nor in the alert document the console and the wall read
    stored = str(throw_alerts(world)[2])
    assert evidence_dir not in stored and "/var/" not in stored


def test_the_wall_gets_no_evidence(world: Stores, camera: Camera) -> None:
    _, path, _ = evidence_file(world, "wanhu", seed=5)
    feed(world, [throw(camera, 2, str(path))])
    alert = throw_alerts(world)[2]
    wall = wall_client(create_app(world), world)
    assert wall.get(image_url(alert)).status_code in (403, 404)
    response = wall.get("/api/v1/alerts?status=all")
    (seen,) = [a for a in response.get_json() if a["type"] == "throw"]
    assert "image" not in seen["evidence"] and "evidence.jpg" not in response.get_data(as_text=True)


def test_a_grid_worker_gets_the_image_of_their_grid_only(world: Stores, camera: Camera) -> None:
    eid, _, data = evidence_file(world, "wanhu", seed=6)
    feed(world, [throw(camera, 2, eid)])
    alert = throw_alerts(world)[2]
    app = create_app(world)
    other_grid = "wanhu-G1" if camera.grid != "wanhu-G1" else "wanhu-G2"
    assert signed_in(app, f"grid.{other_grid}").get(image_url(alert)).status_code == 404
    mine = signed_in(app, f"grid.{camera.grid}").get(image_url(alert))
    assert mine.status_code == 200 and mine.get_data() == data
