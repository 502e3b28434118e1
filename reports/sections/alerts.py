"""The alerts section: alerts by type (with how each ended) and by local hour of the day, and every
alert with its timeline (who did what when)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from alerts.constants import ALERT_TYPES, SEVERITIES
from alerts.lifecycle import step_key
from core.timefmt import SHANGHAI, aware, local_text, utc_to_ms
from reports.model import Column, Table
from reports.sections.context import LoadContext, SectionResult, when

BY_TYPE_COLUMNS = (
    Column("type", "report.col.type_code", width=1.2),
    Column("label", "report.col.type", width=1.8),
    Column("total", "report.col.alerts", "int"),
    Column("handled", "report.col.handled", "int"),
    Column("auto", "report.col.auto", "int"),
    Column("false_alarm", "report.col.false_alarm", "int"),
    Column("open", "report.col.open", "int"),
)
BY_HOUR_COLUMNS = (Column("hour", "report.col.hour", "int"), Column("alerts", "report.col.alerts", "int"))
# after the community column, when the report covers several
ALERT_COLUMNS = (
    Column("id", "report.col.alert_id", width=1.0),
    Column("detected", "report.col.detected", "time", width=1.0),
    Column("type", "report.col.type", width=1.3),
    Column("severity", "report.col.severity", width=0.5),
    Column("place", "report.col.place", width=1.25),
    Column("person", "report.col.person", width=0.65),
    Column("status", "report.col.status", width=0.65),
    Column("handling", "report.col.handling", width=0.7),
    Column("minutes", "report.col.minutes_to_close", "float", width=0.65),
    Column("count", "report.col.count", "int", width=0.45),
    Column("timeline", "report.col.timeline", width=2.9),
)
STEP_COLUMNS = (
    Column("alert", "report.col.alert_id"),
    Column("at", "report.col.at", "time"),
    Column("action", "report.col.action"),
    Column("status", "report.col.status"),
    Column("actor", "report.col.actor"),
    Column("note", "report.col.note", width=2.0),
)


def build(ctx: LoadContext) -> SectionResult:
    """Alerts by type, by hour of day, and each alert with its timeline."""
    alerts = ctx.alerts
    tables: dict[str, Table] = {}
    figures: dict[str, Any] = {}
    charts: dict[str, Any] = {}
    by_type: dict[str, Counter[str]] = defaultdict(Counter)
    hours = [0] * 24
    severities: Counter[str] = Counter()
    for a in alerts:
        by_type[a.record.type]["total"] += 1
        by_type[a.record.type][a.kind] += 1
        hours[a.detected.astimezone(SHANGHAI).hour] += 1
        severities[a.record.severity] += 1
    known = {name: i for i, name in enumerate(ALERT_TYPES)}
    ordered = sorted(by_type, key=lambda k: (-by_type[k]["total"], known.get(k, 99), k))
    tables["alerts_by_type"] = Table(
        "alerts_by_type",
        "report.table.alerts_by_type",
        list(BY_TYPE_COLUMNS),
        [
            {
                "type": k,
                "label": ctx.tr(f"alert.type.{k}"),
                "total": by_type[k]["total"],
                "handled": by_type[k]["handled"],
                "auto": by_type[k]["auto"],
                "false_alarm": by_type[k]["false_alarm"],
                "open": by_type[k]["open"],
            }
            for k in ordered
        ],
    )
    tables["alerts_by_hour"] = Table(
        "alerts_by_hour",
        "report.table.alerts_by_hour",
        list(BY_HOUR_COLUMNS),
        [{"hour": h, "alerts": n} for h, n in enumerate(hours)],
    )
    charts["by_type"] = [(ctx.tr(f"alert.type.{k}"), by_type[k]["total"]) for k in ordered]
    charts["by_hour"] = hours
    kinds = Counter(a.kind for a in alerts)
    figures.update(
        alerts=len(alerts),
        severities={s: severities.get(s, 0) for s in SEVERITIES},
        handled=kinds["handled"],
        auto=kinds["auto"],
        false_alarms=kinds["false_alarm"],
        open=kinds["open"],
        top_type=ordered[0] if ordered else None,
        top_type_n=by_type[ordered[0]]["total"] if ordered else 0,
    )
    rows, steps = [], []
    for a in alerts:
        r = a.record
        person = ""
        if r.subject.get("person"):
            person = ctx.person_names.get(str(r.subject["person"]), "")
        timeline = []
        day = local_text(utc_to_ms(a.detected), "%m-%d")
        for s in a.steps:
            stamp = local_text(utc_to_ms(s.at), "%m-%d %H:%M").removeprefix(day + " ")  # the day once
            actor = ctx.tr("report.system") if s.actor == "system" else ctx.label(s.actor)
            note = ctx.note(ctx.label(s.note))[:40]
            timeline.append(f"{stamp} {ctx.tr(step_key(s.action, s.actor))} · {actor}" + (f" · {note}" if note else ""))
            steps.append(
                {
                    "alert": r.id,
                    "at": local_text(utc_to_ms(s.at), "%Y-%m-%d %H:%M:%S"),
                    "action": ctx.tr(step_key(s.action, s.actor)),
                    "status": ctx.tr(f"status.{s.status}"),
                    "actor": actor,
                    "note": ctx.note(ctx.label(s.note)),
                }
            )
        minutes = None
        if r.closed_at is not None:
            minutes = round((aware(r.closed_at) - a.detected).total_seconds() / 60, 1)
        rows.append(
            ctx.with_community(
                r.community_id,
                {
                    "id": r.id,
                    "detected": when(r.detected_at),
                    "type": ctx.tr(f"alert.type.{r.type}"),
                    "severity": ctx.tr(f"severity.{r.severity}"),
                    "place": ctx.place_of(r.subject),
                    "person": person or "—",
                    "status": ctx.tr(f"status.{r.status}"),
                    "handling": ctx.tr(f"report.kind.{a.kind}"),
                    "minutes": minutes,
                    "count": r.count,
                    "timeline": "\n".join(timeline),
                },
            )
        )
    tables["alerts"] = Table(
        "alerts",
        "report.table.alerts",
        [*ctx.community_col(), *ALERT_COLUMNS],
        rows,
    )
    tables["alert_steps"] = Table(
        "alert_steps",
        "report.table.alert_steps",
        list(STEP_COLUMNS),
        steps,
    )
    return SectionResult(tables, figures, charts)
