"""Every rule, table-driven, through the real ingest and worker with a hand-moved clock: firing, not
firing, clearing, a worker restart in the middle, out-of-order input, duplicates, clock skew."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from alerts.live import AlertStore
from analytics.worker import Worker
from core.clock import ManualClock
from ingest.directory import Directory
from ingest.service import IngestService
from registry.demo import WANTED_ID
from registry.models import Device, Vehicle
from store.stores import Stores
from tests.test_pipeline import drain

H = 3_600_000
M = 60_000
T0 = 1_790_000_000_000  # a Monday afternoon


@dataclass
class Ids:
    """Devices and identities of the demo world the scenarios use."""

    sensor: str
    elder: str
    camera: str
    lock: str
    tenant_face: str
    detector: str
    barrier: str
    blacklisted: str
    resident_plate: str
    throw_camera: str
    throw_building: str


@pytest.fixture
def ids(world: Stores) -> Ids:
    facts = Directory(world.sessions).facts("wanhu")
    sensor, (elder, _) = sorted(facts.elder_sensors.items())[0]
    faces_of = {pid: fid for fid, pid in facts.face_ids.items()}
    lock = next(
        d
        for d in sorted(facts.devices.values(), key=lambda d: d.id)
        if d.type == "smart_lock" and any(p in faces_of for p in facts.occupants.get(d.household or "", ()))
    )
    face = next(faces_of[p] for p in sorted(facts.occupants[lock.household or ""]) if p in faces_of)
    with world.sessions() as session:
        first = {
            t: session.scalars(
                select(Device).where(Device.community_id == "wanhu", Device.type == t).order_by(Device.id)
            ).first()
            for t in ("camera", "smoke_detector", "vehicle_gate", "throw_camera")
        }
        blacklisted = session.scalars(select(Vehicle.plate).where(Vehicle.blacklisted.is_(True))).first()
        resident = session.scalars(
            select(Vehicle.plate).where(Vehicle.blacklisted.is_(False), Vehicle.community_id == "wanhu")
        ).first()
    assert blacklisted and resident
    camera, detector, barrier, thrower = (
        first[t] for t in ("camera", "smoke_detector", "vehicle_gate", "throw_camera")
    )
    assert camera and detector and barrier and thrower
    return Ids(
        sensor=sensor,
        elder=elder,
        camera=camera.id,
        lock=lock.id,
        tenant_face=face,
        detector=detector.id,
        barrier=barrier.id,
        blacklisted=blacklisted,
        resident_plate=resident,
        throw_camera=thrower.id,
        throw_building=thrower.building_id or "",
    )


class Scenario:
    """Drives events and time through the production ingest and worker."""

    def __init__(self, world: Stores) -> None:
        self.world = world
        self.clock = ManualClock(T0)
        self.directory = Directory(world.sessions)
        self.ingest = IngestService(world, directory=self.directory, clock=self.clock)
        self.worker = self._worker()

    def _worker(self) -> Worker:
        worker = Worker(self.world, consumer="rules", clock=self.clock, directory=self.directory)
        worker.start_community("wanhu", seed_timers=False)
        return worker

    def at(self, offset_ms: int, *events: dict[str, Any]) -> Scenario:
        """Move the clock to T0 + offset, fire due timers, then process the events."""
        self.sweep_to(T0 + offset_ms)
        if events:
            result = self.ingest.ingest("wanhu", list(events))
            assert not result.rejected, result.rejected
            drain(self.worker)
        return self

    def sweep_to(self, ms: int) -> None:
        """Fire every timer due up to ms, each at its own time (the first sweep plans the schedules too)."""
        self.worker.sweep("wanhu")
        while (due := self.worker.next_due("wanhu")) is not None and due <= ms:
            self.clock.set(due)
            if self.worker.sweep("wanhu") == 0:
                break
        self.clock.set(ms)

    def restart(self) -> Scenario:
        """A new worker process: nothing survives but what is in Redis."""
        self.worker = self._worker()
        return self

    def open(self, alert_type: str) -> list[dict[str, Any]]:
        """The open alerts of a type."""
        return [
            a for a in AlertStore(self.world.redis, self.world.keys).open_alerts("wanhu") if a["type"] == alert_type
        ]


def door(ids: Ids, ts: int, state: str = "open", **extra: Any) -> dict[str, Any]:
    return {"type": "door.contact", "device": ids.sensor, "ts": ts, "data": {"state": state}, **extra}


def beat(device: str, ts: int) -> dict[str, Any]:
    return {"type": "device.heartbeat", "device": device, "ts": ts, "data": {"battery": 90}}


def lock(ids: Ids, ts: int, **data: Any) -> dict[str, Any]:
    return {"type": "lock.open", "device": ids.lock, "ts": ts, "data": {"method": "face", **data}}


# --- elder.inactive ---------------------------------------------------------------------------


def heartbeats(ids: Ids, hours: int) -> list[dict[str, Any]]:
    return [beat(ids.sensor, T0 + h * H) for h in range(hours + 1)]


@pytest.mark.parametrize(
    ("case", "expect_open"), [("fires", 1), ("door_used_in_time", 0), ("restart", 1), ("out_of_order", 1)]
)
def test_elder_inactive(world: Stores, ids: Ids, case: str, expect_open: int) -> None:
    s = Scenario(world).at(0, door(ids, T0))
    for hour in range(1, 14):
        events = [beat(ids.sensor, T0 + hour * H)]
        if case == "door_used_in_time" and hour == 11:
            events.append(door(ids, T0 + hour * H))
        if case == "out_of_order" and hour == 13:
            events.append(door(ids, T0 - 2 * H))  # an old event arriving late: must neither postpone nor clear
        if case == "restart" and hour == 6:
            s.restart()
        s.at(hour * H, *events)
    alerts = s.open("elder.inactive")
    assert len(alerts) == expect_open
    if alerts:
        assert alerts[0]["subject"]["person"] == ids.elder
        assert alerts[0]["detected_at"] == "2026-09-22T02:13:20.000Z"  # exactly 12 h after the door
    assert s.open("sensor.silent") == []  # heartbeats kept coming: not a silent sensor


@pytest.mark.also_on_cluster
def test_elder_inactive_clears_on_the_next_door_event(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(0, door(ids, T0), *heartbeats(ids, 0))
    s.at(13 * H, beat(ids.sensor, T0 + 13 * H))
    assert len(s.open("elder.inactive")) == 1
    s.at(13 * H + M, door(ids, T0 + 13 * H + M))
    assert s.open("elder.inactive") == []


# --- sensor.silent and device.offline --------------------------------------------------------


@pytest.mark.parametrize(("gap_hours", "expected"), [(1, 0), (3, 1)])
def test_sensor_silent(world: Stores, ids: Ids, gap_hours: int, expected: int) -> None:
    s = Scenario(world).at(0, beat(ids.sensor, T0))
    s.at(gap_hours * H)
    assert len(s.open("sensor.silent")) == expected
    if expected:
        s.at(gap_hours * H + M, beat(ids.sensor, T0 + gap_hours * H + M))
        assert s.open("sensor.silent") == []


@pytest.mark.parametrize(("case", "expected"), [("silent", 1), ("heartbeats", 0), ("restart", 1)])
def test_device_offline(world: Stores, ids: Ids, case: str, expected: int) -> None:
    s = Scenario(world).at(0, beat(ids.camera, T0))
    if case == "heartbeats":
        s.at(30 * M, beat(ids.camera, T0 + 30 * M)).at(60 * M, beat(ids.camera, T0 + 60 * M))
    if case == "restart":
        s.restart()
    s.at(70 * M)
    assert len(s.open("device.offline")) == expected


def test_device_offline_skew_and_late_heartbeat(world: Stores, ids: Ids) -> None:
    """A device clock two minutes fast is accepted and raises nothing; a heartbeat that arrives late
    but was sent after the silence began clears the alert."""
    s = Scenario(world).at(0, beat(ids.camera, T0 + 2 * M))
    s.at(30 * M, beat(ids.camera, T0 + 30 * M))
    s.at(65 * M)
    assert s.open("device.offline") == []
    s.at(95 * M)
    assert len(s.open("device.offline")) == 1
    s.at(96 * M, beat(ids.camera, T0 + 85 * M))
    assert s.open("device.offline") == []


# --- rentals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"face_id": "STRANGER1"}, 1),
        ({}, 1),  # no identity at all (a mechanical key)
        ({"id_number": WANTED_ID}, 1),
        ("registered", 0),
    ],
)
def test_lock_unregistered(world: Stores, ids: Ids, data: Any, expected: int) -> None:
    payload = {"face_id": ids.tenant_face} if data == "registered" else data
    s = Scenario(world).at(0, lock(ids, T0, **payload))
    assert len(s.open("lock.unregistered")) == expected


@pytest.mark.parametrize(
    ("days", "expected"),
    # [1, 0]: the day-0 opening arrives late, after the day-1 one; [9, 0]: late, and out of the window
    [([0], 0), ([0, 1], 1), ([0, 9], 0), ([0, 0], 0), ([1, 0], 1), ([9, 0], 0)],
)
def test_tenant_unregistered(world: Stores, ids: Ids, days: list[int], expected: int) -> None:
    s = Scenario(world)
    for i, day in enumerate(days):
        ts = T0 + day * 24 * H + i * M
        s.at(ts - T0, lock(ids, ts, face_id="NEWCOMER"))
    alerts = s.open("tenant.unregistered")
    assert len(alerts) == expected
    if alerts:
        assert alerts[0]["severity"] == "high" and len(alerts[0]["evidence"]["days_seen"]) == 2


def test_watchlist_match_is_critical_and_carries_no_id_number(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(0, lock(ids, T0, id_number=WANTED_ID))
    (alert,) = s.open("watchlist.match")
    assert alert["severity"] == "critical"
    assert WANTED_ID not in str(alert)


# --- hazards ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "expected"), [("alarm", 1), ("test", 0)])
def test_smoke(world: Stores, ids: Ids, level: str, expected: int) -> None:
    s = Scenario(world).at(0, {"type": "smoke.alarm", "device": ids.detector, "ts": T0, "data": {"level": level}})
    assert len(s.open("smoke")) == expected


@pytest.mark.parametrize(("which", "expected"), [("blacklisted", 1), ("resident_plate", 0)])
def test_gate_blacklist(world: Stores, ids: Ids, which: str, expected: int) -> None:
    plate = getattr(ids, which)
    s = Scenario(world).at(
        0, {"type": "gate.vehicle", "device": ids.barrier, "ts": T0, "data": {"direction": "in", "plate": plate}}
    )
    assert len(s.open("gate.blacklist")) == expected


@pytest.mark.also_on_cluster
def test_throw_is_traced_to_a_household_and_fall_alerts(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(
        0,
        {
            "type": "camera.throw",
            "device": ids.throw_camera,
            "ts": T0,
            "data": {
                "origin": {"building": ids.throw_building, "floor": 3, "column": 2},
                "trajectory": [[0, 400, 100], [100, 402, 140], [200, 404, 220]],
            },
        },
        {"type": "camera.fall", "device": ids.camera, "ts": T0, "data": {"bbox": [1, 2, 3, 4]}},
    )
    (throw,) = s.open("throw")
    assert throw["subject"]["household"] == f"{ids.throw_building}-1-302"
    assert len(s.open("fall")) == 1


# --- hygiene -----------------------------------------------------------------------------------


@pytest.mark.also_on_cluster
def test_a_duplicate_event_counts_once_and_a_repeat_raises_the_count(world: Stores, ids: Ids) -> None:
    smoke = {"type": "smoke.alarm", "device": ids.detector, "data": {"level": "alarm"}}
    s = Scenario(world).at(0, smoke | {"id": "a", "ts": T0}, smoke | {"id": "a", "ts": T0})
    assert [a["count"] for a in s.open("smoke")] == [1]
    s.at(M, smoke | {"id": "b", "ts": T0 + M})
    assert [a["count"] for a in s.open("smoke")] == [2]


@pytest.mark.also_on_cluster
def test_a_flapping_alert_holds_its_notifications_back(world: Stores, ids: Ids) -> None:
    """A sensor that drops out and comes back every minute: from the third cycle in ten minutes the
    alert is marked flapping (the wall neither flies to it nor makes it pulse)."""
    with world.sessions.begin() as session:
        sensor = session.get(Device, ids.sensor)
        assert sensor is not None
        sensor.silent_hours = 1 / 60  # a one-minute silence threshold, to compress the cycles
    s = Scenario(world).at(0, beat(ids.sensor, T0))
    flags = []
    for cycle in range(5):
        base = cycle * 2 * M
        s.at(base + M + 5_000)
        opened = s.open("sensor.silent")
        flags.append(bool(opened and opened[0].get("flapping")))
        s.at(base + 2 * M, beat(ids.sensor, T0 + base + 2 * M))
    assert flags == [False, False, False, True, True]


@pytest.mark.also_on_cluster
def test_late_events_that_cannot_clear_an_alert_are_not_flapping(world: Stores, ids: Ids) -> None:
    """A gateway flushing old buffered heartbeats after an outage: each is older than the silence,
    so none clears the alert, and none counts as an open/clear cycle."""
    with world.sessions.begin() as session:
        sensor = session.get(Device, ids.sensor)
        assert sensor is not None
        sensor.silent_hours = 1 / 60
    s = Scenario(world).at(0, beat(ids.sensor, T0))
    s.at(M + 5_000)
    (silent,) = s.open("sensor.silent")
    for k in range(4):  # stale heartbeats from before the silence, arriving late
        s.at(M + 10_000 + k * 1000, beat(ids.sensor, T0 - (k + 1) * 1000) | {"id": f"late{k}"})
        assert [a["id"] for a in s.open("sensor.silent")] == [silent["id"]]
    s.at(2 * M, beat(ids.sensor, T0 + 2 * M))  # really back: one cycle
    assert s.open("sensor.silent") == []
    s.at(3 * M + 5_000)  # silent again
    (again,) = s.open("sensor.silent")
    assert not again.get("flapping")
