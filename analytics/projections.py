"""Projections: the live state that events leave in Redis (positions, last seen, door activity,
household and gate logs), written in one pipeline per batch."""

from __future__ import annotations

import json
from typing import Any

from ingest.schema import DeviceInfo, Event
from store.keys import Keys

TRAIL_LENGTH = 30
HOUSEHOLD_LOG_LENGTH = 50
GATE_LOG_LENGTH = 500


def wearable_guards(guards: dict[str, dict[str, Any]]) -> dict[str, str]:
    """wearable device id → guard id."""
    return {g["device"]: gid for gid, g in guards.items() if g.get("device")}


def project(pipe: Any, keys: Keys, community: str, event: Event, device: DeviceInfo, guard: str | None) -> None:
    """Queue the Redis writes of one event on the pipeline."""
    c = community
    pipe.zadd(keys.device_seen(c), {event.device: event.ts}, gt=True)
    pipe.zadd(keys.changes(c), {f"device:{event.device}": event.received})
    if event.type == "device.heartbeat" and "battery" in event.data:
        pipe.hset(keys.device_state(c), event.device, json.dumps({"battery": event.data["battery"], "ts": event.ts}))
    elif event.type == "door.contact":
        pipe.zadd(keys.door_last(c), {event.device: event.ts}, gt=True)
    elif event.type == "guard.position" and guard is not None:
        lat, lon = float(event.data["lat"]), float(event.data["lon"])
        state = {
            "lat": lat,
            "lon": lon,
            "ts": event.ts,
            "accuracy_m": event.data.get("accuracy_m"),
            "device": event.device,
        }
        pipe.geoadd(keys.guards_geo(c), (lon, lat, guard))
        pipe.hset(keys.guard_state(c), guard, json.dumps(state))
        pipe.lpush(keys.guard_trail(c, guard), json.dumps([round(lat, 7), round(lon, 7), event.ts]))
        pipe.ltrim(keys.guard_trail(c, guard), 0, TRAIL_LENGTH - 1)
        pipe.zadd(keys.changes(c), {f"guard:{guard}": event.received})
    elif event.type in ("lock.open", "gate.face", "gate.vehicle", "patrol.checkin"):
        entry = {
            "type": event.type,
            "device": event.device,
            "ts": event.ts,
            **{
                k: v for k, v in event.data.items() if k in ("method", "direction", "plate", "person", "guard", "score")
            },
            "identified": bool(event.data.get("person") or event.data.get("id_hash")),
        }
        if device.household:
            key = keys.household_log(c, device.household)
            pipe.lpush(key, json.dumps(entry))
            pipe.ltrim(key, 0, HOUSEHOLD_LOG_LENGTH - 1)
        else:
            pipe.lpush(keys.gate_log(c), json.dumps(entry))
            pipe.ltrim(keys.gate_log(c), 0, GATE_LOG_LENGTH - 1)
