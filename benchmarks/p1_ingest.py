"""P1 — HTTP ingest (batches of 500: parse, validate, hash, XADD) against a bare redis-py
pipelined XADD loop with the same payloads, measured side by side in one run.

Last line: {"bench": "P1", "events_per_s": …, "baseline_events_per_s": …, "ratio": …}
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from benchmarks.common import (
    Target,
    bench_world,
    devices_by_type,
    event_mix,
    ingest_token,
    lock_faces,
    resident_plates,
    run_repeated,
    web_server,
)
from ingest.schema import Event, encoder
from ingest.service import IngestService

N = 60_000
BATCH = 500
CLIENTS = 3


def baseline(client: object, stream: str, payloads: list[bytes]) -> float:
    """A bare redis-py pipelined XADD loop: events per second."""
    began = time.perf_counter()
    for start in range(0, len(payloads), BATCH):
        pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
        for payload in payloads[start : start + BATCH]:
            pipe.xadd(stream, {"e": payload})
        pipe.execute()
    return len(payloads) / (time.perf_counter() - began)


def http_ingest(url: str, token: str, events: list[dict[str, object]]) -> float:
    """Events per second through POST /api/v1/events with a few concurrent gateways."""
    bodies = [json.dumps(events[i : i + BATCH]).encode() for i in range(0, len(events), BATCH)]
    lock = threading.Lock()
    cursor = [0]
    accepted = [0]
    failures: list[str] = []  # a gateway thread's error would otherwise end it silently

    def gateway() -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while True:
            with lock:
                if cursor[0] >= len(bodies):
                    return
                body = bodies[cursor[0]]
                cursor[0] += 1
            try:
                response = session.post(url + "/api/v1/events", data=body, headers=headers, timeout=60)
                response.raise_for_status()
            except requests.RequestException as err:
                with lock:
                    failures.append(f"{type(err).__name__}: {err}"[:200])
                return
            with lock:
                accepted[0] += response.json()["accepted"]

    threads = [threading.Thread(target=gateway) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    assert not failures, f"{len(failures)} gateway request(s) failed: {failures}"
    assert accepted[0] == len(events), f"accepted {accepted[0]} of {len(events)}"
    return len(events) / elapsed


def once() -> dict[str, Any]:
    """One run of P1: its figures."""
    with bench_world() as bench:
        devices = devices_by_type(bench.stores)
        now = int(time.time() * 1000) - 3_600_000
        token = ingest_token(bench.stores)
        # warm both paths, then measure
        service = IngestService(bench.stores)
        faces = lock_faces(bench.stores)
        plates = resident_plates(bench.stores)
        in_process_events = event_mix(devices, N, now, id_prefix="i", faces=faces, plates=plates)
        began = time.perf_counter()
        for start in range(0, N, BATCH):
            service.ingest("wanhu", in_process_events[start : start + BATCH])
        in_process = N / (time.perf_counter() - began)

        http_events = event_mix(devices, N, now, id_prefix="h", faces=faces, plates=plates)
        with web_server(bench, workers=2) as url:
            http_ingest(url, token, event_mix(devices, 2000, now, id_prefix="w"))
            project = http_ingest(url, token, http_events)

        payloads = [
            encoder.encode(
                Event(
                    type=e["type"],
                    device=e["device"],
                    ts=e["ts"],
                    data=e["data"],
                    id=e["id"],
                    received=now,
                )
            )
            for e in http_events
        ]
        base = baseline(bench.stores.redis, "bench:{wanhu}:baseline", payloads)
    print(f"HTTP ingest:      {project:10,.0f} events/s ({CLIENTS} gateways, batches of {BATCH})")
    print(f"in-process ingest:{in_process:10,.0f} events/s")
    print(f"bare XADD loop:   {base:10,.0f} events/s")
    return {
        "bench": "P1",
        "events_per_s": round(project),
        "baseline_events_per_s": round(base),
        "ratio": round(project / base, 3),
        "in_process_events_per_s": round(in_process),
        "events": N,
        "batch": BATCH,
    }


def main() -> None:
    """Run P1 (``--repeat N``: N runs, median, min and max)."""
    run_repeated(once, [Target("ratio", 0.5)])


if __name__ == "__main__":
    main()
