"""The short summary of a period, written from its figures with template sentences (zh and en, from
the translation table); no language model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.i18n import t

if TYPE_CHECKING:
    from reports.model import ReportData


def pct(value: float | None) -> str:
    """92.5% — or a dash when there was nothing to measure."""
    return "—" if value is None else f"{value:g}%"


def number(value: float | None) -> str:
    """A figure with thousands separators, or a dash."""
    if value is None:
        return "—"
    return f"{value:,.1f}" if isinstance(value, float) and not value.is_integer() else f"{int(value):,}"


def is_empty(figures: dict[str, Any]) -> bool:
    """True when the period holds no alert, patrol round, visitor pass or gate passage at all."""
    visitors = figures.get("visitors", {})
    return not (
        figures.get("alerts")
        or figures.get("patrol", {}).get("rounds")
        or visitors.get("passes")
        or visitors.get("entries")
        or visitors.get("exits")
    )


def narrative(data: ReportData) -> list[str]:
    """The summary's sentences, in the report's language."""
    lang = data.lang
    f = data.figures
    req = data.request
    out = [
        t(
            "report.say.period",
            lang,
            place=data.title_place,
            start=req.start.isoformat(),
            end=req.end.isoformat(),
            days=req.days,
        )
    ]
    if is_empty(f):
        out.append(t("report.say.empty", lang))
    reg = f.get("registry", {})
    out.append(
        t(
            "report.say.registry",
            lang,
            residents=number(reg.get("residents", 0)),
            households=number(reg.get("households", 0)),
            rentals=number(reg.get("rentals", 0)),
            group_rentals=number(reg.get("group_rentals", 0)),
            elders=number(reg.get("elderly_alone", 0)),
        )
    )
    n = int(f.get("alerts", 0))
    if n == 0:
        out.append(t("report.say.no_alerts", lang))
    else:
        sev = f.get("severities", {})
        out.append(
            t(
                "report.say.alerts",
                lang,
                n=number(n),
                critical=sev.get("critical", 0),
                high=sev.get("high", 0),
                medium=sev.get("medium", 0),
                low=sev.get("low", 0),
                top=t(f"alert.type.{f.get('top_type')}", lang),
                top_n=f.get("top_type_n", 0),
            )
        )
        out.append(
            t(
                "report.say.outcomes",
                lang,
                handled=f.get("handled", 0),
                auto=f.get("auto", 0),
                false_alarms=f.get("false_alarms", 0),
                open=f.get("open", 0),
            )
        )
        ack = f.get("response", {}).get("acknowledged", {})
        sla = f.get("sla", {}).get("acknowledged", {})
        if ack.get("n"):
            out.append(t("report.say.response", lang, median=number(ack.get("median")), pct=pct(sla.get("compliance"))))
    elders = f.get("elders", {})
    if elders.get("alerts"):
        out.append(
            t(
                "report.say.elders",
                lang,
                alerted=elders["alerted"],
                alerts=elders["alerts"],
                handled=elders.get("handled", 0),
                auto=elders.get("auto", 0),
                open=elders.get("open", 0),
            )
        )
    elif elders.get("total"):
        out.append(t("report.say.elders_quiet", lang, total=number(elders["total"])))
    floating = f.get("floating", {})
    if floating.get("floating") or floating.get("tenant_alerts"):
        out.append(
            t(
                "report.say.floating",
                lang,
                valid=number(floating.get("valid", 0) + floating.get("expiring", 0)),
                expiring=number(floating.get("expiring", 0)),
                expired=number(floating.get("expired", 0)),
                tenant_alerts=floating.get("tenant_alerts", 0),
                registered=floating.get("registered", 0),
            )
        )
    visitors = f.get("visitors", {})
    if visitors.get("passes") or visitors.get("entries") or visitors.get("exits"):
        out.append(
            t(
                "report.say.visitors",
                lang,
                passes=number(visitors.get("passes", 0)),
                approved=number(visitors.get("approved", 0)),
                entries=number(visitors.get("entries", 0)),
                exits=number(visitors.get("exits", 0)),
            )
        )
    else:
        out.append(t("report.say.no_visitors", lang))
    patrol = f.get("patrol", {})
    if patrol.get("rounds"):
        out.append(
            t(
                "report.say.patrol",
                lang,
                rounds=number(patrol["rounds"]),
                pct=pct(patrol.get("on_time_pct")),
                late=number(patrol.get("late", 0)),
                missed=number(patrol.get("missed", 0)),
            )
        )
    else:
        out.append(t("report.say.no_patrol", lang))
    devices = f.get("devices", {})
    if devices.get("registered"):
        out.append(
            t(
                "report.say.devices",
                lang,
                devices=number(devices["registered"]),
                pct=pct(devices.get("availability")),
                offline=number(devices.get("offline_alerts", 0)),
            )
        )
    return out
