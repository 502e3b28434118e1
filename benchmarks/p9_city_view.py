"""P9 — the city view's refresh over 1,537 communities against the community view's (the wall
screen of Wanhu Xincun), server time per refresh, through the real callback endpoint.

The world: the two demo communities in full and 1,535 more communities (registry rows of the
synthetic city's lattice: boundaries, districts; their people and devices are summed by the
registry figures, which the city view caches for minutes, so their size does not enter a tick).
Open alerts in a third of the communities; every tick, alerts are raised or closed in 1 % of the
communities (city) and devices, guards and alerts change in Wanhu Xincun (community view).

Both views are measured the same way: a full refresh (first paint, and every minute/30 s), and a
tick with changes (every refresh interval). The ratio is of the ticks — what the servers do every
few seconds; the full refreshes' ratio is printed beside it.

Last line: {"bench": "P9", "ratio": city_tick_ms / community_tick_ms, "full_ratio": …, …}
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from alerts.live import AlertStore, RaiseRequest
from app import create_app
from benchmarks.common import bench_world, report
from benchmarks.p5_wall_refresh import grow_world, move
from callbacks.requests import city_refresh_request, wall_refresh_request
from layouts.ids import CITY_STATE, LIVE_STATE
from registry.city import community_names, lattice_sites
from registry.models import Community

CITY = 1537
TICKS = 20
ALERT_TYPES = (
    ("device.offline", "low"),
    ("sensor.silent", "medium"),
    ("lock.unregistered", "medium"),
    ("elder.inactive", "high"),
    ("smoke", "critical"),
    ("throw", "high"),
)
ORIGIN = {"Origin": "http://localhost"}


def add_city(bench: Any) -> list[str]:
    """1,535 communities on the synthetic city's lattice (registry rows only)."""
    rng = random.Random(9)
    sites = lattice_sites(rng, CITY - 2)
    names = community_names(rng, CITY - 2)
    rows = []
    for n, ((district, lat, lon), name) in enumerate(zip(sites, names, strict=True), start=1):
        d = 0.0015
        ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]
        rows.append(
            {
                "id": f"yc{n:04d}",
                "name": name,
                "name_en": "",
                "district": district.name,
                "address": "",
                "kind": "open",
                "built_year": 2000,
                "boundary": json.dumps({"type": "Polygon", "coordinates": [ring]}),
                "center_lat": lat,
                "center_lon": lon,
            }
        )
    with bench.stores.sessions.begin() as session:
        session.execute(insert(Community), rows)
    return ["wanhu", "xingbang"] + [str(r["id"]) for r in rows]


def raise_some(alerts: AlertStore, community: str, rng: random.Random, n: int, now: int) -> None:
    """n open alerts in the community."""
    requests = []
    for _ in range(n):
        alert_type, severity = rng.choice(ALERT_TYPES)
        subject = {"device": f"D{rng.randrange(10**6)}"}
        requests.append(
            RaiseRequest(alert_type, severity, subject, subject, {}, {}, None, now, [f"t{rng.randrange(10**9)}"])
        )
    alerts.raise_many(community, requests)


def close_one(alerts: AlertStore, community: str, now: int) -> None:
    """Resolve one open alert of the community (if any)."""
    open_ = alerts.open_alerts(community)
    if open_:
        a = open_[0]
        alerts.transition(community, a["id"], "false_alarm", actor="bench", at_ms=now)


class Caller:
    """Posts one page's refresh callback as a browser would."""

    def __init__(self, client: Any, request: Callable[[dict[str, Any]], dict[str, Any]], state_id: str) -> None:
        self.client = client
        self.request = request
        self.state_id = state_id

    def __call__(self, state: dict[str, Any]) -> tuple[float, dict[str, Any], int]:
        began = time.perf_counter()
        response = self.client.post("/_dash-update-component", json=self.request(state), headers=ORIGIN)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code == 204:
            return elapsed, state, 0
        assert response.status_code == 200, response.get_data()[:300]
        return elapsed, response.get_json()["response"][self.state_id]["data"], len(response.get_data())


def main() -> None:
    """Run P9."""
    with bench_world() as bench:
        devices, guards = grow_world(bench)
        ids = add_city(bench)
        alerts = AlertStore(bench.stores.redis, bench.stores.keys)
        rng = random.Random(3)
        now = int(time.time() * 1000)
        for community in ids:
            if rng.random() < 0.33:
                raise_some(alerts, community, rng, rng.randint(1, 6), now)
        app = create_app(bench.stores)
        client = app.server.test_client()
        assert (
            client.post("/login", data={"username": "admin", "password": "sandtable2026"}, headers=ORIGIN).status_code
            == 302
        )
        client.get("/_dash-layout")
        city = Caller(client, city_refresh_request, CITY_STATE)
        wall = Caller(client, wall_refresh_request, LIVE_STATE)
        city({"since": 0, "full_at": 0, "lang": "zh"})  # warm-up: registry figures into their cache
        wall({"community": "wanhu", "since": 0, "ver": -1, "full_at": 0, "lang": "zh"})

        city_full, wall_full, city_tick, wall_tick, city_bytes, full_bytes = [], [], [], [], [], 0
        for _ in range(5):
            ms, city_state, full_bytes = city({"since": 0, "full_at": 0, "lang": "zh"})
            city_full.append(ms)
            ms, wall_state, _ = wall({"community": "wanhu", "since": 0, "ver": -1, "full_at": 0, "lang": "zh"})
            wall_full.append(ms)
        for _ in range(TICKS):
            time.sleep(1.0)
            now = int(time.time() * 1000)
            for community in rng.sample(ids, len(ids) // 100):
                if rng.random() < 0.5:
                    raise_some(alerts, community, rng, 1, now)
                else:
                    close_one(alerts, community, now)
            move(bench, devices, guards, rng, now)
            raise_some(alerts, "wanhu", rng, 1, now)
            city_state["full_at"] = wall_state["full_at"] = now  # the periodic full refresh is not a tick
            ms, city_state, size = city(city_state)
            city_tick.append(ms)
            city_bytes.append(size)
            ms, wall_state, _ = wall(wall_state)
            wall_tick.append(ms)

    med = statistics.median
    ratio = med(city_tick) / med(wall_tick)
    full_ratio = med(city_full) / med(wall_full)
    print(f"communities: {CITY:,}, open alerts in about a third of them, 1 % changing per tick")
    print(f"full refresh   city {med(city_full):7.1f} ms   community {med(wall_full):7.1f} ms   ratio {full_ratio:.2f}")
    print(f"tick (changes) city {med(city_tick):7.1f} ms   community {med(wall_tick):7.1f} ms   ratio {ratio:.2f}")
    print(f"city payload: full {full_bytes:,} B, tick median {int(med(city_bytes)):,} B")
    report(
        {
            "bench": "P9",
            "ratio": round(ratio, 2),
            "full_ratio": round(full_ratio, 2),
            "city_tick_ms": round(med(city_tick), 1),
            "community_tick_ms": round(med(wall_tick), 1),
            "city_full_ms": round(med(city_full), 1),
            "community_full_ms": round(med(wall_full), 1),
            "city_full_bytes": full_bytes,
            "city_tick_bytes": int(med(city_bytes)),
            "communities": CITY,
        }
    )


if __name__ == "__main__":
    main()
