"""P13 — a gate asking whether to open (``POST /api/v1/gates/D/decide``) over HTTP against
``manage.py serve`` (gunicorn, 2 workers), against one Redis GET round trip from the same client
in the same run: p99 of each, interleaved so both see the same load.

The world: the demo registry (Wanhu Xincun), who may pass projected as a worker starting does,
approved visitor passes for 200 ID numbers and their plates. The asks mix residents by person,
registered face and ID number, visitors with a pass, strangers, unknown faces, resident, visitor,
blacklisted and unknown plates, and one ask in 500 by the wanted demo identity (its alert is raised
before the answer: that path is in the sample too). Each client keeps its connection open, as a
gate controller would.

Last line: {"bench": "p13", "ratio": decide p99 / GET p99, …}; ``--repeat N`` measures N times
and prints min/median/max of the ratio (the last line carries the median).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from auth.principal import Principal
from benchmarks.common import Bench, bench_world, devices_by_type, ingest_token, report, web_server
from gates.identities import project_identities
from gates.service import PassRequest, Visitors
from registry import watchlist
from registry.demo import WANTED_ID
from registry.models import Household, Person, Vehicle

PROPERTY = Principal(kind="user", id="property.bench", role="property", community="wanhu", name="bench")
CHECK = "10X98765432"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(n: int) -> str:
    """A valid synthetic ID number (Beijing Dongcheng, born 1980-01-01, sequence n)."""
    base = f"11010119800101{n % 1000:03d}"
    return base + CHECK[sum(int(d) * w for d, w in zip(base, WEIGHTS, strict=True)) % 11]


def visitors(bench: Bench, count: int) -> list[tuple[str, str]]:
    """Approved passes valid for the next day: (ID number, plate) of each visitor."""
    service = Visitors(bench.stores)
    with bench.stores.sessions() as session:
        households = list(session.scalars(select(Household.id).where(Household.community_id == "wanhu").limit(count)))
    now = dt.datetime.now(dt.UTC)
    out = []
    for n, household in enumerate(households):
        number, plate = id_number(n), f"苏K{n:05d}"
        request = PassRequest(household, "访客", number, "13912345678", plate, now, now + dt.timedelta(days=1), "")
        created = service.request(request, requested_by="resident", now=now)
        service.decide(PROPERTY, created.id, approve=True)
        out.append((number, plate))
    return out


def asks(bench: Bench, passes: list[tuple[str, str]], n: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """(gate, body) of n asks in a realistic mix."""
    kinds = devices_by_type(bench.stores)
    faces, barriers = kinds["face_gate"], kinds["vehicle_gate"]
    with bench.stores.sessions() as session:
        people = session.execute(
            select(Person.id, Person.face_id, Person.id_number).where(Person.community_id == "wanhu")
        ).all()
        plates = session.execute(
            select(Vehicle.plate, Vehicle.blacklisted).where(Vehicle.community_id == "wanhu")
        ).all()
    blacklisted = next(p.plate for p in plates if p.blacklisted)
    with_face = [p for p in people if p.face_id]
    with_number = [p for p in people if p.id_number]
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        direction = rng.choice(("in", "out"))
        roll = rng.random()
        if i % 500 == 7:
            body: dict[str, Any] = {"id_number": WANTED_ID}  # as often as in the other benchmarks' event mix
        elif roll < 0.25:
            body = {"face_id": rng.choice(with_face).face_id}
        elif roll < 0.35:
            body = {"person": rng.choice(people).id}
        elif roll < 0.45:
            body = {"id_number": rng.choice(with_number).id_number}
        elif roll < 0.55:
            body = {"id_number": rng.choice(passes)[0]}
        elif roll < 0.60:
            body = {"id_number": id_number(500 + i % 400)}  # strangers
        elif roll < 0.65:
            body = {"face_id": f"STRANGER{i}"}
        else:
            body = {
                "plate": rng.choice(
                    [rng.choice(plates).plate, rng.choice(passes)[1], "苏J12345", rng.choice(plates).plate, blacklisted]
                )
            }
        gate = rng.choice(barriers) if "plate" in body else rng.choice(faces)
        out.append((gate, {"direction": direction, **body}))
    return out


def pct(values: list[float], q: int) -> float:
    """The q-th percentile."""
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def measure(bench: Bench, url: str, token: str, sample: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Decide and GET, interleaved: p50/p99 of each (ms) and the answers' reasons."""
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    redis, probe = bench.stores.redis, bench.stores.keys.version("wanhu")  # a string key
    decide_ms: list[float] = []
    get_ms: list[float] = []
    reasons: dict[str, int] = {}
    for gate, body in sample:
        payload = json.dumps(body).encode()
        t0 = time.perf_counter()
        conn.request("POST", f"/api/v1/gates/{gate}/decide", body=payload, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        t1 = time.perf_counter()
        redis.get(probe)  # one GET round trip
        t2 = time.perf_counter()
        if response.status != 200:
            raise SystemExit(f"{gate} {body}: {response.status} {answer!r}")
        reason = json.loads(answer)["reason"]
        reasons[reason] = reasons.get(reason, 0) + 1
        decide_ms.append((t1 - t0) * 1000)
        get_ms.append((t2 - t1) * 1000)
    conn.close()
    if not {"resident", "pass", "unknown", "blacklist"} <= set(reasons):
        raise SystemExit(f"the answers lack a kind the mix asks for: {reasons}")
    return {
        "decide_p50": pct(decide_ms, 50),
        "decide_p99": pct(decide_ms, 99),
        "get_p50": pct(get_ms, 50),
        "get_p99": pct(get_ms, 99),
        "reasons": reasons,
    }


def main() -> None:
    """Run P13."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    with bench_world() as bench:
        stores = bench.stores
        passes = visitors(bench, 200)
        project_identities(stores, "wanhu")
        with stores.sessions() as session:
            watchlist.project_all(stores.redis, stores.keys, session)
        stores.redis.incr(stores.keys.version("wanhu"))
        token = ingest_token(stores)
        rng = random.Random(13)
        with web_server(bench) as url:
            measure(bench, url, token, asks(bench, passes, args.warmup, rng))
            ratios, results = [], []
            for i in range(args.repeat):
                found = measure(bench, url, token, asks(bench, passes, args.samples, rng))
                ratios.append(found["decide_p99"] / found["get_p99"])
                results.append(found)
                print(
                    f"run {i + 1}: decide p50 {found['decide_p50']:.2f} ms p99 {found['decide_p99']:.2f} ms, "
                    f"GET p50 {found['get_p50']:.3f} ms p99 {found['get_p99']:.3f} ms, ratio {ratios[-1]:.1f}; "
                    f"answers {found['reasons']}"
                )
        if args.repeat > 1:
            print(f"ratio min {min(ratios):.1f} median {statistics.median(ratios):.1f} max {max(ratios):.1f}")
        middle = sorted(range(len(ratios)), key=lambda i: ratios[i])[len(ratios) // 2]
        best = results[middle]
        report(
            {
                "bench": "p13",
                "ratio": round(ratios[middle], 2),
                "decide_p99_ms": round(best["decide_p99"], 2),
                "decide_p50_ms": round(best["decide_p50"], 2),
                "get_p99_ms": round(best["get_p99"], 3),
                "samples": args.samples,
                "target": 20,
            }
        )


if __name__ == "__main__":
    main()
