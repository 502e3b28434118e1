"""The outer ring at the gates, and electronic patrol (电子巡更).

- ``visitor.unapproved`` — at a face gate, someone who is neither a resident nor a visitor with
  an approved pass valid now (an unrecognised face, a resolved identity without a pass, a pass
  outside its window); one alert per gate, repeats counted. A visitor let in whose pass has
  ended and who has not left is flagged too (reason ``overstay``).
- Barriers: a resident's plate or an approved visitor's plate passes; any other plate is kept as a
  capture record (``gate.blacklist`` is the hazards module's).
- Every passage is counted per local hour, kind, direction and category (charts, reports).
- ``patrol.missed`` — a checkpoint of a route's round not checked in within its tolerance of the
  expected time; the round's outcome is recorded (on time, late within tolerance, missed).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.context import RuleContext
from analytics.rules.base import Rule, location_of
from analytics.rules.occupancy import opener, person_of
from core.settings import Settings
from core.timefmt import SHANGHAI, iso_utc, ms_to_utc
from gates.identities import refresh_identities, write_identities
from gates.models import GateCapture, GateHourly, PatrolRound, VisitorPass
from gates.passes import held_passes, latest_started, pass_at, project_all_passes
from ingest.schema import DeviceInfo, Event
from store.sql import dialect_insert

MIN_MS = 60_000
SCHEDULE_AHEAD_MS = 3 * 3_600_000


def resident_of(ctx: RuleContext, data: dict[str, Any]) -> bool:
    """True when the identity at the gate is a registered person of this community."""
    return person_of(ctx.facts, opener(data)) is not None


def passes_of(ctx: RuleContext, field: str, value: str) -> list[dict[str, Any]]:
    """The approved passes held for an identity or plate (gates/passes.py)."""
    return held_passes(ctx.redis.hget(ctx.keys.rule_state(ctx.community, "passes"), f"{field}:{value}"))


def valid_pass(ctx: RuleContext, field: str, value: str, at_ms: int) -> tuple[dict[str, Any] | None, str]:
    """The approved pass for an identity or plate valid at at_ms, else None and why."""
    return pass_at(passes_of(ctx, field, value), at_ms)


def count_passage(ctx: RuleContext, ts: int, kind: str, direction: str, category: str) -> None:
    """Count one passage in its local hour (coalesced per batch, written by the worker)."""
    local = ms_to_utc(ts).astimezone(SHANGHAI)
    ctx.count(("gate_hourly", local.date(), local.hour, kind, direction, category))


def write_gate_counts(session: Session, community: str, counters: dict[tuple[Any, ...], int]) -> None:
    """Add a batch's passages to the hourly table: one atomic upsert for the batch.

    INSERT … ON CONFLICT DO UPDATE SET count = count + excluded.count, so that workers counting the
    same hour at once (several processes in the consumer group, PostgreSQL) neither collide on the
    unique key nor lose an addition.
    """
    fields = ("day", "hour", "kind", "direction", "category")
    hourly = sorted((key[1:], n) for key, n in counters.items() if key[0] == "gate_hourly")  # one lock order
    rows = [{"community_id": community, **dict(zip(fields, key, strict=True)), "count": n} for key, n in hourly]
    if not rows:
        return
    statement = dialect_insert(session, GateHourly)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["community_id", *fields],
            set_={"count": GateHourly.count + statement.excluded["count"]},
        ),
        rows,
    )


class VisitorCheck(Rule):
    """Residents and approved visitors pass the face gates; anyone else is an unapproved visitor."""

    name = "visitor.unapproved"
    events = frozenset({"gate.face"})
    timers = ("overstay",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._checked: dict[str, int] = {}  # community → read time of the facts last compared

    def on_start(self, ctx: RuleContext) -> None:
        """Rebuild the passes and who may pass at the gates (after a lost or flushed Redis)."""
        with ctx.directory.sessions() as session:
            project_all_passes(ctx.redis, ctx.keys, session, ctx.community)
        write_identities(ctx.redis, ctx.keys, ctx.community, ctx.facts)
        self._checked[ctx.community] = ctx.facts.loaded_ms

    def on_sweep(self, ctx: RuleContext) -> None:
        """Re-project who may pass when this process's registry facts were re-read and differ."""
        if self._checked.get(ctx.community) != ctx.facts.loaded_ms:
            refresh_identities(ctx.redis, ctx.keys, ctx.community, ctx.facts)
            self._checked[ctx.community] = ctx.facts.loaded_ms

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        data = event.data
        direction = str(data.get("direction", "in"))
        if resident_of(ctx, data):
            count_passage(ctx, event.ts, "face", direction, "resident")
            return
        found, why = (
            valid_pass(ctx, "id", str(data["id_hash"]), event.ts)
            if data.get("id_hash")
            else (None, "unrecognised_face" if data.get("face_id") else "no_identity")
        )
        if found is not None:
            count_passage(ctx, event.ts, "face", direction, "visitor")
            self._visitor_moved(ctx, found, direction, event.ts, device)
            return
        if direction != "in":
            held = latest_started(passes_of(ctx, "id", str(data["id_hash"])), event.ts) if data.get("id_hash") else None
            if held is not None:
                # a visitor leaving after the window: counted as a visitor, and gone (no overstay)
                count_passage(ctx, event.ts, "face", direction, "visitor")
                self._visitor_moved(ctx, held, direction, event.ts, device)
                return
            count_passage(ctx, event.ts, "face", direction, "unknown")
            return
        count_passage(ctx, event.ts, "face", direction, "unknown")
        ctx.alert(
            self.name,
            severity="medium",
            subject={"device": device.id},
            identity={"device": device.id},
            location=location_of(device),
            grid=device.grid,
            evidence={"reason": why, "seen_at": iso_utc(event.ts), "score": data.get("score")},
        )

    def _visitor_moved(
        self, ctx: RuleContext, found: dict[str, Any], direction: str, ts: int, gate: DeviceInfo
    ) -> None:
        pass_id = str(found["pass"])
        when = ms_to_utc(ts)
        if direction == "in":
            ctx.schedule("overstay", pass_id, int(found["to"]) + 15 * MIN_MS)
            # where an overstay alert points: the gate they came in by, the host household's grid
            ctx.state_set(self.name, pass_id, {"household": found.get("household"), "gate": gate.id})

            def entered(session: Session) -> None:
                visitor = session.get(VisitorPass, pass_id)
                if visitor is not None and visitor.entered_at is None:
                    visitor.entered_at = when
        else:
            ctx.cancel("overstay", pass_id)
            ctx.state_del(self.name, pass_id)

            def entered(session: Session) -> None:
                visitor = session.get(VisitorPass, pass_id)
                if visitor is not None:
                    visitor.left_at = when

        ctx.write_sql(entered)

    def on_timer(self, ctx: RuleContext, timer: str, key: str, due_ms: int) -> None:
        entry = ctx.state_get(self.name, key) or {}
        household = entry.get("household")
        gate = ctx.facts.devices.get(str(entry.get("gate")))
        host = ctx.facts.households.get(str(household), {})
        ctx.alert(
            self.name,
            severity="medium",
            subject={"pass": key, "household": household, "building": host.get("building")},
            identity={"pass": key},
            location=location_of(gate) if gate is not None else None,
            grid=host.get("grid") or (gate.grid if gate is not None else None),
            evidence={"reason": "overstay", "pass": key, "window_ended_at": iso_utc(due_ms - 15 * MIN_MS)},
        )


class VehicleCheck(Rule):
    """Barriers: residents' and approved visitors' plates pass; other plates are captured."""

    name = "gate.vehicle"
    events = frozenset({"gate.vehicle"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        plate = str(event.data.get("plate"))
        direction = str(event.data.get("direction", "in"))
        vehicle = ctx.facts.vehicles.get(plate)
        if vehicle is not None and vehicle["blacklisted"]:
            category = "blacklisted"
        elif vehicle is not None:
            category = "resident"
        elif valid_pass(ctx, "plate", plate, event.ts)[0] is not None:
            category = "visitor"
        else:
            category = "unknown"
        count_passage(ctx, event.ts, "vehicle", direction, category)
        if category in ("unknown", "blacklisted"):
            at = ms_to_utc(event.ts)
            image = str(event.data.get("image", ""))[:200]
            ctx.write_sql(
                lambda session: session.add(
                    GateCapture(
                        community_id=ctx.community,
                        device_id=device.id,
                        at=at,
                        plate=plate,
                        direction=direction,
                        category=category,
                        image=image,
                    )
                )
            )


def round_starts(route: dict[str, Any], around_ms: int) -> list[int]:
    """Start times (ms) of the route's rounds from a day before to a day after around_ms (local schedule)."""
    local = ms_to_utc(around_ms).astimezone(SHANGHAI)
    out = []
    for day_offset in (-1, 0, 1):
        day = (local + dt.timedelta(days=day_offset)).date()
        start = dt.datetime(day.year, day.month, day.day, int(route["start_hour"]), tzinfo=SHANGHAI)
        end_day = day + dt.timedelta(days=1) if route["end_hour"] <= route["start_hour"] else day
        end = dt.datetime(end_day.year, end_day.month, end_day.day, int(route["end_hour"]), tzinfo=SHANGHAI)
        t = start
        while t < end:
            out.append(int(t.timestamp() * 1000))
            t += dt.timedelta(minutes=int(route["interval"]))
    return sorted(set(out))


def checkin_outcome(checkins: list[int], expected_ms: int, tolerance_ms: int) -> str:
    """on_time / late (after the expected time, within the tolerance) / missed."""
    inside = [t for t in checkins if expected_ms - tolerance_ms <= t <= expected_ms + tolerance_ms]
    if not inside:
        return "missed"
    return "on_time" if min(inside) <= expected_ms else "late"


class PatrolMissed(Rule):
    """Electronic patrol: every checkpoint of every round checked in within its tolerance."""

    name = "patrol.missed"
    events = frozenset({"patrol.checkin"})
    timers = ("patrol",)

    def before_batch(self, ctx: RuleContext, events: list[Event]) -> None:
        """Read the batch's checkpoints' recent check-ins at once."""
        ctx.prefetch("patrol", {f"cp:{e.device}" for e in events if e.type == "patrol.checkin"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        key = f"cp:{device.id}"
        recent = [t for t in (ctx.state_get("patrol", key) or []) if event.ts - t < 86_400_000]
        ctx.state_set("patrol", key, sorted([*recent, event.ts])[-48:])
        ctx.state_set("patrol", f"guard:{device.id}", event.data.get("guard"))
        ctx.touch(f"device:{device.id}")

    def on_sweep(self, ctx: RuleContext) -> None:
        """Schedule the checks of the rounds of the next hours (idempotent)."""
        now = ctx.now()
        for route_id, route in ctx.facts.routes.items():
            tolerance = int(route["tolerance"]) * MIN_MS
            for start in round_starts(route, now):
                for seq, _device, offset in route["checkpoints"]:
                    due = start + int(offset) * MIN_MS + tolerance
                    if now < due <= now + SCHEDULE_AHEAD_MS:  # a check that fired is never planned again
                        ctx.schedule("patrol", f"{route_id}|{start}|{seq}", due, only_new=True)

    def on_timer(self, ctx: RuleContext, timer: str, key: str, due_ms: int) -> None:
        route_id, start_text, seq_text = key.split("|")
        route = ctx.facts.routes.get(route_id)
        if route is None:
            return
        seq, start = int(seq_text), int(start_text)
        checkpoint = next((c for c in route["checkpoints"] if c[0] == seq), None)
        if checkpoint is None:
            return
        _, device_id, offset = checkpoint
        tolerance = int(route["tolerance"]) * MIN_MS
        expected = start + int(offset) * MIN_MS
        # the route may have been edited since this check was planned (registry/routes.py, the editor)
        if start not in round_starts(route, start):
            return  # the new schedule holds no round then
        if expected + tolerance > due_ms:
            ctx.schedule("patrol", key, expected + tolerance)  # the checkpoint's window now ends later
            return
        outcome = checkin_outcome(ctx.state_get("patrol", f"cp:{device_id}") or [], expected, tolerance)
        guard = ctx.state_get("patrol", f"guard:{device_id}")
        self._record(ctx, route_id, start, len(route["checkpoints"]), seq, outcome, guard)
        if outcome != "missed":
            return
        device = ctx.facts.devices.get(device_id)
        ctx.alert(
            self.name,
            severity="medium",
            subject={"device": device_id},
            identity={"route": route_id, "checkpoint": device_id},
            location=location_of(device) if device else None,
            grid=device.grid if device else None,
            evidence={
                "route": route_id,
                "checkpoint": device_id,
                "seq": seq,
                "round_start": iso_utc(start),
                "expected_at": iso_utc(expected),
                "tolerance_minutes": int(route["tolerance"]),
            },
        )

    def _record(
        self, ctx: RuleContext, route: str, start: int, expected: int, seq: int, outcome: str, guard: Any
    ) -> None:
        round_start = ms_to_utc(start)

        def write(session: Session) -> None:
            row = session.scalars(
                select(PatrolRound).where(PatrolRound.route_id == route, PatrolRound.round_start == round_start)
            ).first()
            if row is None:
                row = PatrolRound(
                    community_id=ctx.community,
                    route_id=route,
                    round_start=round_start,
                    expected=expected,
                    on_time=0,
                    late=[],
                    missed=[],
                )
                session.add(row)
            if outcome == "on_time":
                row.on_time += 1
            elif outcome == "late":
                row.late = [*row.late, seq]
            else:
                row.missed = [*row.missed, seq]
            if guard and not row.guard_id:
                row.guard_id = str(guard)

        ctx.write_sql(write)
