"""The synthetic city (`manage.py demo --city`): Yancheng's 1,537 smart-security communities.

The two surveyed demo communities (Wanhu Xincun, Xingbang Central Park) come first, built as by
`demo` (``simulator/seed.py`` builds them, then these, then the city's accounts); the other
1,535 are generated here at full size — a boundary, 2–4 grids, a ring road with a cross path,
residential buildings, ~500 households, ~1,400 residents and ~900 devices each (≈ 2.2 M
residents and 1.35 M devices in all), spread over the city's districts and counties on a
jittered lattice so that no two communities overlap.

Speed and memory: rows are generated one community at a time and written with bulk Core inserts
in chunks, committed every `CHUNK_COMMUNITIES` communities; no ORM objects, no per-row
validation (the generator produces valid rows by construction: checksum-valid ID numbers in the
demo sequence range, unique phones and plates). Deterministic for a seed.

ID numbers: sequence digits ``9[5-9]x`` (positions 15–17) — the demo range of docs/registry.md,
widened from ``99x`` because two million people do not fit in one sequence per place and day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from core.secrets import keyed_hash
from geodata.build import LocalFrame
from registry.demo import DEMO_DATE, GIVEN_F, GIVEN_M, SURNAMES, check_digit
from registry.models import (
    Building,
    Community,
    Device,
    Grid,
    Guard,
    Household,
    PathSegment,
    PatrolCheckpoint,
    PatrolRoute,
    Person,
    PersonTag,
    Residency,
    Vehicle,
)
from store.stores import Stores

log = logging.getLogger(__name__)

CITY_SIZE = 1537
CHUNK_COMMUNITIES = 40
LATTICE_M = 520.0  # one community per lattice cell at most
GRID_COLORS = ("#5b8def", "#35d07f", "#ffb020", "#c061f0")


@dataclass(frozen=True)
class District:
    """A district or county: where its communities cluster."""

    name: str
    name_en: str
    lat: float
    lon: float
    weight: float
    places: tuple[str, ...]


DISTRICTS = (
    District("亭湖区", "Tinghu", 33.392, 120.163, 0.22, ("320902",)),
    District("盐都区", "Yandu", 33.338, 120.110, 0.17, ("320903",)),
    District("盐南高新区", "Yannan Hi-tech Zone", 33.330, 120.205, 0.12, ("320902", "320903")),
    District("经济技术开发区", "Economic Development Zone", 33.370, 120.250, 0.06, ("320902",)),
    District("大丰区", "Dafeng", 33.200, 120.470, 0.08, ("320904",)),
    District("东台市", "Dongtai", 32.853, 120.320, 0.09, ("320981",)),
    District("建湖县", "Jianhu", 33.465, 119.800, 0.06, ("320925",)),
    District("射阳县", "Sheyang", 33.775, 120.255, 0.06, ("320924",)),
    District("阜宁县", "Funing", 33.760, 119.800, 0.06, ("320923",)),
    District("滨海县", "Binhai", 33.990, 119.830, 0.05, ("320922",)),
    District("响水县", "Xiangshui", 34.200, 119.575, 0.03, ("320921",)),
)
FLOATING_PLACES = (
    "130102", "410102", "340102", "510104", "360102", "420102", "370102", "412702", "341202",
    "320321", "321302", "340822", "411524", "500101", "430102", "450102", "220102", "610102",
)  # fmt: skip
NAME_HEADS = (
    "春晖", "锦绣", "东方", "阳光", "金色", "幸福", "和谐", "翠竹", "海棠", "丹顶鹤", "新都", "紫薇",
    "盛世", "怡景", "桃园", "明珠", "绿洲", "香榭", "聚龙", "瑞祥", "康居", "滨河", "水岸", "星河",
    "天润", "嘉禾", "世纪", "御景", "凤凰", "青年", "华府", "梧桐", "文峰", "宝龙", "湖畔", "名都",
    "长江", "新城", "铁军", "黄海",
)  # fmt: skip
NAME_TAILS = ("花园", "家园", "新村", "小区", "苑", "雅居", "公寓", "华庭", "名邸", "公馆", "府", "里")
ORDINALS = ("", "二期", "三期", "四期", "五期", "六期", "七期", "八期")
DEVICE_INSTALL = dt.date(2024, 3, 1)
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@dataclass
class Identities:
    """Unique identities for the whole city (names, ID numbers, phones, plates)."""

    rng: random.Random
    used_ids: set[str] = field(default_factory=set)
    used_phones: set[str] = field(default_factory=set)
    used_plates: set[str] = field(default_factory=set)
    plate_counter: int = 0

    def name(self, male: bool) -> str:
        pool = GIVEN_M if male else GIVEN_F
        r = self.rng
        return r.choice(SURNAMES) + r.choice(pool) + (r.choice(pool) if r.random() < 0.7 else "")

    def id_number(self, age: int, male: bool, places: tuple[str, ...]) -> tuple[str, dt.date]:
        r = self.rng
        while True:
            birth = DEMO_DATE - dt.timedelta(days=age * 365 + r.randint(0, 364))
            seq = f"9{r.randint(5, 9)}{r.choice('13579' if male else '02468')}"
            first17 = f"{r.choice(places)}{birth:%Y%m%d}{seq}"
            number = first17 + check_digit(first17)
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number, birth

    def phone(self) -> str:
        r = self.rng
        while True:
            number = r.choice(("138", "139", "150", "151", "152", "157", "158", "159", "177", "187", "188", "199"))
            number += f"{r.randint(0, 99_999_999):08d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def plate(self) -> str:
        """The next plate of a sequence spread over the plate space (unique by construction)."""
        while True:
            self.plate_counter += 1
            n = (self.plate_counter * 7_368_787) % (len(PLATE_CHARS) ** 5)
            chars = []
            for _ in range(5):
                n, k = divmod(n, len(PLATE_CHARS))
                chars.append(PLATE_CHARS[k])
            plate = "苏J" + "".join(chars)
            if plate not in self.used_plates:
                self.used_plates.add(plate)
                return plate


@dataclass
class Rows:
    """Rows waiting for one bulk insert, per table."""

    tables: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, model: Any, row: dict[str, Any]) -> None:
        self.tables.setdefault(model, []).append(row)

    def flush(self, session: Session) -> int:
        written = 0
        for model in (
            Community,
            Grid,
            Building,
            PathSegment,
            Household,
            Person,
            PersonTag,
            Residency,
            Vehicle,
            Device,
            Guard,
            PatrolRoute,
            PatrolCheckpoint,
        ):
            rows = self.tables.pop(model, [])
            for start in range(0, len(rows), 20_000):
                session.execute(insert(model), rows[start : start + 20_000])
            written += len(rows)
        return written


@dataclass
class CityReport:
    """What `demo --city` built."""

    communities: int
    residents: int
    devices: int
    households: int
    seconds: float


def lattice_sites(rng: random.Random, count: int) -> list[tuple[District, float, float]]:
    """(district, lat, lon) of each community: lattice cells around each district's centre,
    nearest first with some randomness, jittered inside the cell — dense centres, no overlaps."""
    weights = [d.weight for d in DISTRICTS]
    total = sum(weights)
    quotas = [int(count * w / total) for w in weights]
    for i in range(count - sum(quotas)):
        quotas[i % len(quotas)] += 1
    sites: list[tuple[District, float, float]] = []
    taken: set[tuple[int, int]] = set()
    anchor = LocalFrame(33.38, 120.16)
    for district, quota in zip(DISTRICTS, quotas, strict=True):
        cx = (district.lon - anchor.lon0) * anchor.m_per_deg_lon
        cy = (district.lat - anchor.lat0) * 111_320.0
        radius = math.sqrt(quota) * LATTICE_M * 0.75
        cells = []
        span = int(radius * 1.6 / LATTICE_M) + 2
        ci, cj = round(cx / LATTICE_M), round(cy / LATTICE_M)
        for i in range(ci - span, ci + span + 1):
            for j in range(cj - span, cj + span + 1):
                d = math.hypot(i * LATTICE_M - cx, j * LATTICE_M - cy)
                cells.append((d * rng.uniform(0.7, 1.3), i, j))
        cells.sort()
        placed = 0
        for _d, i, j in cells:
            if placed == quota:
                break
            if (i, j) in taken:
                continue
            taken.add((i, j))
            x = i * LATTICE_M + rng.uniform(-40, 40)
            y = j * LATTICE_M + rng.uniform(-40, 40)
            lon, lat = anchor.ll(x, y)
            sites.append((district, lat, lon))
            placed += 1
    return sites


def community_names(rng: random.Random, count: int) -> list[str]:
    """Unique plausible community names."""
    names: list[str] = []
    seen: set[str] = set()
    for ordinal in ORDINALS:
        pairs = [h + t for h in NAME_HEADS for t in NAME_TAILS]
        rng.shuffle(pairs)
        for base in pairs:
            name = base + ordinal
            if name not in seen:
                seen.add(name)
                names.append(name)
            if len(names) == count:
                return names
    raise RuntimeError("community name space exhausted")


class CityBuilder:
    """Generates one synthetic community's rows."""

    def __init__(self, ids: Identities, id_hash_key: bytes, rng: random.Random) -> None:
        self.ids = ids
        self.key = id_hash_key
        self.rng = rng
        self.residents = 0
        self.devices = 0
        self.households = 0

    def community(self, rows: Rows, cid: str, name: str, district: District, lat: float, lon: float) -> None:
        rng = self.rng
        frame = LocalFrame(lat, lon)
        width, height = rng.uniform(260, 400), rng.uniform(220, 380)
        x0, y0, x1, y1 = -width / 2, -height / 2, width / 2, height / 2
        boundary = {"type": "Polygon", "coordinates": frame.rect(x0, y0, x1, y1)}
        gated = rng.random() < 0.55
        built = rng.randint(1985, 2022)
        rows.add(
            Community,
            {
                "id": cid,
                "name": name,
                "name_en": "",
                "district": district.name,
                "address": f"江苏省盐城市{district.name}{name}",
                "kind": "gated" if gated else "open",
                "built_year": built,
                "boundary": json.dumps(boundary),
                "center_lat": lat,
                "center_lon": lon,
            },
        )
        n_grids = rng.randint(2, 4)
        grid_ids = []
        for g in range(n_grids):
            gx0 = x0 + width * g / n_grids
            gx1 = x0 + width * (g + 1) / n_grids
            gid = f"{cid}-G{g + 1}"
            grid_ids.append((gid, gx0, gx1))
            rows.add(
                Grid,
                {
                    "id": gid,
                    "community_id": cid,
                    "name": f"第{g + 1}网格",
                    "name_en": f"Grid {g + 1}",
                    "polygon": json.dumps({"type": "Polygon", "coordinates": frame.rect(gx0, y0, gx1, y1)}),
                    "color": GRID_COLORS[g % len(GRID_COLORS)],
                },
            )

        def grid_at(x: float) -> str:
            for gid, gx0, gx1 in grid_ids:
                if gx0 <= x <= gx1:
                    return gid
            return grid_ids[-1][0]

        # the ring road 12 m inside the fence, one cross path, the main gate on the south side
        inset = 12.0
        ring = [(x0 + inset, y0 + inset), (x1 - inset, y0 + inset), (x1 - inset, y1 - inset), (x0 + inset, y1 - inset)]
        for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
            rows.add(
                PathSegment,
                {
                    "community_id": cid,
                    "kind": "road",
                    "name": "环路",
                    "geometry": json.dumps({"type": "LineString", "coordinates": frame.line([a, b])}),
                },
            )
        rows.add(
            PathSegment,
            {
                "community_id": cid,
                "kind": "path",
                "name": "中心步道",
                "geometry": json.dumps(
                    {"type": "LineString", "coordinates": frame.line([(0.0, y0), (0.0, y0 + inset), (0.0, y1 - inset)])}
                ),
            },
        )

        # buildings on the free lots between the ring road and the cross path, until the target
        # size; a small site builds higher rather than overlapping footprints
        target_households = max(160, int(rng.gauss(450, 100)))
        b_w, b_h = 42.0, 14.0
        lots = []
        x = x0 + inset + 10
        while x + b_w < x1 - inset - 6:
            if abs(x + b_w / 2) >= b_w / 2 + 6:  # keep the cross path clear
                y = y0 + inset + 16
                while y + b_h < y1 - inset - 8:
                    lots.append((x, y))
                    y += b_h + 18
            x += b_w + 14
        floors_choice: tuple[int, ...] = rng.choice(((6, 6, 7), (11, 11, 18), (18, 26, 33), (6, 11, 18)))
        while True:
            plan = []
            planned = 0
            for x, y in lots:
                if planned >= target_households:
                    break
                floors, units = rng.choice(floors_choice), rng.randint(1, 3)
                plan.append((x, y, floors, units))
                planned += floors * units * 2
            if planned >= target_households or min(floors_choice) >= 33:
                break
            floors_choice = tuple(min(33, f + 6) for f in floors_choice)
        buildings: list[dict[str, Any]] = []
        for bn, (x, y, floors, units) in enumerate(plan, start=1):
            cx, cy = x + b_w / 2, y + b_h / 2
            lon_b, lat_b = frame.ll(cx, cy)
            row: dict[str, Any] = {
                "id": f"{cid}-B{bn:02d}",
                "community_id": cid,
                "grid_id": grid_at(cx),
                "name": f"{bn}号楼",
                "name_en": f"Building {bn}",
                "address": f"{name}{bn}号楼",
                "floors": floors,
                "units": units,
                "kind": "residential",
                "footprint": json.dumps({"type": "Polygon", "coordinates": frame.rect(x, y, x + b_w, y + b_h)}),
                "lat": lat_b,
                "lon": lon_b,
            }
            rows.add(Building, row)
            buildings.append({**row, "_x": (x, y)})

        self._residents_and_devices(rows, cid, frame, buildings, grid_at, (x0, y0, x1, y1), gated, district.places)

    def _residents_and_devices(
        self,
        rows: Rows,
        cid: str,
        frame: LocalFrame,
        buildings: list[dict[str, Any]],
        grid_at: Callable[[float], str],
        extent: tuple[float, float, float, float],
        gated: bool,
        places: tuple[str, ...],
    ) -> None:
        rng = self.rng
        ids = self.ids
        share_rental = rng.uniform(0.08, 0.3)
        share_group = rng.uniform(0.0, 0.03)
        share_vacant = rng.uniform(0.03, 0.1)
        elder_share = rng.uniform(0.02, 0.07)
        lock_share = rng.uniform(0.3, 0.7)  # owners who took the smart-lock retrofit
        pn = 0
        owners: list[str] = []

        def device(did: str, dtype: str, x: float, y: float, **extra: Any) -> None:
            lon, lat = frame.ll(x, y)
            rows.add(
                Device,
                {
                    "id": did,
                    "community_id": cid,
                    "type": dtype,
                    "name": extra.pop("name", ""),
                    "building_id": extra.pop("building", None),
                    "household_id": extra.pop("household", None),
                    "grid_id": grid_at(x),
                    "floor": extra.pop("floor", None),
                    "lat": lat,
                    "lon": lon,
                    "install_date": DEVICE_INSTALL,
                    "silent_hours": None,
                    "config": extra.pop("config", {}),
                },
            )
            self.devices += 1

        def person(hid: str, role: str, age: int, *, floating: bool = False, tag: str = "") -> str:
            nonlocal pn
            pn += 1
            male = rng.random() < 0.5
            pid = f"{cid}-P{pn:05d}"
            number, birth = ids.id_number(age, male, FLOATING_PLACES if floating else places)
            registered = expires = None
            if floating:
                registered = DEMO_DATE - dt.timedelta(days=rng.randint(10, 340) if rng.random() > 0.03 else 400)
                expires = registered + dt.timedelta(days=365)
            rows.add(
                Person,
                {
                    "id": pid,
                    "community_id": cid,
                    "name": ids.name(male),
                    "id_number": number,
                    "id_hash": keyed_hash(self.key, number),
                    "phone": ids.phone() if age >= 14 else None,
                    "gender": "M" if male else "F",
                    "birth_date": birth,
                    "face_id": f"F{cid}{pn:05d}",
                    "floating_registered_on": registered,
                    "floating_expires_on": expires,
                    "elder_inactive_hours": None,
                    "notes": "",
                },
            )
            for t in filter(None, (tag, "floating" if floating else "")):
                rows.add(PersonTag, {"person_id": pid, "tag": t})
            rows.add(Residency, {"person_id": pid, "household_id": hid, "role": role, "since": None})
            self.residents += 1
            return pid

        for b in buildings:
            bx, by = b["_x"]
            for unit in range(1, b["units"] + 1):
                ux = bx + 42.0 * (unit - 0.5) / b["units"]
                device(f"SD-{b['id']}-{unit}", "smoke_detector", ux, by + 7, building=b["id"], name="楼道烟感")
                device(f"CAM-{b['id']}-U{unit}", "camera", ux, by - 2, building=b["id"], name="单元入口摄像机")
                if gated:
                    device(f"FG-{b['id']}-{unit}", "face_gate", ux, by - 1, building=b["id"], name="单元人脸门禁")
                    device(f"IC-{b['id']}-{unit}", "intercom", ux, by - 1, building=b["id"], name="可视对讲")
                for floor in range(1, b["floors"] + 1):
                    for room in (1, 2):
                        hid = f"{b['id']}-{unit}-{floor}{room:02d}"
                        roll = rng.random()
                        if roll < share_group:
                            category = "group_rental"
                        elif roll < share_group + share_rental:
                            category = "rental"
                        elif roll < share_group + share_rental + share_vacant:
                            category = "vacant"
                        else:
                            category = "owner"
                        rows.add(
                            Household,
                            {
                                "id": hid,
                                "community_id": cid,
                                "building_id": b["id"],
                                "grid_id": b["grid_id"],
                                "unit": unit,
                                "floor": floor,
                                "room": f"{floor}{room:02d}",
                                "category": category,
                                "area_m2": round(rng.uniform(55, 140), 1),
                            },
                        )
                        self.households += 1
                        hx = ux + (-4 if room == 1 else 4)
                        kw = {"household": hid, "building": b["id"], "floor": floor}
                        if category != "vacant":
                            device(f"HS-{hid}", "smoke_detector", hx, by + 4, name="家用烟感", **kw)
                        if category == "owner":
                            elder = (floor <= 3 and rng.random() < elder_share * 2) or rng.random() < elder_share / 2
                            if elder:
                                person(hid, "owner", rng.randint(70, 92), tag="elderly_alone")
                                device(f"DS-{hid}", "door_sensor", hx, by + 4, name="卧室门磁", **kw)
                                continue
                            size = rng.choices((1, 2, 3, 4, 5), (3, 18, 33, 30, 16))[0]
                            owners.append(person(hid, "owner", rng.randint(32, 75)))
                            if rng.random() < lock_share:
                                device(f"LK-{hid}", "smart_lock", hx, by + 4, name="智能门锁", **kw)
                            for _ in range(size - 1):
                                age = rng.choice((rng.randint(1, 17), rng.randint(25, 70), rng.randint(60, 85)))
                                person(hid, "family", age)
                        elif category == "rental":
                            device(f"LK-{hid}", "smart_lock", hx, by + 4, name="智能门锁", **kw)
                            for i in range(rng.choices((1, 2, 3), (30, 40, 30))[0]):
                                pid = person(hid, "tenant", rng.randint(19, 55), floating=rng.random() < 0.6)
                                if i == 0 and rng.random() < 0.25:
                                    owners.append(pid)
                        elif category == "group_rental":
                            device(f"LK-{hid}", "smart_lock", hx, by + 4, name="智能门锁", **kw)
                            for _ in range(rng.randint(6, 10)):
                                person(hid, "tenant", rng.randint(18, 45), floating=rng.random() < 0.85)
            # cameras at two corners of every building, a thrown-object camera facing tall ones
            device(f"CAM-{b['id']}-1", "camera", bx - 3, by - 3, building=b["id"], name="周边摄像机1")
            device(f"CAM-{b['id']}-2", "camera", bx + 45, by + 17, building=b["id"], name="周边摄像机2")
            if b["floors"] >= 11:
                device(
                    f"TC-{b['id']}",
                    "throw_camera",
                    bx + 21,
                    by - 13,
                    building=b["id"],
                    name="高空抛物相机",
                    config={
                        "calibration": {
                            "camera": f"TC-{b['id']}",
                            "building": b["id"],
                            "floors": b["floors"],
                            "columns": b["units"] * 2,
                            "facade": [[160, 60], [1120, 60], [1120, 680], [160, 680]],
                        }
                    },
                )
        # the main gate: face gates, a vehicle barrier and capture cameras
        x0, gy, x1, y1 = extent
        gx = 0.0
        gate_id = f"{cid}-GATE-S"
        for i in range(2):
            device(
                f"FG-{gate_id}-{i + 1}",
                "face_gate",
                gx - 3 + 3 * i,
                gy,
                name=f"南门人脸门禁{i + 1}",
                config={"gate": gate_id},
            )
        device(f"VG-{gate_id}-1", "vehicle_gate", gx + 8, gy, name="南门车辆道闸", config={"gate": gate_id})
        for i in range(2):
            device(
                f"CAM-{gate_id}-{i + 1}",
                "camera",
                gx - 6 + 12 * i,
                gy + 4,
                name=f"南门抓拍相机{i + 1}",
                config={"gate": gate_id, "capture": True},
            )
        # vehicles of a share of the owners; two blacklisted plates per hundred communities
        rng.shuffle(owners)
        for owner in owners[: int(len(owners) * rng.uniform(0.25, 0.55))]:
            rows.add(
                Vehicle,
                {"plate": ids.plate(), "community_id": cid, "owner_id": owner, "blacklisted": False, "note": ""},
            )
        # guards with wearables, patrol checkpoints along the ring road, one night route
        checkpoints = []
        corners = ((x0 + 12, gy + 12), (x1 - 12, gy + 12), (x1 - 12, y1 - 12), (x0 + 12, y1 - 12))
        for i in range(6):  # evenly along the ring road, from the south-west corner anticlockwise
            side, frac = divmod(i * 4 / 6, 1)
            (ax, ay), (bx, by) = corners[int(side)], corners[(int(side) + 1) % 4]
            did = f"CP-{cid}-{i + 1:02d}"
            device(did, "checkpoint", ax + (bx - ax) * frac, ay + (by - ay) * frac, name=f"巡更点{i + 1:02d}")
            checkpoints.append(did)
        kinds = ("police", "auxiliary", "grid_worker", "grid_worker", "volunteer", "volunteer", "security", "security")
        grids = sorted({b["grid_id"] for b in buildings})
        for i, kind in enumerate(kinds):
            wid = f"WR-{cid}-{i + 1:02d}"
            device(wid, "wearable", gx, gy + 2, name=f"随身终端{i + 1:02d}")
            male = rng.random() < 0.7
            rows.add(
                Guard,
                {
                    "id": f"{cid}-GD{i + 1:02d}",
                    "community_id": cid,
                    "name": ids.name(male),
                    "kind": kind,
                    "phone": ids.phone(),
                    "grid_id": grids[i % len(grids)] if kind in ("grid_worker", "volunteer") and grids else None,
                    "device_id": wid,
                    "on_duty": True,
                },
            )
        rows.add(
            PatrolRoute,
            {
                "id": f"{cid}-R1",
                "community_id": cid,
                "name": "夜间巡更路线",
                "interval_minutes": 120,
                "start_hour": 20,
                "end_hour": 6,
                "tolerance_minutes": 15,
            },
        )
        for i, cp in enumerate(checkpoints):
            rows.add(
                PatrolCheckpoint, {"route_id": f"{cid}-R1", "seq": i + 1, "device_id": cp, "offset_minutes": i * 4}
            )


def build_synthetic_communities(
    stores: Stores, *, size: int, seed: int, progress: Callable[[int, int], None] | None = None
) -> None:
    """`size - 2` synthetic communities beside the two demo ones (see the module docstring)."""
    rng = random.Random(seed)
    ids = Identities(random.Random(seed + 1))
    with stores.sessions() as session:
        ids.used_ids.update(n for n in session.scalars(select(Person.id_number)) if n)
        ids.used_phones.update(p for p in session.scalars(select(Person.phone)) if p)
        ids.used_plates.update(session.scalars(select(Vehicle.plate)))
    synthetic = max(0, size - 2)
    sites = lattice_sites(rng, synthetic)
    names = community_names(rng, synthetic)
    builder = CityBuilder(ids, stores.id_hash_key, rng)
    rows = Rows()
    done = 0
    session_factory = stores.sessions
    for n, ((district, lat, lon), name) in enumerate(zip(sites, names, strict=True), start=1):
        builder.community(rows, f"yc{n:04d}", name, district, lat, lon)
        if n % CHUNK_COMMUNITIES == 0 or n == synthetic:
            with session_factory.begin() as session:
                rows.flush(session)
            done = n
            if progress:
                progress(done + 2, synthetic + 2)


def city_report(stores: Stores, started: float) -> CityReport:
    """What the registry holds now, and the seconds since `started` (a `time.monotonic()`)."""
    with stores.sessions() as session:
        communities = session.scalar(select(func.count()).select_from(Community)) or 0
        residents = session.scalar(select(func.count()).select_from(Person)) or 0
        devices = session.scalar(select(func.count()).select_from(Device)) or 0
        households = session.scalar(select(func.count()).select_from(Household)) or 0
    return CityReport(communities, residents, devices, households, round(time.monotonic() - started, 1))
