"""The elders section: every elder living alone with the period's care alerts (inactivity,
broken routine, no water, a silent sensor), how they ended and the median first response."""

from __future__ import annotations

from collections import Counter, defaultdict

from reports import calc
from reports.model import Column, Table
from reports.sections.context import Alert, LoadContext, SectionResult, when

ELDER_TYPES = ("elder.inactive", "elder.routine", "elder.no_water", "sensor.silent")
# after the community column, when the report covers several
ELDER_COLUMNS = (
    Column("name", "report.col.person", width=0.8),
    Column("place", "report.col.place", width=1.6),
    Column("inactive", "report.col.elder_inactive", "int"),
    Column("routine", "report.col.elder_routine", "int"),
    Column("no_water", "report.col.elder_no_water", "int"),
    Column("silent", "report.col.sensor_silent", "int"),
    Column("last", "report.col.last_alert", "time", width=1.6),
    Column("handled", "report.col.handled", "int"),
    Column("auto", "report.col.auto", "int"),
    Column("open", "report.col.open", "int"),
    Column("response", "report.col.first_response", "float"),
)


def build(ctx: LoadContext) -> SectionResult:
    """Every elder living alone with the period's care alerts and how they were handled."""
    alerts = ctx.alerts
    elders = ctx.elders
    by_household = {h: p.id for p, h in elders if h}
    mine: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts:
        if a.record.type not in ELDER_TYPES:
            continue
        person = a.record.subject.get("person") or by_household.get(str(a.record.subject.get("household")))
        if person:
            mine[str(person)].append(a)
    rows = []
    for person, household in elders:
        found = mine.get(person.id, [])
        kinds = Counter(a.kind for a in found)
        types = Counter(a.record.type for a in found)
        responses = [calc.stage_minutes(a.detected, a.steps).get("acknowledged") for a in found]
        first = [m for m in responses if m is not None]
        rows.append(
            ctx.with_community(
                person.community_id,
                {
                    "name": ctx.person_name(person.name),
                    "place": ctx.places.get(household or "", household or "—"),
                    "inactive": types["elder.inactive"],
                    "routine": types["elder.routine"],
                    "no_water": types["elder.no_water"],
                    "silent": types["sensor.silent"],
                    "last": when(found[-1].record.detected_at) if found else "",
                    "handled": kinds["handled"] + kinds["false_alarm"],
                    "auto": kinds["auto"],
                    "open": kinds["open"],
                    "response": calc.summary(first)["median"],
                },
            )
        )
    rows.sort(key=lambda r: -(r["inactive"] + r["routine"] + r["no_water"] + r["silent"]))
    table = Table(
        "elders",
        "report.table.elders",
        [*ctx.community_col(), *ELDER_COLUMNS],
        rows,
        note="report.note.elders",
    )
    alerted = [r for r in rows if r["inactive"] + r["routine"] + r["no_water"] + r["silent"]]
    elder_alerts = [a for a in alerts if a.record.type in ELDER_TYPES]
    figures = {
        "total": len(elders),
        "alerted": len(alerted),
        "alerts": len(elder_alerts),
        "open": sum(1 for a in elder_alerts if a.kind == "open"),
        "handled": sum(1 for a in elder_alerts if a.kind in ("handled", "false_alarm")),
        "auto": sum(1 for a in elder_alerts if a.kind == "auto"),
    }
    return SectionResult({"elders": table}, {"elders": figures})
