"""A per-process cache of the registry facts that ingest and the rules read on every event.

Loaded from SQL per community and refreshed after ``ttl_s`` seconds, or at once (rate limited)
when an unknown id shows up, so a device registered a moment ago is accepted without a restart.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest.schema import DeviceInfo
from registry.facade import Facade, natural_key
from registry.models import (
    Building,
    Device,
    Guard,
    Household,
    PatrolCheckpoint,
    PatrolRoute,
    Person,
    PersonTag,
    Residency,
    Vehicle,
)

# the devices of an elder living alone's flat that can tell the elder is up and about (docs/rules.md)
ELDER_HOME_TYPES = frozenset({"door_sensor", "water_meter", "power_meter", "smart_lock"})


@dataclass
class CommunityFacts:
    """What one community's events are judged against."""

    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    guards: dict[str, dict[str, Any]] = field(default_factory=dict)
    # household id → ids of the people registered as living there
    occupants: dict[str, set[str]] = field(default_factory=dict)
    households: dict[str, dict[str, Any]] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    face_ids: dict[str, str] = field(default_factory=dict)  # registered face id → person id
    id_hashes: dict[str, str] = field(default_factory=dict)  # id hash → person id
    vehicles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # door sensor id → (person id, threshold hours) of the elder living alone it watches
    elder_sensors: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    elder_sensor_of: dict[str, str] = field(default_factory=dict)  # elder living alone → their door sensor
    # the other devices of an elder living alone's flat (water and power meters, smart lock) → the elder
    elder_devices: dict[str, str] = field(default_factory=dict)
    # water meter id → (person id, threshold hours) of the elder living alone in its flat
    elder_water_meters: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    elder_water_meter_of: dict[str, str] = field(default_factory=dict)  # elder living alone → their water meter
    silent_hours: dict[str, float] = field(default_factory=dict)  # per-device silence overrides
    wearables: dict[str, str] = field(default_factory=dict)  # wearable device id → guard id
    # patrol routes: id → {"interval", "start_hour", "end_hour", "tolerance", "checkpoints": [(seq, device, offset)]}
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # thrown-object cameras: device id → the façade it faces (registry/facade.py)
    facades: dict[str, Facade] = field(default_factory=dict)
    # (building, unit, floor) → household ids in the natural order of their room labels
    landings: dict[tuple[str, int, int], list[str]] = field(default_factory=dict)
    loaded_at: float = 0.0
    loaded_ms: int = 0  # wall-clock ms at which the read began (which of two processes' facts is newer)


@dataclass
class Directory:
    """Registry facts per community, cached in this process."""

    sessions: sessionmaker[Session]
    ttl_s: float = 60.0
    miss_reload_s: float = 5.0
    max_communities: int = 256  # least recently used communities beyond this are dropped (a city's worth)
    _facts: OrderedDict[str, CommunityFacts] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def facts(self, community: str) -> CommunityFacts:
        """The community's facts (reloaded when stale)."""
        found = self._facts.get(community)
        if found is None or time.monotonic() - found.loaded_at > self.ttl_s:
            with self._lock:
                found = self._facts.get(community)
                if found is None or time.monotonic() - found.loaded_at > self.ttl_s:
                    found = self._load(community)
                    self._facts[community] = found
                    while len(self._facts) > self.max_communities:
                        self._facts.popitem(last=False)
        if len(self._facts) > 1:
            with contextlib.suppress(KeyError):  # dropped meanwhile by another thread: still valid here
                self._facts.move_to_end(community)
        return found

    def device(self, community: str, device_id: str) -> DeviceInfo | None:
        """A registered device, reloading once when it is unknown."""
        facts = self.facts(community)
        info = facts.devices.get(device_id)
        if info is None and time.monotonic() - facts.loaded_at > self.miss_reload_s:
            with self._lock:
                self._facts[community] = facts = self._load(community)
            info = facts.devices.get(device_id)
        return info

    def guard_known(self, community: str, guard_id: str) -> bool:
        """True when the guard is registered in the community."""
        facts = self.facts(community)
        if guard_id not in facts.guards and time.monotonic() - facts.loaded_at > self.miss_reload_s:
            with self._lock:
                self._facts[community] = facts = self._load(community)
        return guard_id in facts.guards

    def invalidate(self) -> None:
        """Forget everything (tests; after registry changes)."""
        with self._lock:
            self._facts.clear()

    def _load(self, community: str) -> CommunityFacts:
        # column reads, not ORM objects: a community's whole registry is read at every worker start
        # and every ttl_s, and building 20,000 mapped instances (with their selectin relations)
        # took most of the time
        facts = CommunityFacts(loaded_at=time.monotonic(), loaded_ms=int(time.time() * 1000))
        rooms: dict[tuple[str, int, int], list[tuple[str, str]]] = {}
        with self.sessions() as session:
            units_of = select(Building.id, Building.units).where(Building.community_id == community)
            building_units = dict(session.execute(units_of).tuples().all())
            devices = select(
                Device.id,
                Device.type,
                Device.building_id,
                Device.household_id,
                Device.grid_id,
                Device.lat,
                Device.lon,
                Device.floor,
                Device.silent_hours,
                Device.config,
            ).where(Device.community_id == community)
            for d in session.execute(devices):
                facts.devices[d.id] = DeviceInfo(
                    id=d.id,
                    type=d.type,
                    community=community,
                    building=d.building_id,
                    household=d.household_id,
                    grid=d.grid_id,
                    lat=d.lat,
                    lon=d.lon,
                    floor=d.floor,
                )
                if d.silent_hours:
                    facts.silent_hours[d.id] = d.silent_hours
                if d.type == "throw_camera" and (facade := Facade.from_config(d.config, building_units)) is not None:
                    facts.facades[d.id] = facade
            guards = select(Guard.id, Guard.name, Guard.kind, Guard.grid_id, Guard.device_id, Guard.on_duty).where(
                Guard.community_id == community
            )
            for g in session.execute(guards):
                facts.guards[g.id] = {
                    "name": g.name,
                    "kind": g.kind,
                    "grid": g.grid_id,
                    "device": g.device_id,
                    "on_duty": g.on_duty,
                }
                if g.device_id:
                    facts.wearables[g.device_id] = g.id
            households = select(
                Household.id,
                Household.building_id,
                Household.grid_id,
                Household.category,
                Household.floor,
                Household.unit,
                Household.room,
            ).where(Household.community_id == community)
            for h in session.execute(households):
                facts.households[h.id] = {
                    "building": h.building_id,
                    "grid": h.grid_id,
                    "category": h.category,
                    "floor": h.floor,
                    "unit": h.unit,
                    "room": h.room,
                }
                rooms.setdefault((h.building_id, h.unit, h.floor), []).append((h.room, h.id))
            people = select(Person.id, Person.elder_inactive_hours, Person.id_hash, Person.face_id).where(
                Person.community_id == community
            )
            for p in session.execute(people):
                facts.people[p.id] = {"tags": set(), "threshold": p.elder_inactive_hours, "id_hash": p.id_hash}
                if p.face_id:
                    facts.face_ids[p.face_id] = p.id
                if p.id_hash:
                    facts.id_hashes[p.id_hash] = p.id
            for person_id, tag in session.execute(
                select(PersonTag.person_id, PersonTag.tag)
                .join(Person, Person.id == PersonTag.person_id)
                .where(Person.community_id == community)
            ):
                facts.people[person_id]["tags"].add(tag)
            for person_id, household_id in session.execute(
                select(Residency.person_id, Residency.household_id)
                .join(Person, Person.id == Residency.person_id)
                .where(Person.community_id == community)
            ):
                facts.occupants.setdefault(household_id, set()).add(person_id)
                facts.people[person_id]["household"] = household_id
            routes = select(
                PatrolRoute.id,
                PatrolRoute.interval_minutes,
                PatrolRoute.start_hour,
                PatrolRoute.end_hour,
                PatrolRoute.tolerance_minutes,
            ).where(PatrolRoute.community_id == community)
            for route in session.execute(routes):
                facts.routes[route.id] = {
                    "interval": route.interval_minutes,
                    "start_hour": route.start_hour,
                    "end_hour": route.end_hour,
                    "tolerance": route.tolerance_minutes,
                    "checkpoints": [],
                }
            checkpoints = (
                select(
                    PatrolCheckpoint.route_id,
                    PatrolCheckpoint.seq,
                    PatrolCheckpoint.device_id,
                    PatrolCheckpoint.offset_minutes,
                )
                .join(PatrolRoute, PatrolRoute.id == PatrolCheckpoint.route_id)
                .where(PatrolRoute.community_id == community)
                .order_by(PatrolCheckpoint.route_id, PatrolCheckpoint.seq)
            )
            for c in session.execute(checkpoints):
                facts.routes[c.route_id]["checkpoints"].append((c.seq, c.device_id, c.offset_minutes))
            vehicles = select(Vehicle.plate, Vehicle.owner_id, Vehicle.blacklisted, Vehicle.note).where(
                Vehicle.community_id == community
            )
            for v in session.execute(vehicles):
                facts.vehicles[v.plate] = {"owner": v.owner_id, "blacklisted": v.blacklisted, "note": v.note}
        for landing, found in rooms.items():
            facts.landings[landing] = [hid for _room, hid in sorted(found, key=lambda r: natural_key(r[0]))]
        for device in facts.devices.values():
            if device.type not in ELDER_HOME_TYPES or device.household is None:
                continue
            for person_id in facts.occupants.get(device.household, set()):
                person = facts.people[person_id]
                if "elderly_alone" not in person["tags"]:
                    continue
                if device.type == "door_sensor":
                    facts.elder_sensors[device.id] = (person_id, person["threshold"])
                    facts.elder_sensor_of[person_id] = device.id
                else:
                    facts.elder_devices[device.id] = person_id
                if device.type == "water_meter":
                    facts.elder_water_meters[device.id] = (person_id, person["threshold"])
                    facts.elder_water_meter_of[person_id] = device.id
        return facts
