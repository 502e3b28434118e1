"""The soak under faults: a long mixed workload on the real processes, faults on a seeded schedule,
then a checker that accounts for every event — the loss ledger (issue #22, docs/reliability.md).

What runs: a Redis server of our own (AOF, fsync every second) or a local Redis Cluster with a
replica per primary, ``manage.py serve`` with its web workers, ``manage.py worker`` processes (one
each, so that each can be killed, stopped and restarted alone), ``manage.py archive`` (the event
archive's process, as deployed), the demo registry on SQLite.

The workload: sequenced events (ids ``sk<seq>``) over HTTP with ingest tokens, across both demo
communities, at a steady rate: heartbeats, door contacts, lock openings and gate passages of the
demo devices (the ingest benchmark's mix), and smoke alarms from a fixed set of detectors, each of
which counts once on its detector's open alert. A refused batch (429, 503) or a connection error
is retried, the same events again, until it is acknowledged (a 202). Now and then a batch carries
an event of an unknown device (ingest rejects it into the dead letters) and the harness writes an
undecodable entry into a stream (a poison entry: the workers dead-letter it).

The faults, in a seeded order that has each kind once before any repeats:
- ``worker_kill``: a worker and the archive process SIGKILLed, restarted 1 s later;
- ``worker_stop``: a worker SIGSTOPped past the claim timeout, then SIGCONTed (the others claim its
  entries, and it wakes holding them);
- ``redis_kill``: a power cut of Redis — SIGKILLed, its AOF cut back to its size of a second
  earlier (what an fsync every second leaves on disk), restarted on it; on the cluster, a primary
  SIGKILLed, its replica elected for its slots, and the old primary back as the replica;
- ``web_kill``: a gunicorn worker SIGKILLed while requests are in flight;
- ``poison``: a burst of poison entries.
Trim pressure is on all the time: a stream cap of 1,000 entries and no retention, so acknowledged
entries are trimmed as fast as the workers run.

The checker reads the stores at the end: every acknowledged event must be in the event archive
exactly once (the archive keeps the producer's id), every smoke alarm must count exactly once on
its alert, every poison entry and rejected event must be in the dead letters. The ledger is the
last line, JSON: sent, acknowledged, processed_once, duplicated_effects, dead_lettered (and
poison_sent), lost_after_ack, lost_in_aof_window (acknowledged after the moment whose AOF size the
power cut left: the documented fsync window of a second and its slack, 2 s, or deeper when the AOF
sampler was held up on a loaded machine; ``aof_cut_s`` says how deep the deepest cut was) and
lost_reported_by_the_system (which must be the same figure:
the system finds and counts what it lost, ``EventLog.verify_durable``), alerts_expected,
alerts_found, alert_counts_short, alert_counts_extra, max_lag_s, and the faults injected.

Usage: python benchmarks/soak.py [--minutes 30] [--rate 5000] [--seed 7] [--cluster]
                                 [--fault-every 30] [--workers 2] [--web-workers 2]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from sqlalchemy import text

from alerts.live import AlertStore
from benchmarks.common import (
    ROOT,
    Bench,
    devices_by_type,
    event_mix,
    free_port,
    ingest_token,
    lock_faces,
    report,
    resident_plates,
)
from core.settings import load_settings
from simulator.seed import build_demo
from store.events import ARCHIVE_GROUP, GROUP, EventLog
from store.redis_server import EmbeddedRedis, LocalCluster, start_embedded, start_local_cluster
from store.stores import open_stores

COMMUNITIES = ("wanhu", "xingbang")
BATCH = 250
SENDERS = 4
SMOKE_DETECTORS = 40  # per community: each counts its alarms on one open alert
SMOKE_EVERY = 50  # one event in 50 is a smoke alarm
REJECT_EVERY = 40  # one batch in 40 carries an event of an unknown device
AOF_WINDOW_S = 2.0  # fsync every second, plus the scheduling slack of a busy machine
DEAD_NAME = re.compile(r"soak-(?:poison-\d+|unknown-\d+)")  # a poison entry's or rejected event's name
CLAIM_IDLE_MS = 3_000
FAULTS = ("worker_kill", "worker_stop", "redis_kill", "web_kill", "poison")


@dataclass
class Ledger:
    """What the senders and the fault injector did (the checker compares the stores with it)."""

    acked: bytearray = field(default_factory=lambda: bytearray(1 << 20))  # seq → 1 once acknowledged
    # (first seq, n, acknowledged at, community)
    ack_batches: list[tuple[int, int, float, str]] = field(default_factory=list)
    smoke: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, community, detector)
    rejects_acked: int = 0
    dead_sent: dict[str, float] = field(default_factory=dict)  # poison or rejected event → sent/acknowledged at
    poison_sent: int = 0
    refused: int = 0
    errors: int = 0
    sent: int = 0
    # (the AOF cut back to its size at this moment, killed at, back at), monotonic
    redis_kills: list[tuple[float, float, float]] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    unexpected_exits: list[str] = field(default_factory=list)
    redis_peak_bytes: int = 0
    max_lag_s: dict[str, float] = field(default_factory=lambda: {GROUP: 0.0, ARCHIVE_GROUP: 0.0})
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_seq: itertools.count[int] = field(default_factory=itertools.count)

    def take(self, n: int) -> int:
        """The first of n fresh sequence numbers."""
        with self.lock:
            first = next(self.next_seq)
            for _ in range(n - 1):
                next(self.next_seq)
            if first + n > len(self.acked):
                self.acked.extend(bytearray(len(self.acked)))
            return first

    def acknowledged(self, first: int, n: int, community: str, smoke: list[tuple[int, str, str]], rejects: int) -> None:
        with self.lock:
            self.acked[first : first + n] = b"\x01" * n
            self.ack_batches.append((first, n, time.monotonic(), community))
            self.smoke.extend(smoke)
            self.rejects_acked += rejects
            if rejects:
                self.dead_sent[f"soak-unknown-{first}"] = time.monotonic()
            self.sent += n


def event_id(seq: int) -> str:
    """The producer id of event seq: zero-padded, so that the ids sort as the numbers do."""
    return f"sk{seq:012d}"


class Sender(threading.Thread):
    """Posts batches at its share of the rate; a refused or failed batch is sent again, the same events."""

    def __init__(
        self,
        n: int,
        url: str,
        tokens: dict[str, str],
        mixes: dict[str, list[dict[str, Any]]],
        detectors: dict[str, list[str]],
        rate: float,
        until: float,
        ledger: Ledger,
    ) -> None:
        super().__init__(daemon=True, name=f"sender-{n}")
        self.n, self.url, self.tokens, self.mixes, self.detectors = n, url, tokens, mixes, detectors
        self.rate, self.until, self.ledger = rate, until, ledger

    def batch(self, k: int, community: str) -> tuple[int, bytes, list[tuple[int, str, str]], int]:
        first = self.ledger.take(BATCH)
        mix, detectors = self.mixes[community], self.detectors[community]
        now = int(time.time() * 1000)
        events: list[dict[str, Any]] = []
        smoke: list[tuple[int, str, str]] = []
        for i in range(BATCH):
            seq = first + i
            if seq % SMOKE_EVERY == 0:
                detector = detectors[(seq // SMOKE_EVERY) % len(detectors)]
                event: dict[str, Any] = {"type": "smoke.alarm", "device": detector, "data": {"level": "alarm"}}
                smoke.append((seq, community, detector))
            else:
                event = dict(mix[seq % len(mix)])
            event["id"], event["ts"] = event_id(seq), now
            events.append(event)
        rejects = 0
        if k % REJECT_EVERY == self.n % REJECT_EVERY:
            events.append(
                {"id": f"skbad{first}", "type": "device.heartbeat", "device": f"soak-unknown-{first}", "ts": now}
            )
            rejects = 1
        return first, json.dumps(events, ensure_ascii=False).encode(), smoke, rejects

    def run(self) -> None:
        session = requests.Session()
        interval = BATCH / self.rate
        due = time.monotonic()
        for k in itertools.count():
            if time.monotonic() >= self.until:
                return
            community = COMMUNITIES[(k + self.n) % len(COMMUNITIES)]
            first, body, smoke, rejects = self.batch(k, community)
            headers = {"Authorization": f"Bearer {self.tokens[community]}", "Content-Type": "application/json"}
            while True:  # until acknowledged, however long: the events are never given up
                try:
                    r = session.post(self.url, data=body, headers=headers, timeout=30)
                except requests.RequestException:
                    self.ledger.errors += 1
                    session = requests.Session()
                    time.sleep(0.5)
                    continue
                if r.status_code in (429, 503) or r.status_code >= 500:
                    self.ledger.refused += 1
                    time.sleep(min(float(r.headers.get("Retry-After", "1")), 2.0))
                    continue
                if r.status_code != 202:
                    raise SystemExit(f"ingest answered {r.status_code}: {r.text[:300]}")
                result = r.json()
                if int(result["accepted"]) + int(result["duplicates"]) != BATCH or len(result["rejected"]) != rejects:
                    raise SystemExit(f"ingest judged a batch unexpectedly: {json.dumps(result)[:300]}")
                self.ledger.acknowledged(first, BATCH, community, smoke, rejects)
                break
            due += interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                due = time.monotonic()  # behind (a fault): do not burst to catch up


class System:
    """The processes under test, and the faults done to them."""

    def __init__(self, root: Path, cluster: bool, workers: int, web_workers: int, rate: float) -> None:
        self.root, self.cluster, self.n_workers, self.web_workers = root, cluster, workers, web_workers
        self.redis: EmbeddedRedis | LocalCluster
        if cluster:
            self.redis = start_local_cluster(root / "cluster", nodes=3, replicas=1)
        else:
            self.redis = start_embedded(root / "redis", free_port())
        self.settings = load_settings(
            var_dir=root / "var",
            redis_url=self.redis.url,
            secret_key="soak-secret-0123456789",
            ingest_rate_per_minute=10**9,
            login_rate_per_minute=10**9,
            worker_claim_idle_ms=CLAIM_IDLE_MS,
            stream_maxlen=1_000,  # trim pressure: acknowledged history is cut as fast as it is worked off
            stream_retain_minutes=0,
            stream_backlog_limit=int(rate * 60),  # a minute of events: beyond it ingest answers 503
            sweep_seconds=5.0,
            report_daily_enabled=False,
        )
        self.stores = open_stores(self.settings)
        build_demo(self.stores, reset=True)
        self.bench = Bench(root, self.redis, self.settings, self.stores)
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.web: subprocess.Popen[bytes] | None = None
        self.archiver: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.aof_samples: deque[tuple[float, int, int]] = deque(maxlen=50)
        self.power_cuts = 0
        self.logs = (root / "logs").resolve()
        self.logs.mkdir()

    # --- processes ------------------------------------------------------------------------------
    def start_worker(self, i: int) -> None:
        log = (self.logs / f"worker-{i}.log").open("ab")
        self.workers[i] = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker"],
            env=self.bench.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_archiver(self) -> None:
        log = (self.logs / "archive.log").open("ab")
        self.archiver = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "archive"],
            env=self.bench.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_web(self) -> str:
        port = free_port()
        log = (self.logs / "serve.log").open("ab")
        self.web = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port), "--workers", str(self.web_workers)],
            env=self.bench.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    return url
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit("the web server did not answer /healthz within 120 s")

    def web_children(self) -> list[int]:
        if self.web is None:
            return []
        try:
            return [int(p) for p in Path(f"/proc/{self.web.pid}/task/{self.web.pid}/children").read_text().split()]
        except OSError:
            return []

    def watch(self, ledger: Ledger) -> None:
        """Restart a worker that exited on its own (it should not: that is reported)."""
        for i, process in enumerate(self.workers):
            if process is not None and process.poll() is not None and not self.stopping:
                tail = (self.logs / f"worker-{i}.log").read_text(errors="replace").strip().splitlines()[-12:]
                ledger.unexpected_exits.append(f"worker-{i} exit {process.returncode}: " + " | ".join(tail))
                self.start_worker(i)
        if self.archiver is not None and self.archiver.poll() is not None and not self.stopping:
            tail = (self.logs / "archive.log").read_text(errors="replace").strip().splitlines()[-12:]
            ledger.unexpected_exits.append(f"archive exit {self.archiver.returncode}: " + " | ".join(tail))
            self.start_archiver()
        if self.web is not None and self.web.poll() is not None and not self.stopping:
            ledger.unexpected_exits.append(f"serve exit {self.web.returncode}")

    def stop(self) -> None:
        self.stopping = True
        for process in [*self.workers, self.archiver, self.web]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in [*self.workers, self.archiver, self.web]:
            if process is not None:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.stores.engine.dispose()
        self.redis.stop()

    # --- faults ---------------------------------------------------------------------------------
    def fault(self, kind: str, rng: random.Random, ledger: Ledger) -> None:
        ledger.faults[kind] += 1
        if kind == "worker_kill":
            i = rng.randrange(self.n_workers)
            for process in (self.workers[i], self.archiver):  # the archive's copy crashes with it
                if process is not None:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
            time.sleep(1.0)
            self.start_worker(i)
            self.start_archiver()
        elif kind == "worker_stop":
            process = self.workers[rng.randrange(self.n_workers)]
            if process is not None:
                process.send_signal(signal.SIGSTOP)
                time.sleep(CLAIM_IDLE_MS / 1000 * 2.5)  # past the claim timeout: the others take its entries
                process.send_signal(signal.SIGCONT)
        elif kind == "redis_kill":
            ledger.redis_kills.append(self.kill_redis(rng))
        elif kind == "web_kill":
            children = self.web_children()
            if children:
                os.kill(rng.choice(children), signal.SIGKILL)
        elif kind == "poison":
            for _ in range(5):
                self.poison(rng, ledger)

    def kill_redis(self, rng: random.Random) -> tuple[float, float, float]:
        """SIGKILL the server and restart it on its AOF (on the cluster: SIGKILL a primary; its replica
        is elected in its place and the old primary, restarted, rejoins as the replica). Returns the
        moment whose AOF size the power cut left on disk (an event acknowledged after it may be gone),
        when it was killed and when it was back."""
        if isinstance(self.redis, LocalCluster):
            killed = time.monotonic()
            self.redis.crash_primary(rng.randrange(len(self.redis.slot_ranges)))
            return killed - AOF_WINDOW_S, killed, time.monotonic()
        server = self.redis
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        killed = time.monotonic()
        # A SIGKILL alone loses nothing (the AOF's writes are in the page cache); a power cut loses what
        # was not fsynced yet. Emulated: the AOF is cut back to its size of at least a second earlier
        # (fsync every second), unless a rewrite replaced the file since.
        aof = server.data_dir / "appendonly.aof"
        synced = [(at, inode, size) for at, inode, size in self.aof_samples if at <= killed - 1.0]
        # the cut's depth: at least the fsync window; deeper when the sampler was held up (a loaded machine)
        cut_from = killed - AOF_WINDOW_S
        if synced and aof.exists() and aof.stat().st_ino == synced[-1][1]:
            with aof.open("r+b") as f:
                f.truncate(synced[-1][2])
            self.power_cuts += 1
            cut_from = min(cut_from, synced[-1][0])
        time.sleep(1.0)  # down a moment: ingest answers 503, the workers wait
        # a large AOF on a busy machine takes a while to load (the workers and ingest wait meanwhile)
        self.redis = start_embedded(server.data_dir, server.port, timeout_s=300)
        self.aof_samples.clear()
        return cut_from, killed, time.monotonic()

    def sample_aof(self) -> None:
        """Note the AOF's size every 0.2 s, in a thread of its own (what a power cut a second later
        would leave on disk; a sample delayed by the main loop would cut deeper than an fsync does)."""
        while not self.stopping:
            if isinstance(self.redis, EmbeddedRedis):
                with contextlib.suppress(OSError):
                    stat = (self.redis.data_dir / "appendonly.aof").stat()
                    self.aof_samples.append((time.monotonic(), stat.st_ino, stat.st_size))
            time.sleep(0.2)

    def poison(self, rng: random.Random, ledger: Ledger) -> None:
        community = rng.choice(COMMUNITIES)
        name = f"soak-poison-{ledger.poison_sent}"
        try:
            self.stores.redis.xadd(self.stores.keys.events(community), {"e": f"{{not json: {name}"})
        except Exception:  # noqa: BLE001  (Redis is away: not sent, not counted)
            return
        ledger.poison_sent += 1
        ledger.dead_sent[name] = time.monotonic()

    # --- lag --------------------------------------------------------------------------------------
    def sample_lag(self, ledger: Ledger) -> None:
        now = time.time() * 1000
        for group in (GROUP, ARCHIVE_GROUP):
            log = EventLog(self.stores.redis, self.stores.keys, group=group)
            for community in COMMUNITIES:
                try:
                    oldest = log.oldest_unacked(community)
                except Exception:  # noqa: BLE001  (Redis is away during a fault)
                    continue
                if oldest is not None:
                    lag = (now - int(oldest.entry_id.split("-")[0])) / 1000
                    ledger.max_lag_s[group] = max(ledger.max_lag_s[group], lag)

    def sample_memory(self, ledger: Ledger) -> None:
        """Redis's used memory, every sample (the single server; a cluster's nodes are not summed)."""
        if isinstance(self.redis, EmbeddedRedis):
            with contextlib.suppress(Exception):
                used = int(self.stores.redis.info("memory")["used_memory"])
                ledger.redis_peak_bytes = max(ledger.redis_peak_bytes, used)

    def drained(self) -> bool:
        for group in (GROUP, ARCHIVE_GROUP):
            log = EventLog(self.stores.redis, self.stores.keys, group=group)
            if not all(log.caught_up(c) for c in COMMUNITIES):
                return False
        return True


def check(system: System, ledger: Ledger) -> dict[str, Any]:
    """Compare the stores with what was acknowledged: the ledger's figures."""
    total = next(ledger.next_seq)
    archived = bytearray(total)
    with system.stores.engine.connect() as connection:
        rows = connection.execution_options(stream_results=True).execute(
            text("SELECT event_id FROM event_archive WHERE event_id LIKE 'sk0%'")
        )
        for (eid,) in rows:
            seq = int(eid[2:])
            if seq < total:
                archived[seq] = min(archived[seq] + 1, 255)
    windows = ledger.redis_kills
    starts = sorted(ledger.ack_batches)
    firsts = [b[0] for b in starts]

    def acked_at(seq: int) -> float:
        b = starts[bisect.bisect_right(firsts, seq) - 1]
        return b[2]

    def in_aof_window(at: float) -> bool:
        return any(cut_from <= at <= killed for cut_from, killed, _ in windows)

    # Redis's own witness of each accepted event: its idempotency key (seen:<id>, kept 24 h), written
    # by the same script as its stream entry. A power cut takes both, and the event's effects in Redis
    # (alert counts, projections) with them, even when the archive had already copied it to SQL.
    in_redis = bytearray(total)
    for first, n, _, community in starts:
        pipe = system.stores.redis.pipeline(transaction=False)
        for seq in range(first, first + n):
            pipe.exists(system.stores.keys.seen(community, event_id(seq)))
        for seq, there in zip(range(first, first + n), pipe.execute(), strict=True):
            in_redis[seq] = 1 if there else 0
    processed_once = lost = lost_aof = lost_aof_archived = extra_rows = unacked_archived = 0
    for seq in range(total):
        n = archived[seq]
        extra_rows += max(0, n - 1)
        if not ledger.acked[seq]:
            unacked_archived += 1 if n else 0  # taken, then the sender stopped before its answer: not a loss
        elif not in_redis[seq] and in_aof_window(acked_at(seq)):
            lost_aof += 1
            lost_aof_archived += 1 if n else 0
        elif not in_redis[seq] or n == 0:
            lost += 1
        elif n == 1:
            processed_once += 1

    expected: dict[tuple[str, str], int] = {}
    tolerated: dict[tuple[str, str], int] = {}
    for seq, community, detector in ledger.smoke:
        expected[(community, detector)] = expected.get((community, detector), 0) + 1
        if in_aof_window(acked_at(seq)):
            tolerated[(community, detector)] = tolerated.get((community, detector), 0) + 1
    alerts = AlertStore(system.stores.redis, system.stores.keys)
    found: dict[tuple[str, str], int] = {}
    for community in COMMUNITIES:
        for doc in alerts.open_alerts(community):
            if doc["type"] == "smoke":
                found[(community, doc["subject"]["device"])] = int(doc.get("count", 1))
    short = sum(max(0, want - found.get(key, 0) - tolerated.get(key, 0)) for key, want in expected.items())
    short_aof = sum(min(tolerated.get(key, 0), max(0, want - found.get(key, 0))) for key, want in expected.items())
    # an alarm taken but not acknowledged (the sender stopped) may count too: that is not an excess
    extra = sum(max(0, found.get(key, 0) - want) for key, want in expected.items())

    kept: Counter[str] = Counter()
    for community in COMMUNITIES:
        for _, fields in system.stores.redis.xrange(system.stores.keys.dead(community)):
            found_name = DEAD_NAME.search(fields["d"])
            if found_name:
                kept[found_name.group(0)] += 1
    dead_missing = [name for name in ledger.dead_sent if not kept[name]]
    dead_lost_aof = sum(1 for name in dead_missing if in_aof_window(ledger.dead_sent[name]))
    dead_extra = sum(n - 1 for n in kept.values() if n > 1)
    log = EventLog(system.stores.redis, system.stores.keys)
    reported = sum(log.drops(community)["lost_on_restart"] for community in COMMUNITIES)
    return {
        "sent": total,
        "acknowledged": int(sum(ledger.acked[:total])),
        "processed_once": processed_once,
        "duplicated_effects": extra_rows + extra + dead_extra,
        "dead_lettered": sum(1 for name in ledger.dead_sent if kept[name]),
        "poison_sent": len(ledger.dead_sent),
        "dead_letters_lost_in_aof_window": dead_lost_aof,
        "lost_after_ack": lost + short + len(dead_missing) - dead_lost_aof,
        "lost_in_aof_window": lost_aof,
        "lost_in_aof_window_but_archived": lost_aof_archived,
        "alert_counts_lost_in_aof_window": short_aof,
        "lost_reported_by_the_system": reported,
        "alerts_expected": len(expected),
        "alerts_found": sum(1 for key in expected if key in found),
        "alert_counts_short": short,
        "alert_counts_extra": extra,
        "taken_unanswered": unacked_archived,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=5000.0, help="events per second, over HTTP")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cluster", action="store_true", help="a 3-primary Redis Cluster with a replica each")
    parser.add_argument("--fault-every", type=float, default=30.0, help="seconds between faults")
    parser.add_argument(
        "--every-fault",
        action="store_true",
        help="send for at least --minutes, and on until each kind of fault has been made once (a busy "
        "machine restarts Redis slowly, and fewer faults fit in the minutes)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    ledger = Ledger()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the processes under test on the way out
    with tempfile.TemporaryDirectory(prefix="sandtable-soak-") as tmp:
        system = System(Path(tmp), args.cluster, args.workers, args.web_workers, args.rate)
        try:
            return run(system, ledger, args, rng)
        finally:
            system.stop()


def run(system: System, ledger: Ledger, args: argparse.Namespace, rng: random.Random) -> int:
    tokens = {c: ingest_token(system.stores, c) for c in COMMUNITIES}
    mixes: dict[str, list[dict[str, Any]]] = {}
    detectors: dict[str, list[str]] = {}
    for community in COMMUNITIES:
        devices = devices_by_type(system.stores, community)
        mix = event_mix(
            devices,
            2_000,
            0,
            faces=lock_faces(system.stores, community),
            plates=resident_plates(system.stores, community),
        )
        mixes[community] = [{k: v for k, v in e.items() if k not in ("id", "ts")} for e in mix]
        detectors[community] = sorted(devices["smoke_detector"])[:SMOKE_DETECTORS]
    for i in range(args.workers):
        system.start_worker(i)
    system.start_archiver()
    url = system.start_web()
    schedule = [kind for _ in range(1000) for kind in rng.sample(FAULTS, len(FAULTS))]
    began = time.monotonic()
    until = began + args.minutes * 60
    senders = [
        Sender(i, url + "/api/v1/events", tokens, mixes, detectors, args.rate / SENDERS, until, ledger)
        for i in range(SENDERS)
    ]
    for sender in senders:
        sender.start()
    threading.Thread(target=system.sample_aof, daemon=True, name="aof-sampler").start()
    print(
        f"soak: {args.rate:,.0f} events/s for {args.minutes:g} min on "
        f"{'a 3-primary Redis Cluster' if args.cluster else 'one Redis server'}, "
        f"{args.workers} workers, {args.web_workers} web workers, a fault every {args.fault_every:g} s",
        flush=True,
    )
    next_fault = began + args.fault_every / 2
    faults = iter(schedule)
    next_poison = began + 1.0
    while any(s.is_alive() for s in senders):
        now = time.monotonic()
        # with --every-fault, the kinds still owed: those not made yet, and on one server a power cut (a
        # Redis kill just after an AOF rewrite replaced the file has no fsynced second to cut back to)
        owed = [k for k, n in ledger.faults.items() if n == 0]
        if not args.cluster and system.power_cuts == 0 and "redis_kill" in ledger.faults:
            owed = [*owed, "redis_kill"] if "redis_kill" not in owed else owed
        if args.every_fault and now >= until - args.fault_every / 2 and owed:
            until = now + args.fault_every  # a kind of fault not made yet: go on sending
            for sender in senders:
                sender.until = until
        if now >= next_fault and now < until - args.fault_every / 3:
            kind = next(faults)
            if args.every_fault and owed and kind not in owed and min(ledger.faults.values()) > 0:
                kind = owed[0]  # every kind was made once: the one still owed comes before any repeat
            print(f"  {now - began:6.0f} s  {kind}", flush=True)
            system.fault(kind, rng, ledger)
            next_fault = time.monotonic() + args.fault_every
        if now >= next_poison:
            system.poison(rng, ledger)
            next_poison = now + 2.0
        system.watch(ledger)
        system.sample_lag(ledger)
        system.sample_memory(ledger)
        time.sleep(0.5)
    sent_rate = ledger.sent / (time.monotonic() - began)
    print(f"  sending done: {ledger.sent:,} events acknowledged ({sent_rate:,.0f}/s); draining", flush=True)
    deadline = time.monotonic() + max(300.0, args.minutes * 20)
    while not system.drained() and time.monotonic() < deadline:
        system.watch(ledger)
        system.sample_lag(ledger)
        time.sleep(1.0)
    drained = system.drained()
    figures = check(system, ledger)
    figures.update(
        {
            "bench": "soak",
            "minutes": args.minutes,
            "redis": "cluster" if args.cluster else "single",
            "target_events_per_s": round(args.rate),
            "achieved_events_per_s": round(sent_rate),
            "max_lag_s": round(ledger.max_lag_s[GROUP], 1),
            "max_archive_lag_s": round(ledger.max_lag_s[ARCHIVE_GROUP], 1),
            "drained": drained,
            "refused_and_retried": ledger.refused,
            "connection_errors_retried": ledger.errors,
            "faults": ledger.faults,
            "power_cuts": system.power_cuts,
            "aof_cut_s": round(max((killed - cut for cut, killed, _ in ledger.redis_kills), default=0.0), 1),
            "redis_peak_mib": round(ledger.redis_peak_bytes / 2**20) if ledger.redis_peak_bytes else None,
            "unexpected_exits": ledger.unexpected_exits,
            "seed": args.seed,
            "cores": os.cpu_count(),
        }
    )
    ok = (
        figures["duplicated_effects"] == 0
        and figures["lost_after_ack"] == 0
        and figures["dead_lettered"] + figures["dead_letters_lost_in_aof_window"] == figures["poison_sent"]
        and figures["lost_reported_by_the_system"] == figures["lost_in_aof_window"]
        and figures["alerts_found"] == figures["alerts_expected"]
        and figures["alert_counts_short"] == figures["alert_counts_extra"] == 0
        and not ledger.unexpected_exits
        and drained
    )
    print(
        f"  ledger: {figures['acknowledged']:,} acknowledged, {figures['processed_once']:,} processed once, "
        f"{figures['duplicated_effects']} duplicated, {figures['lost_after_ack']} lost after ack, "
        f"{figures['lost_in_aof_window']} in the AOF window; dead letters {figures['dead_lettered']} of "
        f"{figures['poison_sent']} poison/rejected; max lag {figures['max_lag_s']} s",
        flush=True,
    )
    if not ok:  # the processes' logs outlive the run's folder, for whoever looks into it
        kept = Path(tempfile.gettempdir()) / f"sandtable-soak-logs-{int(time.time())}"
        shutil.copytree(system.logs, kept)
        print(f"  the ledger does not hold: the processes' logs are in {kept}", flush=True)
    report(figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
