"""P11 — the sand-table at a random time T in the last 7 days (``memory.state.state_at``: the newest
keyframe, then the archive forward to T) against the live state read of the same community (the
wall's reads: devices' last seen and state, guards' positions, the open alerts), server time.

The world: Wanhu Xincun grown to 10,000 devices and 200 guards (benchmarks/p5_wall_refresh.py),
7 days of archive at a steady rate (every device's heartbeat each ``--heartbeat-minutes``, door
contacts on the door sensors, each guard's position each ``--position-minutes``), 300 alerts raised
over the week, half of them handled and closed. The keyframes are built first, as the first reads
after a quiet spell build them (their build time and size are printed), then both reads are timed
on interleaved samples.

Last line: {"bench": "p11", "ratio": state p95 / live p95, …}; ``--repeat N`` measures N times
and prints min/median/max of the ratio (the last line carries the median).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from alerts.history import AlertHistory
from alerts.live import AlertStore, RaiseRequest
from auth.principal import Principal
from benchmarks.common import bench_world, report
from benchmarks.p5_wall_refresh import grow_world
from ingest.directory import Directory
from ingest.schema import Event
from memory.archive import Archiver, archive_row
from memory.keyframes import Keyframe
from memory.state import fold_to, live_state, state_at
from store.stores import Stores

DAY_MS = 86_400_000
POLICE = Principal(kind="user", id="police.bench", role="police", community="wanhu", name="bench")
CHUNK = 20_000


def fill_archive(stores: Stores, now: int, days: int, heartbeat_min: int, position_min: int) -> int:
    """``days`` of events for every device and guard of Wanhu Xincun, written as the archiver writes."""
    rng = random.Random(11)
    facts = Directory(stores.sessions).facts("wanhu")
    archiver = Archiver(stores, consumer="bench", directory=Directory(stores.sessions))
    start = now - days * DAY_MS
    schedule: list[tuple[int, str, str, dict[str, Any]]] = []
    for device in facts.devices.values():
        if device.type == "wearable":
            continue
        period = heartbeat_min * 60_000
        ts = start + rng.randrange(period)
        while ts < now - 60_000:
            schedule.append((ts, "device.heartbeat", device.id, {"battery": rng.randint(20, 100)}))
            if device.type == "door_sensor":
                schedule.append((ts + 1, "door.contact", device.id, {"state": rng.choice(["open", "closed"])}))
            ts += period + rng.randint(-60_000, 60_000)
    for wearable in facts.wearables:
        period = position_min * 60_000
        ts = start + rng.randrange(period)
        while ts < now - 60_000:
            point = {"lat": 33.389 + rng.uniform(-0.003, 0.003), "lon": 120.153 + rng.uniform(-0.003, 0.003)}
            schedule.append((ts, "guard.position", wearable, point))
            ts += period
    schedule.sort()
    rows = []
    for n, (ts, kind, device_id, data) in enumerate(schedule):
        event = Event(id=None, type=kind, device=device_id, ts=ts, data=data, received=ts + 500)
        rows.append(archive_row("wanhu", f"{ts}-{n}", event, facts))
        if len(rows) >= CHUNK:
            archiver.insert(rows)
            rows = []
    archiver.insert(rows)
    return len(schedule)


def live_projections(stores: Stores, now: int) -> None:
    """The live projections at ``now`` as the workers would have left them (from the same events)."""
    state = fold_to(stores, "wanhu", now, now_ms=now)
    keys = stores.keys
    pipe = stores.redis.pipeline(transaction=False)
    for device, row in state.devices.items():
        pipe.zadd(keys.device_seen("wanhu"), {device: row.seen})
        if row.battery_ts is not None:
            pipe.hset(keys.device_state("wanhu"), device, f'{{"battery": {row.battery}, "ts": {row.battery_ts}}}')
        if row.door_ts is not None:
            pipe.zadd(keys.door_last("wanhu"), {device: row.door_ts})
    for guard, (lat, lon, ts) in state.guards.items():
        pipe.hset(keys.guard_state("wanhu"), guard, f'{{"lat": {lat}, "lon": {lon}, "ts": {ts}}}')
    pipe.execute()


def raise_alerts(stores: Stores, now: int, days: int) -> None:
    """300 smoke/offline alerts over the week in Redis and the SQL history; half handled and closed."""
    rng = random.Random(12)
    facts = Directory(stores.sessions).facts("wanhu")
    devices = sorted(d for d in facts.devices if facts.devices[d].type != "wearable")
    alerts = AlertStore(stores.redis, stores.keys)
    history = AlertHistory(stores.sessions)
    for n in range(300):
        at = now - rng.randrange(days * DAY_MS)
        device = devices[n * 31 % len(devices)]
        request = RaiseRequest(
            "device.offline", "low", {"device": device}, None, None, None, facts.devices[device].grid, at, [f"b{n}"]
        )
        changes = alerts.raise_many("wanhu", [request])
        history.write(changes)
        if n % 2 == 0:
            doc = changes[0].doc
            closed = alerts.transition("wanhu", doc["id"], "resolved", actor="bench", at_ms=min(now, at + 3_600_000))
            history.write([closed])


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) > 1 else values[0]


def measure(stores: Stores, now: int, days: int, samples: int, rng: random.Random) -> tuple[float, float]:
    """(state p95 ms, live p95 ms), interleaved."""
    state_ms, live_ms = [], []
    for _ in range(samples):
        at = now - rng.randrange(days * DAY_MS)
        t0 = time.perf_counter()
        state_at(stores, POLICE, "wanhu", at, now_ms=now)
        t1 = time.perf_counter()
        live_state(stores, POLICE, "wanhu", now)
        t2 = time.perf_counter()
        state_ms.append((t1 - t0) * 1000)
        live_ms.append((t2 - t1) * 1000)
    return p95(state_ms), p95(live_ms)


def main() -> None:
    """Run P11."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--heartbeat-minutes", type=int, default=60)
    parser.add_argument("--position-minutes", type=int, default=5)
    args = parser.parse_args()
    with bench_world() as bench:
        stores = bench.stores
        grow_world(bench)
        now = int(time.time() * 1000)
        t0 = time.perf_counter()
        events = fill_archive(stores, now, args.days, args.heartbeat_minutes, args.position_minutes)
        raise_alerts(stores, now, args.days)
        t1 = time.perf_counter()
        fold_to(stores, "wanhu", now - 120_000, now_ms=now)  # builds every keyframe of the week
        t2 = time.perf_counter()
        live_projections(stores, now)
        with stores.sessions() as session:
            frames, size = session.execute(select(func.count(), func.sum(func.length(Keyframe.data)))).one()
        print(
            f"archive: {events} events in {t1 - t0:.1f} s; keyframes: {frames} built in {t2 - t1:.1f} s, "
            f"{size / max(frames, 1) / 1024:.1f} KiB each, {size / 2**20:.1f} MiB in all"
        )
        rng = random.Random(13)
        ratios, results = [], []
        for i in range(args.repeat):
            state_p95, live_p95 = measure(stores, now, args.days, args.samples, rng)
            ratios.append(state_p95 / live_p95)
            results.append((state_p95, live_p95))
            print(f"run {i + 1}: state p95 {state_p95:.1f} ms, live p95 {live_p95:.1f} ms, ratio {ratios[-1]:.2f}")
        if args.repeat > 1:
            print(f"ratio min {min(ratios):.2f} median {statistics.median(ratios):.2f} max {max(ratios):.2f}")
        middle = sorted(range(len(ratios)), key=lambda i: ratios[i])[len(ratios) // 2]
        report(
            {
                "bench": "p11",
                "ratio": round(ratios[middle], 3),
                "state_p95_ms": round(results[middle][0], 2),
                "live_p95_ms": round(results[middle][1], 2),
                "events": events,
                "keyframes": frames,
                "keyframe_kib": round(size / max(frames, 1) / 1024, 1),
                "target": 3,
            }
        )


if __name__ == "__main__":
    main()
