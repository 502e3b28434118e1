"""Reading a report's figures from the stores: the registry, the alert history with every step, the
closed loop's tasks, visitor passes, gate traffic, patrol rounds and (when reachable) the live
device status. Everything is aggregated here; the renderers only lay it out."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from core.errors import StoreUnavailable
from core.timefmt import aware
from registry import queries
from registry.models import (
    DEVICE_TYPES,
    Community,
    Device,
    PathSegment,
)
from reports import calc
from reports.model import Column, MapData, ReportData, ReportRequest, Table
from reports.narrative import narrative
from reports.sections import alerts, elders, floating, patrol, response, visitors
from reports.sections.context import LoadContext, Progress, SectionResult, chunks
from reports.sections.load import load_context
from store.alert_models import AlertRecord
from store.redis_server import STORE_ERRORS
from store.stores import Stores

log = logging.getLogger(__name__)

OFFLINE_TYPES = ("device.offline", "sensor.silent")


class Collector:
    """Reads one report's data; ``run`` returns the ReportData."""

    def __init__(self, ctx: LoadContext) -> None:
        self.ctx = ctx
        self.floating_status: Mapping[str, Counter[str]] = {}  # community → status counts
        self.offline: dict[tuple[str, str], int] = defaultdict(int)  # (community, device type) → offline ms
        self.tables: dict[str, Table] = {}
        self.figures: dict[str, Any] = {}
        self.charts: dict[str, Any] = {}

    def add(self, part: SectionResult) -> None:
        """Keep a section's tables, figures and chart data."""
        self.tables.update(part.tables)
        self.figures.update(part.figures)
        self.charts.update(part.charts)

    # --- the whole report ------------------------------------------------------------------------
    def run(self) -> ReportData:
        """Read and aggregate everything."""
        ctx = self.ctx
        ctx.progress(30, "report.progress.figures")
        self.add(alerts.build(ctx))
        self.add(response.build(ctx))
        self.add(elders.build(ctx))
        floating_part = floating.build(ctx)
        self.add(floating_part)
        self.floating_status = floating_part.registration
        self.add(visitors.build(ctx))
        patrol_part = patrol.build(ctx)
        self.add(patrol_part)
        self.device_table()
        self.key_figures()
        ctx.progress(40, "report.progress.maps")
        maps = self.map_data(patrol_part.checkpoint_share)
        order = [
            "key_figures",
            "alerts_by_type",
            "alerts_by_hour",
            "response_times",
            "sla",
            "elders",
            "rentals",
            "floating",
            "visitor_passes",
            "gate_daily",
            "patrol_routes",
            "patrol_checkpoints",
            "devices",
            "alerts",
            "alert_steps",
        ]
        data = ReportData(
            request=ctx.request,
            generated_ms=ctx.now_ms,
            names=dict(ctx.names),
            tables={k: self.tables[k] for k in order},
            figures=self.figures,
            charts=self.charts,
            maps=maps,
        )
        data.narrative = narrative(data)
        return data

    # --- devices --------------------------------------------------------------------------------
    def live_status(self) -> dict[str, dict[str, str]] | None:
        """online/offline per device from the live store, or None when Redis cannot be reached."""
        from store.live import device_status

        ctx = self.ctx

        try:
            return {c: device_status(ctx.stores, c, ctx.now_ms) for c in ctx.ids}
        except (*STORE_ERRORS, StoreUnavailable, OSError) as err:
            # expected from the command line when the embedded Redis is not running: no live column
            log.info("live device status unavailable for the report: %s", err)
            return None

    def offline_window(self, record: AlertRecord) -> tuple[dt.datetime, dt.datetime]:
        """When a device was down: from the silence the rule saw to the alert's closing (or now)."""
        began = aware(record.detected_at)
        since_text = record.evidence.get("offline_since") or record.evidence.get("silent_since")
        if isinstance(since_text, str):
            try:
                began = aware(dt.datetime.fromisoformat(since_text.replace("Z", "+00:00")))
            except ValueError:
                began = aware(record.detected_at)
        ended = aware(record.closed_at) if record.closed_at is not None else self.ctx.cutoff
        return began, ended

    def device_table(self) -> None:
        """Per device type: how many, the period's offline alerts and hours, availability, live status."""
        ctx = self.ctx
        session = ctx.session
        alerts = ctx.alerts
        registered: Counter[str] = Counter()
        device_type: dict[str, str] = {}
        for ids in chunks(ctx.ids, 200):
            for did, dtype in session.execute(select(Device.id, Device.type).where(Device.community_id.in_(ids))):
                registered[dtype] += 1
                device_type[did] = dtype
        offline_alerts: Counter[str] = Counter(
            device_type.get(str(a.record.subject.get("device") or ""), "")
            for a in alerts
            if a.record.type in OFFLINE_TYPES
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
        for record in records:
            kind = device_type.get(str(record.subject.get("device") or ""))
            if kind:
                began, ended = self.offline_window(record)
                self.offline[(record.community_id, kind)] += calc.overlap_ms(began, ended, ctx.start, ctx.cutoff)
        down: Counter[str] = Counter()
        for (_, dtype), ms in self.offline.items():
            down[dtype] += ms
        live = self.live_status()
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
        self.tables["devices"] = Table(
            "devices",
            "report.table.devices",
            [
                Column("type", "report.col.device_type", width=1.3),
                Column("registered", "report.col.registered", "int"),
                Column("offline_alerts", "report.col.offline_alerts", "int"),
                Column("offline_hours", "report.col.offline_hours", "float"),
                Column("availability", "report.col.availability", "pct"),
                Column("online_now", "report.col.online_now", "int"),
                Column("offline_now", "report.col.offline_now", "int"),
            ],
            rows,
            note="report.note.devices",
        )
        total = sum(registered.values())
        self.figures["devices"] = {
            "registered": total,
            "offline_alerts": sum(offline_alerts[d] for d in registered),
            "availability": calc.availability(sum(down.values()), total, ctx.span_ms),
            "online_now": sum(online.values()) if live is not None else None,
            "reporting": sum(online.values()) + sum(offline_now.values()) if live is not None else None,
        }
        self.charts["devices"] = [(r["type"], r["availability"]) for r in rows]

    # --- key figures ------------------------------------------------------------------------------
    def key_figures(self) -> None:
        """One row per community (and a total row when there are several)."""
        ctx = self.ctx
        alerts = ctx.alerts
        alerts_by: Counter[str] = Counter(a.record.community_id for a in alerts)
        rows: list[dict[str, Any]] = []
        for cid in ctx.ids:
            s = ctx.stats.get(cid, {})
            status = self.floating_status.get(cid, Counter())
            devices = int(sum((s.get("devices") or {}).values()))
            down = sum(ms for (community, _), ms in self.offline.items() if community == cid)
            availability = calc.availability(down, devices, ctx.span_ms)
            rows.append(
                {
                    "community": ctx.names.get(cid, cid),
                    "residents": int(s.get("residents", 0)),
                    "households": int(s.get("households", 0)),
                    "rentals": int(s.get("rentals", 0)),
                    "group_rentals": int(s.get("group_rentals", 0)),
                    "elderly_alone": int(s.get("elderly_alone", 0)),
                    "floating_registered": status["valid"] + status["expiring"],
                    "floating_expired": status["expired"],
                    "devices": devices,
                    "availability": availability,
                    "guards": int(s.get("guards", 0)),
                    "alerts": alerts_by[cid],
                }
            )
        if len(rows) > 1:
            total: dict[str, Any] = {"community": ctx.tr("report.total"), "_total": True}
            for key in rows[0]:
                if key not in ("community", "availability"):
                    total[key] = sum(int(r[key] or 0) for r in rows)
            total["availability"] = self.figures["devices"]["availability"]
            rows.append(total)
        self.tables["key_figures"] = Table(
            "key_figures",
            "report.table.key_figures",
            [
                Column("community", "report.col.community", width=1.5),
                Column("residents", "kpi.residents", "int"),
                Column("households", "kpi.households", "int"),
                Column("rentals", "kpi.rentals", "int"),
                Column("group_rentals", "kpi.group_rentals", "int"),
                Column("elderly_alone", "kpi.elderly", "int"),
                Column("floating_registered", "report.col.floating_registered", "int"),
                Column("floating_expired", "report.col.floating_expired", "int"),
                Column("devices", "report.col.devices", "int"),
                Column("availability", "report.col.availability", "pct"),
                Column("guards", "report.col.guards", "int"),
                Column("alerts", "report.col.alerts", "int"),
            ],
            rows,
        )
        self.figures["registry"] = rows[-1]

    # --- maps -----------------------------------------------------------------------------------
    def map_data(self, checkpoint_share: Mapping[str, float | None]) -> list[MapData]:
        """Boundary, buildings by category, paths, the period's alerts and checkpoints per community."""
        ctx = self.ctx
        session = ctx.session
        alerts = ctx.alerts
        if len(ctx.ids) > ctx.settings.report_map_limit:
            per: Counter[str] = Counter(a.record.community_id for a in alerts)
            self.charts["overview"] = [
                (ctx.names.get(cid, cid), lat, lon, per[cid])
                for ids in chunks(ctx.ids, 200)
                for cid, lat, lon in session.execute(
                    select(Community.id, Community.center_lat, Community.center_lon).where(Community.id.in_(ids))
                )
            ]
            return []
        out = []
        checkpoints: dict[str, list[tuple[float, float, float | None]]] = defaultdict(list)
        device_ids = sorted(checkpoint_share)
        for ids in chunks(device_ids):
            for did, cid, lat, lon in session.execute(
                select(Device.id, Device.community_id, Device.lat, Device.lon).where(Device.id.in_(ids))
            ):
                checkpoints[cid].append((lat, lon, checkpoint_share.get(did)))
        points: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
        for a in alerts:
            if a.record.lat is not None and a.record.lon is not None:
                points[a.record.community_id].append((a.record.lat, a.record.lon, a.record.severity))
        scope = ctx.principal.scope
        for cid in ctx.ids:
            community = session.get(Community, cid)
            if community is None:
                continue
            layer = queries.building_layer(session, scope, cid)
            buildings = [(f["geometry"], str(f["properties"]["category"])) for f in layer["features"]]
            paths = [
                json.loads(g)
                for g in session.scalars(select(PathSegment.geometry).where(PathSegment.community_id == cid))
            ]
            out.append(
                MapData(
                    community=cid,
                    name=ctx.names.get(cid, cid),
                    boundary=json.loads(community.boundary) if community.boundary else None,
                    buildings=buildings,
                    paths=paths,
                    alerts=points.get(cid, []),
                    checkpoints=checkpoints.get(cid, []),
                )
            )
        return out


def collect(stores: Stores, request: ReportRequest, *, now_ms: int, progress: Progress | None = None) -> ReportData:
    """Read and aggregate a report's data."""
    with stores.sessions() as session:
        ctx = load_context(session, stores, request, now_ms=now_ms, progress=progress or (lambda _pct, _what: None))
        return Collector(ctx).run()
