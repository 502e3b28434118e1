"""The demo world as the simulator sees it: who lives where, which devices, the path network."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from sqlalchemy import select
from sqlalchemy.orm import Session

from geodata.network import path_graph, walking_path
from registry.models import Building, Device, Guard, Household, PatrolRoute, Person, PersonTag, Residency, Vehicle
from registry.queries import path_geometries
from simulator.demo_roster import team_of


@dataclass
class Elder:
    """An elder living alone, the bedroom door sensor and the flat's meters (if any)."""

    person: str
    sensor: str
    wake_min: int  # minutes after midnight (local)
    bed_min: int
    naps: bool
    water_meter: str | None = None
    power_meter: str | None = None


@dataclass
class Rental:
    """A rental's lock and the registered tenants' face ids."""

    household: str
    lock: str
    faces: list[str]
    tenants: list[str] = field(default_factory=list)


@dataclass
class World:
    """Everything the simulator draws events for, in one community."""

    community: str
    heartbeat_devices: list[str] = field(default_factory=list)
    elders: list[Elder] = field(default_factory=list)
    rentals: list[Rental] = field(default_factory=list)
    face_gates: list[str] = field(default_factory=list)
    vehicle_gates: list[str] = field(default_factory=list)
    resident_people: list[str] = field(default_factory=list)
    resident_plates: list[str] = field(default_factory=list)
    blacklisted_plates: list[str] = field(default_factory=list)
    smoke_detectors: list[str] = field(default_factory=list)
    throw_cameras: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    guards: list[tuple[str, str, str]] = field(default_factory=list)  # guard, wearable, kind
    guard_teams: dict[str, int] = field(default_factory=dict)  # guard → team of the demo roster
    route: list[tuple[str, float, float]] = field(default_factory=list)  # checkpoint, lat, lon
    route_interval_min: int = 120
    route_hours: tuple[int, int] = (20, 6)
    graph: nx.Graph = field(default_factory=nx.Graph)
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)  # gate device or building → (lat, lon)
    gate_of: dict[str, str] = field(default_factory=dict)  # face gate → the gate (entrance) it stands at
    homes: dict[str, str] = field(default_factory=dict)  # resident person → building
    # walks already found (the graph is fixed for the world's life): a guard's loop is asked for in
    # every 10-minute slot, and a Dijkstra search per leg per slot was most of a day's generation
    _walks: dict[tuple[tuple[float, float], tuple[float, float]], list[tuple[float, float]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def walk(self, start: tuple[float, float], end: tuple[float, float]) -> list[tuple[float, float]]:
        """Positions (lat, lon) along the shortest walk on the path network."""
        found = self._walks.get((start, end))
        if found is None:
            found = self._walks[(start, end)] = walking_path(self.graph, start, end)
        return list(found)


def load_world(session: Session, community: str, rng: random.Random) -> World:
    """Read one community's world from the registry."""
    world = World(community=community)
    devices = list(session.scalars(select(Device).where(Device.community_id == community).order_by(Device.id)))
    by_type: dict[str, list[Device]] = {}
    for d in devices:
        by_type.setdefault(d.type, []).append(d)
        if d.type not in ("checkpoint", "wearable"):
            world.heartbeat_devices.append(d.id)
    sensor_of = {d.household_id: d.id for d in by_type.get("door_sensor", [])}
    water_of = {d.household_id: d.id for d in by_type.get("water_meter", [])}
    power_of = {d.household_id: d.id for d in by_type.get("power_meter", [])}
    elders = session.execute(
        select(Person.id, Residency.household_id)
        .join(PersonTag, PersonTag.person_id == Person.id)
        .join(Residency, Residency.person_id == Person.id)
        .where(Person.community_id == community, PersonTag.tag == "elderly_alone")
        .order_by(Person.id)
    ).all()
    for person, household in elders:
        if household in sensor_of:
            world.elders.append(
                Elder(
                    person=person,
                    sensor=sensor_of[household],
                    wake_min=rng.randint(330, 450),
                    bed_min=rng.randint(1230, 1350),
                    naps=rng.random() < 0.5,
                    water_meter=water_of.get(household),
                    power_meter=power_of.get(household),
                )
            )
    faces: dict[str, list[str]] = {}
    tenants: dict[str, list[str]] = {}
    for household, person in session.execute(
        select(Residency.household_id, Residency.person_id)
        .join(Person, Person.id == Residency.person_id)
        .where(Person.community_id == community, Residency.role == "tenant")
    ):
        tenants.setdefault(household, []).append(person)
    for household, face in session.execute(
        select(Residency.household_id, Person.face_id)
        .join(Person, Person.id == Residency.person_id)
        .where(Person.community_id == community, Residency.role == "tenant")
    ):
        if face:
            faces.setdefault(household, []).append(face)
    for lock in by_type.get("smart_lock", []):
        if lock.household_id:
            world.rentals.append(
                Rental(
                    household=lock.household_id,
                    lock=lock.id,
                    faces=sorted(faces.get(lock.household_id, [])),
                    tenants=sorted(tenants.get(lock.household_id, [])),
                )
            )
    world.face_gates = [d.id for d in by_type.get("face_gate", []) if (d.config or {}).get("gate")]
    world.gate_of = {d.id: str((d.config or {}).get("gate")) for d in by_type.get("face_gate", [])}
    world.positions = {d.id: (d.lat, d.lon) for d in devices if d.type in ("face_gate", "vehicle_gate")}
    world.positions.update(
        (b, (lat, lon))
        for b, lat, lon in session.execute(
            select(Building.id, Building.lat, Building.lon).where(Building.community_id == community)
        )
    )
    world.vehicle_gates = [d.id for d in by_type.get("vehicle_gate", [])]
    world.smoke_detectors = [d.id for d in by_type.get("smoke_detector", [])]
    world.cameras = [d.id for d in by_type.get("camera", [])]
    world.throw_cameras = [(d.id, (d.config or {}).get("calibration", {})) for d in by_type.get("throw_camera", [])]
    world.resident_people = list(
        session.scalars(
            select(Person.id)
            .join(Residency, Residency.person_id == Person.id)
            .join(Household, Household.id == Residency.household_id)
            .where(Person.community_id == community)
            .order_by(Person.id)
        )
    )
    world.homes = dict(
        session.execute(
            select(Residency.person_id, Household.building_id)
            .join(Household, Household.id == Residency.household_id)
            .where(Household.community_id == community)
            .order_by(Residency.person_id, Household.id)
        ).all()
    )
    # elders living alone pass the gates on their own outings (simulator.generate.elder_outings)
    alone = {e.person for e in world.elders}
    world.resident_people = [p for p in world.resident_people if p not in alone]
    for plate, blacklisted in session.execute(
        select(Vehicle.plate, Vehicle.blacklisted).where(Vehicle.community_id == community).order_by(Vehicle.plate)
    ):
        (world.blacklisted_plates if blacklisted else world.resident_plates).append(plate)
    guards = list(session.scalars(select(Guard).where(Guard.community_id == community).order_by(Guard.id)))
    world.guards = [(g.id, g.device_id, g.kind) for g in guards if g.device_id]
    world.guard_teams = {g.id: team_of(position) for position, g in enumerate(guards)}
    route = session.scalars(select(PatrolRoute).where(PatrolRoute.community_id == community)).first()
    if route is not None:
        position = {d.id: (d.lat, d.lon) for d in by_type.get("checkpoint", [])}
        world.route = [(c.device_id, *position[c.device_id]) for c in route.checkpoints if c.device_id in position]
        world.route_interval_min = route.interval_minutes
        world.route_hours = (route.start_hour, route.end_hour)
    world.graph = path_graph(path_geometries(session, community))
    return world
