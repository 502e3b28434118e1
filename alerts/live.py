"""The live alerts in Redis: one open alert per (type, subject), its transitions and counts.

Raising is one Lua script per alert on the community's keys (one hash slot): it opens a new
alert or raises the open one's count, and is idempotent per ``token`` (the stream entry or
timer that caused it; the alert remembers its last 64 tokens), so an event delivered again
after a crash never counts twice.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from alerts.lifecycle import CLOSED_STATUSES, can_become
from core.clock import Clock, WallClock
from core.errors import Conflict, InvalidInput, NotFound
from core.timefmt import iso_utc
from store.alert_scripts import RAISE_LUA, RECOUNT_LUA, TRANSITION_LUA
from store.keys import Keys
from store.redis_server import RedisClient, queue_script


def dedup_key(alert_type: str, identity: dict[str, Any]) -> str:
    """type|canonical identity: one open alert per (type, subject)."""
    return alert_type + "|" + json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class RaiseRequest:
    """An alert to open (or a repeat to count), with the tokens of the events or timers behind it."""

    alert_type: str
    severity: str
    subject: dict[str, Any]
    identity: dict[str, Any] | None
    location: dict[str, float] | None
    evidence: dict[str, Any] | None
    grid: str | None
    at_ms: int
    tokens: list[str]

    @property
    def key(self) -> str:
        """The dedup key: one open alert per (type, subject)."""
        return dedup_key(self.alert_type, self.identity if self.identity is not None else self.subject)


@dataclass
class AlertChange:
    """What happened to an alert, for the SQL history."""

    doc: dict[str, Any]
    action: str  # raised / repeated / acknowledged / … / resolved
    actor: str = "system"
    note: str = ""


class AlertStore:
    """The live alerts of every community."""

    def __init__(self, client: RedisClient, keys: Keys, clock: Clock | None = None) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock or WallClock()  # the city view's change marks follow it, not event time
        self._raise = client.register_script(RAISE_LUA)
        self._transition = client.register_script(TRANSITION_LUA)
        self._recount = client.register_script(RECOUNT_LUA)

    def _index(self, community: str) -> str:
        return self.keys.alert(community, "index")

    def _closed(self, community: str) -> str:
        return self.keys.alert(community, "closed")

    def raise_many(self, community: str, requests: list[RaiseRequest]) -> list[AlertChange]:
        """Open alerts, or count repeats of open ones, in one pipeline (one script call each)."""
        if not requests:
            return []
        keys = [
            self.keys.alerts_open(community),
            self._index(community),
            self.keys.alerts_feed(community),
            self.keys.version(community),
            self.keys.alert_counts(community),
        ]
        pipe = self.client.pipeline(transaction=False)
        for r in requests:
            now = iso_utc(r.at_ms)
            doc = {
                "id": secrets.token_hex(8),
                "type": r.alert_type,
                "severity": r.severity,
                "status": "new",
                "community": community,
                "subject": r.subject,
                "dedup": r.key,  # type + identity: the same key in Redis and in the SQL history
                "location": r.location or {},
                "opened_at": now,
                "detected_at": now,
                "updated_at": now,
                "last_seen_at": now,
                "count": 0,
                # cjson would turn an empty object into an array: a placeholder keeps it an object
                "evidence": r.evidence or {"_": None},
                "grid": r.grid,
                "last_token": "",
                "tokens": [],
                "timeline": [{"at": now, "status": "new", "actor": "system", "note": ""}],
                "flapping": bool((r.evidence or {}).get("flapping")),
            }
            queue_script(
                pipe,
                self._raise,
                keys,
                [r.key, doc["id"], json.dumps(doc, ensure_ascii=False), r.at_ms, now, *r.tokens],
            )
        changes = []
        for _alert_id, created, encoded, added in pipe.execute():
            action = "raised" if created == "1" else ("repeated" if added != "0" else "unchanged")
            changes.append(AlertChange(_clean(json.loads(encoded)), action))
        if any(c.action == "raised" for c in changes):
            self.client.zadd(self.keys.city_changes, {community: self.clock.now_ms()})
        return changes

    def open_doc(self, community: str, alert_type: str, identity: dict[str, Any]) -> dict[str, Any] | None:
        """The open alert of (type, subject), or None."""
        raw = self.client.hget(self.keys.alerts_open(community), dedup_key(alert_type, identity))
        return _clean(json.loads(raw)) if raw else None

    def transition(
        self,
        community: str,
        alert_id: str,
        status: str,
        *,
        actor: str,
        at_ms: int,
        note: str = "",
        expected: str | None = None,
    ) -> AlertChange:
        """Move an alert along its lifecycle (who and when recorded in its timeline)."""
        current = self.get(community, alert_id)
        if current is None:
            raise NotFound(key="error.no_alert", alert=alert_id)
        if expected is not None and current["status"] != expected:
            raise Conflict()
        if not can_become(current["status"], status):
            raise InvalidInput(key="error.alert_state", status=current["status"], wanted=status)
        closing = status in CLOSED_STATUSES
        keys = [
            self.keys.alerts_open(community),
            self._index(community),
            self.keys.alerts_feed(community),
            self._closed(community),
            self.keys.version(community),
            self.keys.alert_counts(community),
        ]
        reply = self._transition(
            keys=keys,
            args=[
                alert_id,
                status,
                actor,
                note[:2000],
                at_ms,
                iso_utc(at_ms),
                expected or current["status"],
                "1" if closing else "0",
            ],
        )
        if reply[0] == "missing":
            raise NotFound(key="error.no_alert", alert=alert_id)
        if reply[0] == "conflict":
            raise Conflict()
        if closing:
            self.client.zadd(self.keys.city_changes, {community: self.clock.now_ms()})
        return AlertChange(_clean(json.loads(reply[1])), status, actor=actor, note=note)

    def get(self, community: str, alert_id: str) -> dict[str, Any] | None:
        """One alert (open, or recently closed), or None."""
        dedup = self.client.hget(self._index(community), alert_id)
        raw = self.client.hget(self.keys.alerts_open(community), dedup) if dedup else None
        if raw is None:
            raw = self.client.hget(self._closed(community), alert_id)
        return _clean(json.loads(raw)) if raw else None

    def open_alerts(self, community: str) -> list[dict[str, Any]]:
        """Every open alert of the community, newest first."""
        docs = [_clean(json.loads(v)) for v in self.client.hvals(self.keys.alerts_open(community))]
        return sorted(docs, key=lambda d: d["updated_at"], reverse=True)

    def feed(self, community: str, limit: int = 50) -> list[dict[str, Any]]:
        """Open and recently closed alerts, most recently updated first."""
        ids = self.client.zrevrange(self.keys.alerts_feed(community), 0, limit - 1)
        out = []
        for alert_id in ids:
            doc = self.get(community, alert_id)
            if doc is not None:
                out.append(doc)
        return out

    def recount(self, community: str) -> int:
        """Rebuild the community's open-alert counts from its open alerts; returns how many are open."""
        return int(self._recount(keys=[self.keys.alerts_open(community), self.keys.alert_counts(community)]))

    def open_counts(self, communities: list[str]) -> dict[str, dict[str, int]]:
        """community → {"sev:high": n, "type:smoke": n, …} of its open alerts, in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for community in communities:
            pipe.hgetall(self.keys.alert_counts(community))
        return {
            c: {k: int(v) for k, v in raw.items() if int(v) > 0}
            for c, raw in zip(communities, pipe.execute(), strict=True)
        }

    def forget_closed(self, community: str, older_than_ms: int) -> None:
        """Drop closed alerts older than the cutoff from the live feed (SQL keeps them)."""
        feed = self.keys.alerts_feed(community)
        for alert_id in self.client.zrangebyscore(feed, "-inf", older_than_ms):
            if self.client.hexists(self._closed(community), alert_id):
                self.client.hdel(self._closed(community), alert_id)
                self.client.zrem(feed, alert_id)


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    """Undo Lua cjson's ways: an empty object comes back as an array, our placeholder removed."""
    evidence = doc.get("evidence")
    if not isinstance(evidence, dict):
        doc["evidence"] = {}
    else:
        evidence.pop("_", None)
    for field in ("subject", "location"):
        if not isinstance(doc.get(field), dict):
            doc[field] = {}
    return doc


def public_view(doc: dict[str, Any]) -> dict[str, Any]:
    """An alert in the format of interfaces §3 (plus the handling fields)."""
    return {
        "id": doc["id"],
        "type": doc["type"],
        "severity": doc["severity"],
        "status": doc["status"],
        "community": doc["community"],
        "subject": doc.get("subject", {}),
        "location": doc.get("location", {}),
        "opened_at": doc["opened_at"],
        "detected_at": doc["detected_at"],
        "updated_at": doc.get("updated_at"),
        "count": doc.get("count", 1),
        "evidence": doc.get("evidence", {}),
    }
