"""Retention (PIPL, issue #19): each data class is kept for its period (settings ``retain_*_days``),
then purged by ``manage.py purge`` and by the worker once a night.

Classes, in the order they are purged (a row is counted in the first class that takes it):

- ``events``: archived events older than ``retain_events_days``. On PostgreSQL every week
  partition wholly older is dropped (``memory.archive.partition_name``); the rest is deleted in
  chunks (the whole table on SQLite).
- ``gate_captures``: the identities among the archived events — gate.face, gate.vehicle and
  lock.open rows — and the barrier's capture records (``gate_capture``), after
  ``retain_gate_captures_days``.
- ``heartbeats``: device.heartbeat rows older than ``retain_heartbeats_full_days`` are compacted:
  the first of each device's hour is kept, and every one whose state or battery changed.
- ``evidence``: evidence image files older than ``retain_evidence_days``, except those pinned by a
  case that is kept (open, or closed within ``retain_cases_days``).
- ``visitor_passes``: passes whose validity ended ``retain_visitor_passes_days`` ago.
- ``alerts``: alerts closed ``retain_alerts_days`` ago, with their steps, tasks, resident reports
  and notifications (deliveries, notices); tasks and reports without an alert by their own age.
- ``cases``: cases closed ``retain_cases_days`` ago, with their pins (the copies) and notes.
- ``audit``: audit rows older than ``retain_audit_days`` (the log's delete trigger lets only rows
  under the floor written in the purge's transaction go: migration 0012).

A real purge is audited (action ``purge``, the counts per class).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, delete, func, select, text, tuple_

from alerts.models import AlertRecord, AlertStep
from auth.models import AuditEntry
from auth.principal import SYSTEM, Principal
from auth.service import Auditor
from closedloop.models import ResidentReport, Task
from core.settings import Settings
from core.timefmt import SHANGHAI, ms_to_utc
from gates.models import GateCapture, VisitorPass
from memory.archive import WEEK_MS
from memory.case_models import AuditPurgeFloor, Case, CaseNote, CasePin
from memory.models import ArchivedEvent
from notify.models import NotifyDelivery, NotifyNotice
from store.evidence import EVIDENCE_ID, evidence_root
from store.stores import Stores

log = logging.getLogger(__name__)

CLASSES = (
    "events",
    "gate_captures",
    "heartbeats",
    "evidence",
    "visitor_passes",
    "alerts",
    "cases",
    "audit",
)
GATE_TYPES = ("gate.face", "gate.vehicle", "lock.open")  # identities: kept shorter than other events
HEARTBEAT = "device.heartbeat"
HEARTBEAT_FIELDS = ("state", "status", "online", "battery")  # a change of any of these is kept
CHUNK = 2000  # rows deleted per statement
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
PARTITION = re.compile(r"^event_archive_w(\d{8})$")
LOCK_MS = 30 * 60_000  # a nightly purge that takes longer is retried by another worker
DONE_MS = 26 * HOUR_MS


@dataclass
class PurgeReport:
    """What a purge removed (or would remove, in a dry run), per class and per table."""

    dry_run: bool
    at: str  # when it ran, RFC 3339 UTC
    classes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    tables: dict[str, int] = field(default_factory=dict)  # rows per table (files: "evidence files")
    partitions: list[str] = field(default_factory=list)  # PostgreSQL week partitions dropped
    before: dict[str, str] = field(default_factory=dict)  # class → the cut-off time (RFC 3339 UTC)

    def add(self, klass: str, table: str, n: int) -> None:
        """Count n rows of a table in a class."""
        self.classes[klass] += n
        self.tables[table] = self.tables.get(table, 0) + n

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "dry_run": self.dry_run,
            "at": self.at,
            "classes": self.classes,
            "tables": self.tables,
            "partitions": self.partitions,
            "before": self.before,
        }


@dataclass(frozen=True)
class Cutoffs:
    """The instant before which each class is purged (epoch ms, UTC)."""

    events: int
    gate_captures: int
    heartbeats: int
    evidence: int
    visitor_passes: int
    alerts: int
    cases: int
    audit: int

    @classmethod
    def of(cls, settings: Settings, now_ms: int) -> Cutoffs:
        """The cut-offs of the settings at now."""
        return cls(
            events=now_ms - settings.retain_events_days * DAY_MS,
            gate_captures=now_ms - settings.retain_gate_captures_days * DAY_MS,
            heartbeats=now_ms - settings.retain_heartbeats_full_days * DAY_MS,
            evidence=now_ms - settings.retain_evidence_days * DAY_MS,
            visitor_passes=now_ms - settings.retain_visitor_passes_days * DAY_MS,
            alerts=now_ms - settings.retain_alerts_days * DAY_MS,
            cases=now_ms - settings.retain_cases_days * DAY_MS,
            audit=now_ms - settings.retain_audit_days * DAY_MS,
        )

    def at(self, klass: str) -> dt.datetime:
        """The cut-off of a class as an aware UTC datetime."""
        value: int = getattr(self, klass)
        return ms_to_utc(value)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Purge:
    """One purge run over every class (``dry_run``: counted, nothing removed)."""

    def __init__(self, stores: Stores, now_ms: int, *, dry_run: bool) -> None:
        self.stores = stores
        self.sessions = stores.sessions
        self.cut = Cutoffs.of(stores.settings, now_ms)
        self.dry_run = dry_run
        self.postgresql = stores.engine.dialect.name == "postgresql"
        self.report = PurgeReport(dry_run=dry_run, at=_iso(ms_to_utc(now_ms)))
        self.report.before = {k: _iso(self.cut.at(k)) for k in CLASSES}

    def run(self) -> PurgeReport:
        """Purge every class in order; the report."""
        self.events()
        self.gate_captures()
        self.heartbeats()
        self.evidence()
        self.visitor_passes()
        self.alerts()
        self.cases()
        self.audit_log()
        return self.report

    # --- the archive ----------------------------------------------------------------------
    def _archive_rows(self, klass: str, stmt: Select[str, str, int]) -> None:
        """Delete (or count) the archive rows a statement of primary keys selects, in chunks."""
        if self.dry_run:
            with self.sessions() as session:
                n = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            self.report.add(klass, "event_archive", n)
            return
        a = ArchivedEvent
        while True:
            with self.sessions.begin() as session:
                keys = list(session.execute(stmt.limit(CHUNK)).tuples())
                if keys:
                    session.execute(
                        delete(a)
                        .where(tuple_(a.community_id, a.entry, a.ts).in_(keys))
                        .execution_options(synchronize_session=False)
                    )
            self.report.add(klass, "event_archive", len(keys))
            if len(keys) < CHUNK:
                return

    def _keys(self) -> Select[str, str, int]:
        a = ArchivedEvent
        return select(a.community_id, a.entry, a.ts)

    def events(self) -> None:
        """Archived events past their retention: old week partitions dropped (PostgreSQL), then rows."""
        floor = self._drop_partitions() if self.postgresql else 0  # below it: in the partitions dropped
        self._archive_rows("events", self._keys().where(ArchivedEvent.ts < self.cut.events, ArchivedEvent.ts >= floor))

    def _drop_partitions(self) -> int:
        """Drop (or count) the week partitions wholly before the cut-off; the end of the last one."""
        floor = 0
        with self.sessions() as session:
            names = list(
                session.scalars(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'event_archive' ORDER BY 1"
                    )
                )
            )
        for name in names:
            found = PARTITION.match(name)
            if found is None:
                continue
            start = dt.datetime.strptime(found.group(1), "%Y%m%d").replace(tzinfo=dt.UTC)
            if int(start.timestamp() * 1000) + WEEK_MS > self.cut.events:
                continue  # holds rows still kept
            with self.sessions.begin() as session:
                n = session.scalar(text(f"SELECT count(*) FROM {name}")) or 0  # noqa: S608 — digits only (matched)
                if not self.dry_run:
                    session.execute(text(f"DROP TABLE {name}"))
            self.report.add("events", "event_archive", n)
            self.report.partitions.append(name)
            floor = max(floor, int(start.timestamp() * 1000) + WEEK_MS)
        return floor

    def gate_captures(self) -> None:
        """Gate passages, plate captures and lock openings past their (shorter) retention."""
        a = ArchivedEvent
        self._archive_rows(
            "gate_captures",
            self._keys().where(a.ts < self.cut.gate_captures, a.ts >= self.cut.events, a.type.in_(GATE_TYPES)),
        )
        self._delete_rows("gate_captures", GateCapture, GateCapture.at < self.cut.at("gate_captures"))

    def heartbeats(self) -> None:
        """Compact heartbeats older than the full period: one per device per hour, and every change."""
        start = max(self.cut.events, self._heartbeat_mark())
        start -= start % HOUR_MS
        end = self.cut.heartbeats - self.cut.heartbeats % HOUR_MS
        if end <= start:
            return
        drop: list[tuple[str, str, int]] = []
        for key in self._surplus_heartbeats(start, end):
            drop.append(key)
            if len(drop) == CHUNK:
                self._delete_keys(drop)
                drop = []
        self._delete_keys(drop)
        if not self.dry_run:
            self.stores.redis.set(self._mark_key(), end)

    def _mark_key(self) -> str:
        return f"{self.stores.keys.prefix}:purge:heartbeats"

    def _heartbeat_mark(self) -> int:
        value = self.stores.redis.get(self._mark_key())
        return int(value) if value else 0

    def _surplus_heartbeats(self, start: int, end: int) -> Iterator[tuple[str, str, int]]:
        """The keys of the heartbeats in [start, end) that are neither the first of their device's
        hour nor a change from the one before."""
        a = ArchivedEvent
        stmt = (
            select(a.community_id, a.entry, a.ts, a.device_id, a.data)
            .where(a.type == HEARTBEAT, a.ts >= start, a.ts < end)
            .order_by(a.community_id, a.device_id, a.ts, a.entry)
        )
        previous: tuple[str, str, int, tuple[Any, ...]] | None = None  # community, device, hour, state
        with self.sessions() as session:
            for community, entry, ts, device, data in session.execute(stmt.execution_options(yield_per=CHUNK)):
                found = data if isinstance(data, dict) else {}
                state = tuple(found.get(k) for k in HEARTBEAT_FIELDS)
                hour = ts // HOUR_MS
                same_device = previous is not None and previous[:2] == (community, device)
                if same_device and previous is not None and previous[2] == hour and previous[3] == state:
                    yield (community, entry, ts)
                    continue
                previous = (community, device, hour, state)

    def _delete_keys(self, keys: list[tuple[str, str, int]]) -> None:
        if keys and not self.dry_run:
            a = ArchivedEvent
            with self.sessions.begin() as session:
                session.execute(
                    delete(a)
                    .where(tuple_(a.community_id, a.entry, a.ts).in_(keys))
                    .execution_options(synchronize_session=False)
                )
        self.report.add("heartbeats", "event_archive", len(keys))

    # --- files ---------------------------------------------------------------------------
    def evidence(self) -> None:
        """Evidence images past their retention, unless a kept case pinned them."""
        root = evidence_root(self.stores.settings)
        if not root.is_dir():
            return
        with self.sessions() as session:
            kept = set(
                session.scalars(
                    select(CasePin.evidence)
                    .join(Case, Case.id == CasePin.case_id)
                    .where(
                        CasePin.evidence.is_not(None),
                        (Case.status == "open") | (Case.closed_at >= self.cut.at("cases")),
                    )
                )
            )
        limit = self.cut.evidence / 1000
        for path in sorted(root.glob("*/*.jpg")):
            if not EVIDENCE_ID.fullmatch(path.stem) or path.stem in kept:
                continue
            try:
                if path.stat().st_mtime >= limit:
                    continue
                if not self.dry_run:
                    path.unlink()
            except FileNotFoundError:  # removed meanwhile
                continue
            self.report.add("evidence", "evidence files", 1)

    # --- rows of other tables -------------------------------------------------------------
    def _delete_rows(self, klass: str, model: Any, *conditions: Any) -> None:
        table = model.__tablename__
        with self.sessions.begin() as session:
            if self.dry_run:
                n = session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
            else:
                stmt = delete(model).where(*conditions).execution_options(synchronize_session=False)
                n = session.execute(stmt).rowcount or 0  # type: ignore[attr-defined]
        self.report.add(klass, table, n)

    def visitor_passes(self) -> None:
        """Visitor passes whose validity ended long enough ago."""
        self._delete_rows("visitor_passes", VisitorPass, VisitorPass.valid_to < self.cut.at("visitor_passes"))

    def alerts(self) -> None:
        """Alerts closed long enough ago, and everything of theirs; tasks and reports of their own age."""
        before = self.cut.at("alerts")
        with self.sessions() as session:
            ids = list(
                session.scalars(
                    select(AlertRecord.id).where(AlertRecord.closed_at.is_not(None), AlertRecord.closed_at < before)
                )
            )
        for start in range(0, max(len(ids), 1), 500):
            chunk = ids[start : start + 500]
            self._delete_rows("alerts", AlertStep, AlertStep.alert_id.in_(chunk))
            self._delete_rows("alerts", Task, Task.alert_id.in_(chunk))
            self._delete_rows("alerts", ResidentReport, ResidentReport.alert_id.in_(chunk))
            self._delete_rows("alerts", NotifyDelivery, NotifyDelivery.alert_id.in_(chunk))
            self._delete_rows("alerts", NotifyNotice, NotifyNotice.alert_id.in_(chunk))
            self._delete_rows("alerts", AlertRecord, AlertRecord.id.in_(chunk))
        self._delete_rows("alerts", Task, Task.alert_id.is_(None), Task.closed_at.is_not(None), Task.closed_at < before)
        self._delete_rows(
            "alerts", ResidentReport, ResidentReport.alert_id.is_(None), ResidentReport.created_at < before
        )
        # the class counts alerts; the other tables are in the per-table counts
        self.report.classes["alerts"] = self.report.tables.get("alert", 0)

    def cases(self) -> None:
        """Cases closed long enough ago, with their pins and notes."""
        before = self.cut.at("cases")
        with self.sessions() as session:
            ids = list(session.scalars(select(Case.id).where(Case.status == "closed", Case.closed_at < before)))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self._delete_rows("cases", CasePin, CasePin.case_id.in_(chunk))
            self._delete_rows("cases", CaseNote, CaseNote.case_id.in_(chunk))
            self._delete_rows("cases", Case, Case.id.in_(chunk))
        self.report.classes["cases"] = self.report.tables.get("case_file", 0)

    def audit_log(self) -> None:
        """Audit rows older than their retention (under the floor the delete trigger honours)."""
        before = self.cut.at("audit")
        with self.sessions.begin() as session:
            if self.dry_run:
                n = session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.at < before)) or 0
            else:
                session.add(AuditPurgeFloor(id=1, before=before))
                session.flush()
                n = session.execute(delete(AuditEntry).where(AuditEntry.at < before)).rowcount or 0  # type: ignore[attr-defined]
                session.execute(delete(AuditPurgeFloor))
        self.report.add("audit", "audit_log", n)


def purge(stores: Stores, now_ms: int, *, dry_run: bool = False, principal: Principal = SYSTEM) -> PurgeReport:
    """Apply every retention period at now; a real purge is audited with its counts."""
    report = Purge(stores, now_ms, dry_run=dry_run).run()
    if not dry_run:
        Auditor(stores.sessions).record(
            principal,
            "purge",
            target="retention",
            reason=json.dumps({"classes": report.classes, "partitions": report.partitions}, ensure_ascii=False),
            community=None,
        )
    log.info("purge%s: %s", " (dry run)" if dry_run else "", report.classes)
    return report


def due_day(settings: Settings, now_ms: int) -> dt.date | None:
    """Today (local) once the nightly purge's time has passed, else None."""
    local = ms_to_utc(now_ms).astimezone(SHANGHAI)
    hour, minute = (int(x) for x in settings.purge_daily_at.split(":"))
    return local.date() if (local.hour, local.minute) >= (hour, minute) else None


def run_nightly_purge(stores: Stores, now_ms: int) -> PurgeReport | None:
    """The worker's nightly purge: once per local day across every worker (a Redis lock, then a
    done mark); the report when this call ran it."""
    settings = stores.settings
    day = due_day(settings, now_ms) if settings.purge_daily_enabled else None
    if day is None:
        return None
    prefix = f"{stores.keys.prefix}:purge"
    done = f"{prefix}:done:{day.isoformat()}"
    if stores.redis.exists(done):
        return None
    owner = f"{socket.gethostname()}-{os.getpid()}"
    if not stores.redis.set(f"{prefix}:lock:{day.isoformat()}", owner, nx=True, px=LOCK_MS):
        return None  # another worker is on it
    try:
        report = purge(stores, now_ms)
    except Exception:  # the worker must go on; another worker retries once the lock has expired
        log.exception("nightly purge failed; retried in %d min", LOCK_MS // 60_000)
        return None
    stores.redis.set(done, owner, px=DONE_MS)
    return report
