"""The devices section: per device type, how many are registered, the period's offline alerts and
hours, availability over the period, and (when Redis is reachable) how many are online now; and the
upkeep list (设备维护清单): each device whose last heartbeat reported a low battery, and each device
offline now, by name and place, with its battery and when it reported it."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from alerts.models import AlertRecord
from analytics.rules.battery import battery_state
from core.errors import StoreUnavailable
from core.timefmt import aware, local_text
from registry import queries
from registry.models import DEVICE_TYPES, Device
from reports import calc
from reports.model import Column, Table
from reports.sections.context import COMMUNITY_COLUMN, LoadContext, SectionResult, chunks
from store.live import batteries, device_status
from store.redis_server import STORE_ERRORS

log = logging.getLogger(__name__)

OFFLINE_TYPES = ("device.offline", "sensor.silent")
DEVICE_COLUMNS = (
    Column("type", "report.col.device_type", width=1.3),
    Column("registered", "report.col.registered", "int"),
    Column("offline_alerts", "report.col.offline_alerts", "int"),
    Column("offline_hours", "report.col.offline_hours", "float"),
    Column("availability", "report.col.availability", "pct"),
    Column("online_now", "report.col.online_now", "int"),
    Column("offline_now", "report.col.offline_now", "int"),
)

UPKEEP_COLUMNS = (
    COMMUNITY_COLUMN,
    Column("device", "report.col.device", width=1.6),
    Column("place", "report.col.place", width=1.6),
    Column("upkeep", "report.col.upkeep"),
    Column("battery", "report.col.battery", "int", width=0.7),
    Column("reported_at", "report.col.reported_at"),
)


@dataclass(frozen=True, kw_only=True)
class DevicesResult(SectionResult):
    """The section's table, and the downtime and availability the key figures show."""

    offline_ms: Mapping[tuple[str, str], int]  # (community, device type) → offline time in the period
    availability: float | None  # of every device of the report


def live_status(ctx: LoadContext) -> dict[str, dict[str, str]] | None:
    """online/offline per device from the live store, or None when Redis cannot be reached."""
    try:
        doors = {c: queries.door_sensor_ids(ctx.session, c) for c in ctx.ids}
        return {c: device_status(ctx.stores, c, ctx.now_ms, door_sensors=doors[c]) for c in ctx.ids}
    except (*STORE_ERRORS, StoreUnavailable, OSError) as err:
        # expected from the command line when the embedded Redis is not running: no live column
        log.info("live device status unavailable for the report: %s", err)
        return None


def live_batteries(ctx: LoadContext) -> dict[str, dict[str, tuple[float, int]]]:
    """device → (battery %, ms) of its last heartbeat with one, per community; empty without Redis."""
    try:
        return {c: batteries(ctx.stores, c) for c in ctx.ids}
    except (*STORE_ERRORS, StoreUnavailable, OSError) as err:
        log.info("live batteries unavailable for the report: %s", err)
        return {}


def upkeep_table(ctx: LoadContext, live: dict[str, dict[str, str]] | None) -> Table:
    """The devices to visit: a low battery (the threshold of device.battery_low) or offline now; the
    lowest batteries first, then the offline ones, each by name and place."""
    threshold = ctx.stores.settings.battery_low_percent
    wanted: dict[str, tuple[str, str, tuple[float, int] | None]] = {}  # device → (community, need, reading)
    for community, readings in live_batteries(ctx).items():
        for did, reading in readings.items():
            if battery_state(reading[0], threshold) == "low":
                wanted[did] = (community, "battery_low", (reading[0], reading[1]))
    for community, states in (live or {}).items():
        for did, state in states.items():
            if state == "offline":
                _, need, low = wanted.get(did, (community, "", None))
                wanted[did] = (community, "battery_low_offline" if need else "offline", low)
    found: dict[str, Device] = {}
    for ids in chunks(sorted(wanted), 500):
        found.update((d.id, d) for d in ctx.session.scalars(select(Device).where(Device.id.in_(ids))))
    places = queries.entity_labels(
        ctx.session, [d.household_id or d.building_id or "" for d in found.values()], ctx.request.lang
    )
    order: list[tuple[tuple[bool, float, str], dict[str, Any]]] = []
    for did, (community, need, kept) in wanted.items():
        device = found.get(did)
        if device is None:
            continue
        row = {
            "community": ctx.names.get(community, community),
            "device": device.name or ctx.tr(f"device.{device.type}"),
            "place": places.get(device.household_id or device.building_id or "", ""),
            "upkeep": ctx.tr(f"report.upkeep.{need}"),
            "battery": round(kept[0]) if kept else None,
            "reported_at": local_text(kept[1], "%Y-%m-%d %H:%M") if kept else "",
        }
        order.append(((need == "offline", kept[0] if kept else 101.0, did), row))
    rows = [row for _, row in sorted(order, key=lambda pair: pair[0])]
    return Table(
        "device_upkeep", "report.table.device_upkeep", list(UPKEEP_COLUMNS), rows, note="report.note.device_upkeep"
    )


def offline_window(record: AlertRecord, cutoff: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """When a device was down: from the silence the rule saw to the alert's closing (or the cutoff)."""
    began = aware(record.detected_at)
    since_text = record.evidence.get("offline_since") or record.evidence.get("silent_since")
    if isinstance(since_text, str):
        try:
            began = aware(dt.datetime.fromisoformat(since_text.replace("Z", "+00:00")))
        except ValueError:
            began = aware(record.detected_at)
    ended = aware(record.closed_at) if record.closed_at is not None else cutoff
    return began, ended


def build(ctx: LoadContext) -> DevicesResult:
    """Per device type: how many, the period's offline alerts and hours, availability, live status."""
    session = ctx.session
    alerts = ctx.alerts
    registered: Counter[str] = Counter()
    device_type: dict[str, str] = {}
    for ids in chunks(ctx.ids, 200):
        for did, dtype in session.execute(select(Device.id, Device.type).where(Device.community_id.in_(ids))):
            registered[dtype] += 1
            device_type[did] = dtype
    offline_alerts: Counter[str] = Counter(
        device_type.get(str(a.record.subject.get("device") or ""), "") for a in alerts if a.record.type in OFFLINE_TYPES
    )
    # downtime inside the period: the period's offline alerts, and those still open from before it
    records = [a.record for a in alerts if a.record.type in OFFLINE_TYPES]
    for ids in chunks(ctx.ids, 200):
        records += session.scalars(
            select(AlertRecord).where(
                AlertRecord.community_id.in_(ids),
                AlertRecord.type.in_(OFFLINE_TYPES),
                AlertRecord.detected_at < ctx.start,
                (AlertRecord.closed_at.is_(None)) | (AlertRecord.closed_at > ctx.start),
            )
        ).all()
    offline: dict[tuple[str, str], int] = defaultdict(int)  # (community, device type) → offline ms
    for record in records:
        kind = device_type.get(str(record.subject.get("device") or ""))
        if kind:
            began, ended = offline_window(record, ctx.cutoff)
            offline[(record.community_id, kind)] += calc.overlap_ms(began, ended, ctx.start, ctx.cutoff)
    down: Counter[str] = Counter()
    for (_, dtype), ms in offline.items():
        down[dtype] += ms
    live = live_status(ctx)
    online: Counter[str] = Counter()
    offline_now: Counter[str] = Counter()
    for states in (live or {}).values():
        for did, state in states.items():
            if did in device_type:
                (online if state == "online" else offline_now)[device_type[did]] += 1
    rows = [
        {
            "type": ctx.tr(f"device.{dtype}"),
            "registered": registered[dtype],
            "offline_alerts": offline_alerts[dtype],
            "offline_hours": round(down[dtype] / 3_600_000, 1),
            "availability": calc.availability(down[dtype], registered[dtype], ctx.span_ms),
            "online_now": online[dtype] if live is not None else None,
            "offline_now": offline_now[dtype] if live is not None else None,
        }
        for dtype in DEVICE_TYPES
        if registered[dtype]
    ]
    table = Table("devices", "report.table.devices", list(DEVICE_COLUMNS), rows, note="report.note.devices")
    upkeep = upkeep_table(ctx, live)
    total = sum(registered.values())
    availability = calc.availability(sum(down.values()), total, ctx.span_ms)
    figures = {
        "registered": total,
        "offline_alerts": sum(offline_alerts[d] for d in registered),
        "availability": availability,
        "online_now": sum(online.values()) if live is not None else None,
        "reporting": sum(online.values()) + sum(offline_now.values()) if live is not None else None,
    }
    return DevicesResult(
        {"devices": table, "device_upkeep": upkeep},
        {"devices": figures},
        {"devices": [(r["type"], r["availability"]) for r in rows]},
        offline_ms=offline,
        availability=availability,
    )
