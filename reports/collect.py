"""Reading a report's figures from the stores: the registry, the alert history with every step, the
closed loop's tasks, visitor passes, gate traffic, patrol rounds and (when reachable) the live
device status. Everything is aggregated here; the renderers only lay it out.

The work is done by ``reports/sections``: ``load_context`` reads what every section needs into a
frozen LoadContext, then each section's ``build`` turns it into its tables, figures and chart data.
Here they run in order and their results are put together."""

from __future__ import annotations

from typing import Any

from reports.model import ReportData, ReportRequest, Table
from reports.narrative import narrative
from reports.sections import alerts, devices, elders, floating, key_figures, maps, patrol, response, visitors
from reports.sections.context import Progress, SectionResult
from reports.sections.load import load_context
from store.stores import Stores

TABLE_ORDER = (
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
    "device_upkeep",
    "alerts",
    "alert_steps",
)


def collect(stores: Stores, request: ReportRequest, *, now_ms: int, progress: Progress | None = None) -> ReportData:
    """Read and aggregate a report's data."""
    with stores.sessions() as session:
        ctx = load_context(session, stores, request, now_ms=now_ms, progress=progress or (lambda _pct, _what: None))
        ctx.progress(30, "report.progress.figures")
        alerts_part = alerts.build(ctx)
        response_part = response.build(ctx)
        elders_part = elders.build(ctx)
        floating_part = floating.build(ctx)
        visitors_part = visitors.build(ctx)
        patrol_part = patrol.build(ctx)
        devices_part = devices.build(ctx)
        key_part = key_figures.build(ctx, floating=floating_part, devices=devices_part)
        ctx.progress(40, "report.progress.maps")
        map_part = maps.build(ctx, checkpoint_share=patrol_part.checkpoint_share)
    parts: tuple[SectionResult, ...] = (
        alerts_part,
        response_part,
        elders_part,
        floating_part,
        visitors_part,
        patrol_part,
        devices_part,
        key_part,
        map_part,
    )
    tables: dict[str, Table] = {}
    figures: dict[str, Any] = {}
    charts: dict[str, Any] = {}
    for part in parts:  # in this order: the figures' and charts' keys keep it
        tables.update(part.tables)
        figures.update(part.figures)
        charts.update(part.charts)
    data = ReportData(
        request=request,
        generated_ms=now_ms,
        names=dict(ctx.names),
        tables={k: tables[k] for k in TABLE_ORDER},
        figures=figures,
        charts=charts,
        maps=map_part.maps,
    )
    data.narrative = narrative(data)
    return data
