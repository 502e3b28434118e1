"""The demo registry: Wanhu Xincun (万户新村) and Xingbang Central Park (兴邦中央公园).

Deterministic (fixed seeds). The survey layers come from ``geodata/`` through the same
importers a deployment uses; households, people, vehicles, devices, guards and patrol routes
are generated here and go through the same row validation. ``simulator/seed.py`` builds it,
with the demo accounts, and resets it.

ID numbers are checksum-valid GB 11643 numbers with real place codes, but every one has the
sequence digits ``99x`` (positions 15–17): the demo range, documented in docs/registry.md and
never issued to a real person by this system.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from shapely.geometry import shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.secrets import keyed_hash
from geodata.layers import load_geojson, survey_dir
from registry import importers
from registry.coverage import facing
from registry.models import Building, Community, Grid, PathSegment, PatrolCheckpoint, PatrolRoute, WatchlistEntry

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟"
    "谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤祁"
)
GIVEN_M = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林峰建国庆春海东志文兵德福贵荣祥"
GIVEN_F = "芳娜敏静丽艳娟霞秀英华慧巧美娅玲桂兰萍红琴云莲真洁雪琳晶妍茜秋珍凤梅菊月婷颖倩燕"
LOCAL_PLACES = ("320902", "320903", "320923", "320924", "320925", "320981")  # Yancheng districts and counties
FLOATING_PLACES = ("130102", "410102", "340102", "510104", "360102", "420102", "370102", "412702", "341202")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
DEMO_DATE = dt.date(2026, 11, 1)
# The wanted man of the article: moved into a rental in Wanhu Xincun and never registered.
WANTED_ID = "130102199003159913"
WANTED_NOTE = "网上追逃(河北省公安厅) · demo"


def check_digit(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character of 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


@dataclass
class DemoPeople:
    """Generates unique demo identities."""

    rng: random.Random
    used_ids: set[str] = field(default_factory=set)
    used_phones: set[str] = field(default_factory=set)
    used_names: dict[str, int] = field(default_factory=dict)

    def id_number(self, age: int, male: bool, places: tuple[str, ...]) -> str:
        """A unique demo ID number (sequence 99x) for a person of this age and sex."""
        for _ in range(200):
            birth = DEMO_DATE - dt.timedelta(days=age * 365 + self.rng.randint(0, 364))
            gender_digit = self.rng.choice("13579" if male else "02468")
            first17 = f"{self.rng.choice(places)}{birth:%Y%m%d}99{gender_digit}"
            number = first17 + check_digit(first17)
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number
        raise RuntimeError("demo ID space exhausted")

    def phone(self) -> str:
        """A unique mobile number."""
        while True:
            number = (
                self.rng.choice(
                    ["138", "139", "150", "151", "152", "157", "158", "159", "177", "181", "187", "188", "189", "199"]
                )
                + f"{self.rng.randint(0, 99_999_999):08d}"
            )
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def name(self, male: bool) -> str:
        """A plausible Chinese name."""
        pool = GIVEN_M if male else GIVEN_F
        given = self.rng.choice(pool) + (self.rng.choice(pool) if self.rng.random() < 0.7 else "")
        return self.rng.choice(SURNAMES) + given


@dataclass
class CommunityPlan:
    """How one demo community is populated."""

    id: str
    name: str
    rooms_per_landing: tuple[int, int]
    share_rental: float
    share_group_rental: float
    share_vacant: float
    elders_alone: int
    guards: dict[str, int]
    vehicles: int
    cameras_extra: int
    throw_cameras: int
    face_gates_per_gate: int
    vehicle_gates: dict[str, int]
    intercoms: bool
    seed: int


PLANS = (
    CommunityPlan(
        id="wanhu",
        name="万户新村",
        rooms_per_landing=(2, 3),
        share_rental=0.24,
        share_group_rental=0.035,
        share_vacant=0.05,
        elders_alone=200,
        guards={"police": 3, "auxiliary": 6, "grid_worker": 5, "volunteer": 20, "security": 6},
        vehicles=1400,
        cameras_extra=58,
        throw_cameras=10,
        face_gates_per_gate=2,
        vehicle_gates={"wanhu-GATE-N": 2, "wanhu-GATE-E": 1, "wanhu-GATE-S": 1},
        intercoms=False,
        seed=1983,
    ),
    CommunityPlan(
        id="xingbang",
        name="兴邦中央公园",
        rooms_per_landing=(2, 2),
        share_rental=0.15,
        share_group_rental=0.0,
        share_vacant=0.08,
        elders_alone=40,
        guards={"police": 1, "auxiliary": 2, "grid_worker": 2, "volunteer": 6, "security": 10},
        vehicles=2200,
        cameras_extra=300,
        throw_cameras=16,
        face_gates_per_gate=4,
        vehicle_gates={"xingbang-GATE-S": 4, "xingbang-GATE-W": 2},
        intercoms=True,
        seed=2016,
    ),
)


def registry_is_empty(session: Session) -> bool:
    """True when no community is registered."""
    return (session.scalar(select(func.count()).select_from(Community)) or 0) == 0


def build_demo_registry(session: Session, id_hash_key: bytes) -> None:
    """Both demo communities and the wanted man on the watch list, into an empty registry."""
    people = DemoPeople(random.Random(7))
    for plan in PLANS:
        _build_community(session, plan, people, id_hash_key)
    session.add(WatchlistEntry(id_hash=keyed_hash(id_hash_key, WANTED_ID), note=WANTED_NOTE, added_by="demo"))
    session.flush()


def _build_community(session: Session, plan: CommunityPlan, people: DemoPeople, key: bytes) -> None:
    rng = random.Random(plan.seed)
    folder = survey_dir(plan.id)
    for kind in ("boundary", "grids", "buildings", "paths"):
        importers.import_geo(session, kind, folder / f"{kind}.geojson", plan.id, community_name=plan.name)
    community = session.get(Community, plan.id)
    assert community is not None
    community.district = "亭湖区" if plan.id == "wanhu" else "盐南高新区"
    community.kind = "open" if plan.id == "wanhu" else "gated"
    community.built_year = 1983 if plan.id == "wanhu" else 2016
    community.address = "江苏省盐城市" + community.district + plan.name
    buildings = list(
        session.scalars(
            select(Building)
            .where(Building.community_id == plan.id, Building.kind == "residential")
            .order_by(Building.id)
        )
    )

    households = _households(plan, buildings, rng)
    elder_households = _pick_elder_households(households, plan.elders_alone, rng)
    persons, vehicles_owners = _people(plan, households, elder_households, people, rng)
    importers.import_records(session, "households", households, plan.id, id_hash_key=key)
    importers.import_records(session, "people", persons, plan.id, id_hash_key=key)
    importers.import_records(session, "vehicles", _vehicles(plan, vehicles_owners, rng), plan.id, id_hash_key=key)
    devices, wearables, checkpoints = _devices(session, plan, buildings, households, elder_households, rng)
    importers.import_records(session, "devices", devices, plan.id, id_hash_key=key)
    importers.import_records(
        session, "guards", _guards(plan, wearables, people, rng, session), plan.id, id_hash_key=key
    )
    route = PatrolRoute(
        id=f"{plan.id}-R1",
        community_id=plan.id,
        name="夜间巡更路线",
        interval_minutes=120,
        start_hour=20,
        end_hour=6,
        tolerance_minutes=15,
    )
    route.checkpoints = [
        PatrolCheckpoint(seq=i + 1, device_id=cp, offset_minutes=i * 4) for i, cp in enumerate(checkpoints)
    ]
    session.add(route)
    session.flush()


def _households(plan: CommunityPlan, buildings: list[Building], rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for building in buildings:
        rooms = rng.randint(*plan.rooms_per_landing)
        for unit in range(1, building.units + 1):
            for floor in range(1, building.floors + 1):
                for room in range(1, rooms + 1):
                    roll = rng.random()
                    if roll < plan.share_group_rental:
                        category = "group_rental"
                    elif roll < plan.share_group_rental + plan.share_rental:
                        category = "rental"
                    elif roll < plan.share_group_rental + plan.share_rental + plan.share_vacant:
                        category = "vacant"
                    else:
                        category = "owner"
                    rows.append(
                        {
                            "id": f"{building.id}-{unit}-{floor}{room:02d}",
                            "building": building.id,
                            "unit": unit,
                            "floor": floor,
                            "room": f"{floor}{room:02d}",
                            "category": category,
                        }
                    )
    return rows


def _pick_elder_households(households: list[dict[str, Any]], count: int, rng: random.Random) -> set[str]:
    # Elders living alone are in owner-occupied flats, more often on low floors of old buildings.
    candidates = [h for h in households if h["category"] == "owner"]
    weights = [3.0 if h["floor"] <= 2 else 1.0 for h in candidates]
    chosen: set[str] = set()
    while len(chosen) < min(count, len(candidates)):
        chosen.add(rng.choices(candidates, weights)[0]["id"])
    return chosen


def _people(
    plan: CommunityPlan,
    households: list[dict[str, Any]],
    elder_households: set[str],
    people: DemoPeople,
    rng: random.Random,
) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    owners: list[str] = []
    n = 0

    def person(household: str, role: str, age: int, *, floating: bool = False, tags: str = "") -> dict[str, Any]:
        nonlocal n
        n += 1
        male = rng.random() < 0.5
        pid = f"{plan.id}-P{n:05d}"
        row: dict[str, Any] = {
            "id": pid,
            "name": people.name(male),
            "id_number": people.id_number(age, male, FLOATING_PLACES if floating else LOCAL_PLACES),
            "phone": people.phone() if age >= 14 else "",
            "household": household,
            "role": role,
            "tags": tags,
            "face_id": f"F{plan.seed}{n:06d}",
        }
        if floating:
            # A residence registration lasts a year; most are renewed in time, a few have lapsed.
            registered = DEMO_DATE - dt.timedelta(
                days=rng.randint(10, 340) if rng.random() > 0.03 else rng.randint(370, 500)
            )
            row["floating_registered_on"] = registered.isoformat()
            row["floating_expires_on"] = (registered + dt.timedelta(days=365)).isoformat()
            row["tags"] = ",".join(filter(None, [tags, "floating"]))
        return row

    for hh in households:
        hid, category = hh["id"], hh["category"]
        if hid in elder_households:
            rows.append(person(hid, "owner", rng.randint(70, 92), tags="elderly_alone"))
            continue
        if category == "vacant":
            continue
        if category == "owner":
            size = rng.choices([1, 2, 3, 4, 5], [3, 18, 33, 30, 16])[0]
            head = person(hid, "owner", rng.randint(32, 75))
            rows.append(head)
            owners.append(head["id"])
            for _ in range(size - 1):
                age = rng.choice([rng.randint(1, 17), rng.randint(25, 70), rng.randint(60, 85)])
                rows.append(person(hid, "family", age))
        elif category == "rental":
            for i in range(rng.choices([1, 2, 3], [30, 40, 30])[0]):
                floating = rng.random() < 0.6
                tenant = person(hid, "tenant", rng.randint(19, 55), floating=floating)
                rows.append(tenant)
                if i == 0 and rng.random() < 0.25:
                    owners.append(tenant["id"])
        else:  # group rental: several unrelated workers, mostly floating population
            for _ in range(rng.randint(6, 10)):
                rows.append(person(hid, "tenant", rng.randint(18, 45), floating=rng.random() < 0.85))
    return rows, owners


def _vehicles(plan: CommunityPlan, owners: list[str], rng: random.Random) -> list[dict[str, Any]]:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    pool = owners[:]
    rng.shuffle(pool)
    while len(rows) < min(plan.vehicles, len(pool)) + 2:
        if rng.random() < 0.08:  # new-energy plate
            plate = "苏J" + rng.choice("DF") + rng.choice(letters + "0123456789") + f"{rng.randint(0, 9999):04d}"
        else:
            plate = "苏J" + "".join(rng.choice(letters + "0123456789" * 3) for _ in range(5))
        if plate in seen:
            continue
        seen.add(plate)
        if len(rows) < min(plan.vehicles, len(pool)):
            rows.append({"plate": plate, "owner": pool[len(rows)]})
        else:  # two blacklisted vehicles that belong to nobody here
            rows.append({"plate": plate, "blacklisted": "true", "note": "涉案车辆布控 · demo"})
    return rows


def _footprint_bounds(building: Building) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = shape(json.loads(building.footprint)).bounds
    return minx, miny, maxx, maxy


def _unit_position(building: Building, unit: int, rng: random.Random) -> tuple[float, float]:
    """A point inside the footprint, in the unit's share of the building (lat, lon)."""
    minx, miny, maxx, maxy = _footprint_bounds(building)
    width = maxx - minx
    x = minx + width * (unit - 0.5) / building.units + rng.uniform(-0.25, 0.25) * width / building.units
    y = miny + (maxy - miny) * rng.uniform(0.25, 0.75)
    return round(y, 7), round(x, 7)


def _devices(
    session: Session,
    plan: CommunityPlan,
    buildings: list[Building],
    households: list[dict[str, Any]],
    elder_households: set[str],
    rng: random.Random,
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    by_id = {b.id: b for b in buildings}
    rows: list[dict[str, Any]] = []
    install = "2023-06-01"

    def add(did: str, dtype: str, lat: float, lon: float, **extra: Any) -> None:
        rows.append({"id": did, "type": dtype, "lat": lat, "lon": lon, "install_date": install, **extra})

    # inner ring: door sensors and meters of elders, smart locks of rentals, smoke detectors in stairwells
    for hh in households:
        building = by_id[hh["building"]]
        lat, lon = _unit_position(building, hh["unit"], rng)
        if hh["id"] in elder_households:
            add(f"DS-{hh['id']}", "door_sensor", lat, lon, household=hh["id"], name="卧室门磁")
            # the second signal of issue 23: the flat's smart water and power meters (same position, no draw)
            add(f"WM-{hh['id']}", "water_meter", lat, lon, household=hh["id"], name="智能水表")
            add(f"PM-{hh['id']}", "power_meter", lat, lon, household=hh["id"], name="智能电表")
        if hh["category"] in ("rental", "group_rental"):
            add(f"LK-{hh['id']}", "smart_lock", lat, lon, household=hh["id"], name="智能门锁")
            if hh["category"] == "group_rental":
                add(f"SD-{hh['id']}", "smoke_detector", lat, lon, household=hh["id"], name="室内烟感")
    for building in buildings:
        for unit in range(1, building.units + 1):
            lat, lon = _unit_position(building, unit, rng)
            add(
                f"SD-{building.id}-{unit}",
                "smoke_detector",
                lat,
                lon,
                building=building.id,
                name=f"{building.name}{unit}单元楼道烟感",
            )
            if plan.intercoms:
                add(
                    f"IC-{building.id}-{unit}",
                    "intercom",
                    lat,
                    lon,
                    building=building.id,
                    name=f"{building.name}{unit}单元可视对讲",
                )
                add(
                    f"FG-{building.id}-{unit}",
                    "face_gate",
                    lat,
                    lon,
                    building=building.id,
                    name=f"{building.name}{unit}单元人脸门禁",
                )
    # outer ring: face gates, vehicle barriers and capture cameras at every gate
    gates = load_geojson(survey_dir(plan.id) / "gates.geojson")["features"]
    for gate in gates:
        lon0, lat0 = gate["geometry"]["coordinates"]
        gid, gname = gate["properties"]["id"], gate["properties"]["name"]
        for i in range(plan.face_gates_per_gate):
            add(
                f"FG-{gid}-{i + 1}",
                "face_gate",
                lat0 + 0.00002 * i,
                lon0 + 0.00003 * i,
                name=f"{gname}人脸门禁{i + 1}",
                config={"gate": gid},
            )
        for i in range(plan.vehicle_gates.get(gid, 0)):
            add(
                f"VG-{gid}-{i + 1}",
                "vehicle_gate",
                lat0 - 0.00002 * i,
                lon0 - 0.00003 * (i + 1),
                name=f"{gname}车辆道闸{i + 1}",
                config={"gate": gid},
            )
        for i in range(3):
            add(
                f"CAM-{gid}-{i + 1}",
                "camera",
                lat0 + 0.00004 * (i - 1),
                lon0 + 0.00004,
                name=f"{gname}抓拍相机{i + 1}",
                config={"gate": gid, "capture": True},
            )
    # middle ring: cameras around rental-dense buildings, thrown-object cameras facing façades
    rental_count: dict[str, int] = {}
    for hh in households:
        if hh["category"] in ("rental", "group_rental"):
            rental_count[hh["building"]] = rental_count.get(hh["building"], 0) + 1
    ranked = sorted(buildings, key=lambda b: (-rental_count.get(b.id, 0), b.id))
    for i in range(plan.cameras_extra):
        building = ranked[i % len(ranked)]
        minx, miny, maxx, maxy = _footprint_bounds(building)
        corner = i // len(ranked)
        lon = (minx, maxx)[corner % 2] + rng.uniform(-0.00003, 0.00003)
        lat = (miny, maxy)[(corner // 2) % 2] + (0.00005 if corner % 2 else -0.00005)
        add(
            f"CAM-{building.id}-{corner + 1}",
            "camera",
            round(lat, 7),
            round(lon, 7),
            building=building.id,
            name=f"{building.name}周边摄像机{corner + 1}",
        )
    tall = sorted(buildings, key=lambda b: (-b.floors, -rental_count.get(b.id, 0), b.id))[: plan.throw_cameras]
    for building in tall:
        minx, miny, maxx, maxy = _footprint_bounds(building)
        lat = miny - 0.00012  # about 13 m south of the façade, looking up at it
        lon = (minx + maxx) / 2
        add(
            f"TC-{building.id}",
            "throw_camera",
            round(lat, 7),
            round(lon, 7),
            building=building.id,
            name=f"{building.name}高空抛物相机",
            config={
                # looking north up the south façade, as wide as the building
                **asdict(facing(round(lat, 7), round(lon, 7), shape(json.loads(building.footprint)))),
                "calibration": {
                    "camera": f"TC-{building.id}",
                    "building": building.id,
                    "floors": building.floors,
                    "columns": building.units * 2,
                    "facade": [[160, 60], [1120, 60], [1120, 680], [160, 680]],
                },
            },
        )
    # patrol checkpoints at path crossings along a loop, and wearables for the guards
    checkpoints = _checkpoint_positions(session, plan.id, 12 if plan.id == "wanhu" else 8)
    cp_ids = []
    for i, (lat, lon) in enumerate(checkpoints):
        did = f"CP-{plan.id}-{i + 1:02d}"
        cp_ids.append(did)
        add(did, "checkpoint", lat, lon, name=f"巡更点{i + 1:02d}")
    wearables = []
    first_gate = gates[0]["geometry"]["coordinates"]
    for i in range(sum(plan.guards.values())):
        did = f"WR-{plan.id}-{i + 1:02d}"
        wearables.append(did)
        add(did, "wearable", first_gate[1], first_gate[0], name=f"随身终端{i + 1:02d}")
    return rows, wearables, cp_ids


def _checkpoint_positions(session: Session, community: str, count: int) -> list[tuple[float, float]]:
    """Evenly spaced points along the community's roads (a patrol loop)."""
    roads = [
        shape(json.loads(p.geometry))
        for p in session.scalars(
            select(PathSegment)
            .where(PathSegment.community_id == community, PathSegment.kind == "road")
            .order_by(PathSegment.id)
        )
    ]
    points: list[tuple[float, float]] = []
    per_road = max(1, count // max(1, len(roads)) + 1)
    for road in roads:
        for k in range(per_road):
            if len(points) >= count:
                break
            pt = road.interpolate((k + 0.5) / per_road, normalized=True)
            points.append((round(pt.y, 7), round(pt.x, 7)))
    return points[:count]


def _guards(
    plan: CommunityPlan, wearables: list[str], people: DemoPeople, rng: random.Random, session: Session
) -> list[dict[str, Any]]:
    grids = list(session.scalars(select(Grid.id).where(Grid.community_id == plan.id).order_by(Grid.id)))
    rows = []
    n = 0
    for kind, count in plan.guards.items():
        for i in range(count):
            male = rng.random() < 0.7
            grid = grids[i % len(grids)] if kind in ("grid_worker", "volunteer") else None
            rows.append(
                {
                    "id": f"{plan.id}-GD{n + 1:02d}",
                    "name": people.name(male),
                    "kind": kind,
                    "phone": people.phone(),
                    "grid": grid or "",
                    "device": wearables[n],
                }
            )
            n += 1
    return rows
