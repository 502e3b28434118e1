"""The demo's duty roster: three teams, each on duty 16 hours a day, so that two teams (two thirds
of each community's guards) are on duty at every hour, day and night.

Team k of a community is its guards at positions k, k+3, k+6, … (by id), and its shift starts at
TEAM_START_HOUR[k] Beijing time: 08:00–24:00, 16:00–08:00 and 00:00–16:00. The simulator walks a
guard's wearable only while their team is on duty (``simulator.generate``), and stores the shifts
ahead of its clock as it runs (``extend_demo_roster``), so a demo left running for days keeps its
guards on duty; an imported shift of a guard wins over the demo's (no overlapping shift is added).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from closedloop.duty import DEMO_SOURCE
from closedloop.duty_models import DutyShift
from core.timefmt import SHANGHAI, aware
from registry.models import Guard

TEAMS = 3
SHIFT_HOURS = 16
TEAM_START_HOUR = (8, 16, 0)


def team_of(position: int) -> int:
    """The team of the guard at this position among their community's guards (sorted by id)."""
    return position % TEAMS


def team_on_duty(team: int, local_hour: float) -> bool:
    """True when the team is on duty at this hour of the day, Beijing time."""
    return (local_hour - TEAM_START_HOUR[team]) % 24 < SHIFT_HOURS


def demo_shifts(guards: list[str], start: dt.datetime, end: dt.datetime) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(guard, start, end) of every demo shift that overlaps [start, end); guards sorted by id."""
    first = start.astimezone(SHANGHAI).date() - dt.timedelta(days=1)
    days = (end.astimezone(SHANGHAI).date() - first).days + 1
    out: list[tuple[str, dt.datetime, dt.datetime]] = []
    for position, guard in enumerate(guards):
        hour = TEAM_START_HOUR[team_of(position)]
        for n in range(days):
            begin = dt.datetime.combine(first + dt.timedelta(days=n), dt.time(hour), SHANGHAI).astimezone(dt.UTC)
            finish = begin + dt.timedelta(hours=SHIFT_HOURS)
            if finish > start and begin < end:
                out.append((guard, begin, finish))
    return out


def extend_demo_roster(session: Session, community: str, start: dt.datetime, end: dt.datetime) -> int:
    """Store the demo shifts of [start, end) that are not stored yet (and overlap no stored shift
    of the guard); returns how many were added."""
    guards = list(session.scalars(select(Guard.id).where(Guard.community_id == community).order_by(Guard.id)))
    stored: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    margin = dt.timedelta(hours=SHIFT_HOURS + 24)
    for guard, begin, finish in session.execute(
        select(DutyShift.guard_id, DutyShift.start_at, DutyShift.end_at).where(
            DutyShift.community_id == community, DutyShift.end_at > start - margin, DutyShift.start_at < end + margin
        )
    ):
        stored.setdefault(guard, []).append((aware(begin), aware(finish)))
    added = 0
    for guard, begin, finish in demo_shifts(guards, start, end):
        if any(s < finish and begin < e for s, e in stored.get(guard, [])):
            continue
        session.add(
            DutyShift(
                community_id=community,
                guard_id=guard,
                start_at=begin,
                end_at=finish,
                note="演示排班",
                source=DEMO_SOURCE,
            )
        )
        stored.setdefault(guard, []).append((begin, finish))
        added += 1
    session.flush()
    return added
