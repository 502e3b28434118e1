"""The rentals and floating-population section: rental and group-rental households with their
tenants, each floating resident's registration status (as of the period's last day, or today),
the tenant and lock alerts, and the registrations made on site from a task."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select

from closedloop.models import Task
from registry.models import Household, Residency
from reports import calc
from reports.model import Column, Table
from reports.sections.context import COMMUNITY_COLUMN, LoadContext, SectionResult, chunks

# after the community column, when the report covers several
FLOATING_COLUMNS = (
    Column("name", "report.col.person", width=0.8),
    Column("place", "report.col.place", width=1.6),
    Column("registered", "report.col.registered_on", "date"),
    Column("expires", "report.col.expires_on", "date"),
    Column("status", "report.col.registration", width=0.8),
)
RENTAL_COLUMNS = (
    COMMUNITY_COLUMN,
    Column("rentals", "kpi.rentals", "int"),
    Column("group_rentals", "kpi.group_rentals", "int"),
    Column("tenants", "report.col.tenants", "int"),
    Column("floating", "tag.floating", "int"),
    Column("valid", "report.floating.valid", "int"),
    Column("expiring", "report.floating.expiring", "int"),
    Column("expired", "report.floating.expired", "int"),
    Column("unregistered", "report.floating.unregistered", "int"),
    Column("tenant_alerts", "alert.type.tenant.unregistered", "int"),
    Column("lock_alerts", "alert.type.lock.unregistered", "int"),
    Column("registered", "report.col.registered_from_task", "int"),
)


@dataclass(frozen=True, kw_only=True)
class FloatingResult(SectionResult):
    """The section's tables, and the registration status counts the key figures show."""

    registration: Mapping[str, Counter[str]]  # community → registration status → residents


def build(ctx: LoadContext) -> FloatingResult:
    """Rental households per community, and each floating resident's registration status."""
    session = ctx.session
    alerts = ctx.alerts
    floating = ctx.floating
    rows = []
    status_by_community: dict[str, Counter[str]] = defaultdict(Counter)
    for person, household in floating:
        status = calc.floating_status(person.floating_registered_on, person.floating_expires_on, ctx.ref_date)
        status_by_community[person.community_id][status] += 1
        rows.append(
            ctx.with_community(
                person.community_id,
                {
                    "name": ctx.person_name(person.name),
                    "place": ctx.places.get(household or "", household or "—"),
                    "registered": person.floating_registered_on.isoformat() if person.floating_registered_on else "",
                    "expires": person.floating_expires_on.isoformat() if person.floating_expires_on else "",
                    "status": ctx.tr(f"report.floating.{status}"),
                    "_status": status,
                },
            )
        )
    urgency = {"unregistered": 0, "expired": 1, "expiring": 2, "valid": 3}
    rows.sort(key=lambda r: (urgency[r["_status"]], r.get("expires") or ""))
    for row in rows:
        row.pop("_status")
    floating_table = Table(
        "floating",
        "report.table.floating",
        [*ctx.community_col(), *FLOATING_COLUMNS],
        rows,
        note="report.note.floating",
    )
    # rentals: households, tenants, the period's tenant/lock alerts and registrations from tasks
    categories: dict[str, Counter[str]] = defaultdict(Counter)
    tenants: Counter[str] = Counter()
    for ids in chunks(ctx.ids, 200):
        for cid, category, n in session.execute(
            select(Household.community_id, Household.category, func.count())
            .where(Household.community_id.in_(ids))
            .group_by(Household.community_id, Household.category)
        ):
            categories[cid][category] = int(n)
        for cid, n in session.execute(
            select(Household.community_id, func.count(func.distinct(Residency.person_id)))
            .join(Residency, Residency.household_id == Household.id)
            .where(
                Household.community_id.in_(ids),
                Household.category.in_(("rental", "group_rental")),
                Residency.role == "tenant",
            )
            .group_by(Household.community_id)
        ):
            tenants[cid] = int(n)
    tenant_alerts: dict[str, Counter[str]] = defaultdict(Counter)
    tenant_ids = [a.record.id for a in alerts if a.record.type == "tenant.unregistered"]
    for a in alerts:
        if a.record.type in ("tenant.unregistered", "lock.unregistered"):
            tenant_alerts[a.record.community_id][a.record.type] += 1
    registered: Counter[str] = Counter()
    for ids in chunks(tenant_ids):
        for cid, n in session.execute(
            select(Task.community_id, func.count())
            .where(Task.alert_id.in_(ids), Task.outcome == "registered")
            .group_by(Task.community_id)
        ):
            registered[cid] = int(n)
    rental_rows = []
    for cid in ctx.ids:
        counts = status_by_community.get(cid, Counter())
        rental_rows.append(
            {
                "community": ctx.names.get(cid, cid),
                "rentals": categories[cid]["rental"],
                "group_rentals": categories[cid]["group_rental"],
                "tenants": tenants[cid],
                "floating": sum(counts.values()),
                "valid": counts["valid"],
                "expiring": counts["expiring"],
                "expired": counts["expired"],
                "unregistered": counts["unregistered"],
                "tenant_alerts": tenant_alerts[cid]["tenant.unregistered"],
                "lock_alerts": tenant_alerts[cid]["lock.unregistered"],
                "registered": registered[cid],
            }
        )
    rentals_table = Table("rentals", "report.table.rentals", list(RENTAL_COLUMNS), rental_rows)
    totals: Counter[str] = Counter()
    for row in rental_rows:
        totals.update({k: v for k, v in row.items() if isinstance(v, int)})
    return FloatingResult(
        {"floating": floating_table, "rentals": rentals_table},
        {"floating": dict(totals)},
        registration=status_by_community,
    )
