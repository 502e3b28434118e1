"""The demo world's events, generated slot by slot (10 minutes) from the absolute time.

Every slot's events depend only on the seed, the community and the slot, so a backfill and the
live phase that follows agree, and re-running a backfill produces the same event ids (ingest
counts them as duplicates). The "story" of the day — elders who stopped using their door, a
silent sensor, a tenant who never registered, the wanted man, a smoke alarm, a blacklisted car —
is anchored to the moment the simulator started. Two stories of the Investigate page (issue #19)
come back: every evening at 19:40 a resident walks the dog out of the east face gate while a
guard's walk passes the resident's building (``DogWalk``), and once, on the night before the
start, a car seen nowhere else that week enters a barrier at about 01:12 and leaves at about 01:38.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any

from core.timefmt import SHANGHAI, ms_to_utc
from registry.demo import WANTED_ID
from simulator.demo_roster import team_on_duty
from simulator.meters import (
    FRIDGE_CYCLE_MS,
    READING_MS,
    HomeDay,
    collapsed,
    home_day,
    litres_between,
    mean_watts_between,
)
from simulator.world import World

SLOT_MS = 600_000
MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
HEARTBEAT_MS = 30 * MIN_MS
POSITION_EVERY_MS = 20_000
WALK_M_PER_S = 1.2


def stable(*parts: object) -> int:
    """A stable integer from parts (Python's hash() changes between runs)."""
    digest = hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def local_minutes(ms: int) -> float:
    """Minutes after local (Asia/Shanghai) midnight."""
    t = ms_to_utc(ms).astimezone(SHANGHAI)
    return t.hour * 60 + t.minute + t.second / 60


SHANGHAI_OFFSET_MS = 8 * HOUR_MS  # China keeps UTC+8 all year (no summer time since 1991)


def local_midnight(ms: int) -> int:
    """Epoch ms of the local (Asia/Shanghai) midnight on or before ms: arithmetic on the fixed
    offset, as the simulator asks it hundreds of thousands of times a simulated day."""
    return (ms + SHANGHAI_OFFSET_MS) // DAY_MS * DAY_MS - SHANGHAI_OFFSET_MS


def activity(hour: float) -> float:
    """Relative busyness of the gates by hour of day (peaks at 7–9 and 17–19)."""
    return (
        0.15
        + math.exp(-((hour - 8) ** 2) / 2)
        + 0.9 * math.exp(-((hour - 18) ** 2) / 3)
        + 0.3 * math.exp(-((hour - 12.5) ** 2) / 4)
    )


DOG_OUT_MIN = 19 * 60 + 40  # local minutes: the resident leaves by the east gate with the dog
DOG_WALK_MIN = (19 * 60 + 35, 19 * 60 + 50)  # the guard's walk gate → building → gate
NIGHT_CAR_MIN = (60 + 12, 60 + 38)  # local minutes: the night car's entry and exit


@dataclass(frozen=True)
class DogWalk:
    """The evening story: who walks the dog through which gate, and the guard who passes by."""

    person: str
    gate: str  # the east face gate
    building: str  # the resident's building
    guard: str
    wearable: str
    path: tuple[tuple[float, float], ...]  # the guard's walk (lat, lon): gate → building → gate


@dataclass
class Story:
    """The day's incidents, anchored to the simulator's start."""

    anchor: int
    inactive_elders: dict[str, int] = field(default_factory=dict)  # sensor → last door event time
    silent_sensors: dict[str, int] = field(default_factory=dict)  # sensor → time it went quiet
    intruders: dict[str, str] = field(default_factory=dict)  # lock → unknown face id moving in
    wanted_lock: str | None = None
    incidents: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    dog: DogWalk | None = None
    night_plate: str | None = None


def make_story(world: World, anchor: int, seed: int) -> Story:
    """Choose the incidents of the lived-in day (deterministic for a seed and community)."""
    rng = random.Random(stable(seed, world.community, "story"))
    story = Story(anchor=anchor)
    elders = world.elders[:]
    rng.shuffle(elders)
    for elder, hours in zip(elders[:2], (13.5, 15.0), strict=False):
        story.inactive_elders[elder.sensor] = anchor - int(hours * HOUR_MS)
    if len(elders) > 2:
        story.silent_sensors[elders[2].sensor] = anchor - int(3.2 * HOUR_MS)
    rentals = [r for r in world.rentals if r.faces]
    rng.shuffle(rentals)
    for rental in rentals[:3]:
        story.intruders[rental.lock] = f"U{stable(seed, rental.lock) % 10**8:08d}"
    if len(rentals) > 3 and world.community == "wanhu":  # the article's wanted man moved into Wanhu Xincun
        story.wanted_lock = rentals[3].lock
        story.incidents.append(
            (
                anchor - 5 * HOUR_MS,
                {"type": "lock.open", "device": rentals[3].lock, "data": {"method": "face", "id_number": WANTED_ID}},
            )
        )
    if world.smoke_detectors:
        detector = rng.choice(world.smoke_detectors)
        story.incidents.append(
            (anchor - 6 * HOUR_MS, {"type": "smoke.alarm", "device": detector, "data": {"level": "test"}})
        )
        story.incidents.append(
            (
                anchor - 40 * MIN_MS,
                {"type": "smoke.alarm", "device": rng.choice(world.smoke_detectors), "data": {"level": "alarm"}},
            )
        )
    if world.blacklisted_plates and world.vehicle_gates:
        story.incidents.append(
            (
                anchor - 3 * HOUR_MS,
                {
                    "type": "gate.vehicle",
                    "device": world.vehicle_gates[0],
                    "data": {"direction": "in", "plate": world.blacklisted_plates[0]},
                },
            )
        )
    memory = random.Random(stable(seed, world.community, "investigate"))  # its own draws: the others stay as they were
    story.dog = dog_walk(world, memory)
    if world.vehicle_gates:
        night_car(world, story, memory)
    if world.throw_cameras:
        camera, calibration = rng.choice(world.throw_cameras)
        if calibration:
            floor = rng.randint(3, int(calibration.get("floors", 6)))
            column = rng.randint(1, int(calibration.get("columns", 4)))
            story.incidents.append(
                (
                    anchor - 90 * MIN_MS,
                    {
                        "type": "camera.throw",
                        "device": camera,
                        "data": {
                            "origin": {"building": calibration.get("building"), "floor": floor, "column": column},
                            "trajectory": [
                                [i * 80, 400 + column * 120, 120 + 9.8 * (i * 0.08) ** 2 * 60] for i in range(12)
                            ],
                        },
                    },
                )
            )
    if world.cameras:
        story.incidents.append(
            (
                anchor - 4 * HOUR_MS,
                {"type": "camera.fall", "device": rng.choice(world.cameras), "data": {"bbox": [620, 410, 180, 70]}},
            )
        )
    return story


def east_gate(world: World) -> str | None:
    """The community's east face gate (an entrance named ``…-GATE-E``, else the easternmost face gate)."""
    placed = [g for g in world.face_gates if g in world.positions]
    east = [g for g in placed if world.gate_of.get(g, "").endswith("-GATE-E")]
    return min(east) if east else max(placed, key=lambda g: world.positions[g][1], default=None)


def dog_walk(world: World, rng: random.Random) -> DogWalk | None:
    """Choose the evening's dog walker (a resident of a building near the east gate) and the guard
    on duty whose walk passes that building."""
    gate = east_gate(world)
    on_duty = [(g, w) for g, w, _ in world.guards if team_on_duty(world.guard_teams.get(g, 0), DOG_OUT_MIN / 60)]
    if gate is None or not on_duty:
        return None
    glat, glon = world.positions[gate]
    homes = {p: b for p, b in world.homes.items() if p in set(world.resident_people) and b in world.positions}
    if not homes:
        return None
    near = sorted(
        set(homes.values()),
        key=lambda b: math.hypot(world.positions[b][0] - glat, (world.positions[b][1] - glon) * 0.83),
    )[:3]
    building = rng.choice(near)
    person = rng.choice(sorted(p for p, b in homes.items() if b == building))
    guard, wearable = rng.choice(on_duty)
    there = world.walk((glat, glon), world.positions[building]) or [(glat, glon), world.positions[building]]
    return DogWalk(person, gate, building, guard, wearable, tuple(there + there[::-1]))


def night_car(world: World, story: Story, rng: random.Random) -> None:
    """The night before the anchor: a plate from another province (so seen nowhere else) enters a
    barrier at about 01:12 and leaves at about 01:38."""
    night = local_midnight(story.anchor)
    if night + (NIGHT_CAR_MIN[1] + 5) * MIN_MS > story.anchor:  # tonight's 01:38 has not come yet
        night -= 24 * HOUR_MS
    gate = rng.choice(world.vehicle_gates)
    story.night_plate = "皖" + rng.choice("ABCK") + f"{rng.randrange(10**5):05d}"
    for minute, direction in zip(NIGHT_CAR_MIN, ("in", "out"), strict=True):
        ts = night + minute * MIN_MS + rng.randrange(MIN_MS)
        story.incidents.append(
            (ts, {"type": "gate.vehicle", "device": gate, "data": {"direction": direction, "plate": story.night_plate}})
        )


def dog_position(dog: DogWalk, ts: int) -> tuple[float, float] | None:
    """Where the dog story's guard is at ts (None outside the evening walk)."""
    minute = local_minutes(ts)
    first, last = DOG_WALK_MIN
    if not first <= minute < last or len(dog.path) < 2:
        return None
    along = (minute - first) / (last - first) * (len(dog.path) - 1)
    i = min(int(along), len(dog.path) - 2)
    f = along - i
    (lat1, lon1), (lat2, lon2) = dog.path[i], dog.path[i + 1]
    return lat1 + (lat2 - lat1) * f, lon1 + (lon2 - lon1) * f


def _event(
    world: World, slot: int, n: int, ts: int, event_type: str, device: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {"id": f"sim-{world.community}-{slot}-{n}", "type": event_type, "device": device, "ts": ts, "data": data}


def slot_events(
    world: World, story: Story, slot: int, seed: int, *, positions: bool, position_every_ms: int = POSITION_EVERY_MS
) -> list[dict[str, Any]]:
    """Every event of one 10-minute slot, sorted by time (guards' positions, when asked for, one per
    guard every ``position_every_ms``)."""
    start = slot * SLOT_MS
    end = start + SLOT_MS
    rng = random.Random(stable(seed, world.community, slot))
    out: list[tuple[int, str, str, dict[str, Any]]] = []
    silent_since = story.silent_sensors
    # heartbeats every 30 minutes, each device at its own phase
    for device in world.heartbeat_devices:
        phase = stable(device) % HEARTBEAT_MS
        first = start + (phase - start) % HEARTBEAT_MS
        for ts in range(first, end, HEARTBEAT_MS):
            if device in silent_since and ts >= silent_since[device]:
                continue
            out.append((ts, "device.heartbeat", device, {"battery": 40 + stable(device, "b") % 60}))
    hour = local_minutes(start) / 60
    busy = activity(hour)
    # elders' bedroom doors, and their outings through the face gates
    for elder in world.elders:
        stopped = story.inactive_elders.get(elder.sensor) or silent_since.get(elder.sensor)
        for ts in elder_door_times(elder, start, end, seed):
            if stopped is not None and ts >= stopped:
                continue
            for offset, state in ((0, "open"), (40_000 + stable(elder.sensor, ts) % 60_000, "closed")):
                if ts + offset < end:
                    out.append((ts + offset, "door.contact", elder.sensor, {"state": state}))
        out.extend(meter_readings(elder, start, end, seed, story.inactive_elders.get(elder.sensor)))
        if not world.face_gates or story.inactive_elders.get(elder.sensor) is not None:
            continue
        for leave, back in elder_outings(elder, local_midnight(start), seed):
            gate = world.face_gates[stable(elder.person, leave) % len(world.face_gates)]
            for ts, direction in ((leave + 4 * MIN_MS, "out"), (back - 4 * MIN_MS, "in")):
                if start <= ts < end and stable(elder.person, ts) % 10:  # the gate misses one face in ten
                    out.append((ts, "gate.face", gate, {"direction": direction, "person": elder.person, "score": 0.93}))
    # rental locks: registered tenants, and the story's intruders
    for rental in world.rentals:
        day = local_midnight(start)
        opens = lock_times(rental.lock, day, seed)
        for ts in opens:
            if start <= ts < end:
                if rental.faces and stable(rental.lock, ts) % 10 < 7:
                    face = rental.faces[stable(rental.lock, ts, "f") % len(rental.faces)]
                    out.append((ts, "lock.open", rental.lock, {"method": "face", "face_id": face}))
                else:
                    # a registered tenant's card or app carries the tenant's identity
                    tenant = (
                        rental.tenants[stable(rental.lock, ts, "p") % len(rental.tenants)] if rental.tenants else None
                    )
                    data: dict[str, Any] = {"method": rng.choice(["card", "app"])}
                    if tenant:
                        data["person"] = tenant
                    out.append((ts, "lock.open", rental.lock, data))
        intruder = story.intruders.get(rental.lock)
        if intruder is not None:
            for days_ago in (2, 1, 0):
                ts = local_midnight(story.anchor) - days_ago * 24 * HOUR_MS + (20 * 60 + 17) * MIN_MS
                ts = min(ts, story.anchor - 20 * MIN_MS)
                if start <= ts < end:
                    out.append((ts, "lock.open", rental.lock, {"method": "face", "face_id": intruder}))
    # face gates and barriers, by the hour's busyness
    for gate in world.face_gates:
        for _ in range(poisson(rng, 4.0 * busy)):
            ts = start + rng.randrange(SLOT_MS)
            direction = "out" if (hour < 12) == (rng.random() < 0.75) else "in"
            if world.resident_people and rng.random() > 0.04:
                data = {
                    "direction": direction,
                    "person": rng.choice(world.resident_people),
                    "score": round(rng.uniform(0.86, 0.99), 3),
                }
            else:
                data = {
                    "direction": direction,
                    "face_id": f"V{rng.randrange(10**7):07d}",
                    "score": round(rng.uniform(0.6, 0.8), 3),
                }
            out.append((ts, "gate.face", gate, data))
    for gate in world.vehicle_gates:
        for _ in range(poisson(rng, 2.0 * busy)):
            ts = start + rng.randrange(SLOT_MS)
            if world.resident_plates and rng.random() > 0.06:
                plate = rng.choice(world.resident_plates)
            else:
                plate = "苏" + rng.choice("JAKH") + f"{rng.randrange(10**5):05d}"
            out.append((ts, "gate.vehicle", gate, {"direction": rng.choice(["in", "out"]), "plate": plate}))
    # night patrol rounds
    out.extend(patrol_checkins(world, start, end, seed))
    # guards' positions
    if positions:
        for guard, wearable, _kind in world.guards:
            if not team_on_duty(world.guard_teams.get(guard, 0), hour):
                continue  # the guard's team is off duty (simulator.demo_roster): the wearable is silent
            loop = guard_loop(world, guard, seed)
            first = start + (-start) % position_every_ms
            walker = story.dog is not None and story.dog.guard == guard
            for ts in range(first, end, position_every_ms):
                at_dog = dog_position(story.dog, ts) if walker and story.dog is not None else None
                lat, lon = at_dog or position_on_loop(loop, ts, stable(guard) % 600)
                out.append(
                    (ts, "guard.position", wearable, {"lat": round(lat, 7), "lon": round(lon, 7), "accuracy_m": 5})
                )
    # the evening dog walk through the east gate
    dog = story.dog
    if dog is not None:
        ts = local_midnight(start) + DOG_OUT_MIN * MIN_MS + stable(seed, dog.person, local_midnight(start)) % 30_000
        if start <= ts < end:
            out.append((ts, "gate.face", dog.gate, {"direction": "out", "person": dog.person, "score": 0.95}))
    # the story's one-off incidents
    for ts, incident in story.incidents:
        if start <= ts < end:
            out.append((ts, incident["type"], incident["device"], incident["data"]))
    out.sort(key=lambda e: (e[0], e[2]))
    return [_event(world, slot, n, ts, t, d, data) for n, (ts, t, d, data) in enumerate(out)]


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth; the means here are small)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def elder_outings(elder: Any, day: int, seed: int) -> tuple[tuple[int, int], ...]:
    """The elder's outing of that local day, if any (a third of days): out of the flat and through
    a face gate for 1–3 hours between 09:00 and 18:00."""
    return sensor_outings(elder.sensor, day, seed)


@functools.lru_cache(maxsize=8192)
def sensor_outings(sensor: str, day: int, seed: int) -> tuple[tuple[int, int], ...]:
    """elder_outings, by the elder's door sensor (drawn once a day, asked for in each slot)."""
    rng = random.Random(stable(seed, sensor, day, "outing"))
    if rng.random() >= 0.35:
        return ()
    leave = day + rng.randint(9 * 60, 15 * 60) * MIN_MS
    return ((leave, leave + rng.randint(60, 180) * MIN_MS),)


def elder_door_times(elder: Any, start: int, end: int, seed: int) -> list[int]:
    """When the elder opens the bedroom door in [start, end): wake, a few times a day, bed; none
    while out (a use just before leaving and soon after coming back)."""
    day = local_midnight(start)
    return sorted(
        ts
        for d in (day, day + 24 * HOUR_MS)
        for ts in elder_day(elder.sensor, elder.wake_min, elder.bed_min, elder.naps, d, seed)
        if start <= ts < end
    )


def elder_day(sensor: str, wake_min: int, bed_min: int, naps: bool, d: int, seed: int) -> tuple[int, ...]:
    """The elder's bedroom-door uses of local day d."""
    return elder_plan(sensor, wake_min, bed_min, naps, d, seed)[0]


@functools.lru_cache(maxsize=8192)
def elder_plan(
    sensor: str, wake_min: int, bed_min: int, naps: bool, d: int, seed: int
) -> tuple[tuple[int, ...], int, int, tuple[int, ...]]:
    """The elder's local day d: (bedroom-door uses, wake, bed, night trips) (drawn once a day,
    asked for in each of its 144 slots: hence the cache)."""
    outings = sensor_outings(sensor, d, seed)
    rng = random.Random(stable(seed, sensor, d))
    times = [wake_min + rng.randint(-25, 25), bed_min + rng.randint(-30, 30)]
    times += [rng.randint(wake_min + 60, bed_min - 60) for _ in range(rng.randint(2, 5))]
    if naps:
        times.append(13 * 60 + rng.randint(0, 40))
    night = rng.random() < 0.3
    if night:
        times.append(rng.randint(60, 240))  # a night trip
    stamps = [d + minute * MIN_MS + rng.randrange(MIN_MS) for minute in times]
    wake, bed, trips = stamps[0], stamps[1], tuple(stamps[-1:] if night else ())
    for leave, back in outings:
        stamps = [ts for ts in stamps if not leave <= ts < back]
        stamps += [leave - 8 * MIN_MS, back + 12 * MIN_MS]
    return tuple(stamps), wake, bed, trips


@functools.lru_cache(maxsize=8192)
def elder_home(sensor: str, wake_min: int, bed_min: int, naps: bool, d: int, seed: int, stopped: int | None) -> HomeDay:
    """The elder's water draws and appliance loads of local day d (simulator/meters.py), from the
    same day's plan as the door; an elder who stopped moving at ``stopped`` draws nothing after it."""
    _, wake, bed, trips = elder_plan(sensor, wake_min, bed_min, naps, d, seed)
    rng = random.Random(stable(seed, sensor, d, "home"))
    day = home_day(rng, d, wake, bed, trips, sensor_outings(sensor, d, seed))
    return day if stopped is None else collapsed(day, stopped)


def meter_readings(
    elder: Any, start: int, end: int, seed: int, stopped: int | None
) -> list[tuple[int, str, str, dict[str, Any]]]:
    """The elder's water and power meters' readings in [start, end): every 15 minutes, each meter at
    its own phase, the litres and the mean watts since the previous reading."""
    out: list[tuple[int, str, str, dict[str, Any]]] = []
    for meter, kind in ((elder.water_meter, "meter.water"), (elder.power_meter, "meter.power")):
        if meter is None:
            continue
        phase = stable(meter) % READING_MS
        for ts in range(start + (phase - start) % READING_MS, end, READING_MS):
            day = local_midnight(ts)
            days = [
                elder_home(elder.sensor, elder.wake_min, elder.bed_min, elder.naps, d, seed, stopped)
                for d in (day - DAY_MS, day)
            ]
            if kind == "meter.water":
                out.append((ts, kind, meter, {"litres": litres_between(days, ts - READING_MS, ts)}))
            else:
                watts = mean_watts_between(days, ts - READING_MS, ts, stable(meter, "fridge") % FRIDGE_CYCLE_MS)
                out.append((ts, kind, meter, {"watts": watts}))
    return out


@functools.lru_cache(maxsize=16384)
def lock_times(lock: str, day: int, seed: int) -> tuple[int, ...]:
    """When a rental's lock is opened on a day (drawn once a day, asked for in each of its slots)."""
    rng = random.Random(stable(seed, lock, day))
    return tuple(
        sorted(day + rng.randint(6 * 60, 23 * 60) * MIN_MS + rng.randrange(MIN_MS) for _ in range(rng.randint(1, 4)))
    )


def guard_loop(world: World, guard: str, seed: int) -> list[tuple[float, float, float]]:
    """A closed walk of the guard on the path network: (lat, lon, metres from the loop start)."""
    rng = random.Random(stable(seed, guard, "loop"))
    if world.route and stable(guard) % 4 == 0:
        stops = [(lat, lon) for _, lat, lon in world.route]
    else:
        nodes = sorted(world.graph.nodes)
        if not nodes:
            return [(0.0, 0.0, 0.0)]
        stops = [(n[1], n[0]) for n in rng.sample(nodes, min(4, len(nodes)))]
    points: list[tuple[float, float]] = []
    for a, b in zip(stops, stops[1:] + stops[:1], strict=False):
        points.extend(world.walk(a, b))
    loop: list[tuple[float, float, float]] = []
    total = 0.0
    for i, (lat, lon) in enumerate(points):
        if i:
            plat, plon, _ = loop[-1]
            total += math.hypot((lat - plat) * 111_320, (lon - plon) * 92_900)
        loop.append((lat, lon, total))
    return loop


def position_on_loop(loop: list[tuple[float, float, float]], ts: int, phase_s: int) -> tuple[float, float]:
    """Where a guard walking the loop at a steady pace is at time ts."""
    length = loop[-1][2]
    if length <= 0:
        return loop[0][0], loop[0][1]
    along = ((ts / 1000 + phase_s) * WALK_M_PER_S) % length
    for (lat1, lon1, d1), (lat2, lon2, d2) in itertools.pairwise(loop):
        if d1 <= along <= d2:
            f = 0.0 if d2 == d1 else (along - d1) / (d2 - d1)
            return lat1 + (lat2 - lat1) * f, lon1 + (lon2 - lon1) * f
    return loop[-1][0], loop[-1][1]


def patrol_checkins(world: World, start: int, end: int, seed: int) -> list[tuple[int, str, str, dict[str, Any]]]:
    """Check-ins of the night rounds (now and then a checkpoint is missed)."""
    if not world.route:
        return []
    security = [g for g, _, kind in world.guards if kind == "security"] or [g for g, _, _ in world.guards]
    if not security:
        return []
    out = []
    first_hour, last_hour = world.route_hours
    day = local_midnight(start)
    for d in (day - 24 * HOUR_MS, day):
        round_start = d + first_hour * HOUR_MS
        round_end = d + (24 + last_hour) * HOUR_MS if last_hour < first_hour else d + last_hour * HOUR_MS
        for begin in range(round_start, round_end, world.route_interval_min * MIN_MS):
            rng = random.Random(stable(seed, world.community, "round", begin))
            guard = security[stable(begin) % len(security)]
            skipped = rng.randrange(len(world.route)) if rng.random() < 0.15 else -1
            for i, (checkpoint, _, _) in enumerate(world.route):
                ts = begin + i * 4 * MIN_MS + rng.randint(0, 90_000)
                if i != skipped and start <= ts < end:
                    out.append((ts, "patrol.checkin", checkpoint, {"guard": guard}))
    return out
