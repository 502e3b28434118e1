"""Projections: the live state that events leave in Redis (positions, last seen, door activity,
household and gate logs), written in one pipeline per batch."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import msgspec

from analytics.batch import BatchWrites
from ingest.schema import DeviceInfo, Event
from store.keys import Keys

TRAIL_LENGTH = 30
HOUSEHOLD_LOG_LENGTH = 50
GATE_LOG_LENGTH = 500
LOGGED = frozenset({"lock.open", "gate.face", "gate.vehicle", "patrol.checkin"})  # kept in a household or gate log
LOG_FIELDS = ("method", "direction", "plate", "person", "guard", "score")
encode = msgspec.json.Encoder().encode  # the live state's JSON values (several times faster than json.dumps)


class CommunityKeys(NamedTuple):
    """The keys a projection writes, built once per community."""

    device_seen: str
    changes: str
    device_state: str
    door_last: str
    guards_geo: str
    guard_state: str
    gate_log: str


@lru_cache(maxsize=1024)
def community_keys(keys: Keys, community: str) -> CommunityKeys:
    """The community's projection keys (cached: every event needs them)."""
    c = community
    return CommunityKeys(
        keys.device_seen(c),
        keys.changes(c),
        keys.device_state(c),
        keys.door_last(c),
        keys.guards_geo(c),
        keys.guard_state(c),
        keys.gate_log(c),
    )


def wearable_guards(guards: dict[str, dict[str, Any]]) -> dict[str, str]:
    """wearable device id → guard id."""
    return {g["device"]: gid for gid, g in guards.items() if g.get("device")}


def project(out: BatchWrites, keys: Keys, community: str, event: Event, device: DeviceInfo, guard: str | None) -> None:
    """Record the live-state writes of one event (coalesced per batch)."""
    k = community_keys(keys, community)
    kind = event.type
    out.zadd(k.device_seen, event.device, event.ts, gt=True)
    out.zadd(k.changes, "device:" + event.device, event.received)
    if kind == "device.heartbeat":
        if "battery" in event.data:
            out.hset(k.device_state, event.device, encode({"battery": event.data["battery"], "ts": event.ts}).decode())
    elif kind == "door.contact":
        out.zadd(k.door_last, event.device, event.ts, gt=True)
    elif kind == "guard.position" and guard is not None:
        lat, lon = float(event.data["lat"]), float(event.data["lon"])
        state = {
            "lat": lat,
            "lon": lon,
            "ts": event.ts,
            "accuracy_m": event.data.get("accuracy_m"),
            "device": event.device,
        }
        out.geo(k.guards_geo, lon, lat, guard)
        out.hset(k.guard_state, guard, encode(state).decode())
        out.push(
            keys.guard_trail(community, guard), encode([round(lat, 7), round(lon, 7), event.ts]).decode(), TRAIL_LENGTH
        )
        out.zadd(k.changes, f"guard:{guard}", event.received)
    elif kind in LOGGED:
        data = event.data
        entry = {
            "type": kind,
            "device": event.device,
            "ts": event.ts,
            **{f: data[f] for f in LOG_FIELDS if f in data},
            "identified": bool(data.get("person") or data.get("id_hash")),
        }
        if device.household:
            out.push(keys.household_log(community, device.household), encode(entry).decode(), HOUSEHOLD_LOG_LENGTH)
        else:
            out.push(k.gate_log, encode(entry).decode(), GATE_LOG_LENGTH)
