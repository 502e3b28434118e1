"""The key figures section: per community, residents, households, rentals, elders living alone, the
floating population's registrations, devices and their availability, guards and alerts (and a total
row when there are several). It reads what the floating and devices sections computed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from reports import calc
from reports.model import Column, Table
from reports.sections.context import LoadContext, SectionResult
from reports.sections.devices import DevicesResult
from reports.sections.floating import FloatingResult

KEY_FIGURE_COLUMNS = (
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
)


def build(ctx: LoadContext, *, floating: FloatingResult, devices: DevicesResult) -> SectionResult:
    """One row per community (and a total row when there are several)."""
    alerts = ctx.alerts
    alerts_by: Counter[str] = Counter(a.record.community_id for a in alerts)
    rows: list[dict[str, Any]] = []
    for cid in ctx.ids:
        s = ctx.stats.get(cid, {})
        status = floating.registration.get(cid, Counter())
        registered = int(sum((s.get("devices") or {}).values()))
        down = sum(ms for (community, _), ms in devices.offline_ms.items() if community == cid)
        availability = calc.availability(down, registered, ctx.span_ms)
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
                "devices": registered,
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
        total["availability"] = devices.availability
        rows.append(total)
    table = Table("key_figures", "report.table.key_figures", list(KEY_FIGURE_COLUMNS), rows)
    return SectionResult({"key_figures": table}, {"registry": rows[-1]})
