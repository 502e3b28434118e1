"""Replay (interfaces §4): recorded events through the same ingest validation, workers and rules
as production, in an isolated Redis namespace, with the events' own time as the clock."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from alerts.live import public_view
from analytics.worker import Worker
from core.clock import ManualClock
from ingest.directory import Directory
from ingest.schema import Rejected, decode_json, parse_ts
from ingest.service import IngestService
from registry.models import Device
from store.keys import Keys
from store.stores import Stores

log = logging.getLogger(__name__)


def read_events(path: Path) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    """(line number, event) of each JSON line, and the lines that cannot be read (not JSON, not UTF-8,
    nested too deeply: the same decoding as ingest's bodies) with the reason."""
    events: list[tuple[int, Any]] = []
    bad: list[dict[str, Any]] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                events.append((number, decode_json(line, "the line")))
            except ValueError as err:
                bad.append({"line": number, "error": str(err)})
    return events, bad


def _sort_key(item: tuple[int, Any]) -> tuple[int, int]:
    number, raw = item
    try:
        return parse_ts(raw["ts"]), number
    except (Rejected, KeyError, TypeError):
        return 0, number


def run_replay(
    stores: Stores, path: Path, *, until_ms: int | None, out: Path | None, community: str | None = None
) -> dict[str, Any]:
    """Replay a file; write every alert raised; return the summary."""
    events, bad = read_events(path)
    events.sort(key=_sort_key)
    with stores.sessions() as session:
        owner = dict(session.execute(select(Device.id, Device.community_id)).all())
    namespace = Keys(prefix="rp" + secrets.token_hex(5))
    isolated = dataclasses.replace(stores, keys=namespace)
    isolated.__dict__["redis"] = stores.redis  # the same server, another namespace
    clock = ManualClock()
    directory = Directory(stores.sessions)
    ingest = IngestService(isolated, directory, horizon=False)  # a recorded file may be older than the horizon
    worker = Worker(isolated, consumer="replay", clock=clock, directory=directory, write_history=False)
    worker.plan_timers = False
    counts: Counter[str] = Counter()
    rejected: list[dict[str, Any]] = [{"line": b["line"], "error": b["error"]} for b in bad]
    try:
        by_community: dict[str, list[tuple[int, Any]]] = {}
        for number, raw in events:
            device = raw.get("device") if isinstance(raw, dict) else None
            target = community or owner.get(str(device))
            if target is None:
                rejected.append({"line": number, "error": f"unknown device {device!r}"})
                continue
            by_community.setdefault(target, []).append((number, raw))
        last_ts = 0
        for target, items in by_community.items():
            if items:
                clock.set(_sort_key(items[0])[0])
            worker.start_community(target, seed_timers=False)  # judge only what the file holds
            for number, raw in items:
                ts = _sort_key((number, raw))[0]
                _fire_until(worker, clock, target, ts)  # timers due before this event fire first
                result = ingest.ingest(target, [raw])
                counts["accepted"] += result.accepted
                counts["duplicates"] += result.duplicates
                for r in result.rejected:
                    rejected.append({"line": number, "error": r["error"]})
                if not result.accepted:
                    continue
                clock.set(ts)
                last_ts = max(last_ts, ts)
                worker.process(worker.events.read([target], "replay", count=10, block_ms=None))
        end = until_ms if until_ms is not None else last_ts
        for target in by_community:
            _fire_until(worker, clock, target, end)
        clock.set(end)
        alerts = _final_alerts(worker)
        _write(alerts, out)
    finally:
        for key in stores.redis.scan_iter(match=f"{namespace.prefix}:*", count=1000):
            stores.redis.delete(key)
    by_type = Counter(a["type"] for a in alerts)
    return {
        "events": len(events) + len(bad),
        "accepted": counts["accepted"],
        "duplicates": counts["duplicates"],
        "rejected": len(rejected),
        "rejects": rejected[:20],
        "alerts": len(alerts),
        "by_type": dict(by_type),
    }


def _fire_until(worker: Worker, clock: ManualClock, community: str, until: int) -> None:
    """Fire timers due up to `until`, each at its own due time (detected_at exact)."""
    while True:
        due = worker.next_due(community)
        if due is None or due > until:
            return
        clock.set(due)
        if worker.sweep(community) == 0:
            return  # nothing could fire (the events have not reached that time): never spin


def _final_alerts(worker: Worker) -> list[dict[str, Any]]:
    """Each alert once, as it stood last, in the order they were raised."""
    order: list[str] = []
    latest: dict[str, dict[str, Any]] = {}
    for change in worker.raised:
        alert_id = change.doc["id"]
        if alert_id not in latest:
            order.append(alert_id)
        latest[alert_id] = change.doc
    return [public_view(latest[i]) for i in order]


def _write(alerts: list[dict[str, Any]], out: Path | None) -> None:
    lines = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in alerts)
    if out is None:
        sys.stdout.write(lines)
    else:
        out.write_text(lines, encoding="utf-8")
