"""Whether a day's data is in, for its daily report (issue #21).

A daily report is made once the analytics worker's frontier (the latest event time it processed,
``Keys.frontier``) has passed the end of the day **and** the consumer group holds no entry of that
day still to work off. The frontier alone is not enough: several workers share the group, and while
one works through the backlog's later entries (and moves the frontier past midnight) another may
still hold an earlier batch of the day, pending. So the group's oldest unacknowledged entry (pending
with any consumer, or not delivered yet) is read too: when its event time is before the day's end,
the day is not complete yet. Producers send in time order (a gateway's backlog, the simulator's
backfill), so the entries after it are later still; one that is not is a late event, which the
re-check picks up (``reports/scheduler.py``).

A community with no event after the day's end (quiet devices, a gateway down, or the simulator not
started yet) would never pass that test: its report is made ``report_daily_wait_minutes`` after it
was first found due, once the group has nothing left to work off, and says how far its data runs.

The figures a daily report is made from are counted by ``day_counts`` (gate passages, alerts,
patrol rounds, visitor passes: the tables the report reads per day); the scheduler keeps them beside
the PDF and makes the report again when they grow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.models import AlertRecord
from core.timefmt import utc_to_ms
from gates.models import GateHourly, PatrolRound, VisitorPass
from reports.model import Coverage, local_midnight_utc
from store.events import EventLog
from store.stores import Stores

DUE_KEEP_S = 4 * 24 * 3600  # how long the first-found-due time of a (community, day) is kept
COUNTS = ("gate_passages", "alerts", "patrol_rounds", "visitor_passes")


@dataclass(frozen=True)
class Backlog:
    """The consumer group's oldest entry not worked off: its event time (None when there is none, or
    when it cannot be read: a poison entry, dead-lettered soon, holds no data)."""

    idle: bool  # nothing left to work off
    head_ms: int | None = None


def day_end_ms(day: dt.date) -> int:
    """The first instant after a local day (00:00 Asia/Shanghai of the next day), epoch ms."""
    return utc_to_ms(local_midnight_utc(day + dt.timedelta(days=1)))


def judge(frontier: int | None, backlog: Backlog, end_ms: int, *, waited: bool) -> Coverage | None:
    """The coverage a daily report would be made with now, or None when it must wait.

    Complete: the frontier passed the day's end and nothing of the day is left to work off.
    Otherwise, once ``waited`` (the quiet-community wait is over) and the group is idle: the data as
    far as it runs."""
    day_left = backlog.head_ms is not None and backlog.head_ms < end_ms
    if frontier is not None and frontier >= end_ms and not day_left:
        return Coverage(end_ms - 1, complete=True)
    if waited and backlog.idle:
        return Coverage(min(frontier, end_ms - 1) if frontier is not None else None, complete=False)
    return None


def backlog(events: EventLog, community: str) -> Backlog:
    """The group's oldest entry still to work off, as far as a daily report cares."""
    head = events.oldest_unacked(community)
    if head is None:
        return Backlog(idle=True)
    try:
        return Backlog(idle=False, head_ms=int((head.doc or {})["ts"]))
    except (KeyError, TypeError, ValueError):
        return Backlog(idle=False)


def frontiers(stores: Stores, communities: list[str]) -> dict[str, int | None]:
    """Each community's frontier (one pipelined round trip)."""
    pipe = stores.redis.pipeline(transaction=False)
    for community in communities:
        pipe.zscore(stores.keys.frontier(community), "events")
    return {c: int(v) if v is not None else None for c, v in zip(communities, pipe.execute(), strict=True)}


def due_since(stores: Stores, communities: list[str], day: dt.date, now_ms: int) -> dict[str, int]:
    """When each community's report of day was first found due (set now for those seen the first time)."""
    pipe = stores.redis.pipeline(transaction=False)
    for community in communities:
        key = stores.keys.daily_due_since(community, day.isoformat())
        pipe.set(key, now_ms, nx=True, ex=DUE_KEEP_S)
        pipe.get(key)
    replies = pipe.execute()
    return {c: int(replies[2 * i + 1] or now_ms) for i, c in enumerate(communities)}


def coverages(
    stores: Stores, communities: list[str], day: dt.date, now_ms: int, *, wait_ms: int
) -> dict[str, Coverage]:
    """The communities whose report of day can be made now, with the coverage it would have."""
    if not communities:
        return {}
    end = day_end_ms(day)
    events = EventLog(stores.redis, stores.keys)
    front = frontiers(stores, communities)
    since = due_since(stores, communities, day, now_ms) if wait_ms else {}
    ready: dict[str, Coverage] = {}
    for community in communities:
        waited = now_ms - since.get(community, now_ms) >= wait_ms
        frontier = front[community]
        if not waited and (frontier is None or frontier < end):
            continue  # nothing to ask the stream yet
        found = judge(frontier, backlog(events, community), end, waited=waited)
        if found is not None:
            ready[community] = found
    return ready


def day_counts(
    session: Session, communities: Iterable[str], days: Iterable[dt.date]
) -> dict[tuple[str, dt.date], dict[str, int]]:
    """What the daily reports of these communities and days are made from, counted: gate passages,
    alerts detected, patrol rounds started, visitor passes applied for (a few grouped queries)."""
    wanted = sorted(set(communities))
    out: dict[tuple[str, dt.date], dict[str, int]] = {}

    def add(community: str, day: dt.date, what: str, n: int | None) -> None:
        out.setdefault((community, day), dict.fromkeys(COUNTS, 0))[what] = int(n or 0)

    days = sorted(set(days))
    if not wanted or not days:
        return out
    for community in wanted:
        for day in days:
            add(community, day, COUNTS[0], 0)
    gates = (
        select(GateHourly.community_id, GateHourly.day, func.sum(GateHourly.count))
        .where(GateHourly.community_id.in_(wanted), GateHourly.day.in_(days))
        .group_by(GateHourly.community_id, GateHourly.day)
    )
    for community, day, n in session.execute(gates):
        add(community, day, "gate_passages", n)
    timed = (
        ("alerts", AlertRecord.community_id, AlertRecord.detected_at),
        ("patrol_rounds", PatrolRound.community_id, PatrolRound.round_start),
        ("visitor_passes", VisitorPass.community_id, VisitorPass.created_at),
    )
    for day in days:
        start, end = local_midnight_utc(day), local_midnight_utc(day + dt.timedelta(days=1))
        for what, community_col, at in timed:
            query = (
                select(community_col, func.count())
                .where(community_col.in_(wanted), at >= start, at < end)
                .group_by(community_col)
            )
            for community, n in session.execute(query):
                add(community, day, what, n)
    return out
