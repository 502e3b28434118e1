"""Patrol routes (电子巡更): the one check of a route, used by the import and the editor alike.

A route is a name, a schedule (every ``interval_minutes`` from ``start_hour`` to ``end_hour`` local
time, checked in within ``tolerance_minutes``) and its checkpoint devices in order, each expected
``offset_minutes`` after the round's start. ``route_problems`` names every problem of a draft with a
translation key (the import prints it in English per row, the editor in the page's language);
``write_route`` replaces the route and its checkpoints. docs/gates.md#electronic-patrol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.i18n import t
from registry.models import Device, PatrolCheckpoint, PatrolRoute

MIN_INTERVAL, MAX_INTERVAL = 10, 1440  # minutes between round starts
MAX_TOLERANCE = 240
MAX_STOPS = 100

# the columns of a routes file (and the fields of the editor's errors)
COLUMNS = (
    "route",
    "name",
    "interval_minutes",
    "start_hour",
    "end_hour",
    "tolerance_minutes",
    "seq",
    "checkpoint",
    "offset_minutes",
)
ROUTE_FIELDS = COLUMNS[:6]


@dataclass
class Stop:
    """One checkpoint of a draft route (``row``: its row in a file, 0 in the editor)."""

    device: str | None
    seq: int | None = None
    offset: int | None = None
    row: int = 0


@dataclass
class RouteDraft:
    """A route as an integrator or the editor gives it; nothing checked yet."""

    id: str | None
    name: str | None
    interval: int | None
    start_hour: int | None
    end_hour: int | None
    tolerance: int | None
    stops: list[Stop] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # route field → the file row that gave it


@dataclass(frozen=True)
class Problem:
    """One problem of a draft: the field (a column of the file), a translation key and its values."""

    field: str
    key: str
    values: dict[str, Any]
    row: int = 0

    def text(self, lang: str) -> str:
        """The sentence in lang."""
        return t(self.key, lang, **self.values)


def spread_offsets(interval: int, count: int) -> list[int]:
    """Offsets spread evenly over a round: checkpoint i of n at i × interval / n minutes."""
    return [i * interval // count for i in range(count)]


def checkpoint_devices(session: Session, community: str) -> dict[str, str]:
    """Every device of the community that may be a checkpoint or not: id → type."""
    rows = session.execute(select(Device.id, Device.type).where(Device.community_id == community))
    return dict(rows.tuples().all())


def route_problems(
    draft: RouteDraft, devices: dict[str, str], *, owner: str | None = None, community: str = ""
) -> list[Problem]:
    """Every problem of a draft, in the order of its fields and stops (empty: it may be saved).

    ``devices``: the community's device id → type; ``owner``: the community of an existing route
    with this id (None when new)."""
    problems: list[Problem] = []

    def fail(name: str, key: str, row: int | None = None, **values: Any) -> None:
        problems.append(Problem(name, key, values, draft.rows.get(name, 0) if row is None else row))

    if not draft.id:
        fail("route", "route.error.required")
    elif owner is not None and owner != community:
        fail("route", "route.error.other_community", other=owner)
    if not (draft.name or "").strip():
        fail("name", "route.error.required")
    elif len(draft.name or "") > 100:
        fail("name", "route.error.too_long", n=100)
    bounds = {
        "interval_minutes": (draft.interval, MIN_INTERVAL, MAX_INTERVAL),
        "start_hour": (draft.start_hour, 0, 23),
        "end_hour": (draft.end_hour, 0, 23),
        "tolerance_minutes": (draft.tolerance, 1, MAX_TOLERANCE),
    }
    for name, (value, low, high) in bounds.items():
        if value is None:
            fail(name, "route.error.required")
        elif not low <= value <= high:
            fail(name, "route.error.range", low=low, high=high)
    interval, tolerance = draft.interval, draft.tolerance
    if interval and tolerance and interval >= MIN_INTERVAL and 2 * tolerance > interval:
        fail("tolerance_minutes", "route.error.tolerance", half=interval // 2)
    problems += stop_problems(draft, devices)
    return problems


def stop_problems(draft: RouteDraft, devices: dict[str, str]) -> list[Problem]:
    """The problems of a draft's checkpoints: unknown devices, seq, offsets."""
    problems: list[Problem] = []
    stops = draft.stops
    if not stops:
        return [Problem("checkpoint", "route.error.no_checkpoints", {}, draft.rows.get("route", 0))]
    if len(stops) > MAX_STOPS:
        problems.append(Problem("checkpoint", "route.error.too_many", {"n": MAX_STOPS}, stops[MAX_STOPS].row))
    seen: dict[int, int] = {}
    for stop in stops:
        if not stop.device:
            problems.append(Problem("checkpoint", "route.error.required", {}, stop.row))
        elif stop.device not in devices:
            problems.append(Problem("checkpoint", "route.error.unknown_checkpoint", {"device": stop.device}, stop.row))
        elif devices[stop.device] != "checkpoint":
            kind: dict[str, Any] = {"device": stop.device, "type": devices[stop.device]}
            problems.append(Problem("checkpoint", "route.error.not_checkpoint", kind, stop.row))
        if stop.seq is not None:
            if stop.seq < 1:
                problems.append(Problem("seq", "route.error.range", {"low": 1, "high": MAX_STOPS}, stop.row))
            elif stop.seq in seen:
                problems.append(Problem("seq", "route.error.duplicate_seq", {"seq": stop.seq}, stop.row))
            seen.setdefault(stop.seq, stop.row)
    if any(s.seq is None for s in stops) and any(s.seq is not None for s in stops):
        first = next(s for s in stops if s.seq is None)
        problems.append(Problem("seq", "route.error.all_or_none", {}, first.row))
    given = [s for s in ordered(stops) if s.offset is not None]
    if given and len(given) != len(stops):
        first = next(s for s in stops if s.offset is None)
        problems.append(Problem("offset_minutes", "route.error.all_or_none", {}, first.row))
    previous: int | None = None
    for stop in given:
        assert stop.offset is not None
        if stop.offset < 0:
            problems.append(Problem("offset_minutes", "route.error.offset_negative", {}, stop.row))
        elif previous is not None and stop.offset <= previous:
            order: dict[str, Any] = {"offset": stop.offset, "previous": previous}
            problems.append(Problem("offset_minutes", "route.error.offset_order", order, stop.row))
        elif draft.interval and stop.offset >= draft.interval:
            problems.append(Problem("offset_minutes", "route.error.offset_interval", {"n": draft.interval}, stop.row))
        previous = stop.offset if previous is None else max(previous, stop.offset)
    return problems


def ordered(stops: list[Stop]) -> list[Stop]:
    """The stops by seq (as given when they carry none)."""
    if all(s.seq is not None for s in stops):
        return sorted(stops, key=lambda s: s.seq or 0)
    return list(stops)


def checkpoints_of(draft: RouteDraft) -> list[tuple[int, str, int]]:
    """(seq, device, offset) of a checked draft: seq 1… when not given, offsets spread when not given."""
    stops = ordered(draft.stops)
    offsets = (
        [int(s.offset or 0) for s in stops]
        if all(s.offset is not None for s in stops)
        else spread_offsets(int(draft.interval or MIN_INTERVAL), len(stops))
    )
    return [(s.seq or i + 1, str(s.device), offsets[i]) for i, s in enumerate(stops)]


def route_owner(session: Session, route_id: str | None) -> str | None:
    """The community of an existing route, or None."""
    if not route_id:
        return None
    return session.scalar(select(PatrolRoute.community_id).where(PatrolRoute.id == route_id))


def write_route(session: Session, community: str, draft: RouteDraft) -> PatrolRoute:
    """Create or replace a checked route with its checkpoints (in the caller's transaction)."""
    assert draft.id and draft.name
    route = session.get(PatrolRoute, draft.id) or PatrolRoute(id=draft.id, community_id=community)
    route.name = draft.name.strip()
    route.interval_minutes = int(draft.interval or 0)
    route.start_hour, route.end_hour = int(draft.start_hour or 0), int(draft.end_hour or 0)
    route.tolerance_minutes = int(draft.tolerance or 0)
    session.add(route)
    session.flush()
    session.execute(delete(PatrolCheckpoint).where(PatrolCheckpoint.route_id == draft.id))
    session.add_all(
        PatrolCheckpoint(route_id=draft.id, seq=seq, device_id=device, offset_minutes=offset)
        for seq, device, offset in checkpoints_of(draft)
    )
    session.flush()
    session.expire(route, ["checkpoints"])
    return route


def route_rows(session: Session, community: str) -> list[dict[str, Any]]:
    """The community's routes as the rows of a routes file (one per checkpoint, in order)."""
    rows = []
    for route in session.scalars(
        select(PatrolRoute).where(PatrolRoute.community_id == community).order_by(PatrolRoute.id)
    ):
        for c in route.checkpoints:
            rows.append(
                {
                    "route": route.id,
                    "name": route.name,
                    "interval_minutes": route.interval_minutes,
                    "start_hour": route.start_hour,
                    "end_hour": route.end_hour,
                    "tolerance_minutes": route.tolerance_minutes,
                    "seq": c.seq,
                    "checkpoint": c.device_id,
                    "offset_minutes": c.offset_minutes,
                }
            )
    return rows
