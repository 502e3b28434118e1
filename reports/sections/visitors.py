"""The visitors and gates section: visitor passes applied for in the period by status (and how many
came in), gate entries and exits per day and per hour of the day."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import func, select

from gates.models import PASS_STATUSES, GateHourly, VisitorPass
from reports.model import Column, Table
from reports.sections.context import COMMUNITY_COLUMN, LoadContext, SectionResult, chunks

GATE_KEYS = ("face_in", "face_out", "vehicle_in", "vehicle_out", "visitor_in", "unknown_in", "blacklisted_in")
PASS_COLUMNS = (
    COMMUNITY_COLUMN,
    *(Column(status, f"report.pass.{status}", "int") for status in PASS_STATUSES),
    Column("total", "report.col.total", "int"),
    Column("entered", "report.col.entered", "int"),
)
# after the community column, when the report covers several
GATE_COLUMNS = (
    Column("day", "report.col.date", "date"),
    *(Column(k, f"report.gate.{k}", "int") for k in GATE_KEYS),
)


def build(ctx: LoadContext) -> SectionResult:
    """Visitor passes applied for in the period by status; gate entries and exits per day."""
    session = ctx.session
    passes: dict[str, Counter[str]] = defaultdict(Counter)
    entered: Counter[str] = Counter()
    gate: dict[tuple[str, dt.date], Counter[str]] = defaultdict(Counter)
    hours_in, hours_out = [0] * 24, [0] * 24
    for ids in chunks(ctx.ids, 200):
        for cid, status, n, came in session.execute(
            select(VisitorPass.community_id, VisitorPass.status, func.count(), func.count(VisitorPass.entered_at))
            .where(
                VisitorPass.community_id.in_(ids),
                VisitorPass.created_at >= ctx.start,
                VisitorPass.created_at < ctx.end,
            )
            .group_by(VisitorPass.community_id, VisitorPass.status)
        ):
            passes[cid][status] += int(n)
            entered[cid] += int(came)
        for cid, day, hour, kind, direction, category, summed in session.execute(
            select(
                GateHourly.community_id,
                GateHourly.day,
                GateHourly.hour,
                GateHourly.kind,
                GateHourly.direction,
                GateHourly.category,
                func.sum(GateHourly.count),
            )
            .where(
                GateHourly.community_id.in_(ids),
                GateHourly.day >= ctx.request.start,
                GateHourly.day <= ctx.request.end,
            )
            .group_by(
                GateHourly.community_id,
                GateHourly.day,
                GateHourly.hour,
                GateHourly.kind,
                GateHourly.direction,
                GateHourly.category,
            )
        ):
            n = int(summed or 0)
            counter = gate[(cid, day)]
            counter[f"{kind}_{direction}"] += n
            if direction == "in" and category in ("visitor", "unknown", "blacklisted"):
                counter[f"{category}_in"] += n
            if 0 <= int(hour) < 24:
                (hours_in if direction == "in" else hours_out)[int(hour)] += n
    pass_rows = []
    for cid in ctx.ids:
        counts = passes.get(cid, Counter())
        pass_rows.append(
            {
                "community": ctx.names.get(cid, cid),
                **{status: counts[status] for status in PASS_STATUSES},
                "total": sum(counts.values()),
                "entered": entered[cid],
            }
        )
    passes_table = Table("visitor_passes", "report.table.visitor_passes", list(PASS_COLUMNS), pass_rows)
    gate_rows = []
    for (cid, day), counter in sorted(gate.items(), key=lambda item: (item[0][1], item[0][0])):
        gate_rows.append(ctx.with_community(cid, {"day": day.isoformat(), **{k: counter[k] for k in GATE_KEYS}}))
    if gate_rows:
        total = {k: sum(int(r[k]) for r in gate_rows) for k in GATE_KEYS}
        gate_rows.append({**({"community": ""} if ctx.multi else {}), "day": ctx.tr("report.total"), **total})
        gate_rows[-1]["_total"] = True
    gate_table = Table("gate_daily", "report.table.gate_daily", [*ctx.community_col(), *GATE_COLUMNS], gate_rows)
    all_passes: Counter[str] = Counter()
    for counts in passes.values():
        all_passes.update(counts)
    figures = {
        "passes": sum(all_passes.values()),
        "approved": all_passes["approved"],
        "pending": all_passes["pending"],
        "rejected": all_passes["rejected"],
        "entered": sum(entered.values()),
        "entries": sum(hours_in),
        "exits": sum(hours_out),
    }
    return SectionResult(
        {"visitor_passes": passes_table, "gate_daily": gate_table},
        {"visitors": figures},
        {"gate_hours": {"in": hours_in, "out": hours_out}},
    )
