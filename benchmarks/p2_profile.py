"""Where a worker's time goes at the P2 load: one in-process worker drains a backlog of the P2 event
mix under cProfile; prints the per-event cost and the top functions by own and cumulative time.

    python benchmarks/p2_profile.py [--events 30000] [--top 30] [--out profile.pstats]

Last line: {"bench": "P2-profile", "events": …, "us_per_event": …, "cpu_us_per_event": …, "events_per_s": …,
            "archive_cpu_us_per_event": …} (the archive's copy of the same events, timed apart)
(profiled: cProfile slows Python code about 1.5–2×; the split is what matters.)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.worker import Worker, settle_gc
from benchmarks.common import AS_DEPLOYED, bench_world, devices_by_type, event_mix, lock_faces, report, resident_plates
from ingest.service import IngestService


def drain(worker: Worker, communities: list[str], batch: int) -> int:
    """Read and process until the group has nothing new for this consumer."""
    done = 0
    while True:
        entries = worker.events.read(communities, worker.consumer, count=batch, block_ms=1)
        if not entries:
            return done
        done += worker.process(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="also write the raw pstats here")
    parser.add_argument("--no-profile", action="store_true", help="time the drain without cProfile")
    parser.add_argument("--batch", type=int, default=None, help="entries per read (default: worker_batch)")
    parser.add_argument("--default-gc", action="store_true", help="leave the collector as Python sets it")
    args = parser.parse_args()
    with bench_world(sweep_seconds=5.0, **AS_DEPLOYED) as bench:
        stores = bench.stores
        devices = devices_by_type(stores)
        ingest = IngestService(stores)
        now = int(time.time() * 1000) - 3_600_000
        faces, plates = lock_faces(stores), resident_plates(stores)
        worker = Worker(stores, consumer="profile")
        worker.start_community("wanhu")
        communities = ["wanhu"]
        warm = event_mix(devices, 1_000, now - 60_000, id_prefix="w", faces=faces, plates=plates)
        ingest.ingest("wanhu", warm)
        drain(worker, communities, stores.settings.worker_batch)
        events = event_mix(devices, args.events, now, id_prefix="p", faces=faces, plates=plates)
        for start in range(0, len(events), 500):
            ingest.ingest("wanhu", events[start : start + 500])
        batch = args.batch or stores.settings.worker_batch
        if not args.default_gc:
            settle_gc()  # as a worker process does once its communities are started
        profiler = cProfile.Profile()
        began, cpu_began = time.perf_counter(), time.process_time()
        if args.no_profile:
            done = drain(worker, communities, batch)
        else:
            profiler.enable()
            done = drain(worker, communities, batch)
            profiler.disable()
        seconds = time.perf_counter() - began
        cpu_seconds = time.process_time() - cpu_began
        # the event archive's copy (memory/archive.py: the archive process's work, or the workers' with
        # SANDTABLE_ARCHIVE_IN_WORKERS): timed apart, unprofiled, on the same events (and the warm-up's)
        archived, archive_began = 0, time.process_time()
        if worker.archiver is not None:
            while copied := worker.archiver.run_once(communities, count=stores.settings.archive_batch):
                archived += copied
        archive_cpu = time.process_time() - archive_began
    if not args.no_profile:
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order)
            stats.print_stats(args.top)
            print(f"--- by {order} ---")
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20_000])
        if args.out:
            profiler.dump_stats(str(args.out))
    report(
        {
            "bench": "P2-profile",
            "events": done,
            "batch": batch,
            "profiled": not args.no_profile,
            "us_per_event": round(seconds / max(done, 1) * 1e6, 1),
            # the worker's own CPU time (SQLite's included: it runs in the process; Redis's not):
            # steadier than the wall time on a machine shared with other jobs
            "cpu_us_per_event": round(cpu_seconds / max(done, 1) * 1e6, 1),
            "archive_cpu_us_per_event": round(archive_cpu / max(archived, 1) * 1e6, 1),
            "events_per_s": round(done / seconds),
        }
    )


if __name__ == "__main__":
    main()
