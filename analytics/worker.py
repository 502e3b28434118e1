"""The analytics worker: reads the community streams in a consumer group, applies projections
and rules, acknowledges after success, takes over what crashed consumers left pending, moves
poison entries to the dead-letter stream, fires due timers, and trims acknowledged history.

Several worker processes share the group; each entry is processed by one of them at a time.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from alerts.constants import SEVERITIES
from alerts.history import AlertHistory
from alerts.live import AlertChange, AlertStore
from analytics.context import RuleContext
from analytics.projections import project
from analytics.rules import build_rules
from analytics.rules.base import Rule
from analytics.rules.gates import write_gate_counts
from analytics.scheduled import ScheduledJobs
from closedloop.service import SLA_STAGES, Loop
from core.clock import Clock, WallClock
from core.metrics import metrics
from core.timefmt import ms_to_utc
from ingest.directory import Directory
from ingest.schema import Event
from memory.archive import Archiver
from registry.watchlist import project_all as project_watchlist
from store.applied import AppliedToken
from store.events import EventLog, StreamEntry
from store.redis_server import STORE_ERRORS, TRANSIENT_ERRORS
from store.sql import again_on_conflict, dialect_insert, utcnow
from store.stores import Stores

log = logging.getLogger(__name__)

JOBS_JOIN_S = 60.0  # a stopping worker lets the report it is rendering finish, for this long at most
APPLIED_KEEP_MS = 3 * 24 * 3_600_000  # a redelivery or a re-fired timer comes within minutes; kept 3 days


def unapplied(session: Session, community: str, tokens: set[str]) -> set[str]:
    """The tokens whose SQL side effects were not written yet; recorded as written now (same
    transaction as the writes). One ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (sent by SQLAlchemy
    as multi-row statements, "insertmanyvalues"): the rows it inserted are the fresh tokens, and a
    token another worker is recording at the same moment waits for that worker's transaction and
    then counts as applied (PostgreSQL), or the database's single writer orders the two (SQLite)."""
    wanted = sorted(t for t in tokens if t)
    fresh: set[str] = set()
    if wanted:
        at = utcnow()
        table = AppliedToken.__table__
        statement = (
            dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=["community_id", "token"])
            .returning(table.c.token)
        )
        rows = [{"community_id": community, "token": t, "at": at} for t in wanted]
        fresh.update(session.scalars(statement, rows))
    return fresh | ({""} if "" in tokens else set())  # an untokened write (a test's context) is written


def forget_applied(stores: Stores, before_ms: int) -> None:
    """Drop the records of tokens applied long ago."""
    with stores.sessions.begin() as session:
        session.execute(delete(AppliedToken).where(AppliedToken.at < ms_to_utc(before_ms)))


# the collector's first generation is collected after this many new objects (Python's default: 700)
GC_YOUNG_THRESHOLD = 50_000


def settle_gc() -> None:
    """Keep the garbage collector off the worker's hot path. A batch of 4,000 events allocates some
    hundred thousand objects (entries, events, writes), nearly all freed by reference counting;
    with the default thresholds the collector still ran dozens of times a batch, each time walking
    every object the process holds (the registry facts, SQLAlchemy's metadata): a quarter of the
    worker's time at the P2 load. What exists after start-up is frozen out of the collector's
    sight, and the young generation is collected every GC_YOUNG_THRESHOLD objects instead of 700.
    Cycles are still collected; only less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


# KEYS[1] timer zset; ARGV[1] member, ARGV[2] the due time that was fired
UNSCHEDULE_LUA = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


@dataclass
class WorkerStats:
    """Counters of one worker process."""

    processed: int = 0
    rule_errors: int = 0
    dead_lettered: int = 0
    claimed: int = 0
    timers_fired: int = 0
    batches: int = 0
    by_community: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def next_batch(current: int, got: int, base: int, ceiling: int) -> int:
    """How many entries the next read asks for. A full read means a backlog: the batch doubles (up to
    ceiling), since a batch's fixed costs — its SQL transaction, its pipeline, its state reads — are
    then shared by more events and the analytics catch up with ingest sooner. A read that filled less
    than a quarter of it halves it back toward base, so a steady flow keeps small batches and a low
    lag."""
    if got >= current:
        return min(current * 2, ceiling)
    if got < current // 4:
        return max(current // 2, base)
    return current


class Worker:
    """One consumer of the group."""

    def __init__(
        self,
        stores: Stores,
        *,
        consumer: str | None = None,
        clock: Clock | None = None,
        directory: Directory | None = None,
        rules: list[Rule] | None = None,
        write_history: bool = True,
    ) -> None:
        self.stores = stores
        self.settings = stores.settings
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.clock = clock or WallClock()
        self.directory = directory or Directory(stores.sessions)
        self.rules = rules if rules is not None else build_rules(self.settings)
        self.by_type: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for event_type in rule.events:
                self.by_type[event_type].append(rule)
        self.timers: dict[str, Rule] = {t: r for r in self.rules for t in r.timers}
        self.events = EventLog(
            stores.redis,
            stores.keys,
            dedup_hours=self.settings.dedup_hours,
            cluster_block_ms=self.settings.worker_cluster_block_ms,
            dead_letter_max_bytes=self.settings.dead_letter_max_bytes,
            dead_letter_budget_mb=self.settings.dead_letter_budget_mb,
        )
        self.alerts = AlertStore(stores.redis, stores.keys)
        self.history = AlertHistory(stores.sessions) if write_history else None
        # the closed loop (dispatch, arrival, SLAs) runs with live state only, never in a replay
        self.loop = Loop(stores, clock=self.clock) if write_history else None
        if self.loop is not None:  # every stage and severity shown from the start, at 0
            for stage in SLA_STAGES:
                for severity in SEVERITIES:
                    metrics().sla_misses.labels(stage, severity)
        # the event archive (memory/archive.py): its own consumer group, live only (a replay archives
        # nothing). The workers create the group (no entry is trimmed before the archive reads it);
        # the copy is the archive process's (manage.py archive), unless SANDTABLE_ARCHIVE_IN_WORKERS
        self.archiver = Archiver(stores, consumer=self.consumer, directory=self.directory) if write_history else None
        self.archiving = self.archiver is not None and self.settings.archive_in_workers
        # the daily reports and the nightly purge, when the workers run them: live only, on a thread
        scheduled = write_history and self.settings.scheduled_jobs == "workers"
        self.jobs = ScheduledJobs(stores) if scheduled else None
        self.plan_timers = True  # registry-driven schedules (patrol rounds); a replay judges only its file
        self.raised: list[AlertChange] = []  # every change, for replay's output
        self.keep_changes = not write_history
        self.stats = WorkerStats()
        self._unschedule = stores.redis.register_script(UNSCHEDULE_LUA)
        self._communities: list[str] = []
        self._started: set[str] = set()

    # --- one community's context ------------------------------------------------------------
    def context(self, community: str, token: str = "") -> RuleContext:
        """A rule context for the community at the worker's clock."""
        return RuleContext(
            community=community,
            clock=self.clock,
            facts=self.directory.facts(community),
            directory=self.directory,
            redis=self.stores.redis,
            keys=self.stores.keys,
            alerts=self.alerts,
            settings=self.settings,
            token=token,
            loop=self.loop,
        )

    def _record(self, ctx: RuleContext) -> None:
        """The batch's SQL side: alert history, the rules' rows and counters (live only; never in a replay).

        The rows and counters are written once per event or timer: the tokens behind them are
        recorded in the same transaction, and a token already recorded (a batch redelivered after
        a crash between this write and the XACK, a timer fired again) is skipped."""
        if self.history is not None:
            self.history.write(ctx.changes)
            if ctx.sql or ctx.counted:
                again_on_conflict(lambda: self._write_applied(ctx), "applied tokens")
        if self.keep_changes:
            self.raised.extend(ctx.changes)

    def _write_applied(self, ctx: RuleContext) -> None:
        """The rules' rows and counters of tokens not applied yet, and those tokens, in one transaction
        (another worker holding the same entries — claimed from a stalled one — may write them at once:
        ``_record`` then runs it again, and it finds them applied)."""
        with self.stores.sessions.begin() as session:
            fresh = unapplied(session, ctx.community, {t for t, _ in ctx.sql} | {t for t, _ in ctx.counted})
            for token, write in ctx.sql:
                if token in fresh:
                    write(session)
            counters = Counter(key for token, key in ctx.counted if token in fresh)
            write_gate_counts(session, ctx.community, dict(counters))

    # --- processing ---------------------------------------------------------------------------
    def process(self, entries: list[StreamEntry]) -> int:
        """Project and judge entries (of any communities); ack the processed ones. Returns how many
        (timed: ``sandtable_worker_batch_seconds``)."""
        started = time.perf_counter()
        by_community: dict[str, list[StreamEntry]] = defaultdict(list)
        for entry in entries:
            by_community[entry.community].append(entry)
        done = 0
        for community, batch in by_community.items():
            done += self._process_community(community, batch)
        self.stats.batches += 1
        series = metrics()
        series.worker_batch_seconds.observe(time.perf_counter() - started)
        series.worker_events.inc(done)
        return done

    def _process_community(self, community: str, batch: list[StreamEntry]) -> int:
        ctx = self.context(community)
        facts = ctx.facts
        acked: list[str] = []
        frontier = 0
        poison: list[dict[str, Any]] = []
        decoded: list[tuple[StreamEntry, Event]] = []
        for entry in batch:
            try:
                if entry.doc is None:
                    raise ValueError("not a JSON object")
                decoded.append((entry, Event.from_wire(entry.doc)))
            except (KeyError, TypeError, ValueError, OverflowError) as err:
                poison.append(
                    {
                        "reason": f"undecodable stream entry ({err})",
                        "entry": entry.entry_id,
                        "raw": entry.doc if entry.doc is not None else entry.raw,  # cut by dead_letter
                        "at": self.clock.now_ms(),
                    }
                )
                acked.append(entry.entry_id)
        events = [event for _, event in decoded]
        for rule in self.rules:
            rule.before_batch(ctx, events)
        keys, writes, by_type = self.stores.keys, ctx.writes, self.by_type
        devices, wearables = facts.devices, facts.wearables
        for entry, event in decoded:
            device = devices.get(event.device)
            if device is None:  # removed from the registry since it was accepted
                acked.append(entry.entry_id)
                continue
            project(writes, keys, community, event, device, wearables.get(device.id))
            frontier = max(frontier, event.ts)
            ctx.token = entry.entry_id
            ctx.fact_ms = event.ts
            for rule in by_type.get(event.type, ()):
                try:
                    rule.on_event(ctx, event, device)
                except STORE_ERRORS:
                    raise  # a store problem: leave the batch pending, it is retried
                except Exception:
                    self.stats.rule_errors += 1
                    metrics().worker_rule_errors.inc()
                    log.exception("rule %s failed on %s %s", rule.name, community, entry.entry_id)
            acked.append(entry.entry_id)
        ctx.writes.incr(self.stores.keys.version(community))
        if frontier:
            ctx.writes.zadd(self.stores.keys.frontier(community), "events", min(frontier, self.clock.now_ms()), gt=True)
        ctx.flush()
        self._record(ctx)
        self.events.dead_letter(community, poison)
        self.events.ack(community, acked)
        self.stats.processed += len(acked)
        self.stats.dead_lettered += len(poison)
        if poison:
            metrics().worker_poison.inc(len(poison))
        self.stats.by_community[community] += len(acked)
        return len(acked)

    # --- timers -------------------------------------------------------------------------------
    def horizon(self, community: str) -> int:
        """Up to when timers may fire: now when the community's events are all processed, else the
        event time reached so far (a backlog being worked off must not fire timers that its own
        later events would have postponed)."""
        now = self.clock.now_ms()
        if self.events.caught_up(community):
            return now
        frontier = self.stores.redis.zscore(self.stores.keys.frontier(community), "events")
        return min(now, int(frontier)) if frontier is not None else 0

    def sweep(self, community: str, *, limit: int = 1000) -> int:
        """Fire every timer of the community that is due by its horizon."""
        now = self.horizon(community)
        fired = 0
        if self.plan_timers:
            planning = self.context(community)
            for rule in self.rules:
                rule.on_sweep(planning)
            planning.flush()
        for timer, rule in self.timers.items():
            key = self.stores.keys.timer(community, timer)
            due = self.stores.redis.zrangebyscore(key, "-inf", now, start=0, num=limit, withscores=True)
            if not due:
                continue
            ctx = self.context(community)
            for member, score in due:
                ctx.token = f"timer:{timer}:{member}:{int(score)}"
                ctx.fact_ms, ctx.firing = int(score), (timer, member)
                try:
                    rule.on_timer(ctx, timer, member, int(score))
                except STORE_ERRORS:
                    raise
                except Exception:
                    self.stats.rule_errors += 1
                    metrics().worker_rule_errors.inc()
                    log.exception("timer %s of %s failed for %s", timer, rule.name, member)
                fired += 1
            ctx.flush()
            self._record(ctx)
            # only now, with the alerts written, are the timers done: a crash before this line fires
            # them again, and the timer's token makes the repeat raise nothing new
            for member, score in due:
                self._unschedule(keys=[key], args=[member, int(score)])
            self.stores.redis.incr(self.stores.keys.version(community))
        self.stats.timers_fired += fired
        return fired

    def next_due(self, community: str) -> int | None:
        """The earliest due time of the community's timers, or None."""
        best: int | None = None
        for timer in self.timers:
            first = self.stores.redis.zrange(self.stores.keys.timer(community, timer), 0, 0, withscores=True)
            if first and (best is None or first[0][1] < best):
                best = int(first[0][1])
        return best

    def start_community(self, community: str, *, seed_timers: bool = True) -> None:
        """Create the group and let the rules seed their timers (once per process)."""
        if community in self._started:
            return
        self.events.ensure_group(community)
        if not self._started:
            # the wanted list's live copy, rebuilt from SQL once per process (after a lost or flushed Redis)
            with self.stores.sessions() as session:
                project_watchlist(self.stores.redis, self.stores.keys, session)
        if self.archiver is not None:
            self.archiver.start(community)
        self.alerts.recount(community)  # open-alert counts of the city view, exact after any restart
        if seed_timers:
            ctx = self.context(community)
            for rule in self.rules:
                rule.on_start(ctx)
            ctx.flush()  # the timers the rules seeded
        self._started.add(community)

    # --- crashed consumers and poison ---------------------------------------------------------
    def reclaim(self, community: str) -> int:
        """Take over entries idle too long; dead-letter those delivered too often; process the rest."""
        claimed = self.events.claim_stale(community, self.consumer, self.settings.worker_claim_idle_ms)
        if not claimed:
            return 0
        retry: list[StreamEntry] = []
        poison: list[dict[str, Any]] = []
        for entry, deliveries in claimed:
            if deliveries > self.settings.worker_max_deliveries:
                poison.append(
                    {
                        "reason": f"poison: delivered {deliveries} times without success",
                        "entry": entry.entry_id,
                        "raw": entry.doc if entry.doc is not None else entry.raw,  # cut by dead_letter
                        "at": self.clock.now_ms(),
                    }
                )
            else:
                retry.append(entry)
        if poison:
            self.events.dead_letter(community, poison)
            self.events.ack(community, [p["entry"] for p in poison])
            self.stats.dead_lettered += len(poison)
            metrics().worker_poison.inc(len(poison))
            log.warning("%s: %d poison entries moved to the dead-letter stream", community, len(poison))
        self.stats.claimed += len(claimed)
        if retry:
            self.process(retry)
        return len(claimed)

    # --- the loop -----------------------------------------------------------------------------
    def refresh_communities(self) -> list[str]:
        """The communities with a stream (groups created, rules started)."""
        communities = self.events.communities()
        for community in communities:
            self.start_community(community)
        self._communities = communities
        return communities

    def run(self, stop: threading.Event, *, tune_gc: bool = False) -> None:
        """Work until stop is set, then finish the batch in hand and return (``tune_gc``: a worker
        process of its own, whose collector is settled once its communities are started)."""
        s = self.settings
        last = {"communities": 0.0, "sweep": 0.0, "claim": 0.0, "trim": 0.0, "archive": 0.0}
        batch = s.worker_batch
        log.info("worker %s started", self.consumer)
        while not stop.is_set():
            now = time.monotonic()
            try:
                if now - last["communities"] > 5 or not self._communities:
                    self.refresh_communities()
                    last["communities"] = now
                    if tune_gc and self._communities:
                        settle_gc()  # the registry facts and the rules' set-up are loaded: frozen
                        tune_gc = False
                if not self._communities:
                    stop.wait(0.5)
                    continue
                entries = self.events.read(self._communities, self.consumer, count=batch, block_ms=s.worker_block_ms)
                if entries:
                    self.process(entries)
                backlog = len(entries) >= batch
                batch = next_batch(batch, len(entries), s.worker_batch, max(s.worker_batch, s.worker_batch_max))
                # archiving in the workers: the archive gives way to the analytics in a backlog (a full
                # batch read): it copies a batch once a second then, and catches up as soon as they do
                if self.archiving and self.archiver is not None and (not backlog or now - last["archive"] >= 1.0):
                    self.archiver.run_once(self._communities, count=s.archive_batch)
                    last["archive"] = now
                if now - last["sweep"] > s.sweep_seconds:
                    for community in self._communities:
                        if self._sweep_lock(community):
                            self.sweep(community)
                            if self.loop is not None:
                                self.loop.maintain(community)
                            self._keyframes(community)
                    # live state only, never in a replay; with systemd timers those run the schedules
                    # on a thread of their own (analytics/scheduled.py): a render must not hold the events up
                    if self.jobs is not None:
                        self.jobs.poke(self.clock.now_ms())
                    last["sweep"] = now
                if now - last["claim"] > max(1.0, s.worker_claim_idle_ms / 3000):
                    for community in self._communities:
                        self.reclaim(community)
                        if self.archiving and self.archiver is not None:
                            self.archiver.reclaim(community, s.worker_claim_idle_ms)
                    last["claim"] = now
                if now - last["trim"] > 60:
                    for community in self._communities:
                        self.events.trim(community, s.stream_retain_minutes * 60_000, s.stream_maxlen)
                    forget_applied(self.stores, int(time.time() * 1000) - APPLIED_KEEP_MS)  # rows stamped in wall time
                    last["trim"] = now
            except TRANSIENT_ERRORS as err:
                log.warning("Redis unavailable (%s); retrying", err)
                stop.wait(1.0)
        if self.jobs is not None:
            self.jobs.join(JOBS_JOIN_S)
        log.info(
            "worker %s stopped: %d events, %d timers, %d rule errors",
            self.consumer,
            self.stats.processed,
            self.stats.timers_fired,
            self.stats.rule_errors,
        )

    def _keyframes(self, community: str) -> None:
        """Archiving in the workers: build the state keyframes up to now, once per keyframe interval
        per community (live only; otherwise the archive process builds them)."""
        if self.archiving and self.archiver is not None:
            self.archiver.keyframes_due(community, self.clock.now_ms())

    def _sweep_lock(self, community: str) -> bool:
        """Only one worker sweeps a community at a time (the others would find nothing due)."""
        key = self.stores.keys.rule_state(community, "sweep-lock")
        ttl = int(self.settings.sweep_seconds * 1000)
        return bool(self.stores.redis.set(key, self.consumer, nx=True, px=ttl))


def run_worker_process(stores_factory: Any) -> None:
    """Entry point of one worker process: stops cleanly on SIGTERM/SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    Worker(stores_factory()).run(stop, tune_gc=True)
