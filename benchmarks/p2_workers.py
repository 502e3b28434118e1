"""P2 — analytics workers (2 processes) against the ingest rate measured in the same run, and the
consumer group's lag while events arrive at a steady 5,000 events/s; and the same backlog drained
by one worker process (how the workers scale out: 2 vs 1 processes in one consumer group).

The workers run as deployed: the event archive's copy is not theirs (``manage.py archive``, a process
of its own since issue 24's third round; before it, the workers copied part of a backlog once a
second). P2 measures the analytics alone and does not start the archive; P3 runs it beside the
workers, and ``p2_profile.py`` reports its CPU per event (``archive_cpu_us_per_event``).

Last line: {"bench": "P2", "worker_events_per_s": …, "ingest_events_per_s": …, "ratio": …,
            "lag_p95_s": …, "lag_max_s": …, …}
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    AS_DEPLOYED,
    ROOT,
    Target,
    bench_world,
    devices_by_type,
    event_mix,
    lock_faces,
    resident_plates,
    run_repeated,
)
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
    oldest = min((int(c.split("-")[0]) for c in candidates if c), default=None)  # None: acked meanwhile
    if oldest is None:
        return 0.0
    return max(0.0, time.time() - oldest / 1000)


def start_workers(bench: object, processes: int) -> subprocess.Popen[bytes]:
    """``manage.py worker --processes N`` on the bench's stores."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "worker", "--processes", str(processes)],
        env=bench.env(),  # type: ignore[attr-defined]
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def consumers(client: object, stream: str) -> set[str]:
    """The names of the group's consumers (a consumer joins at its first read)."""
    try:
        return {c["name"] for c in client.xinfo_consumers(stream, GROUP)}  # type: ignore[attr-defined]
    except redis.ResponseError:  # no stream or no group yet
        return set()


def drain(client: object, stream: str, n: int, processes: int, before: set[str]) -> float:
    """Events/s of the running workers on a backlog of n events, timed from the moment every one of
    the processes reads (process start-up is not throughput: timed from the first acknowledgement,
    a second process still starting was counted as a worker that does nothing, and the faster the
    first one drained, the more that skewed the figure)."""
    while not client.exists(stream) or not client.xinfo_groups(stream):  # type: ignore[attr-defined]
        time.sleep(0.02)
    while len(consumers(client, stream) - before) < processes:
        time.sleep(0.01)
    left = pending_total(client, stream)
    began = time.perf_counter()
    while pending_total(client, stream) > 0:
        time.sleep(0.05)
    return left / (time.perf_counter() - began)


def drain_rate(bench: object, client: object, stream: str, n: int, processes: int) -> float:
    """Events/s of N workers' processes draining a backlog of n events."""
    before = consumers(client, stream)
    workers = start_workers(bench, processes)
    try:
        return drain(client, stream, n, processes, before)
    finally:
        workers.terminate()
        workers.wait(timeout=30)


def once() -> dict[str, Any]:
    """One run of P2: its figures."""
    with bench_world(sweep_seconds=5.0, **AS_DEPLOYED) as bench:
        devices = devices_by_type(bench.stores)
        ingest = IngestService(bench.stores)
        now = int(time.time() * 1000) - 3_600_000
        faces = lock_faces(bench.stores)
        plates = resident_plates(bench.stores)
        client = bench.stores.redis
        stream = bench.stores.keys.events("wanhu")

        # one worker process: a backlog of N events (the consumer group exists from a first short run)
        warm = event_mix(devices, 500, now - 60_000, id_prefix="w", faces=faces, plates=plates)
        ingest.ingest("wanhu", warm)
        drain_rate(bench, client, stream, 500, 1)
        single = event_mix(devices, N, now, id_prefix="a", faces=faces, plates=plates)
        for start in range(0, N, 500):
            ingest.ingest("wanhu", single[start : start + 500])
        single_rate = drain_rate(bench, client, stream, N, 1)

        # the project's figure: ingest N events, then two worker processes drain them
        events = event_mix(devices, N, now + N, id_prefix="p", faces=faces, plates=plates)
        began = time.perf_counter()
        for start in range(0, N, 500):
            ingest.ingest("wanhu", events[start : start + 500])
        ingest_rate = N / (time.perf_counter() - began)
        before = consumers(client, stream)
        workers = start_workers(bench, 2)
        try:
            worker_rate = drain(client, stream, N, 2, before)

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
    print(f"workers (1 proc):    {single_rate:10,.0f} events/s")
    print(f"workers (2 procs):   {worker_rate:10,.0f} events/s  ({worker_rate / single_rate:.2f}× one process)")
    print(
        f"steady {achieved:,.0f} events/s: lag p95 {p95:.2f} s, max {max(lags):.2f} s, "
        f"median {statistics.median(lags):.2f} s"
    )
    return {
        "bench": "P2",
        "worker_events_per_s": round(worker_rate),
        "worker_1proc_events_per_s": round(single_rate),
        "scaling_2_vs_1": round(worker_rate / single_rate, 2),
        "ingest_events_per_s": round(ingest_rate),
        "ratio": round(worker_rate / ingest_rate, 3),
        "steady_events_per_s": round(achieved),
        "lag_p95_s": round(p95, 3),
        "lag_max_s": round(max(lags), 3),
        "processes": 2,
        "events": N,
    }


def main() -> None:
    """Run P2 (``--repeat N``: N runs, median, min and max)."""
    run_repeated(once, [Target("ratio", 1.0), Target("lag_p95_s", 2.0, at_most=True)])


if __name__ == "__main__":
    main()
