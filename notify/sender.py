"""The sender: delivers the outbox — at least once, in order per (target, alert), retried with
capped exponential backoff for SANDTABLE_NOTIFY_RETRY_HOURS, then dead.

Several senders may run at once: each claims due deliveries with a lease (``leased_by`` a token of
its own, ``lease_until``); only the oldest pending delivery of each (target, alert) is due, so the
next event of an alert never overtakes the previous one. A sender that dies leaves its claims to
expire; they are then taken up again (at least once: a receiver deduplicates by delivery id).
Deliveries to different alerts go out concurrently from a thread pool; each outcome is a step on
the alert's timeline (notify_delivered / notify_failed / notify_dead).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, exists, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from alerts.models import AlertRecord, AlertStep
from core.clock import Clock, WallClock
from core.errors import StoreUnavailable
from core.i18n import t
from core.metrics import metrics
from core.timefmt import iso_utc, ms_to_utc
from notify.channels import Outcome, Poster
from notify.models import NotifyDelivery, NotifyTarget
from notify.policy import backoff_seconds
from notify.targets import target_label
from store.stores import Stores

log = logging.getLogger(__name__)
BREAKER_THRESHOLD = 5  # failures in a row after which a target is only probed
RECENT_SECONDS = 5  # deliveries due for longer than this are a backlog: sent after the newly due


@dataclass(frozen=True)
class Claimed:
    """A delivery this sender holds the lease of."""

    seq: int
    id: str
    token: str
    target_id: str
    alert_id: str
    body: bytes
    url: str
    secret: str
    target: str  # the target as people read it: its name, else channel and host


class Breaker:
    """Targets that keep failing (a webhook down for hours, an SMS gateway unplugged): after
    ``threshold`` failures in a row a target is only probed — one delivery per ``probe_ms`` — until
    one succeeds, so a dead target never eats the sender's capacity for the others. Per sender,
    in memory: a restarted sender learns it again in a few attempts."""

    def __init__(self, threshold: int, probe_ms: int) -> None:
        self.threshold = threshold
        self.probe_ms = probe_ms
        self._failures: dict[str, int] = {}
        self._next_probe: dict[str, int] = {}

    def outcome(self, target: str, ok: bool, now_ms: int) -> None:
        """Count a success (closes the breaker) or a failure (opens it at the threshold)."""
        if ok:
            self._failures.pop(target, None)
            self._next_probe.pop(target, None)
            return
        self._failures[target] = self._failures.get(target, 0) + 1
        if self._failures[target] >= self.threshold:
            self._next_probe[target] = now_ms + self.probe_ms

    def held(self) -> list[str]:
        """The targets only probed now."""
        return sorted(self._next_probe)

    def probes_due(self, now_ms: int) -> list[str]:
        """The held targets whose next probe is due (each is then not due again for ``probe_ms``)."""
        due = [t for t, at in self._next_probe.items() if at <= now_ms]
        for target in due:
            self._next_probe[target] = now_ms + self.probe_ms
        return sorted(due)


class Sender:
    """Claims, sends and records deliveries of the outbox."""

    def __init__(self, stores: Stores, *, clock: Clock | None = None, poster: Poster | None = None) -> None:
        self.stores = stores
        self.settings = stores.settings
        self.clock = clock or WallClock()
        cfg = self.settings
        self.poster = poster or Poster(
            allowed=cfg.notify_networks, timeout=cfg.notify_timeout_seconds, pool_size=cfg.notify_concurrency
        )
        self.pool = ThreadPoolExecutor(max_workers=cfg.notify_concurrency, thread_name_prefix="notify")
        self.breaker = Breaker(BREAKER_THRESHOLD, int(cfg.notify_backoff_seconds * 500))
        for outcome in ("delivered", "failed", "dead"):  # shown from the start, at 0
            metrics().notify_attempts.labels(outcome)

    def _now(self) -> dt.datetime:
        return ms_to_utc(self.clock.now_ms())

    def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries, each the oldest pending one of its (target, alert)."""
        now = self._now()
        token = secrets.token_hex(10)
        d = NotifyDelivery
        earlier = aliased(NotifyDelivery)
        free = or_(d.lease_until.is_(None), d.lease_until < now)
        blocked = exists().where(
            earlier.target_id == d.target_id,
            earlier.alert_id == d.alert_id,
            earlier.state == "pending",
            earlier.seq < d.seq,
        )
        with self.stores.sessions.begin() as session:
            due = select(d.seq).where(d.state == "pending", d.next_at <= now, free, ~blocked)
            # what became due in the last few seconds goes first: a backlog left by an outage (or by a
            # target only probed meanwhile) drains behind new alerts, never in front of them
            recent = now - dt.timedelta(seconds=RECENT_SECONDS)
            order = (case((d.next_at >= recent, 0), else_=1), d.next_at, d.seq)
            held = self.breaker.held()
            query = due.where(d.target_id.not_in(held)) if held else due
            seqs = list(session.scalars(query.order_by(*order).limit(limit)))
            for target in self.breaker.probes_due(self.clock.now_ms()):
                seqs += session.scalars(due.where(d.target_id == target).order_by(*order).limit(1))
            if not seqs:
                return []
            lease = now + dt.timedelta(seconds=self.settings.notify_lease_seconds)
            session.execute(
                update(d)
                .where(d.seq.in_(seqs), d.state == "pending", free)
                .values(lease_until=lease, leased_by=token)
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                select(d, NotifyTarget)
                .join(NotifyTarget, NotifyTarget.id == d.target_id)
                .where(d.seq.in_(seqs), d.leased_by == token)
            )
            return [
                Claimed(row.seq, row.id, token, t.id, row.alert_id, row.body.encode(), t.url, t.secret, target_label(t))
                for row, t in rows
            ]

    def post(self, claimed: Claimed) -> Outcome:
        """Send one claimed delivery (never raises)."""
        return self.poster.post(claimed.url, claimed.body, secret=claimed.secret, delivery=claimed.id)

    def record(self, results: list[tuple[Claimed, Outcome]]) -> None:
        """Write the outcomes: delivered, failed (next try scheduled) or dead; each a timeline step."""
        if not results:
            return
        now = self._now()
        cfg = self.settings
        window = dt.timedelta(hours=cfg.notify_retry_hours)
        with self.stores.sessions.begin() as session:
            alert_ids = sorted({c.alert_id for c, _ in results})
            found = select(AlertRecord.id, AlertRecord.status).where(AlertRecord.id.in_(alert_ids))
            statuses: dict[str, str] = {str(row[0]): str(row[1]) for row in session.execute(found)}
            deliveries = {
                row.seq: row
                for row in session.scalars(
                    select(NotifyDelivery).where(NotifyDelivery.seq.in_([c.seq for c, _ in results]))
                )
            }
            attempts = metrics().notify_attempts
            for claimed, outcome in sorted(results, key=lambda r: r[0].seq):
                delivery = deliveries.get(claimed.seq)
                if delivery is None or delivery.state != "pending" or delivery.leased_by != claimed.token:
                    continue  # the target was removed, or the lease ran out and another sender took it
                self.breaker.outcome(claimed.target_id, outcome.ok, self.clock.now_ms())
                delivery.attempts += 1
                delivery.lease_until = None
                delivery.last_error = "" if outcome.ok else outcome.detail[:300]
                if outcome.ok:
                    delivery.state, delivery.finished_at, action = "delivered", now, "notify_delivered"
                elif now >= delivery.created_at + window:
                    delivery.state, delivery.finished_at, action = "dead", now, "notify_dead"
                else:
                    wait_s = backoff_seconds(
                        delivery.attempts, cfg.notify_backoff_seconds, cfg.notify_backoff_max_seconds
                    )
                    delivery.next_at = min(now + dt.timedelta(seconds=wait_s), delivery.created_at + window)
                    action = "notify_failed"
                attempts.labels(action.removeprefix("notify_")).inc()
                if claimed.alert_id in statuses:
                    note = f"{claimed.target} · {delivery.event} · {outcome.detail}"
                    if action == "notify_failed":
                        note += f" · #{delivery.attempts}, {iso_utc(int(delivery.next_at.timestamp() * 1000))}"
                    session.add(
                        AlertStep(
                            alert_id=claimed.alert_id,
                            at=now,
                            action=action,
                            status=statuses[claimed.alert_id],
                            actor="system",  # not a person: reports count only human steps (reports/calc.is_human)
                            note=note[:1000],
                        )
                    )

    def run_once(self, limit: int | None = None) -> int:
        """Claim what is due, send it concurrently, record the outcomes; the number handled."""
        claimed = self.claim(limit or self.settings.notify_batch)
        outcomes = list(self.pool.map(self.post, claimed))
        self.record(list(zip(claimed, outcomes, strict=True)))
        return len(claimed)

    def drain(self, max_rounds: int = 10_000) -> int:
        """run_once until nothing is due (tests, ``notify send --once``); the number handled."""
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            if not handled:
                break
            total += handled
        return total

    def run_forever(self, stop: threading.Event) -> None:
        """Keep up to twice the concurrency in flight; record outcomes as they come back."""
        cfg = self.settings
        inflight: dict[Future[Outcome], Claimed] = {}
        while not stop.is_set():
            try:
                done = [f for f in inflight if f.done()]
                if done:
                    self.record([(inflight.pop(f), f.result()) for f in done])
                room = 2 * cfg.notify_concurrency - len(inflight)
                claimed = self.claim(min(room, cfg.notify_batch)) if room > 0 else []
                for item in claimed:
                    inflight[self.pool.submit(self.post, item)] = item
            except (SQLAlchemyError, StoreUnavailable) as err:
                log.warning("notify: the database did not answer (%s); trying again", err)
                stop.wait(max(1.0, cfg.notify_poll_seconds))
                continue
            if done or claimed:
                continue
            if inflight:
                wait(list(inflight), timeout=cfg.notify_poll_seconds, return_when=FIRST_COMPLETED)
            else:
                stop.wait(cfg.notify_poll_seconds)
        wait(list(inflight))
        self.record([(c, f.result()) for f, c in inflight.items()])

    def send_test(self, target: NotifyTarget) -> Outcome:
        """Send a test delivery to a target now (not through the outbox)."""
        delivery = secrets.token_hex(16)
        body: dict[str, Any] = {
            "delivery": delivery,
            "event": "test",
            "at": iso_utc(self.clock.now_ms()),
            "alert": None,
        }
        if target.channel == "sms":
            body["to"] = list(target.recipients)
            body["text"] = t("notify.test_text", "zh")
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return self.poster.post(target.url, raw, secret=target.secret, delivery=delivery)

    def close(self) -> None:
        """Stop the thread pool and close the connections."""
        self.pool.shutdown(wait=True)
        self.poster.close()
