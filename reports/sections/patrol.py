"""The patrol section: rounds per route (expected checkpoint visits, on time, late, missed) and each
checkpoint's on-time share, which the maps colour the checkpoints by."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from gates.models import PatrolRound
from registry.models import Device, PatrolRoute
from reports import calc
from reports.model import Column, Table
from reports.sections.context import LoadContext, SectionResult, chunks

# after the community column, when the report covers several
ROUTE_COLUMNS = (
    Column("route", "report.col.route", width=1.6),
    Column("rounds", "report.col.rounds", "int"),
    Column("expected", "report.col.expected", "int"),
    Column("on_time", "report.col.on_time", "int"),
    Column("late", "report.col.late", "int"),
    Column("missed", "report.col.missed_points", "int"),
    Column("on_time_pct", "report.col.on_time_pct", "pct"),
    Column("done_pct", "report.col.done_pct", "pct"),
)
CHECKPOINT_COLUMNS = (
    Column("route", "report.col.route", width=1.4),
    Column("seq", "report.col.seq", "int", width=0.5),
    Column("checkpoint", "report.col.checkpoint", width=1.2),
    Column("rounds", "report.col.rounds", "int"),
    Column("on_time", "report.col.on_time", "int"),
    Column("late", "report.col.late", "int"),
    Column("missed", "report.col.missed_points", "int"),
    Column("on_time_pct", "report.col.on_time_pct", "pct"),
)


@dataclass(frozen=True, kw_only=True)
class PatrolResult(SectionResult):
    """The section's tables, and each checkpoint's on-time share that the maps show."""

    checkpoint_share: Mapping[str, float | None]  # checkpoint device id → on-time % (None: no round)


def build(ctx: LoadContext) -> PatrolResult:
    """Rounds per route (on time / late / missed) and each checkpoint's on-time share."""
    session = ctx.session
    routes: dict[str, PatrolRoute] = {}
    for ids in chunks(ctx.ids, 200):
        for route in session.scalars(select(PatrolRoute).where(PatrolRoute.community_id.in_(ids))):
            routes[route.id] = route
    checkpoint_names: dict[str, str] = {}
    device_ids = sorted({cp.device_id for r in routes.values() for cp in r.checkpoints})
    for ids in chunks(device_ids):
        for did, name in session.execute(select(Device.id, Device.name).where(Device.id.in_(ids))):
            checkpoint_names[did] = name or did
    per_route: dict[str, Counter[str]] = defaultdict(Counter)
    per_checkpoint: dict[str, Counter[str]] = defaultdict(Counter)
    route_community: dict[str, str] = {rid: r.community_id for rid, r in routes.items()}
    for ids in chunks(ctx.ids, 200):
        for rnd in session.scalars(
            select(PatrolRound).where(
                PatrolRound.community_id.in_(ids),
                PatrolRound.round_start >= ctx.start,
                PatrolRound.round_start < ctx.end,
            )
        ):
            route_community.setdefault(rnd.route_id, rnd.community_id)
            late = list(rnd.late or [])
            missed = list(rnd.missed or [])
            counter = per_route[rnd.route_id]
            counter["rounds"] += 1
            counter["expected"] += int(rnd.expected or 0)
            counter["on_time"] += int(rnd.on_time or 0)
            counter["late"] += len(late)
            counter["missed"] += len(missed)
            planned = routes.get(rnd.route_id)
            if planned is None:
                continue
            by_seq = {cp.seq: cp.device_id for cp in planned.checkpoints}
            known = set(by_seq.values())
            for cp in planned.checkpoints:
                per_checkpoint[cp.device_id]["rounds"] += 1
            for outcome, entries in (("late", late), ("missed", missed)):
                for entry in entries:
                    device = calc.checkpoint_of(entry, by_seq, known)
                    if device is not None:
                        per_checkpoint[device][outcome] += 1
    route_rows = []
    for rid in sorted(per_route, key=lambda r: (route_community.get(r, ""), r)):
        c = per_route[rid]
        known_route = routes.get(rid)
        route_rows.append(
            ctx.with_community(
                route_community.get(rid, ""),
                {
                    "route": known_route.name if known_route else rid,
                    "rounds": c["rounds"],
                    "expected": c["expected"],
                    "on_time": c["on_time"],
                    "late": c["late"],
                    "missed": c["missed"],
                    "on_time_pct": calc.share(c["on_time"], c["expected"]),
                    "done_pct": calc.share(c["on_time"] + c["late"], c["expected"]),
                },
            )
        )
    routes_table = Table(
        "patrol_routes", "report.table.patrol_routes", [*ctx.community_col(), *ROUTE_COLUMNS], route_rows
    )
    share: dict[str, float | None] = {}
    cp_rows = []
    for _, route in sorted(routes.items(), key=lambda item: (item[1].community_id, item[0])):
        for cp in route.checkpoints:
            c = per_checkpoint.get(cp.device_id, Counter())
            on_time = max(0, c["rounds"] - c["late"] - c["missed"])
            share[cp.device_id] = calc.share(on_time, c["rounds"])
            if not c["rounds"]:
                continue
            cp_rows.append(
                ctx.with_community(
                    route.community_id,
                    {
                        "route": route.name,
                        "seq": cp.seq,
                        "checkpoint": checkpoint_names.get(cp.device_id, cp.device_id),
                        "rounds": c["rounds"],
                        "on_time": on_time,
                        "late": c["late"],
                        "missed": c["missed"],
                        "on_time_pct": share[cp.device_id],
                    },
                )
            )
    checkpoints_table = Table(
        "patrol_checkpoints", "report.table.patrol_checkpoints", [*ctx.community_col(), *CHECKPOINT_COLUMNS], cp_rows
    )
    totals: Counter[str] = Counter()
    for c in per_route.values():
        totals.update(c)
    figures = {
        **{k: totals[k] for k in ("rounds", "expected", "on_time", "late", "missed")},
        "on_time_pct": calc.share(totals["on_time"], totals["expected"]),
    }
    return PatrolResult(
        {"patrol_routes": routes_table, "patrol_checkpoints": checkpoints_table},
        {"patrol": figures},
        {"patrol": [(r["route"], r["on_time"], r["late"], r["missed"]) for r in route_rows]},
        checkpoint_share=share,
    )
