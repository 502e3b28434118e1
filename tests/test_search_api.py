"""``POST /api/v1/events/search`` (issue #19, interfaces §9) over a real server on the demo registry:
events ingested, archived by a worker, then found by place, time, plate, person and kind, paged
with a signed cursor; every bad input refused naming its field; a grid worker kept to their grid;
the wall refused; every search audited."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from analytics.worker import Worker
from auth.models import AuditEntry
from auth.service import create_token
from core.timefmt import iso_utc, local_text, parse_rfc3339
from ingest.service import IngestService
from registry.models import Device
from store.stores import Stores
from tests.conftest import LiveServer

HOUR_MS = 3_600_000
PLATE = "苏J7Q123"
PERSON = "wanhu-P0001"


def role_token(world: Stores, role: str, community: str | None = "wanhu", grid: str | None = None) -> dict[str, str]:
    """Authorization headers of a fresh token of a role."""
    with world.sessions.begin() as session:
        _, text = create_token(session, scope="role", role=role, community=community, grid=grid, name="test")
    return {"Authorization": f"Bearer {text}"}


def square(lat: float, lon: float, half: float = 0.0002) -> dict[str, Any]:
    """A closed GeoJSON square around a point (about one building across)."""
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def box(points: list[tuple[float, float]], pad: float = 0.0002) -> dict[str, Any]:
    """A closed GeoJSON rectangle around (lat, lon) points."""
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    s, n, w, e = min(lats) - pad, max(lats) + pad, min(lons) - pad, max(lons) + pad
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


@dataclass
class Scene:
    """What was sent: the devices, the times, the server."""

    world: Stores
    url: str
    police: dict[str, str]
    now: int
    lock: Device  # a household's lock: the place searched
    far_lock: Device  # a lock in another grid, away from it
    gate: Device
    wearable: Device


def pick(world: Stores, device_type: str, **where: Any) -> list[Device]:
    with world.sessions() as session:
        query = select(Device).where(Device.community_id == "wanhu", Device.type == device_type).order_by(Device.id)
        for name, value in where.items():
            query = query.where(getattr(Device, name) == value)
        found = list(session.scalars(query))
        session.expunge_all()
        return found


def archive(world: Stores, events: list[dict[str, Any]]) -> None:
    """Ingest the events and let a worker archive them."""
    assert IngestService(world).ingest("wanhu", events).accepted == len(events)
    worker = Worker(world)
    worker.start_community("wanhu")
    assert worker.archiver is not None
    assert worker.archiver.run_once(["wanhu"]) == len(events)


def sent(event_id: str, kind: str, device: Device, ts: int, **data: Any) -> dict[str, Any]:
    """An event as a gateway sends it."""
    return {"id": event_id, "type": kind, "device": device.id, "ts": ts, "data": data}


@pytest.fixture
def scene(world: Stores) -> Iterator[Scene]:
    now = int(time.time() * 1000)
    lock = pick(world, "smart_lock", grid_id="wanhu-G1")[0]
    far_lock = next(
        d
        for d in pick(world, "smart_lock")
        if d.grid_id not in (None, "wanhu-G1") and abs(d.lat - lock.lat) + abs(d.lon - lock.lon) > 0.002
    )
    gate = pick(world, "vehicle_gate")[0]
    wearable = pick(world, "wearable")[0]
    events = [
        sent("s1", "lock.open", lock, now - 50_000, method="card"),
        sent("s2", "lock.open", lock, now - 40_000, method="face", person=PERSON),
        sent("s3", "guard.position", wearable, now - 30_000, lat=lock.lat + 0.00005, lon=lock.lon - 0.00005),
        sent("s4", "lock.open", far_lock, now - 20_000, method="card"),
        sent("s5", "gate.vehicle", gate, now - 10_000, direction="in", plate=PLATE),
        # a gateway's backlog: it happened three hours ago and arrives now
        sent("late", "lock.open", lock, now - 3 * HOUR_MS, method="key"),
    ]
    archive(world, events)
    server = LiveServer(world.settings)
    try:
        yield Scene(world, server.url, role_token(world, "police"), now, lock, far_lock, gate, wearable)
    finally:
        server.stop()


def query(scene: Scene, **fields: Any) -> dict[str, Any]:
    """A search body over the last hour, with fields changed (None removes one)."""
    body: dict[str, Any] = {
        "community": "wanhu",
        "from": iso_utc(scene.now - HOUR_MS),
        "to": iso_utc(scene.now + 1000),
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def post(scene: Scene, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(scene.url + "/api/v1/events/search", json=body, headers=headers or scene.police, timeout=30)


def ids(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


@pytest.mark.also_on_pg
def test_a_place_and_a_window_find_what_happened_there_late_events_too_and_pages_follow(scene: Scene) -> None:
    here = square(scene.lock.lat, scene.lock.lon)
    found = post(scene, query(scene, polygon=here))
    assert ids(found) == ["s1", "s2", "s3"]  # the lock's events and the guard who passed, in time order
    first = found.json()["items"][0]
    assert first["household"] == scene.lock.household_id and first["building"] == scene.lock.building_id
    assert first["location"] == {"lat": scene.lock.lat, "lon": scene.lock.lon}
    assert found.json()["next"] is None and "clipped" not in found.json()
    # paged two at a time over the whole community, every event once and in order
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = post(scene, query(scene, limit=2, cursor=cursor))
        seen += ids(page)
        pages += 1
        cursor = page.json()["next"]
        if cursor is None:
            break
    assert seen == ["s1", "s2", "s3", "s4", "s5"] and pages == 3
    # a cursor belongs to its query: the same cursor with another polygon is refused
    second = post(scene, query(scene, limit=1))
    other = post(scene, query(scene, limit=1, polygon=here, cursor=second.json()["next"]))
    assert other.status_code == 400 and other.json()["field"] == "cursor"
    # a gateway's backlog arrives now: found by when it happened, not when it arrived
    window = query(scene, **{"from": iso_utc(scene.now - 4 * HOUR_MS), "to": iso_utc(scene.now - 2 * HOUR_MS)})
    assert ids(post(scene, window)) == ["late"]


def test_building_plate_person_device_and_kinds_each_narrow_the_answer_and_each_search_is_audited(scene: Scene) -> None:
    with scene.world.sessions() as session:  # the world is a copy of the shared demo store: other tests' rows
        before = session.scalar(select(func.max(AuditEntry.id))) or 0
    assert ids(post(scene, query(scene, building=scene.lock.building_id))) == ["s1", "s2"]
    assert ids(post(scene, query(scene, household=scene.lock.household_id))) == ["s1", "s2"]
    assert ids(post(scene, query(scene, device=scene.far_lock.id))) == ["s4"]
    plate = post(scene, query(scene, plate=PLATE))
    assert ids(plate) == ["s5"] and plate.json()["items"][0]["data"]["plate"] == PLATE
    assert ids(post(scene, query(scene, person=PERSON))) == ["s2"]
    assert ids(post(scene, query(scene, types=["guard.position", "gate.vehicle"]))) == ["s3", "s5"]
    post(scene, query(scene, limit=0))
    with scene.world.sessions() as session:  # who searched what, refused searches too
        rows = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == "search", AuditEntry.id > before).order_by(AuditEntry.id)
            )
        )
    assert [r.outcome for r in rows] == ["ok"] * 6 + ["invalid"]
    assert PLATE in rows[3].reason and rows[3].role == "police" and rows[3].community_id == "wanhu"


def ring(*points: tuple[Any, Any]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(p) for p in points]]}


def test_every_bad_input_is_refused_naming_its_field_and_the_earliest_time_to_search(scene: Scene) -> None:
    lat, lon = scene.lock.lat, scene.lock.lon
    bowtie = ring((lon, lat), (lon + 0.001, lat + 0.001), (lon + 0.001, lat), (lon, lat + 0.001), (lon, lat))
    far = square(lat + 0.01, lon)["coordinates"][0]
    holed = {"type": "Polygon", "coordinates": [square(lat, lon)["coordinates"][0], far]}
    refusals: list[tuple[dict[str, Any], str, str]] = [
        (query(scene, polygon={"type": "Point", "coordinates": [lon, lat]}), "polygon", "GeoJSON Polygon"),
        (query(scene, polygon=ring((lon, lat), (lon + 0.001, lat), (lon, lat))), "polygon", "at least 4"),
        (
            query(scene, polygon=ring((lon, lat), (lon + 0.001, lat), (lon, lat + 0.001), (lon + 0.0001, lat))),
            "polygon",
            "not closed",
        ),
        (query(scene, polygon=bowtie), "polygon", "crosses itself"),
        (query(scene, polygon=holed), "polygon", "invalid (Hole lies outside shell"),
        (query(scene, polygon=ring((lon, lat), ("x", lat), (lon, lat + 1), (lon, lat))), "polygon", "position"),
        (query(scene, polygon=square(lat + 1.0, lon)), "polygon", "does not reach into community wanhu"),
        (query(scene, **{"from": "yesterday"}), "from", "RFC 3339"),
        (query(scene, **{"to": "2026-13-01T00:00:00+08:00"}), "to", "RFC 3339"),
        (query(scene, **{"from": "2026-11-25T00:00:00"}), "from", "RFC 3339"),  # no offset
        (query(scene, **{"to": iso_utc(scene.now - 2 * HOUR_MS)}), "to", "later than from"),
        (query(scene, limit=0), "limit", "1 to 1000"),
        (query(scene, limit=1001), "limit", "1 to 1000"),
        (query(scene, limit="ten"), "limit", "integer"),
        (query(scene, types=["lock.open", "door.opened"]), "types", "door.opened"),
        (query(scene, building="wanhu-B999"), "building", "not in community"),
        (query(scene, community=None), "community", "required"),
        (query(scene, grid="wanhu-G2"), "grid", "not a search field"),
        (query(scene, cursor="forged.0123"), "cursor", "another query"),
    ]
    for body, field, words in refusals:
        answer = post(scene, body, {**scene.police, "Cookie": "st_lang=en"})
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["field"] == field, (body, answer.json())
        assert words in answer.json()["error"], (body, answer.json())
    unknown = post(scene, query(scene, community="atlantis"), role_token(scene.world, "admin", None))
    assert unknown.status_code == 400 and unknown.json()["field"] == "community"
    not_json = requests.post(scene.url + "/api/v1/events/search", data="x", headers=scene.police, timeout=30)
    assert not_json.status_code == 400 and not_json.json()["field"] == "body"
    spec = requests.get(scene.url + "/api/v1/openapi.json", timeout=30).json()
    assert "400" in spec["paths"]["/api/v1/events/search"]["post"]["responses"]  # integrators read the rules
    chinese = post(scene, query(scene, polygon=bowtie))
    assert "自相交" in chinese.json()["error"]  # Chinese by default
    # a window beyond the events' retention (180 days) is refused with the earliest time to search
    days = 181 * 24 * HOUR_MS
    for body, field in (
        (query(scene, **{"from": iso_utc(scene.now - days)}), "to"),  # longer than 180 days
        (query(scene, **{"from": iso_utc(scene.now - days), "to": iso_utc(scene.now - days + HOUR_MS)}), "from"),
    ):
        answer = post(scene, body)
        assert answer.status_code == 400 and answer.json()["field"] == field, answer.text
        earliest = answer.json()["earliest"]
        shown = local_text(parse_rfc3339(earliest), "%Y-%m-%d %H:%M")  # in Asia/Shanghai
        assert "180" in answer.json()["error"] and shown in answer.json()["error"]
        retried = post(scene, query(scene, **{"from": earliest}))
        assert retried.status_code == 200, retried.text


def test_a_grid_worker_searches_only_their_grid_and_the_wall_not_at_all(world: Stores, scene: Scene) -> None:
    both = box([(scene.lock.lat, scene.lock.lon), (scene.far_lock.lat, scene.far_lock.lon)])
    assert ids(post(scene, query(scene, polygon=both))) == ["s1", "s2", "s3", "s4"]
    worker = role_token(world, "grid_worker", grid="wanhu-G1")
    clipped = post(scene, query(scene, polygon=both), worker)
    # a guard's position counts in the grid of their wearable (the archive's grid of the row)
    guard = ["s3"] if scene.wearable.grid_id == "wanhu-G1" else []
    assert ids(clipped) == ["s1", "s2", *guard]
    assert clipped.json()["clipped"] is True and "网格" in clipped.json()["note"]
    inside = post(scene, query(scene, polygon=square(scene.lock.lat, scene.lock.lon, 0.00005)), worker)
    assert ids(inside) == ["s1", "s2", *guard] and "clipped" not in inside.json()
    assert ids(post(scene, query(scene), worker)) == ["s1", "s2", *guard]  # no polygon: their grid's events only


def test_the_wall_guards_property_and_other_communities_may_not_search(world: Stores, scene: Scene) -> None:
    for role, community in (("wall", "wanhu"), ("property", "wanhu"), ("guard", "wanhu"), ("police", "xingbang")):
        answer = post(scene, query(scene), role_token(world, role, community))
        assert answer.status_code == 403, (role, answer.text)
    anonymous = requests.post(scene.url + "/api/v1/events/search", json=query(scene), timeout=30)
    assert anonymous.status_code == 401
