"""The targets operators configure (``manage.py notify …``), and what the outbox holds for them."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from alerts.constants import ALERT_TYPES, SEVERITIES
from alerts.history import record_view
from alerts.models import AlertRecord
from auth.masking import mask_phone
from core.errors import InvalidInput, NotFound
from core.settings import Settings
from notify.channels import check_destination, parse_url
from notify.labels import alert_sentence
from notify.models import NotifyDelivery, NotifyTarget
from notify.outbox import forget_targets
from notify.policy import CHANNELS, EVENTS
from registry.models import Community

# the types issue #18 adds (other parts raise them); a target may subscribe to them already
MORE_TYPES = ("incident.reported", "resident.call", "device.battery_low")
PHONE = re.compile(r"^\+?[0-9]{5,20}$")


@dataclass(frozen=True)
class NewTarget:
    """What ``notify add`` asks for."""

    channel: str
    url: str
    community: str
    secret: str = ""
    types: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    min_severity: str = "low"
    recipients: tuple[str, ...] = ()
    name: str = ""


def _check(session: Session, settings: Settings, new: NewTarget) -> None:
    if new.channel not in CHANNELS:
        raise InvalidInput(key="notify.error.channel", channel=new.channel)
    if session.get(Community, new.community) is None:
        raise InvalidInput(key="notify.error.community", community=new.community)
    unknown = [x for x in new.types if x not in (*ALERT_TYPES, *MORE_TYPES)]
    if unknown:
        raise InvalidInput(key="notify.error.type", type=unknown[0])
    unknown = [x for x in new.events if x not in EVENTS]
    if unknown:
        raise InvalidInput(key="notify.error.event", event=unknown[0])
    if new.min_severity not in SEVERITIES:
        raise InvalidInput(key="notify.error.severity", severity=new.min_severity)
    bad = [p for p in new.recipients if not PHONE.match(p)]
    if bad:
        raise InvalidInput(key="notify.error.phone", phone=bad[0])
    if len(new.url) > 500 or len(new.name) > 64 or len(new.secret) > 128:
        raise InvalidInput(key="notify.error.long")
    check_destination(new.url, settings.notify_networks)


def add_target(session: Session, settings: Settings, new: NewTarget) -> NotifyTarget:
    """Check and store a target (a webhook without a secret gets a generated one)."""
    _check(session, settings, new)
    target = NotifyTarget(
        id="nt" + secrets.token_hex(5),
        community_id=new.community,
        channel=new.channel,
        url=new.url.strip(),
        secret=new.secret or secrets.token_urlsafe(24),
        name=new.name,
        recipients=list(new.recipients),
        types=list(new.types),
        events=list(new.events),
        min_severity=new.min_severity,
    )
    session.add(target)
    forget_targets(session)
    return target


def get_target(session: Session, target_id: str) -> NotifyTarget:
    """The target, or NotFound."""
    target = session.get(NotifyTarget, target_id)
    if target is None:
        raise NotFound(key="notify.error.no_target", target=target_id)
    return target


def remove_target(session: Session, target_id: str) -> None:
    """Remove a target and its deliveries (pending ones are dropped)."""
    session.delete(get_target(session, target_id))
    forget_targets(session)


def target_rows(session: Session) -> list[dict[str, Any]]:
    """Every target with its outbox counts (secrets never shown, phones masked)."""
    counts: dict[tuple[str, str], int] = {
        (tid, state): n
        for tid, state, n in session.execute(
            select(NotifyDelivery.target_id, NotifyDelivery.state, func.count()).group_by(
                NotifyDelivery.target_id, NotifyDelivery.state
            )
        )
    }
    return [
        {
            "id": t.id,
            "name": t.name,
            "channel": t.channel,
            "url": t.url,
            "community": t.community_id,
            "types": t.types,
            "events": t.events,
            "min_severity": t.min_severity,
            "to": [mask_phone(p) for p in t.recipients],
            **{state: counts.get((t.id, state), 0) for state in ("pending", "delivered", "dead")},
        }
        for t in session.scalars(select(NotifyTarget).order_by(NotifyTarget.community_id, NotifyTarget.created_at))
    ]


def target_label(target: NotifyTarget) -> str:
    """110平台, or ``webhook hooks.example.cn`` when the target has no name."""
    if target.name:
        return target.name
    try:
        host = parse_url(target.url)[1]
    except InvalidInput:
        host = target.url[:60]
    return f"{target.channel} {host}"


def outbox_counts(session: Session) -> dict[str, int]:
    """How many targets there are and how many deliveries wait to be sent."""
    pending = select(func.count()).select_from(NotifyDelivery).where(NotifyDelivery.state == "pending")
    return {
        "targets": session.scalar(select(func.count()).select_from(NotifyTarget)) or 0,
        "pending": session.scalar(pending) or 0,
    }


def outbox_states(session: Session) -> dict[str, int]:
    """The outbox's deliveries not delivered: waiting for their first try (``pending``), waiting after
    a failed one (``retrying``), given up after the retry window (``dead``)."""
    d = NotifyDelivery
    retried = case((d.attempts > 0, "retrying"), else_="pending")
    state = case((d.state == "dead", "dead"), else_=retried)
    rows = session.execute(select(state, func.count()).where(d.state.in_(("pending", "dead"))).group_by(state))
    counts = {"pending": 0, "retrying": 0, "dead": 0}
    counts.update({str(name): int(n) for name, n in rows})
    return counts


@dataclass(frozen=True)
class DeadLine:
    """A dead delivery as people read it."""

    target: str
    alert: str
    at_ms: int
    error: str


def dead_lines(session: Session, rows: list[Any], lang: str) -> list[DeadLine]:
    """The target and the alert (community, address, alert name) of each dead delivery."""
    ids = sorted({delivery.alert_id for delivery, _ in rows})
    records = {r.id: r for r in session.scalars(select(AlertRecord).where(AlertRecord.id.in_(ids)))}
    out = []
    for delivery, target in rows:
        record = records.get(delivery.alert_id)
        alert = alert_sentence(session, record_view(record), delivery.event, lang) if record else delivery.alert_id
        finished = delivery.finished_at or delivery.created_at
        out.append(DeadLine(target_label(target), alert, int(finished.timestamp() * 1000), delivery.last_error))
    return out


def dead_deliveries(session: Session, communities: frozenset[str] | None, limit: int = 50) -> tuple[int, list[Any]]:
    """(how many deliveries are dead, the newest of them with their targets) within the communities
    (None: all)."""
    query = select(NotifyDelivery, NotifyTarget).join(NotifyTarget, NotifyTarget.id == NotifyDelivery.target_id)
    count = select(func.count()).select_from(NotifyDelivery).where(NotifyDelivery.state == "dead")
    query = query.where(NotifyDelivery.state == "dead")
    if communities is not None:
        query = query.where(NotifyDelivery.community_id.in_(sorted(communities)))
        count = count.where(NotifyDelivery.community_id.in_(sorted(communities)))
    total = session.scalar(count) or 0
    rows = list(session.execute(query.order_by(NotifyDelivery.finished_at.desc()).limit(limit)).tuples())
    return total, rows
