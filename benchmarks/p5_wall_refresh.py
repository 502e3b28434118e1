"""P5 — wall-screen refresh: the payload of one tick when 1 % of 10,000 devices and all 200 guards
change every second, against re-sending the full FeatureCollection; and the server time per
refresh against the refresh interval. Measured through the real callback endpoint.

Last line: {"bench": "P5", "ratio": delta_bytes / full_bytes, "server_ms_p95": …, "server_share": …}
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from app import create_app
from benchmarks.common import bench_world, report
from callbacks.requests import wall_refresh_request
from layouts import ids
from registry.models import Building, Device, Guard
from registry.queries import Scope, device_layer

DEVICES = 10_000
GUARDS = 200
TICKS = 20


def grow_world(bench: Any) -> tuple[list[str], list[str]]:
    """Wanhu Xincun grown to 10,000 devices and 200 guards with wearables."""
    stores = bench.stores
    rng = random.Random(5)
    with stores.sessions.begin() as session:
        buildings = list(
            session.execute(
                select(Building.id, Building.lat, Building.lon, Building.grid_id).where(
                    Building.community_id == "wanhu"
                )
            )
        )
        have = session.scalar(select(Device.id).where(Device.community_id == "wanhu").limit(1))
        existing = len(list(session.scalars(select(Device.id).where(Device.community_id == "wanhu"))))
        rows = []
        for i in range(DEVICES - existing):
            bid, lat, lon, grid = buildings[i % len(buildings)]
            rows.append(
                {
                    "id": f"X-{i:05d}",
                    "community_id": "wanhu",
                    "type": "camera",
                    "name": "",
                    "building_id": bid,
                    "grid_id": grid,
                    "lat": lat + rng.uniform(-1e-4, 1e-4),
                    "lon": lon + rng.uniform(-3e-4, 3e-4),
                    "config": {},
                }
            )
        guards_now = len(list(session.scalars(select(Guard.id).where(Guard.community_id == "wanhu"))))
        wearables, guards = [], []
        for i in range(GUARDS - guards_now):
            wearables.append(
                {
                    "id": f"XW-{i:03d}",
                    "community_id": "wanhu",
                    "type": "wearable",
                    "name": "",
                    "lat": 33.389,
                    "lon": 120.153,
                    "config": {},
                }
            )
            guards.append(
                {
                    "id": f"wanhu-XG{i:03d}",
                    "community_id": "wanhu",
                    "name": f"卫士{i}",
                    "kind": "volunteer",
                    "device_id": f"XW-{i:03d}",
                    "on_duty": True,
                }
            )
        session.execute(insert(Device), rows + wearables)
        session.execute(insert(Guard), guards)
        assert have
        devices = list(
            session.scalars(select(Device.id).where(Device.community_id == "wanhu", Device.type != "wearable"))
        )
        guard_ids = list(session.scalars(select(Guard.id).where(Guard.community_id == "wanhu")))
    return devices, guard_ids


def move(bench: Any, devices: list[str], guards: list[str], rng: random.Random, now: int) -> None:
    """One second of change: 1 % of the devices flip online/offline, every guard moves."""
    keys, r = bench.stores.keys, bench.stores.redis
    pipe = r.pipeline(transaction=False)
    for device in rng.sample(devices, len(devices) // 100):
        seen = now if rng.random() < 0.5 else now - 3 * 3_600_000
        pipe.zadd(keys.device_seen("wanhu"), {device: seen})
        pipe.zadd(keys.changes("wanhu"), {f"device:{device}": now})
    for guard in guards:
        lat, lon = 33.387 + rng.random() * 0.004, 120.151 + rng.random() * 0.006
        state = {"lat": lat, "lon": lon, "ts": now, "accuracy_m": 5, "device": ""}
        pipe.hset(keys.guard_state("wanhu"), guard, json.dumps(state))
        pipe.lpush(keys.guard_trail("wanhu", guard), json.dumps([lat, lon, now]))
        pipe.ltrim(keys.guard_trail("wanhu", guard), 0, 29)
        pipe.zadd(keys.changes("wanhu"), {f"guard:{guard}": now})
    pipe.incr(keys.version("wanhu"))
    pipe.execute()


def full_feature_collection(bench: Any, devices: list[str], guards: list[str]) -> int:
    """Bytes of the naive refresh: every device and guard as one FeatureCollection."""
    with bench.stores.sessions() as session:
        fc = device_layer(session, Scope(), "wanhu")
    for guard in guards:
        fc["features"].append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [120.15, 33.39]},
                "properties": {
                    "id": guard,
                    "kind": "volunteer",
                    "name": "卫士",
                    "active": True,
                    "color": "#ffb020",
                    "label": "志愿者",
                },
            }
        )
    for feature in fc["features"][: len(devices)]:
        feature["properties"]["status"] = "online"
    return len(json.dumps(fc, ensure_ascii=False).encode())


def main() -> None:
    """Run P5."""
    with bench_world() as bench:
        devices, guards = grow_world(bench)
        app = create_app(bench.stores)
        client = app.server.test_client()
        origin = {"Origin": "http://localhost"}
        assert (
            client.post(
                "/login", data={"username": "police.wanhu", "password": "sandtable2026"}, headers=origin
            ).status_code
            == 302
        )
        client.get("/_dash-layout")

        def tick(state: dict[str, Any]) -> tuple[int, float, dict[str, Any]]:
            body = wall_refresh_request(state)
            began = time.perf_counter()
            response = client.post("/_dash-update-component", json=body, headers=origin)
            elapsed = (time.perf_counter() - began) * 1000
            if response.status_code == 204:
                return 0, elapsed, state
            data = response.get_json()
            new_state = data["response"][ids.LIVE_STATE]["data"]
            return len(response.get_data()), elapsed, new_state

        rng = random.Random(1)
        now = int(time.time() * 1000)
        move(bench, devices, guards, rng, now)
        state = {"community": "wanhu", "since": 0, "ver": -1, "full_at": 0, "lang": "zh"}
        first_bytes, first_ms, state = tick(state)
        sizes, times = [], []
        for i in range(TICKS):
            time.sleep(1.0)
            move(bench, devices, guards, rng, int(time.time() * 1000))
            state["full_at"] = int(time.time() * 1000)  # the 30 s full refresh is not part of a tick
            size, ms, state = tick(state)
            sizes.append(size)
            times.append(ms)
            del i
        full = full_feature_collection(bench, devices, guards)
    interval_ms = bench.settings.refresh_seconds * 1000
    p95 = sorted(times)[int(len(times) * 0.95) - 1]
    mean_bytes = statistics.mean(sizes)
    print(f"first (full) refresh: {first_bytes:,} bytes in {first_ms:.0f} ms")
    print(f"delta tick: mean {mean_bytes:,.0f} bytes, server p95 {p95:.1f} ms (interval {interval_ms:.0f} ms)")
    print(f"full FeatureCollection of {DEVICES:,} devices and {GUARDS} guards: {full:,} bytes")
    report(
        {
            "bench": "P5",
            "ratio": round(mean_bytes / full, 4),
            "delta_bytes": round(mean_bytes),
            "full_bytes": full,
            "server_ms_p95": round(p95, 1),
            "server_ms_median": round(statistics.median(times), 1),
            "server_share": round(p95 / interval_ms, 4),
            "interval_ms": interval_ms,
            "devices": DEVICES,
            "guards": GUARDS,
            "ticks": TICKS,
        }
    )


if __name__ == "__main__":
    main()
