"""The durable outbox: an alert's step writes its notifications in the same transaction.

``record_step`` is called wherever a step of an alert's timeline is written (alerts/history.py for
raised / dispatched / closed, the closed loop's task offers and escalations): the in-app notices
and one delivery per subscribed target are added to the caller's session, so they commit — or roll
back — together with the step. Nothing is sent here: the sender (notify/sender.py) does that.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import t
from core.timefmt import iso_utc, utc_to_ms
from notify.labels import alert_sentence
from notify.models import NotifyDelivery, NotifyNotice, NotifyTarget
from notify.policy import SMS_EVENTS, audiences, event_of_step, leaves_the_system, target_wants

PUBLIC_FIELDS = (
    "id", "type", "severity", "status", "community", "subject", "location",
    "opened_at", "detected_at", "updated_at", "count", "evidence", "grid",
)  # fmt: skip
# what never leaves the app: person ids, plates, openers, evidence images, wanted-list notes
PRIVATE_SUBJECT = ("person", "plate")
PRIVATE_EVIDENCE = ("opener", "opener_kind", "image", "watchlist_note", "note")
_CACHE = "notify.targets"


def outbound_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The alert in the format of interfaces §3 as it may leave the app (no person data)."""
    out = {field: doc.get(field) for field in PUBLIC_FIELDS}
    out["subject"] = {k: v for k, v in (doc.get("subject") or {}).items() if k not in PRIVATE_SUBJECT}
    out["evidence"] = {k: v for k, v in (doc.get("evidence") or {}).items() if k not in PRIVATE_EVIDENCE}
    out["location"] = doc.get("location") or {}
    out["count"] = doc.get("count", 1)
    return out


def _targets(session: Session, community: str) -> list[NotifyTarget]:
    """The community's targets, read once per transaction."""
    cache: dict[str, list[NotifyTarget]] = session.info.setdefault(_CACHE, {})
    if community not in cache:
        cache[community] = list(session.scalars(select(NotifyTarget).where(NotifyTarget.community_id == community)))
    return cache[community]


def forget_targets(session: Session) -> None:
    """Drop the per-transaction cache (after the targets changed in this session)."""
    session.info.pop(_CACHE, None)


def record_step(
    session: Session, doc: dict[str, Any], action: str, at: dt.datetime, *, assignee: str | None = None
) -> None:
    """Add the notifications an alert's step causes to the session (none when it is no event);
    assignee: whom a task is offered to."""
    event = event_of_step(action)
    if event is None:
        return
    alert_type, severity, community = str(doc["type"]), str(doc["severity"]), str(doc["community"])
    for audience in audiences(event, alert_type, doc.get("grid"), assignee):
        session.add(
            NotifyNotice(
                community_id=community,
                audience=audience,
                alert_id=doc["id"],
                event=event,
                alert_type=alert_type,
                severity=severity,
                at=at,
            )
        )
    if not leaves_the_system(alert_type):
        return
    view: dict[str, Any] | None = None
    for target in _targets(session, community):
        events = target.events or (list(SMS_EVENTS) if target.channel == "sms" else [])
        wanted = target_wants(
            types=target.types,
            events=events,
            min_severity=target.min_severity,
            alert_type=alert_type,
            severity=severity,
            event=event,
        )
        if not wanted:
            continue
        view = view or outbound_view(doc)
        add_delivery(session, target, doc["id"], community, event, at, view)


def add_delivery(
    session: Session,
    target: NotifyTarget,
    alert_id: str,
    community: str,
    event: str,
    at: dt.datetime,
    view: dict[str, Any],
) -> NotifyDelivery:
    """One delivery in the outbox, its body fixed now (a retry sends the same bytes, same signature)."""
    delivery_id = secrets.token_hex(16)
    body: dict[str, Any] = {"delivery": delivery_id, "event": event, "at": iso_utc(utc_to_ms(at)), "alert": view}
    if target.channel == "sms":
        body["to"] = list(target.recipients)
        body["text"] = "【" + t("app.short", "zh") + "】" + alert_sentence(session, view, event, "zh")
    delivery = NotifyDelivery(
        id=delivery_id,
        target_id=target.id,
        alert_id=alert_id,
        community_id=community,
        event=event,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        state="pending",
        attempts=0,
        created_at=at,
        next_at=at,
        leased_by="",
        last_error="",
    )
    session.add(delivery)
    return delivery
