"""P12 — alert raised → signed webhook received by a local receiver: 100 alerts/s for 60 s, the
receiver down for 20 s in the middle (performance.md P12).

Alerts are written as the analytics workers write them (``AlertHistory.write``: the alert's row,
its step and its outbox deliveries in one transaction); ``manage.py notify send`` — the real sender
process — delivers them to an HTTP server in this process, which checks every signature and notes
when each delivery arrived. The latency of an alert is its arrival minus its ``at`` (the time it
was raised). Alerts raised during the outage are left out of the latency (they wait for the
receiver by design) but not out of the loss count: every alert must arrive.

Last line: {"bench": "P12", "ratio": p95 latency outside the outage / the wall's refresh interval,
"lost": alerts never received, …}; ``--repeat N`` runs it N times and reports the median ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from alerts.history import AlertHistory
from alerts.live import AlertChange
from benchmarks.common import ROOT, Bench, bench_world, free_port, report
from core.timefmt import iso_utc, parse_rfc3339
from notify.targets import NewTarget, add_target, remove_target
from registry.models import Household
from tests.test_notify import ReceiverServer

RATE = 100  # alerts per second
DURATION_S = 60
OUTAGE = (20.0, 40.0)  # seconds after the start
SECRET = "p12-secret"
DRAIN_S = 180


class Receiver:
    """The webhook receiver: checks signatures, deduplicates by delivery id, notes arrival times."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrived: dict[str, float] = {}  # alert id → first arrival of its alert.raised (epoch s)
        self.raised_at: dict[str, float] = {}
        self.deliveries: set[str] = set()
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.server: ReceiverServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                good = hmac.compare_digest(
                    self.headers.get("X-Sandtable-Signature", ""),
                    "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
                )
                body = json.loads(raw)
                with receiver.lock:
                    if not good:
                        receiver.bad_signatures += 1
                    elif body["delivery"] not in receiver.deliveries:
                        receiver.deliveries.add(body["delivery"])
                        if body["event"] == "alert.raised":
                            alert = body["alert"]["id"]
                            receiver.arrived.setdefault(alert, now)
                            receiver.raised_at[alert] = parse_rfc3339(body["at"]) / 1000
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ReceiverServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def alert(name: str, household: str, at_ms: int) -> dict[str, Any]:
    at = iso_utc(at_ms)
    return {
        "id": name,
        "type": "elder.inactive",
        "severity": "high",
        "status": "new",
        "community": "wanhu",
        "subject": {"household": household},
        "location": {"lat": 33.38, "lon": 120.16},
        "opened_at": at,
        "detected_at": at,
        "updated_at": at,
        "count": 1,
        "evidence": {},
    }


def p95_of(sorted_ms: list[float]) -> float:
    """The 95th percentile of sorted latencies (infinite when there are none)."""
    return sorted_ms[max(0, int(len(sorted_ms) * 0.95) - 1)] if sorted_ms else float("inf")


def run_once(bench: Bench, run: int) -> dict[str, Any]:
    """One P12 run on a fresh target; its figures."""
    receiver = Receiver()
    receiver.start()
    with bench.stores.sessions.begin() as session:
        target = add_target(
            session,
            bench.settings,
            NewTarget(
                channel="webhook", url=f"http://127.0.0.1:{receiver.port}/hook", community="wanhu", secret=SECRET
            ),
        )
        households = list(session.scalars(select(Household.id).where(Household.id.like("wanhu-%"))))
        target_id = target.id
    log = (bench.root / "notify.log").open("a")
    sender = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "notify", "send"], env=bench.env(), cwd=ROOT, stdout=log, stderr=log
    )
    history = AlertHistory(bench.stores.sessions)
    total = RATE * DURATION_S
    raised_at: dict[str, float] = {}
    down = False
    try:
        # the sender's start-up is not part of the figure: one alert through before the clock starts
        warm = alert(f"p12-{run}-warm", households[0], int(time.time() * 1000))
        history.write([AlertChange(warm, "raised")])
        deadline = time.time() + 120
        while warm["id"] not in receiver.arrived and time.time() < deadline:
            time.sleep(0.1)
        start = time.time()
        for n in range(0, total, RATE // 10):  # a batch of 10 every 100 ms
            due = start + n / RATE
            time.sleep(max(0.0, due - time.time()))
            elapsed = time.time() - start
            if not down and OUTAGE[0] <= elapsed < OUTAGE[1]:
                receiver.stop()
                down = True
            elif down and elapsed >= OUTAGE[1]:
                receiver.start()
                down = False
            now_ms = int(time.time() * 1000)
            batch = [alert(f"p12-{run}-{i}", households[i % len(households)], now_ms) for i in range(n, n + RATE // 10)]
            history.write([AlertChange(doc, "raised") for doc in batch])
            for doc in batch:
                raised_at[doc["id"]] = now_ms / 1000
        if down:
            receiver.start()
        deadline = time.time() + DRAIN_S
        while time.time() < deadline:
            with receiver.lock:
                if len(raised_at.keys() & receiver.arrived.keys()) >= total:
                    break
            time.sleep(0.5)
    finally:
        sender.terminate()
        sender.wait(timeout=60)
        log.close()
        receiver.stop()
        with bench.stores.sessions.begin() as session:
            remove_target(session, target_id)  # the next run starts with one target, not a dead one more
    outage = (start + OUTAGE[0], start + OUTAGE[1])
    latency = {a: (receiver.arrived[a] - raised_at[a]) * 1000 for a in receiver.arrived if a in raised_at}
    before = sorted(ms for a, ms in latency.items() if raised_at[a] < outage[0])
    after = sorted(ms for a, ms in latency.items() if raised_at[a] >= outage[1])
    outside = sorted(before + after)
    p95 = p95_of(outside)
    interval_ms = bench.settings.refresh_seconds * 1000
    return {
        "ratio": round(p95 / interval_ms, 3),
        "p95_ms": round(p95),
        "p95_before_outage_ms": round(p95_of(before)),
        "p95_after_outage_ms": round(p95_of(after)),
        "median_ms": round(statistics.median(outside)) if outside else None,
        "lost": total - len(latency),
        "alerts": total,
        "bad_signatures": receiver.bad_signatures,
        "interval_ms": interval_ms,
    }


def main() -> None:
    """Run P12 (``--repeat N``: N runs, the median ratio)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    runs = []
    with bench_world(notify_allowed_networks="127.0.0.0/8") as bench:
        for i in range(args.repeat):
            figures = run_once(bench, i)
            print(f"run {i + 1}: {json.dumps(figures)}", flush=True)
            runs.append(figures)
    middle = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
    report({"bench": "P12", **middle, "lost": max(r["lost"] for r in runs), "runs": [r["ratio"] for r in runs]})


if __name__ == "__main__":
    main()
