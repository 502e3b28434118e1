"""The response section: minutes per handling stage (people's steps only) and SLA compliance per
stage, with the escalations beside it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from alerts.constants import SEVERITIES
from alerts.lifecycle import OPEN_STATUSES
from core.timefmt import aware
from reports import calc
from reports.model import Column, Table
from reports.sections.context import LoadContext, SectionResult

# the closed loop's stage names in escalation notes → the report's stages
ESCALATION_STAGES = {"acknowledge": "acknowledged", "dispatch": "dispatched", "arrive": "on_scene", "close": "resolved"}
NEXT_STAGE = {"new": "acknowledged", "acknowledged": "dispatched", "dispatched": "on_scene", "on_scene": "resolved"}
RESPONSE_COLUMNS = (
    Column("stage", "report.col.stage"),
    Column("n", "report.col.n", "int"),
    Column("median", "report.col.median", "float"),
    Column("p90", "report.col.p90", "float"),
    Column("mean", "report.col.mean", "float"),
    Column("max", "report.col.max", "float"),
)
SLA_COLUMNS = (
    Column("stage", "report.col.stage"),
    Column("target", "report.col.target", width=1.6),
    Column("judged", "report.col.judged", "int"),
    Column("met", "report.col.met", "int"),
    Column("missed", "report.col.missed", "int"),
    Column("compliance", "report.col.compliance", "pct"),
    Column("escalated", "report.col.escalated", "int"),
)


def build(ctx: LoadContext) -> SectionResult:
    """Minutes per handling stage (people's steps only) and SLA compliance."""
    alerts = ctx.alerts
    tables: dict[str, Table] = {}
    charts: dict[str, Any] = {}
    minutes: dict[str, list[float]] = {s: [] for s in calc.STAGES}
    met: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    for a in alerts:
        severity = a.record.severity
        took = calc.stage_minutes(a.detected, a.steps)
        for stage, value in took.items():
            minutes[stage].append(value)
            target = calc.sla_minutes(stage, severity, ctx.settings)
            (met if value <= target else missed)[stage] += 1
        for s in a.steps:
            if s.action == "escalated":
                escalated = ESCALATION_STAGES.get(s.note.split(":", 1)[0].strip())
                if escalated:
                    escalations[escalated] += 1
        # nobody responded: still waiting past the target now, or cleared by the system after it
        if "acknowledged" not in took:
            target_ms = calc.sla_minutes("acknowledged", severity, ctx.settings) * 60_000
            waited_until = ctx.now if a.record.status in OPEN_STATUSES else aware(a.record.closed_at or ctx.now)
            if (waited_until - a.detected).total_seconds() * 1000 > target_ms:
                missed["acknowledged"] += 1
        elif a.record.status in OPEN_STATUSES and a.record.status != "new":
            # stuck in its current stage past the next stage's target (as the loop's SLA timer)
            stage = NEXT_STAGE[a.record.status]
            if stage not in took:
                since = max((s.at for s in a.steps if calc.is_human(s)), default=a.detected)
                target = calc.sla_minutes(stage, severity, ctx.settings)
                if (ctx.now - since).total_seconds() / 60 > target:
                    missed[stage] += 1
    ack_targets = "/".join(f"{ctx.settings.sla_ack_minutes.get(s, 15):g}" for s in reversed(SEVERITIES))
    rows, sla_rows = [], []
    for stage in calc.STAGES:
        figures = calc.summary(minutes[stage])
        rows.append({"stage": ctx.tr(f"stage.{stage}"), **figures})
        target_text = (
            ctx.tr("report.sla.ack_target", targets=ack_targets)
            if stage == "acknowledged"
            else f"{calc.sla_minutes(stage, 'high', ctx.settings):g}"
        )
        judged = met[stage] + missed[stage]
        sla_rows.append(
            {
                "stage": ctx.tr(f"stage.{stage}"),
                "target": target_text,
                "judged": judged,
                "met": met[stage],
                "missed": missed[stage],
                "compliance": calc.share(met[stage], judged),
                "escalated": escalations[stage],
            }
        )
    tables["response_times"] = Table(
        "response_times",
        "report.table.response_times",
        list(RESPONSE_COLUMNS),
        rows,
        note="report.note.stages",
    )
    tables["sla"] = Table(
        "sla",
        "report.table.sla",
        list(SLA_COLUMNS),
        sla_rows,
        note="report.note.sla",
    )
    charts["stage_minutes"] = minutes
    charts["sla_targets"] = {
        stage: None if stage == "acknowledged" else calc.sla_minutes(stage, "high", ctx.settings)
        for stage in calc.STAGES
    }
    charts["sla"] = {stage: row["compliance"] for stage, row in zip(calc.STAGES, sla_rows, strict=True)}
    return SectionResult(
        tables,
        {
            "sla": dict(zip(calc.STAGES, sla_rows, strict=True)),
            "response": dict(zip(calc.STAGES, rows, strict=True)),
        },
        charts,
    )
