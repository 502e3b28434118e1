"""The sand-table at any moment (issue #19, interfaces §9): the state of a community at time T.

Built the way event stores do: the newest keyframe at or before T (``memory/keyframes.py``: a
compressed snapshot every ``SANDTABLE_KEYFRAME_MINUTES``), then the archive's events forward to T
— never a replay of a day per request. Keyframes are built lazily by the readers: a read folds the
archive forward from the newest keyframe before T and saves a keyframe at every boundary it crosses
(so the first read after a quiet spell pays once, the next ones fold at most one interval). A late
event (archived with a time before existing keyframes) deletes them from its time on, in the
archiver's transaction (``invalidate``), and the next read rebuilds them.

The rules are the live views': a device is online when heard from within its type's threshold
(``device_offline_hours``, door sensors ``sensor_silent_hours``, as ``store.live.offline_devices``);
its state is what the live projection keeps (the battery of its last heartbeat, the time of its
last door contact, and the door's open/closed); a guard is at their last ``guard.position``, on
duty (``active``) when that is less than ten minutes old (the wall's rule). Alerts open at T come
from the SQL alert history (``AlertRecord`` + ``AlertStep``), with their status then, scoped and
masked by ``alerts.access`` like every alert reader. ``count`` is the alert's count now (repeats
leave no step in the history).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import weakref
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.access import alert_filter, visible_to
from alerts.history import record_view
from alerts.lifecycle import is_open
from alerts.live import AlertStore
from alerts.models import AlertRecord, AlertStep
from auth.principal import Principal
from core.errors import InvalidInput
from core.timefmt import iso_utc, ms_to_utc, utc_to_ms
from ingest.directory import CommunityFacts, Directory
from memory.keyframes import Keyframe
from memory.models import ArchivedEvent
from store import live
from store.stores import Stores

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
GUARD_ACTIVE_MS = 10 * 60_000  # the wall's guards on duty: a position less than ten minutes old
TRAIL_MS = 10 * 60_000  # a guard's trail at T: the positions of the ten minutes before T
SETTLE_MS = 60_000  # keyframes are saved only for boundaries this far in the past (the archive's lag)
FOLD_CHUNK = 5000
_STATE_TYPES = ("device.heartbeat", "door.contact")  # the events whose data the fold reads


@dataclass
class DeviceFold:
    """One device's event-derived state."""

    seen: int
    battery: Any = None
    battery_ts: int | None = None
    door: str | None = None
    door_ts: int | None = None


@dataclass
class Folded:
    """A community's event-derived state after every archived event with ``ts <= at``."""

    at: int
    devices: dict[str, DeviceFold] = field(default_factory=dict)
    guards: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # guard → (lat, lon, ts)

    def apply(self, device: str, kind: str, ts: int, guard: str | None, lat: Any, lon: Any, data: Any) -> None:
        """Fold one archived event in (events in (ts, entry) order: the projection's rules)."""
        found = self.devices.get(device)
        if found is None:
            found = self.devices[device] = DeviceFold(seen=ts)
        elif ts > found.seen:
            found.seen = ts
        if kind == "device.heartbeat" and isinstance(data, dict) and "battery" in data:
            found.battery, found.battery_ts = data["battery"], ts
        elif kind == "door.contact":
            if found.door_ts is None or ts >= found.door_ts:
                found.door_ts = ts
                state = data.get("state") if isinstance(data, dict) else None
                found.door = state if isinstance(state, str) else None
        elif kind == "guard.position" and guard is not None and lat is not None and lon is not None:
            self.guards[guard] = (float(lat), float(lon), ts)

    # --- the keyframe's compact form ---------------------------------------------------------
    def encode(self, at: int) -> bytes:
        """The keyframe at ``at`` of this state: zlib-compressed columnar JSON. Last seen is an offset
        back from ``at``; a battery's or a door's time an offset back from the device's last seen
        (mostly 0: the heartbeat is the last event), sparse columns by index delta."""
        ids = sorted(self.devices)
        rows = [self.devices[d] for d in ids]
        doc: dict[str, Any] = {"ids": ids, "seen": [at - r.seen for r in rows]}
        for name, value_of, time_of in (
            ("battery", lambda r: r.battery, lambda r: r.battery_ts),
            ("door", lambda r: r.door, lambda r: r.door_ts),
        ):
            picked = [(i, r) for i, r in enumerate(rows) if time_of(r) is not None]
            doc[name] = [
                [i - (picked[n - 1][0] if n else 0) for n, (i, _r) in enumerate(picked)],
                [value_of(r) for _i, r in picked],
                [r.seen - time_of(r) for _i, r in picked],
            ]
        doc["guards"] = {g: [lat, lon, at - ts] for g, (lat, lon, ts) in self.guards.items()}
        return zlib.compress(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(), 9)

    @classmethod
    def decode(cls, at: int, blob: bytes) -> Folded:
        """The state a keyframe holds."""
        doc = json.loads(zlib.decompress(blob))
        rows = [DeviceFold(seen=at - back) for back in doc["seen"]]
        for name in ("battery", "door"):
            steps, values, backs = doc[name]
            i = 0
            for step, value, back in zip(steps, values, backs, strict=True):
                i += step
                row = rows[i]
                if name == "battery":
                    row.battery, row.battery_ts = value, row.seen - back
                else:
                    row.door, row.door_ts = value, row.seen - back
        guards = {g: (float(lat), float(lon), at - back) for g, (lat, lon, back) in doc["guards"].items()}
        return cls(at=at, devices=dict(zip(doc["ids"], rows, strict=True)), guards=guards)


def boundary(ms: int, interval_ms: int) -> int:
    """The keyframe boundary at or before ms."""
    return ms - ms % interval_ms


def invalidate(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Delete the keyframes that archived rows arrive too late for (at or after the earliest row's
    time, per community): called by the archiver in the transaction that inserts the rows."""
    earliest: dict[str, int] = {}
    for row in rows:
        community, ts = row["community_id"], int(row["ts"])
        earliest[community] = min(ts, earliest.get(community, ts))
    for community, ts in earliest.items():
        session.execute(delete(Keyframe).where(Keyframe.community_id == community, Keyframe.at >= ts))


def _events(session: Session, community: str, after: int, until: int) -> Iterable[Any]:
    """The archived events with after < ts <= until, in fold order; data only where the fold reads it."""
    data = case((ArchivedEvent.type.in_(_STATE_TYPES), ArchivedEvent.data), else_=None)
    query = (
        select(
            ArchivedEvent.device_id,
            ArchivedEvent.type,
            ArchivedEvent.ts,
            ArchivedEvent.guard_id,
            ArchivedEvent.lat,
            ArchivedEvent.lon,
            data,
        )
        .where(ArchivedEvent.community_id == community, ArchivedEvent.ts > after, ArchivedEvent.ts <= until)
        .order_by(ArchivedEvent.ts, ArchivedEvent.entry)
        .execution_options(yield_per=FOLD_CHUNK)
    )
    return session.execute(query)


def fold_to(stores: Stores, community: str, at: int, *, now_ms: int | None = None) -> Folded:
    """The community's event-derived state at ``at``: the newest keyframe at or before it, then the
    archive forward; a keyframe is saved at each boundary crossed after a change (settled ones only)."""
    interval = stores.settings.keyframe_minutes * 60_000
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    settled = now - SETTLE_MS
    with stores.sessions() as session:
        found = session.execute(
            select(Keyframe.at, Keyframe.data)
            .where(Keyframe.community_id == community, Keyframe.at <= at)
            .order_by(Keyframe.at.desc())
            .limit(1)
        ).first()
        state = Folded.decode(found.at, found.data) if found is not None else Folded(at=-1)
        start = state.at
        saves: list[Frame] = []
        previous: int | None = None  # the time of the last event folded in since the last keyframe
        segment = [start, 0]  # events folded in since the last saved boundary: (after, how many)

        def snapshot(before: int) -> None:
            """Save the state as the keyframe of the last boundary before ``before`` when no event
            folded in since the last keyframe lies after that boundary."""
            nonlocal previous
            edge = boundary(before - 1, interval)
            if previous is not None and previous <= edge and start < edge <= settled:
                saves.append(Frame(segment[0], edge, segment[1], state.encode(edge)))
                segment[:] = [edge, 0]
                previous = None

        for device, kind, ts, guard, lat, lon, data in _events(session, community, start, at):
            snapshot(ts)
            state.apply(device, kind, ts, guard, lat, lon, data if isinstance(data, dict) else None)
            previous = ts
            segment[1] += 1
        snapshot(at + 1)
    if saves:
        _save(stores, community, saves, now)
    state.at = at
    return state


@dataclass(frozen=True)
class Frame:
    """A keyframe to save, with the events folded in since the previous one (after, at]."""

    after: int
    at: int
    events: int
    data: bytes


def _save(stores: Stores, community: str, frames: list[Frame], now: int) -> None:
    """Store keyframes (one already there, from a concurrent reader, is replaced by the same). A late
    event archived while the fold ran (its segment now holds more events than were folded in) stops
    the saving at that keyframe: it and the later ones are left to the next read."""
    with stores.sessions.begin() as session:
        kept = []
        for frame in frames:
            found = session.scalar(
                select(func.count())
                .select_from(ArchivedEvent)
                .where(
                    ArchivedEvent.community_id == community,
                    ArchivedEvent.ts > frame.after,
                    ArchivedEvent.ts <= frame.at,
                )
            )
            if found != frame.events:
                break
            kept.append(frame)
        if not kept:
            return
        session.execute(
            delete(Keyframe).where(Keyframe.community_id == community, Keyframe.at.in_([f.at for f in kept]))
        )
        session.add_all(Keyframe(community_id=community, at=f.at, built=now, data=f.data) for f in kept)


# --- the state at T, as §9 hands it out --------------------------------------------------------
_directories: weakref.WeakKeyDictionary[sessionmaker[Session], Directory] = weakref.WeakKeyDictionary()
_directories_lock = threading.Lock()


def _facts(stores: Stores, community: str) -> CommunityFacts:
    """The registry facts of the community (devices' types and grids, guards' grids), cached per process."""
    with _directories_lock:
        directory = _directories.get(stores.sessions)
        if directory is None:
            directory = _directories[stores.sessions] = Directory(stores.sessions)
    return directory.facts(community)


def check_time(stores: Stores, at_ms: int, now_ms: int) -> None:
    """InvalidInput (field ``at``) for a time in the future or before the events' retention."""
    if at_ms > now_ms:
        raise InvalidInput(key="state.error.future", field="at")
    earliest = now_ms - stores.settings.retain_events_days * DAY_MS
    if at_ms < earliest:
        raise InvalidInput(key="state.error.retention", field="at", earliest=iso_utc(earliest))


def _online(stores: Stores, facts: CommunityFacts, device: str, seen: int, at: int) -> bool:
    info = facts.devices.get(device)
    hours = stores.settings.sensor_silent_hours if info and info.type == "door_sensor" else None
    hours = hours if hours is not None else stores.settings.device_offline_hours
    return seen > at - int(hours * HOUR_MS)


def _device_item(stores: Stores, facts: CommunityFacts, device: str, fold: DeviceFold, at: int) -> dict[str, Any]:
    info = facts.devices.get(device)
    state: dict[str, Any] = {}
    if fold.battery_ts is not None:
        state["battery"] = fold.battery
    if fold.door_ts is not None:
        state["door_at"] = iso_utc(fold.door_ts)
        if fold.door is not None:
            state["door"] = fold.door
    return {
        "id": device,
        "type": info.type if info else None,
        "online": _online(stores, facts, device, fold.seen, at),
        "state": state,
        "last_seen": iso_utc(fold.seen),
    }


def _visible_guards(facts: CommunityFacts, principal: Principal) -> set[str]:
    """The guards the principal sees (a grid worker: their grid's and the unassigned ones)."""
    grid = principal.scope.grid
    return {g for g, info in facts.guards.items() if grid is None or info.get("grid") in (None, grid)}


def _guard_item(guard: str, lat: float, lon: float, ts: int, at: int) -> dict[str, Any]:
    return {"id": guard, "lat": lat, "lon": lon, "ts": iso_utc(ts), "active": at - ts < GUARD_ACTIVE_MS}


def alerts_at(stores: Stores, principal: Principal, community: str, at: int) -> list[dict[str, Any]]:
    """The alerts open at ``at`` with their status then (§3 format), as the principal may see them."""
    when = ms_to_utc(at)
    query = select(AlertRecord).where(
        AlertRecord.community_id == community,
        AlertRecord.opened_at <= when,
        or_(AlertRecord.closed_at.is_(None), AlertRecord.closed_at > when),
    )
    query = alert_filter(principal, stores.settings).narrow(query)
    docs = []
    with stores.sessions() as session:
        records = {r.id: r for r in session.scalars(query)}
        last: dict[str, tuple[dt.datetime, str]] = {}
        ids = sorted(records)
        for start in range(0, len(ids), 500):
            steps = session.execute(
                select(AlertStep.alert_id, AlertStep.at, AlertStep.status)
                .where(AlertStep.alert_id.in_(ids[start : start + 500]), AlertStep.at <= when)
                .order_by(AlertStep.at, AlertStep.id)
            )
            for alert_id, step_at, status in steps:
                last[alert_id] = (step_at, status)
        for alert_id, record in records.items():
            step = last.get(alert_id)
            if step is None or not is_open(step[1]):
                continue
            doc = record_view(record)
            doc["status"] = step[1]
            doc["updated_at"] = iso_utc(utc_to_ms(step[0]))
            docs.append(doc)
    docs.sort(key=lambda d: (d["updated_at"], d["id"]), reverse=True)
    return visible_to(principal, docs, stores.settings)


def state_at(
    stores: Stores, principal: Principal, community: str, at_ms: int, *, now_ms: int | None = None
) -> dict[str, Any]:
    """The community at ``at_ms`` as the principal may see it (interfaces §9)."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    check_time(stores, at_ms, now)
    facts = _facts(stores, community)
    folded = fold_to(stores, community, at_ms, now_ms=now)
    scope = principal.scope
    devices = [
        _device_item(stores, facts, device, fold, at_ms)
        for device, fold in sorted(folded.devices.items())
        if scope.grid is None or (facts.devices.get(device) and scope.allows_grid(facts.devices[device].grid))
    ]
    visible = _visible_guards(facts, principal)
    guards = [
        _guard_item(g, lat, lon, ts, at_ms) for g, (lat, lon, ts) in sorted(folded.guards.items()) if g in visible
    ]
    return {
        "at": iso_utc(at_ms),
        "community": community,
        "devices": devices,
        "guards": guards,
        "alerts": alerts_at(stores, principal, community, at_ms),
    }


def trails_at(stores: Stores, principal: Principal, community: str, at_ms: int) -> dict[str, list[list[float]]]:
    """guard → their positions ``[lat, lon, ts]`` in the ten minutes before ``at_ms``, oldest first."""
    visible = _visible_guards(_facts(stores, community), principal)
    query = (
        select(ArchivedEvent.guard_id, ArchivedEvent.lat, ArchivedEvent.lon, ArchivedEvent.ts)
        .where(
            ArchivedEvent.community_id == community,
            ArchivedEvent.ts > at_ms - TRAIL_MS,
            ArchivedEvent.ts <= at_ms,
            ArchivedEvent.type == "guard.position",
        )
        .order_by(ArchivedEvent.ts, ArchivedEvent.entry)
    )
    out: dict[str, list[list[float]]] = {}
    with stores.sessions() as session:
        for guard, lat, lon, ts in session.execute(query):
            if guard in visible and lat is not None and lon is not None:
                out.setdefault(guard, []).append([lat, lon, ts])
    return out


def live_state(stores: Stores, principal: Principal, community: str, now_ms: int) -> dict[str, Any]:
    """The same shape read from the live projections and the live alerts (the wall's reads): what
    ``state_at(now)`` must equal."""
    facts = _facts(stores, community)
    doors = {d for d, info in facts.devices.items() if info.type == "door_sensor"}
    status = live.device_status(stores, community, now_ms, door_sensors=doors)
    seen = live.last_seen(stores, community)
    batteries = live.device_states(stores, community)
    door_times = live.door_activity(stores, community)
    scope = principal.scope
    devices = []
    for device in sorted(status):
        info = facts.devices.get(device)
        if scope.grid is not None and not (info and scope.allows_grid(info.grid)):
            continue
        state: dict[str, Any] = {}
        if "battery" in batteries.get(device, {}):
            state["battery"] = batteries[device]["battery"]
        if device in door_times:
            state["door_at"] = iso_utc(door_times[device])
        devices.append(
            {
                "id": device,
                "type": info.type if info else None,
                "online": status[device] == "online",
                "state": state,
                "last_seen": iso_utc(seen[device]),
            }
        )
    visible = _visible_guards(facts, principal)
    guards = [
        _guard_item(p.guard, p.lat, p.lon, p.ts, now_ms)
        for p in sorted(live.guard_positions(stores, community, trail=False), key=lambda p: p.guard)
        if p.guard in visible
    ]
    alerts = visible_to(principal, AlertStore(stores.redis, stores.keys).open_alerts(community), stores.settings)
    return {"at": iso_utc(now_ms), "community": community, "devices": devices, "guards": guards, "alerts": alerts}
