"""P2 — analytics workers (2 processes) against the ingest rate measured in the same run, and the
consumer group's lag while events arrive at a steady 5,000 events/s.

Last line: {"bench": "P2", "worker_events_per_s": …, "ingest_events_per_s": …, "ratio": …,
            "lag_p95_s": …, "lag_max_s": …, …}
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, bench_world, devices_by_type, event_mix, lock_faces, report, resident_plates
from ingest.service import IngestService
from store.events import GROUP

N = 60_000
STEADY_RATE = 5_000
STEADY_SECONDS = 20


def pending_total(client: object, stream: str) -> int:
    """Entries not yet acknowledged (undelivered + pending)."""
    groups = client.xinfo_groups(stream)  # type: ignore[attr-defined]
    info = client.xinfo_stream(stream)  # type: ignore[attr-defined]
    group = next(g for g in groups if g["name"] == GROUP)
    last = group["last-delivered-id"]
    undelivered = 0
    if last != info["last-generated-id"]:
        undelivered = len(client.xrange(stream, min=f"({last}", count=1_000_000))  # type: ignore[attr-defined]
    return int(group["pending"]) + undelivered


def oldest_unacked_age_s(client: object, stream: str) -> float:
    """Age of the oldest entry not yet acknowledged (0 when caught up)."""
    groups = client.xinfo_groups(stream)  # type: ignore[attr-defined]
    group = next(g for g in groups if g["name"] == GROUP)
    candidates = []
    if int(group["pending"]):
        summary = client.xpending(stream, GROUP)  # type: ignore[attr-defined]
        candidates.append(summary["min"])
    nxt = client.xrange(stream, min=f"({group['last-delivered-id']}", count=1)  # type: ignore[attr-defined]
    if nxt:
        candidates.append(nxt[0][0])
    if not candidates:
        return 0.0
    oldest = min(int(c.split("-")[0]) for c in candidates)
    return max(0.0, time.time() - oldest / 1000)


def main() -> None:
    """Run P2."""
    with bench_world(sweep_seconds=5.0) as bench:
        devices = devices_by_type(bench.stores)
        ingest = IngestService(bench.stores)
        now = int(time.time() * 1000) - 3_600_000
        faces = lock_faces(bench.stores)
        plates = resident_plates(bench.stores)
        events = event_mix(devices, N, now, id_prefix="p", faces=faces, plates=plates)
        began = time.perf_counter()
        for start in range(0, N, 500):
            ingest.ingest("wanhu", events[start : start + 500])
        ingest_rate = N / (time.perf_counter() - began)

        stream = bench.stores.keys.events("wanhu")
        workers = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "--processes", "2"],
            env=bench.env(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = bench.stores.redis
            while not client.exists(stream) or not client.xinfo_groups(stream):
                time.sleep(0.05)
            began = time.perf_counter()
            while pending_total(client, stream) > 0:
                time.sleep(0.05)
            worker_rate = N / (time.perf_counter() - began)

            # steady arrival at 5,000 events/s: sample the lag
            lags: list[float] = []
            steady = event_mix(
                devices, STEADY_RATE * STEADY_SECONDS, int(time.time() * 1000) - 1000, id_prefix="s", faces=faces
            )
            chunk = STEADY_RATE // 10
            t0 = time.perf_counter()
            for i in range(0, len(steady), chunk):
                ingest.ingest("wanhu", steady[i : i + chunk])
                due = t0 + (i + chunk) / STEADY_RATE
                lags.append(oldest_unacked_age_s(client, stream))
                time.sleep(max(0.0, due - time.perf_counter()))
            achieved = len(steady) / (time.perf_counter() - t0)
            while pending_total(client, stream) > 0:
                time.sleep(0.05)
        finally:
            workers.terminate()
            workers.wait(timeout=30)
    lags.sort()
    p95 = lags[int(len(lags) * 0.95) - 1] if lags else 0.0
    print(f"ingest (in-process): {ingest_rate:10,.0f} events/s")
    print(f"workers (2 procs):   {worker_rate:10,.0f} events/s")
    print(
        f"steady {achieved:,.0f} events/s: lag p95 {p95:.2f} s, max {max(lags):.2f} s, "
        f"median {statistics.median(lags):.2f} s"
    )
    report(
        {
            "bench": "P2",
            "worker_events_per_s": round(worker_rate),
            "ingest_events_per_s": round(ingest_rate),
            "ratio": round(worker_rate / ingest_rate, 3),
            "steady_events_per_s": round(achieved),
            "lag_p95_s": round(p95, 3),
            "lag_max_s": round(max(lags), 3),
            "processes": 2,
            "events": N,
        }
    )


if __name__ == "__main__":
    main()
