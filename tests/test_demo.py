"""The demo registry: the article's figures, sensible positions, fictitious identities."""

from __future__ import annotations

import json

from shapely.geometry import Point, shape
from sqlalchemy import select

from registry import validate
from registry.models import Building, Community, Device, Household, PatrolRoute, Person, PersonTag, WatchlistEntry
from registry.stats import community_stats
from store.stores import Stores
from tests.conftest import run_manage


def test_wanhu_has_the_figures_of_the_article(demo_stores: Stores) -> None:
    with demo_stores.sessions() as session:
        figures = {c["id"]: c for c in community_stats(session)["communities"]}
    wanhu = figures["wanhu"]
    assert wanhu["buildings"] == 127
    assert 12_000 <= wanhu["residents"] <= 14_000
    assert 4_000 <= wanhu["households"] <= 5_000
    assert 180 <= wanhu["elderly_alone"] <= 220
    assert wanhu["devices"]["door_sensor"] == wanhu["elderly_alone"]
    assert wanhu["devices"]["smart_lock"] == wanhu["rentals"] + wanhu["group_rentals"]
    front_end = sum(wanhu["devices"][t] for t in ("face_gate", "vehicle_gate", "camera", "throw_camera"))
    assert front_end == 87
    assert 4 <= wanhu["grids"] <= 6
    assert 35 <= wanhu["guards"] <= 45
    assert wanhu["group_rentals"] > 0 and wanhu["rentals"] > 500
    assert figures["xingbang"]["devices"]["vehicle_gate"] >= 4
    assert figures["xingbang"]["devices"]["camera"] > 200


def test_stats_json_follows_the_interface(demo_stores: Stores) -> None:
    result = run_manage(demo_stores.settings, "stats", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    keys = {
        "id",
        "name",
        "buildings",
        "households",
        "residents",
        "rentals",
        "group_rentals",
        "elderly_alone",
        "grids",
        "guards",
        "devices",
    }
    assert {c["id"] for c in data["communities"]} == {"wanhu", "xingbang"}
    assert all(set(c) == keys for c in data["communities"])


def test_every_elder_has_a_door_sensor_in_their_home(demo_stores: Stores) -> None:
    with demo_stores.sessions() as session:
        elders = list(session.scalars(select(Person).join(PersonTag).where(PersonTag.tag == "elderly_alone")))
        sensors = {d.household_id: d for d in session.scalars(select(Device).where(Device.type == "door_sensor"))}
        for elder in elders:
            (home,) = [r.household_id for r in elder.residencies]
            assert home in sensors
            household = session.get(Household, home)
            assert household is not None
            building = session.get(Building, household.building_id)
            assert building is not None
            footprint = shape(json.loads(building.footprint))
            assert footprint.buffer(1e-6).contains(Point(sensors[home].lon, sensors[home].lat))


def test_gates_stand_on_the_boundary(demo_stores: Stores) -> None:
    with demo_stores.sessions() as session:
        for community in session.scalars(select(Community)):
            edge = shape(json.loads(community.boundary)).exterior
            gates = session.scalars(
                select(Device).where(Device.community_id == community.id, Device.type.in_(["vehicle_gate"]))
            )
            for gate in gates:
                assert edge.distance(Point(gate.lon, gate.lat)) < 0.0002  # about 20 m


def test_identities_are_valid_but_in_the_demo_range(demo_stores: Stores) -> None:
    with demo_stores.sessions() as session:
        numbers = list(session.scalars(select(Person.id_number)))
    assert len(numbers) == len(set(numbers))
    for number in numbers[::97]:
        assert validate.id_number(number) == number
    assert all(n is not None and n[14:16] == "99" for n in numbers)


def test_the_wanted_man_is_held_only_as_a_hash(demo_stores: Stores) -> None:
    with demo_stores.sessions() as session:
        entries = list(session.scalars(select(WatchlistEntry)))
    assert len(entries) == 1
    assert len(entries[0].id_hash) == 64 and "1301" not in entries[0].id_hash[:4]


def test_patrol_route_has_ordered_checkpoints(demo_stores: Stores) -> None:
    with demo_stores.sessions() as session:
        route = session.get(PatrolRoute, "wanhu-R1")
        assert route is not None
        assert [c.seq for c in route.checkpoints] == list(range(1, 13))
        devices = {d.id: d.type for d in session.scalars(select(Device).where(Device.type == "checkpoint"))}
        assert all(devices[c.device_id] == "checkpoint" for c in route.checkpoints)


def test_watchlist_add_stores_a_keyed_hash(stores: Stores) -> None:
    result = run_manage(stores.settings, "watchlist", "add", "11010519491231002X", "--note", "test", "--json")
    assert result.returncode == 0, result.stderr
    digest = json.loads(result.stdout)["id_hash"]
    with stores.sessions() as session:
        entry = session.get(WatchlistEntry, digest)
    assert entry is not None and entry.note == "test"
    assert "11010519491231002X" not in digest
    bad = run_manage(stores.settings, "watchlist", "add", "110105194912310021")
    assert bad.returncode == 1 and bad.stderr.strip() == "error: ID number check digit is wrong"
