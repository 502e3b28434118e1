"""Reading a report's figures from the stores: the registry, the alert history with every step, the
closed loop's tasks, visitor passes, gate traffic, patrol rounds and (when reachable) the live
device status. Everything is aggregated here; the renderers only lay it out."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from registry import queries
from registry.models import (
    Community,
    Device,
    PathSegment,
)
from reports.model import MapData, ReportData, ReportRequest, Table
from reports.narrative import narrative
from reports.sections import alerts, devices, elders, floating, key_figures, patrol, response, visitors
from reports.sections.context import LoadContext, Progress, SectionResult, chunks
from reports.sections.load import load_context
from store.stores import Stores


class Collector:
    """Reads one report's data; ``run`` returns the ReportData."""

    def __init__(self, ctx: LoadContext) -> None:
        self.ctx = ctx
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
        self.add(visitors.build(ctx))
        patrol_part = patrol.build(ctx)
        self.add(patrol_part)
        devices_part = devices.build(ctx)
        self.add(devices_part)
        self.add(key_figures.build(ctx, floating=floating_part, devices=devices_part))
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
