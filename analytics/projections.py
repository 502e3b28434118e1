"""Projections: the live state that events leave in Redis (positions, last seen, door activity,
household and gate logs), written in one pipeline per batch."""

from __future__ import annotations

import json
from typing import Any

from analytics.batch import BatchWrites
from ingest.schema import DeviceInfo, Event
from store.keys import Keys

TRAIL_LENGTH = 30
HOUSEHOLD_LOG_LENGTH = 50
GATE_LOG_LENGTH = 500


def wearable_guards(guards: dict[str, dict[str, Any]]) -> dict[str, str]:
    """wearable device id → guard id."""
    return {g["device"]: gid for gid, g in guards.items() if g.get("device")}


def project(out: BatchWrites, keys: Keys, community: str, event: Event, device: DeviceInfo, guard: str | None) -> None:
    """Record the live-state writes of one event (coalesced per batch)."""
    c = community
    out.zadd(keys.device_seen(c), event.device, event.ts, gt=True)
    out.zadd(keys.changes(c), f"device:{event.device}", event.received)
    if event.type == "device.heartbeat" and "battery" in event.data:
        out.hset(keys.device_state(c), event.device, json.dumps({"battery": event.data["battery"], "ts": event.ts}))
    elif event.type == "door.contact":
        out.zadd(keys.door_last(c), event.device, event.ts, gt=True)
    elif event.type == "guard.position" and guard is not None:
        lat, lon = float(event.data["lat"]), float(event.data["lon"])
        state = {
            "lat": lat,
            "lon": lon,
            "ts": event.ts,
            "accuracy_m": event.data.get("accuracy_m"),
            "device": event.device,
        }
        out.geo(keys.guards_geo(c), lon, lat, guard)
        out.hset(keys.guard_state(c), guard, json.dumps(state))
        out.push(keys.guard_trail(c, guard), json.dumps([round(lat, 7), round(lon, 7), event.ts]), TRAIL_LENGTH)
        out.zadd(keys.changes(c), f"guard:{guard}", event.received)
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
            out.push(keys.household_log(c, device.household), json.dumps(entry), HOUSEHOLD_LOG_LENGTH)
        else:
            out.push(keys.gate_log(c), json.dumps(entry), GATE_LOG_LENGTH)
