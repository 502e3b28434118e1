"""Alerts: the live set in Redis (one open alert per (type, subject)) and the SQL history.

Raising is one Lua script per alert on the community's keys (one hash slot): it opens a new
alert or raises the open one's count, and is idempotent per ``token`` (the stream entry or
timer that caused it; the alert remembers its last 64 tokens), so an event delivered again
after a crash never counts twice.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInput, NotFound
from core.timefmt import iso_utc, ms_to_utc
from store.alert_models import OPEN_STATUSES, AlertRecord, AlertStep
from store.keys import Keys
from store.redis_server import RedisClient

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("acknowledged", "dispatched", "on_scene", "resolved", "false_alarm"),
    "acknowledged": ("dispatched", "on_scene", "resolved", "false_alarm"),
    "dispatched": ("dispatched", "acknowledged", "on_scene", "resolved", "false_alarm"),
    "on_scene": ("resolved", "false_alarm"),
    "resolved": (),
    "false_alarm": (),
}

# KEYS: open (hash dedup → doc), index (hash id → dedup), feed (zset id → ms), version
# ARGV: dedup, new id, new doc, now ms, token, now iso
RAISE_LUA = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local doc = cjson.decode(cur)
  local tokens = doc['tokens'] or {}
  for _, t in ipairs(tokens) do
    if t == ARGV[5] then return {doc['id'], '0', cur} end
  end
  table.insert(tokens, ARGV[5])
  while #tokens > 64 do table.remove(tokens, 1) end
  doc['tokens'] = tokens
  doc['count'] = doc['count'] + 1
  doc['last_seen_at'] = ARGV[6]
  doc['last_token'] = ARGV[5]
  doc['updated_at'] = ARGV[6]
  local enc = cjson.encode(doc)
  redis.call('HSET', KEYS[1], ARGV[1], enc)
  redis.call('ZADD', KEYS[3], ARGV[4], doc['id'])
  redis.call('INCR', KEYS[4])
  return {doc['id'], '0', enc}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
redis.call('INCR', KEYS[4])
return {ARGV[2], '1', ARGV[3]}
"""

# KEYS: open, index, feed, closed (hash id → doc), version
# ARGV: id, new status, actor, note, now ms, now iso, expected status ('' = any), closing ('1'/'0')
TRANSITION_LUA = """
local dedup = redis.call('HGET', KEYS[2], ARGV[1])
if not dedup then return {'missing'} end
local cur = redis.call('HGET', KEYS[1], dedup)
if not cur then return {'missing'} end
local doc = cjson.decode(cur)
if ARGV[7] ~= '' and doc['status'] ~= ARGV[7] then return {'conflict', cur} end
doc['status'] = ARGV[2]
doc['updated_at'] = ARGV[6]
local step = {at = ARGV[6], status = ARGV[2], actor = ARGV[3], note = ARGV[4]}
table.insert(doc['timeline'], step)
local enc = cjson.encode(doc)
if ARGV[8] == '1' then
  redis.call('HDEL', KEYS[1], dedup)
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], enc)
else
  redis.call('HSET', KEYS[1], dedup, enc)
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('INCR', KEYS[5])
return {'ok', enc}
"""


def dedup_key(alert_type: str, identity: dict[str, Any]) -> str:
    """type|canonical identity: one open alert per (type, subject)."""
    return alert_type + "|" + json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class AlertChange:
    """What happened to an alert, for the SQL history."""

    doc: dict[str, Any]
    action: str  # raised / repeated / acknowledged / … / resolved
    actor: str = "system"
    note: str = ""


class AlertStore:
    """The live alerts of every community."""

    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._raise = client.register_script(RAISE_LUA)
        self._transition = client.register_script(TRANSITION_LUA)

    def _index(self, community: str) -> str:
        return self.keys.alert(community, "index")

    def _closed(self, community: str) -> str:
        return self.keys.alert(community, "closed")

    def raise_alert(
        self,
        community: str,
        alert_type: str,
        *,
        severity: str,
        subject: dict[str, Any],
        at_ms: int,
        token: str,
        identity: dict[str, Any] | None = None,
        location: dict[str, float] | None = None,
        evidence: dict[str, Any] | None = None,
        grid: str | None = None,
    ) -> AlertChange:
        """Open an alert, or count a repeat of the open one for the same (type, subject)."""
        key = dedup_key(alert_type, identity if identity is not None else subject)
        now = iso_utc(at_ms)
        new_id = secrets.token_hex(8)
        doc = {
            "id": new_id,
            "type": alert_type,
            "severity": severity,
            "status": "new",
            "community": community,
            "subject": subject,
            "location": location or {},
            "opened_at": now,
            "detected_at": now,
            "updated_at": now,
            "last_seen_at": now,
            "count": 1,
            "evidence": evidence or {"_": None},
            "grid": grid,
            "last_token": token,
            "tokens": [token],
            "timeline": [{"at": now, "status": "new", "actor": "system", "note": ""}],
        }
        if evidence == {}:
            doc["evidence"] = {"_": None}  # cjson would turn an empty object into an array
        keys = [
            self.keys.alerts_open(community),
            self._index(community),
            self.keys.alerts_feed(community),
            self.keys.version(community),
        ]
        _alert_id, created, encoded = self._raise(
            keys=keys, args=[key, new_id, json.dumps(doc, ensure_ascii=False), at_ms, token, now]
        )
        out = _clean(json.loads(encoded))
        return AlertChange(
            out, "raised" if created == "1" else ("repeated" if out["last_token"] == token else "unchanged")
        )

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
            raise NotFound(f"no alert {alert_id}")
        if status not in TRANSITIONS.get(current["status"], ()):
            raise InvalidInput(f"an alert that is {current['status']} cannot become {status}")
        closing = status in ("resolved", "false_alarm")
        keys = [
            self.keys.alerts_open(community),
            self._index(community),
            self.keys.alerts_feed(community),
            self._closed(community),
            self.keys.version(community),
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
            raise NotFound(f"no open alert {alert_id}")
        if reply[0] == "conflict":
            raise InvalidInput("the alert changed meanwhile; reload and try again")
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


class AlertHistory:
    """Writes alert changes to SQL (the history reports and the API read)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def write(self, changes: list[AlertChange]) -> None:
        """Upsert each changed alert and append its step, in one transaction."""
        if not changes:
            return
        with self.sessions.begin() as session:
            for change in changes:
                if change.action == "unchanged":
                    # a redelivered event: the live store has it; make sure the history does too
                    if session.get(AlertRecord, change.doc["id"]) is None:
                        apply_change(session, AlertChange(change.doc, "raised"))
                    continue
                apply_change(session, change)


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def apply_change(session: Session, change: AlertChange) -> AlertRecord:
    """Upsert the alert's row and add the step."""
    doc = change.doc
    record = session.get(AlertRecord, doc["id"])
    if record is None:
        record = AlertRecord(
            id=doc["id"],
            community_id=doc["community"],
            type=doc["type"],
            severity=doc["severity"],
            status=doc["status"],
            dedup_key=dedup_key(doc["type"], doc.get("subject", {}))[:200],
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
    return record


def history_query(
    session: Session,
    *,
    communities: list[str],
    status: str = "open",
    alert_type: str | None = None,
    since: dt.datetime | None = None,
    grid: str | None = None,
    types: frozenset[str] | None = None,
    limit: int = 1000,
) -> list[AlertRecord]:
    """Alerts from the SQL history, newest first, filtered."""
    query = select(AlertRecord).where(AlertRecord.community_id.in_(communities))
    if status == "open":
        query = query.where(AlertRecord.status.in_(OPEN_STATUSES))
    if alert_type:
        query = query.where(AlertRecord.type == alert_type)
    if types is not None:
        query = query.where(AlertRecord.type.in_(sorted(types)))
    if since is not None:
        query = query.where(AlertRecord.updated_at >= since)
    if grid is not None:
        query = query.where(AlertRecord.grid_id == grid)
    return list(session.scalars(query.order_by(AlertRecord.detected_at.desc()).limit(limit)))


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
    }


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["AlertChange", "AlertHistory", "AlertStore", "history_query", "ms_to_utc", "public_view", "record_view"]
