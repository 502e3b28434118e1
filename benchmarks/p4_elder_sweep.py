"""P4 — the elder-inactivity sweep over 1,000,000 door sensors against a naive SQL scan of the
same data (indexed), side by side; and how each grows with the sensor and the overdue counts.

The data: one community's elder door sensors. Each has a last door time and a threshold (12 h;
3 % have a per-person override of 6, 8 or 24 h, as the registry allows). A realistic small number
is overdue (50, then 500); the others are due within their threshold.

- Our sweep: the worker's timer sorted set (``Keys.timer(C, "elder")``, score = last door time +
  threshold) in the embedded Redis; ``ZRANGEBYSCORE -inf now`` and, per due member, the rule's
  ``on_timer`` (the alert is decided and queued), exactly the loop of ``Worker.sweep``.
- The naive baseline: the same sensors in SQLite, ``elder_door(sensor_id, last_door_ms,
  threshold_ms)`` with an index on ``last_door_ms``; each sweep asks
  ``WHERE last_door_ms < now - COALESCE(threshold_ms, 12 h)`` — the per-person threshold makes
  the predicate unusable for the index, so SQLite scans the table (its plan is printed) — and
  hands each row to the same ``on_timer``.
- Reported beside them: the finding alone (``ZRANGEBYSCORE`` against the SQL query, without the
  ``on_timer`` calls), the baseline done in Python (every row fetched and checked), the
  indexed ``WHERE last_door_ms < now - 12 h`` (uses the index; wrong for the overrides), an
  SQL index on the deadline itself (the same idea as the sorted set), and the full
  ``Worker.sweep`` (also unscheduling, raising the alerts in Redis and writing the SQL history).

Timings are medians of repeated runs, interleaved. Everything lives in a temporary folder (an
embedded Redis on a free port and SQLite files) removed at the end.

Last line: {"bench": "P4", "ratio": naive_ms / sweep_ms, "sensors": 1000000, "overdue": 50,
            "sweep_ms": …, "naive_ms": …, "sweep_ms_100k": …, …}
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete

from alerts.models import AlertRecord, AlertStep
from analytics.rules.base import HOUR_MS
from analytics.rules.elder_inactive import TIMER, ElderInactive
from analytics.worker import Worker
from benchmarks.common import Bench, Target, bench_world, run_repeated
from core.clock import ManualClock
from ingest.directory import CommunityFacts, Directory
from ingest.schema import DeviceInfo

COMMUNITY = "p4"
SENSORS = 1_000_000
SMALL = 100_000
OVERDUE = (50, 500)
FLAT = 1.2  # "flat": the sweep at 1M sensors costs at most this many times the sweep at 100k
CHUNK = 20_000
DEFAULT_MS = 12 * HOUR_MS
OVERRIDES_MS = (6 * HOUR_MS, 8 * HOUR_MS, 24 * HOUR_MS)
NOW = 1_790_000_000_000
SEED = 4

COLUMNS = "SELECT sensor_id, last_door_ms, threshold_ms FROM elder_door"
NAIVE_SQL = f"{COLUMNS} WHERE last_door_ms < ? - COALESCE(threshold_ms, ?)"
FIXED_SQL = f"{COLUMNS} WHERE last_door_ms < ?"
DEADLINE_SQL = f"{COLUMNS} WHERE deadline_ms <= ?"


def sensor_id(i: int) -> str:
    """The id of sensor i."""
    return f"p4-DS{i:07d}"


def overdue_ids(count: int) -> list[int]:
    """Which sensors are overdue: spread over the first 100,000 (so the 100k and 1M worlds share them)."""
    step = SMALL // max(OVERDUE)
    return [i * step + 7 for i in range(count)]


class Sensors:
    """The sensors' thresholds and deadlines, generated in chunks (never all in memory as objects)."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)

    def chunk(self, start: int, stop: int) -> list[tuple[str, int, int | None, int]]:
        """(sensor id, last door ms, threshold override ms or None, deadline ms) of sensors start..stop,
        all due in the future."""
        out = []
        for i in range(start, stop):
            override = self.rng.choice(OVERRIDES_MS) if self.rng.random() < 0.03 else None
            threshold = override or DEFAULT_MS
            deadline = NOW + self.rng.randrange(60_000, threshold)
            out.append((sensor_id(i), deadline - threshold, override, deadline))
        return out


def load(bench: Bench, db: sqlite3.Connection, sensors: Sensors, start: int, stop: int) -> None:
    """Add sensors start..stop to the timer sorted set (pipelined ZADD in chunks) and to SQLite."""
    key = bench.stores.keys.timer(COMMUNITY, TIMER)
    for first in range(start, stop, CHUNK):
        rows = sensors.chunk(first, min(stop, first + CHUNK))
        bench.stores.redis.zadd(key, {sid: deadline for sid, _, _, deadline in rows})
        db.executemany("INSERT INTO elder_door VALUES (?, ?, ?, ?)", rows)
    db.commit()


def make_overdue(bench: Bench, db: sqlite3.Connection, count: int) -> dict[str, int]:
    """Exactly `count` sensors overdue (deadlines 1 min to 6 h ago), the same in Redis and SQLite;
    returns their deadlines."""
    rng = random.Random(count)
    key = bench.stores.keys.timer(COMMUNITY, TIMER)
    scores: dict[str, int] = {}
    for n, i in enumerate(overdue_ids(max(OVERDUE))):
        sid = sensor_id(i)
        (threshold,) = db.execute(
            "SELECT COALESCE(threshold_ms, ?) FROM elder_door WHERE sensor_id = ?", (DEFAULT_MS, sid)
        ).fetchone()
        past, future = NOW - rng.randrange(60_000, 6 * HOUR_MS), NOW + rng.randrange(60_000, threshold)
        deadline = past if n < count else future
        scores[sid] = deadline
        db.execute(
            "UPDATE elder_door SET last_door_ms = ?, deadline_ms = ? WHERE sensor_id = ?",
            (deadline - threshold, deadline, sid),
        )
    db.commit()
    bench.stores.redis.zadd(key, scores)
    return {sid: deadline for sid, deadline in scores.items() if deadline <= NOW}


class StaticDirectory(Directory):
    """Registry facts held in memory: the benchmark's sensors are not in the SQL registry."""

    def __init__(self, bench: Bench, facts: CommunityFacts) -> None:
        super().__init__(bench.stores.sessions)
        self._static = facts

    def facts(self, community: str) -> CommunityFacts:
        """The prepared facts."""
        return self._static


def elder_facts(count: int) -> CommunityFacts:
    """Facts for the sensors that may fall due (elder and device), as the worker's directory holds."""
    facts = CommunityFacts()
    for n, i in enumerate(overdue_ids(count)):
        sid = sensor_id(i)
        facts.elder_sensors[sid] = (f"p4-P{i:07d}", None)
        facts.devices[sid] = DeviceInfo(
            sid, "door_sensor", COMMUNITY, f"p4-B{n % 40:02d}", f"p4-H{i:07d}", "p4-G01", 33.39, 120.15
        )
    return facts


def median_ms(fn: Callable[[], int], repeats: int, expect: int | None) -> float:
    """Median wall time of fn in milliseconds (fn returns how many overdue it found; checked unless None)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        found = fn()
        times.append((time.perf_counter() - began) * 1000)
        assert expect is None or found == expect, (found, expect)
    return statistics.median(times)


def measure(bench: Bench, db: sqlite3.Connection, worker: Worker, count: int, rounds: int) -> dict[str, float]:
    """Median times (ms) of the sweep and of each baseline, interleaved round by round."""
    key = bench.stores.keys.timer(COMMUNITY, TIMER)
    rule = worker.timers[TIMER]

    def sweep() -> int:
        ctx = worker.context(COMMUNITY)
        due = bench.stores.redis.zrangebyscore(key, "-inf", NOW, start=0, num=1000, withscores=True)
        for member, score in due:
            rule.on_timer(ctx, TIMER, member, int(score))
        return len(due)

    def from_sql(sql: str, *args: int) -> Callable[[], int]:
        def run() -> int:
            ctx = worker.context(COMMUNITY)
            found = 0
            for sid, last, threshold in db.execute(sql, args):
                deadline = last + (threshold or DEFAULT_MS)
                if deadline <= NOW:  # the fixed-threshold query also returns overrides not yet due
                    rule.on_timer(ctx, TIMER, sid, deadline)
                    found += 1
            return found

        return run

    def sweep_find() -> int:
        return len(bench.stores.redis.zrangebyscore(key, "-inf", NOW, start=0, num=1000, withscores=True))

    def naive_find() -> int:
        return len(db.execute(NAIVE_SQL, (NOW, DEFAULT_MS)).fetchall())

    def python_scan() -> int:
        ctx = worker.context(COMMUNITY)
        found = 0
        for sid, last, threshold in db.execute(COLUMNS):
            deadline = last + (threshold or DEFAULT_MS)
            if deadline <= NOW:
                rule.on_timer(ctx, TIMER, sid, deadline)
                found += 1
        return found

    # the fixed 12 h range misses the overdue sensors whose threshold is shorter: its count is not checked
    cases: dict[str, tuple[Callable[[], int], int, int | None]] = {
        "sweep": (sweep, 20, count),
        "naive": (from_sql(NAIVE_SQL, NOW, DEFAULT_MS), 3, count),
        "sweep_find": (sweep_find, 20, count),
        "naive_find": (naive_find, 3, count),
        "fixed_index": (from_sql(FIXED_SQL, NOW - DEFAULT_MS), 5, None),
        "deadline_index": (from_sql(DEADLINE_SQL, NOW), 5, count),
        "python_scan": (python_scan, 1, count),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (fn, repeats, expect) in cases.items():
            samples[name].append(median_ms(fn, repeats, expect))
    return {name: statistics.median(values) for name, values in samples.items()}


def full_sweep_ms(bench: Bench, worker: Worker, due: dict[str, int], repeats: int) -> float:
    """Median time of the real Worker.sweep (unschedule, alerts in Redis, SQL history); reset between runs."""
    keys = bench.stores.keys
    key = keys.timer(COMMUNITY, TIMER)
    times = []
    for _ in range(repeats):
        bench.stores.redis.zadd(key, due)
        bench.stores.redis.delete(
            keys.alerts_open(COMMUNITY),
            keys.alert(COMMUNITY, "index"),
            keys.alert(COMMUNITY, "closed"),
            keys.alerts_feed(COMMUNITY),
            keys.changes(COMMUNITY),
            keys.alert_counts(COMMUNITY),
        )
        with bench.stores.sessions.begin() as session:
            session.execute(delete(AlertStep))
            session.execute(delete(AlertRecord))
        began = time.perf_counter()
        fired = worker.sweep(COMMUNITY, limit=len(due))
        times.append((time.perf_counter() - began) * 1000)
        assert fired == len(due), (fired, len(due))
    bench.stores.redis.zadd(key, due)  # leave the timers as they were
    return statistics.median(times)


def once() -> dict[str, Any]:
    """One run of P4: its figures."""
    with bench_world(demo=False) as bench:
        db = sqlite3.connect(bench.root / "p4.db")
        db.executescript(
            """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = OFF;
            CREATE TABLE elder_door (
                sensor_id TEXT PRIMARY KEY, last_door_ms INTEGER NOT NULL, threshold_ms INTEGER,
                deadline_ms INTEGER NOT NULL);
            CREATE INDEX ix_elder_door_last ON elder_door (last_door_ms);
            CREATE INDEX ix_elder_door_deadline ON elder_door (deadline_ms);
            """
        )
        plan = db.execute("EXPLAIN QUERY PLAN " + NAIVE_SQL, (NOW, DEFAULT_MS)).fetchall()
        print(f"naive query plan: {[row[-1] for row in plan]}")
        worker = Worker(
            bench.stores,
            consumer="p4",
            clock=ManualClock(NOW),
            directory=StaticDirectory(bench, elder_facts(max(OVERDUE))),
            rules=[ElderInactive(bench.settings)],
        )
        sensors = Sensors()
        figures: dict[str, dict[int, dict[str, float]]] = {}
        loaded = 0
        for size in (SMALL, SENSORS):
            began = time.perf_counter()
            load(bench, db, sensors, loaded, size)
            loaded = size
            print(f"loaded {size:,} sensors into Redis and SQLite in {time.perf_counter() - began:.1f} s")
            figures[str(size)] = {}
            for count in OVERDUE:
                make_overdue(bench, db, count)
                figures[str(size)][count] = measure(bench, db, worker, count, rounds=5)
                f = figures[str(size)][count]
                print(
                    f"{size:>9,} sensors, {count:3d} overdue: sweep {f['sweep']:7.2f} ms | naive SQL scan "
                    f"{f['naive']:6.1f} ms | Python scan {f['python_scan']:6.1f} ms | indexed 12 h range "
                    f"{f['fixed_index']:5.2f} ms | SQL deadline index {f['deadline_index']:5.2f} ms | finding only: "
                    f"ZRANGEBYSCORE {f['sweep_find']:5.2f} ms, SQL scan {f['naive_find']:5.1f} ms"
                )
        memory = bench.stores.redis.memory_usage(bench.stores.keys.timer(COMMUNITY, TIMER))
        print(f"timer sorted set: {memory / 2**20:.0f} MiB for {SENSORS:,} sensors")
        full = {count: full_sweep_ms(bench, worker, make_overdue(bench, db, count), 5) for count in OVERDUE}
        for count, ms in full.items():
            print(f"full Worker.sweep (alerts raised, history written) with {count} overdue: {ms:.1f} ms")
        db.close()

    big, small = figures[str(SENSORS)], figures[str(SMALL)]
    low, high = OVERDUE
    sweep_ms = big[low]["sweep"]
    naive_ms = big[low]["naive"]
    print(
        f"sweep: ×{sweep_ms / small[low]['sweep']:.2f} from 100k to 1M sensors, "
        f"×{big[high]['sweep'] / sweep_ms:.1f} from {low} to {high} overdue; "
        f"naive: ×{naive_ms / small[low]['naive']:.1f} from 100k to 1M sensors"
    )
    return {
        "bench": "P4",
        "ratio": round(naive_ms / sweep_ms, 1),
        "sensors": SENSORS,
        "overdue": low,
        "sweep_ms": round(sweep_ms, 3),
        "naive_ms": round(naive_ms, 1),
        "sweep_ms_100k": round(small[low]["sweep"], 3),
        "naive_ms_100k": round(small[low]["naive"], 1),
        "sweep_ms_500": round(big[high]["sweep"], 3),
        "naive_ms_500": round(big[high]["naive"], 1),
        "ratio_500": round(big[high]["naive"] / big[high]["sweep"], 1),
        "sweep_find_ms": round(big[low]["sweep_find"], 3),
        "naive_find_ms": round(big[low]["naive_find"], 1),
        "python_scan_ms": round(big[low]["python_scan"], 1),
        "fixed_index_ms": round(big[low]["fixed_index"], 3),
        "sql_deadline_index_ms": round(big[low]["deadline_index"], 3),
        "sweep_vs_deadline_index": round(sweep_ms / big[low]["deadline_index"], 2),
        "growth_100k_to_1m": round(sweep_ms / small[low]["sweep"], 2),
        "full_sweep_ms": round(full[low], 2),
        "full_sweep_ms_500": round(full[high], 2),
    }


def main() -> None:
    """Run P4 (``--repeat N``: N runs, median, min and max)."""
    run_repeated(
        once,
        [
            Target("sweep_vs_deadline_index", 2.0, at_most=True),
            Target("growth_100k_to_1m", FLAT, at_most=True),
        ],
    )


if __name__ == "__main__":
    main()
