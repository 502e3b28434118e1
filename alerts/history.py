"""The SQL history of alerts: every change written once, and the queries the pages, the API and
the reports read."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, case, select, update
from sqlalchemy.orm import Session, sessionmaker

from alerts.access import AlertFilter
from alerts.lifecycle import OPEN_STATUSES
from alerts.live import AlertChange, dedup_key
from alerts.models import AlertRecord, AlertStep
from notify.outbox import record_step
from store.sql import again_on_conflict

log = logging.getLogger(__name__)
REPEATS = ("unchanged", "repeated")  # changes that only count (no timeline step)
_alerts = cast(Table, AlertRecord.__table__)
COUNT_REPEATS = (  # a batch's repeats: one executemany (the ORM's bulk update costs several times more)
    update(_alerts)
    .where(_alerts.c.id == bindparam("alert"))
    .values(count=bindparam("count"), updated_at=bindparam("at"))
)


class AlertHistory:
    """Writes alert changes to SQL (the history reports and the API read)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def write(self, changes: list[AlertChange]) -> None:
        """Upsert each changed alert and append its step, in one transaction.

        Two workers may write the same new alert at once (one raised it, the other counts a repeat
        in another batch): the one that commits second meets the first one's row as a conflict.
        Its transaction is then tried again, and finds the row (issue #22: a worker crashed on it
        in the soak)."""
        if not changes:
            return
        again_on_conflict(lambda: self._write(changes), "alert history")

    def _write(self, changes: list[AlertChange]) -> None:
        """The changes in order, in one transaction. A repeat of a stored alert that nothing else
        changes in this batch (the commonest change by far: a count going up) is not loaded as an
        object: such repeats are one executemany UPDATE of their counts at the end."""
        with self.sessions.begin() as session:
            ids = sorted({c.doc["id"] for c in changes})
            stored = set(session.scalars(select(AlertRecord.id).where(AlertRecord.id.in_(ids))))
            # the stored alerts this batch changes otherwise than by a count: loaded as objects
            loaded = sorted(stored & {c.doc["id"] for c in changes if c.action not in REPEATS or "count" not in c.doc})
            known = (
                {r.id: r for r in session.scalars(select(AlertRecord).where(AlertRecord.id.in_(loaded)))}
                if loaded
                else {}
            )
            counted: dict[str, dict[str, Any]] = {}  # alert id → its newest count and update time (bound names)
            for change in changes:
                alert_id = change.doc["id"]
                record = known.get(alert_id)
                if change.action in REPEATS and record is not None:
                    # a repeat only raises the count (no timeline step); a redelivery changes nothing
                    record.count = change.doc.get("count", record.count)
                    record.updated_at = _ts(change.doc.get("updated_at") or change.doc["detected_at"])
                elif change.action in REPEATS and alert_id in stored:
                    updated = _ts(change.doc.get("updated_at") or change.doc["detected_at"])
                    counted[alert_id] = {"alert": alert_id, "count": change.doc["count"], "at": updated}
                elif change.action in REPEATS:
                    # the history lost it (a crash between Redis and SQL): write it as raised
                    known[alert_id] = apply_change(session, AlertChange(change.doc, "raised"), known)
                else:
                    known[alert_id] = apply_change(session, change, known)
            if counted:
                session.execute(COUNT_REPEATS, list(counted.values()))


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def apply_change(session: Session, change: AlertChange, known: dict[str, AlertRecord] | None = None) -> AlertRecord:
    """Upsert the alert's row and add the step."""
    doc = change.doc
    record = known.get(doc["id"]) if known is not None else session.get(AlertRecord, doc["id"])
    if record is None:
        record = AlertRecord(
            id=doc["id"],
            community_id=doc["community"],
            type=doc["type"],
            severity=doc["severity"],
            status=doc["status"],
            dedup_key=(doc.get("dedup") or dedup_key(doc["type"], doc.get("subject", {})))[:200],
            subject=doc.get("subject", {}),
            grid_id=doc.get("grid"),
            lat=doc.get("location", {}).get("lat"),
            lon=doc.get("location", {}).get("lon"),
            opened_at=_ts(doc["opened_at"]),
            detected_at=_ts(doc["detected_at"]),
            count=doc.get("count", 1),
            evidence=doc.get("evidence", {}),
        )
        session.add(record)
    record.status = doc["status"]
    record.count = doc.get("count", 1)
    record.updated_at = _ts(doc.get("updated_at") or doc["detected_at"])
    if doc["status"] not in OPEN_STATUSES and record.closed_at is None:
        record.closed_at = record.updated_at
    at = _ts(doc.get("updated_at") or doc["detected_at"])
    session.add(
        AlertStep(
            alert_id=record.id, at=at, action=change.action, status=doc["status"], actor=change.actor, note=change.note
        )
    )
    record_step(session, doc, change.action, at)  # its notifications, in the same transaction
    return record


def history_select(
    *,
    communities: list[str],
    status: str = "open",
    alert_type: str | None = None,
    since: dt.datetime | None = None,
    visible: AlertFilter | None = None,
) -> Select[AlertRecord]:
    """The query of the alerts of the history that pass the filters, unordered (the API pages it)."""
    query = select(AlertRecord).where(AlertRecord.community_id.in_(communities))
    if status == "open":
        query = query.where(AlertRecord.status.in_(OPEN_STATUSES))
    if alert_type:
        query = query.where(AlertRecord.type == alert_type)
    if since is not None:
        query = query.where(AlertRecord.updated_at >= since)
    if visible is not None:
        query = visible.narrow(query)
    return query


def history_query(
    session: Session,
    *,
    communities: list[str],
    status: str = "open",
    alert_type: str | None = None,
    since: dt.datetime | None = None,
    visible: AlertFilter | None = None,
    limit: int = 1000,
    most_serious_first: bool = False,
) -> list[AlertRecord]:
    """Alerts from the SQL history, newest first; ``visible``: only those a principal may see
    (``alerts.access.alert_filter``), so that the limit counts visible alerts only."""
    query = history_select(communities=communities, status=status, alert_type=alert_type, since=since, visible=visible)
    if most_serious_first:
        rank = case({"critical": 0, "high": 1, "medium": 2, "low": 3}, value=AlertRecord.severity, else_=4)
        query = query.order_by(rank, AlertRecord.detected_at.desc())
    else:
        query = query.order_by(AlertRecord.detected_at.desc())
    return list(session.scalars(query.limit(limit)))


def record_view(record: AlertRecord) -> dict[str, Any]:
    """An alert row in the format of interfaces §3."""
    location = {"lat": record.lat, "lon": record.lon} if record.lat is not None else {}
    return {
        "id": record.id,
        "type": record.type,
        "severity": record.severity,
        "status": record.status,
        "community": record.community_id,
        "subject": record.subject,
        "location": location,
        "opened_at": _iso(record.opened_at),
        "detected_at": _iso(record.detected_at),
        "updated_at": _iso(record.updated_at),
        "count": record.count,
        "evidence": record.evidence,
        "grid": record.grid_id,
    }


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
