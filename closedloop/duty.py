"""Who is on duty (在岗): a guard's shifts of the roster, and their check-in / check-out on the tasks
page with a handover note; and the one rule that says whether a guard may be offered a task.

A guard is on duty inside a shift of the roster, or after checking in (until they check out, or
for SANDTABLE_DUTY_CHECKIN_HOURS at most). A check-out inside a shift ends that shift's duty early.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from auth.principal import Principal
from auth.service import Auditor
from closedloop.duty_models import DutyCheck, DutyShift
from core.clock import Clock
from core.errors import InvalidInput
from core.i18n import t
from core.timefmt import SHANGHAI, aware, ms_to_utc, parse_utc
from registry.models import Community, Guard
from store.stores import Stores

# why a guard is not offered a task, in the order they are judged (the first that applies is shown)
REASONS = ("retired", "no_account", "off_duty", "wanted_list", "busy", "no_position", "asked")
# a guard unavailable for one of these is refused even when the police pick them by hand; a busy
# guard, or one whose wearable is silent (reachable by radio), may still be sent on purpose
REFUSING = frozenset({"retired", "no_account", "off_duty", "wanted_list"})
LOOKBACK = dt.timedelta(days=7)  # check-ins and check-outs older than this no longer decide anything
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
ROSTER_COLUMNS = ("guard", "start", "end")
DEMO_SOURCE = "demo"  # the demo's generated rotation (simulator.demo_roster): an imported shift replaces it


@dataclass(frozen=True)
class Check:
    """A guard's last check-in or check-out."""

    kind: str
    at: dt.datetime


@dataclass(frozen=True)
class DutyState:
    """Whether a guard is on duty at one moment, and why: "checkin", "shift" or "" (off duty)."""

    how: str
    until: dt.datetime | None = None  # the shift's end, or when the check-in lapses

    @property
    def on(self) -> bool:
        """True when on duty."""
        return bool(self.how)


def duty_at(
    at: dt.datetime, shifts: Iterable[tuple[dt.datetime, dt.datetime]], last: Check | None, checkin_hours: float
) -> DutyState:
    """The rule of duty for one guard at one moment (pure: the shifts around it and the last check)."""
    lapse = dt.timedelta(hours=checkin_hours)
    if last is not None and last.kind == "in" and at - last.at < lapse:
        return DutyState("checkin", last.at + lapse)
    shift = next(((s, e) for s, e in shifts if s <= at < e), None)
    if shift is None or (last is not None and last.kind == "out" and last.at >= shift[0]):
        return DutyState("")
    return DutyState("shift", shift[1])


def unavailable_reason(
    *,
    in_service: bool,
    has_account: bool,
    on_duty: bool,
    may_see: bool,
    busy: bool,
    has_position: bool,
    asked: bool = False,
) -> str | None:
    """Why a guard may not be offered a task now (a key of REASONS), or None when they may."""
    failing = {
        "retired": not in_service,
        "no_account": not has_account,
        "off_duty": not on_duty,
        "wanted_list": not may_see,
        "busy": busy,
        "no_position": not has_position,
        "asked": asked,
    }
    return next((reason for reason in REASONS if failing[reason]), None)


def duty_of(
    session: Session, community: str, at: dt.datetime, checkin_hours: float, guard: str | None = None
) -> dict[str, DutyState]:
    """guard id → their duty at ``at``, for every guard of the community (or the one given)."""
    shifts: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    query = select(DutyShift.guard_id, DutyShift.start_at, DutyShift.end_at).where(
        DutyShift.community_id == community, DutyShift.end_at > at, DutyShift.start_at <= at
    )
    checks = select(DutyCheck.guard_id, DutyCheck.kind, DutyCheck.at).where(
        DutyCheck.community_id == community, DutyCheck.at <= at, DutyCheck.at > at - LOOKBACK
    )
    guards = select(Guard.id).where(Guard.community_id == community)
    if guard is not None:
        query, checks, guards = (
            query.where(DutyShift.guard_id == guard),
            checks.where(DutyCheck.guard_id == guard),
            guards.where(Guard.id == guard),
        )
    for gid, start, end in session.execute(query):
        shifts.setdefault(gid, []).append((aware(start), aware(end)))
    last: dict[str, Check] = {}
    for gid, kind, when in session.execute(checks.order_by(DutyCheck.at, DutyCheck.id)):
        last[gid] = Check(kind, aware(when))
    return {gid: duty_at(at, shifts.get(gid, []), last.get(gid), checkin_hours) for gid in session.scalars(guards)}


class Duty:
    """Check-in, check-out and the handover notes of the tasks page, at the loop's clock."""

    def __init__(self, stores: Stores, clock: Clock, auditor: Auditor) -> None:
        self.stores = stores
        self.clock = clock
        self.auditor = auditor

    def _guard(self, session: Session, principal: Principal) -> Guard:
        guard = session.get(Guard, principal.guard) if principal.guard else None
        if guard is None:
            raise InvalidInput(key="duty.error.no_guard")
        return guard

    def state(self, principal: Principal) -> DutyState:
        """The signed-in guard's duty now."""
        now = ms_to_utc(self.clock.now_ms())
        with self.stores.sessions() as session:
            guard = self._guard(session, principal)
            return duty_of(session, guard.community_id, now, self.stores.settings.duty_checkin_hours, guard.id)[
                guard.id
            ]

    def check(self, principal: Principal, kind: str, note: str = "") -> DutyState:
        """Check the signed-in guard in ("in") or out ("out", with the handover note); audited."""
        if kind not in ("in", "out"):
            raise InvalidInput(key="error.unknown_action", action=kind)
        note = note.strip()[:2000] if kind == "out" else ""
        now = ms_to_utc(self.clock.now_ms())
        hours = self.stores.settings.duty_checkin_hours
        with self.stores.sessions.begin() as session:
            guard = self._guard(session, principal)
            current = duty_of(session, guard.community_id, now, hours, guard.id)[guard.id]
            if kind == "in" and current.on:
                raise InvalidInput(key="duty.error.on_duty")
            if kind == "out" and not current.on:
                raise InvalidInput(key="duty.error.off_duty")
            session.add(
                DutyCheck(
                    community_id=guard.community_id,
                    guard_id=guard.id,
                    grid_id=guard.grid_id,
                    kind=kind,
                    at=now,
                    actor=principal.id,
                    note=note,
                )
            )
            community = guard.community_id
            session.flush()
            after = duty_of(session, community, now + dt.timedelta(milliseconds=1), hours, guard.id)[guard.id]
        self.auditor.record(
            principal, f"duty.check_{kind}", target=f"guard:{principal.guard}", reason=note[:500], community=community
        )
        return after

    def handovers(self, principal: Principal, limit: int = 5) -> list[dict[str, Any]]:
        """The last handover notes of the guard's grid (and the community's guards without a grid),
        or of the whole community for a guard without a grid; newest first."""
        with self.stores.sessions() as session:
            guard = self._guard(session, principal)
            query = (
                select(DutyCheck, Guard.name, Guard.kind)
                .join(Guard, Guard.id == DutyCheck.guard_id)
                .where(DutyCheck.community_id == guard.community_id, DutyCheck.kind == "out", DutyCheck.note != "")
            )
            if guard.grid_id is not None:
                query = query.where((DutyCheck.grid_id == guard.grid_id) | DutyCheck.grid_id.is_(None))
            rows = session.execute(query.order_by(DutyCheck.at.desc(), DutyCheck.id.desc()).limit(limit)).all()
            return [{"at": aware(c.at), "name": name, "kind": kind, "note": c.note} for c, name, kind in rows]


# --- the roster file ---------------------------------------------------------------------------
@dataclass
class RosterRow:
    """One row of a roster file, read (or with the reasons it cannot be)."""

    line: int
    guard: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    note: str = ""
    reasons: list[str] = field(default_factory=list)


def parse_time(text: str) -> dt.datetime:
    """RFC 3339 (with an offset), or ``YYYY-MM-DD HH:MM`` in Beijing time, as an aware UTC datetime."""
    text = text.strip()
    if LOCAL_TIME.match(text):
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(dt.UTC)
    if "T" not in text.upper():
        raise ValueError(text)
    return parse_utc(text)


def read_roster(text: str) -> list[RosterRow]:
    """The rows of a roster CSV (columns guard, start, end, optional note), each with its reasons."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in ROSTER_COLUMNS if c not in columns]
    if missing:
        raise InvalidInput(key="roster.err.columns", missing=", ".join(missing))
    reader.fieldnames = columns
    rows: list[RosterRow] = []
    for record in reader:
        row = RosterRow(line=reader.line_num, guard=(record.get("guard") or "").strip())
        row.note = (record.get("note") or "").strip()[:200]
        for column in ("start", "end"):
            try:
                setattr(row, column, parse_time(record.get(column) or ""))
            except ValueError:
                row.reasons.append(t("roster.err.time", "en", field=column, value=(record.get(column) or "")[:40]))
        if row.start is not None and row.end is not None and row.end <= row.start:
            row.reasons.append(t("roster.err.order", "en"))
        rows.append(row)
    if not rows:
        raise InvalidInput(key="roster.err.empty")
    return rows


def check_roster(session: Session, community: str, rows: list[RosterRow]) -> list[RosterRow]:
    """Add to each row what is wrong with it against the registry, the file and the stored shifts
    (the demo's rotation aside); returns the rows that have reasons (the import is all-or-nothing)."""
    if session.get(Community, community) is None:
        raise InvalidInput(key="roster.err.community", community=community)
    ids = {r.guard for r in rows}
    guards = {g.id: g for g in session.scalars(select(Guard).where(Guard.id.in_(ids)))}
    for row in rows:
        found = guards.get(row.guard)
        if found is None:
            row.reasons.append(t("roster.err.unknown_guard", "en", guard=row.guard))
        elif found.community_id != community:
            row.reasons.append(t("roster.err.other_community", "en", guard=row.guard, community=found.community_id))
    timed = [r for r in rows if r.start is not None and r.end is not None and r.guard in guards]
    for i, row in enumerate(timed):
        for other in timed[:i]:
            if other.guard == row.guard and _overlap(row, other.start, other.end):
                row.reasons.append(t("roster.err.overlap_file", "en", line=other.line))
    for row in timed:
        stored = session.execute(
            select(DutyShift.start_at, DutyShift.end_at).where(
                DutyShift.guard_id == row.guard, DutyShift.source != DEMO_SOURCE, overlapping(row)
            )
        ).first()
        if stored is not None:
            row.reasons.append(
                t(
                    "roster.err.overlap_stored",
                    "en",
                    start=aware(stored[0]).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                    end=aware(stored[1]).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                )
            )
    return [r for r in rows if r.reasons]


def overlapping(row: RosterRow) -> ColumnElement[bool]:
    """SQL: a stored shift overlaps the row's [start, end)."""
    return and_(DutyShift.start_at < row.end, DutyShift.end_at > row.start)


def _overlap(row: RosterRow, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    assert row.start is not None and row.end is not None and start is not None and end is not None
    return row.start < end and start < row.end


def import_roster(
    session: Session, community: str, text: str, *, dry_run: bool, source: str = "import"
) -> tuple[list[RosterRow], list[RosterRow]]:
    """Read, check and (unless dry_run or a row is bad) store a roster: (rows, bad rows)."""
    rows = read_roster(text)
    bad = check_roster(session, community, rows)
    if not bad and not dry_run:
        for row in rows:
            session.execute(  # an imported shift replaces the demo roster's shifts it overlaps
                delete(DutyShift).where(
                    DutyShift.guard_id == row.guard, DutyShift.source == DEMO_SOURCE, overlapping(row)
                )
            )
            session.add(
                DutyShift(
                    community_id=community,
                    guard_id=row.guard,
                    start_at=row.start,
                    end_at=row.end,
                    note=row.note,
                    source=source,
                )
            )
        session.flush()
    return rows, bad
