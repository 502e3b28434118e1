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

from sqlalchemy import case, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, WallClock
from core.errors import Conflict, InvalidInput, NotFound
from core.timefmt import iso_utc, ms_to_utc
from store.alert_models import OPEN_STATUSES, AlertRecord, AlertStep
from store.keys import Keys
from store.redis_server import RedisClient, queue_script

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("acknowledged", "dispatched", "on_scene", "resolved", "false_alarm"),
    "acknowledged": ("dispatched", "on_scene", "resolved", "false_alarm"),
    "dispatched": ("dispatched", "acknowledged", "on_scene", "resolved", "false_alarm"),
    "on_scene": ("resolved", "false_alarm"),
    "resolved": (),
    "false_alarm": (),
}

# KEYS: open (hash dedup → doc), index (hash id → dedup), feed (zset id → ms), version, counts
# ARGV: dedup, new id, new doc, now ms, now iso, token…
RAISE_LUA = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local doc
local created = '0'
if cur then doc = cjson.decode(cur) else doc = cjson.decode(ARGV[3]); created = '1' end
local tokens = doc['tokens'] or {}
local seen = {}
for _, t in ipairs(tokens) do seen[t] = true end
local added = 0
for i = 6, #ARGV do
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    table.insert(tokens, ARGV[i])
    added = added + 1
  end
end
if added == 0 then return {doc['id'], '0', cur, '0'} end
while #tokens > 64 do table.remove(tokens, 1) end
doc['tokens'] = tokens
doc['last_token'] = ARGV[#ARGV]
if created == '1' then
  doc['count'] = added
else
  doc['count'] = doc['count'] + added
  doc['last_seen_at'] = ARGV[5]
  doc['updated_at'] = ARGV[5]
end
local enc = cjson.encode(doc)
redis.call('HSET', KEYS[1], ARGV[1], enc)
if created == '1' then
  redis.call('HSET', KEYS[2], doc['id'], ARGV[1])
  redis.call('HINCRBY', KEYS[5], 'sev:' .. doc['severity'], 1)
  redis.call('HINCRBY', KEYS[5], 'type:' .. doc['type'], 1)
end
redis.call('ZADD', KEYS[3], ARGV[4], doc['id'])
redis.call('INCR', KEYS[4])
return {doc['id'], created, enc, tostring(added)}
"""

# KEYS: open, index, feed, closed (hash id → doc), version, counts
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
  redis.call('HINCRBY', KEYS[6], 'sev:' .. doc['severity'], -1)
  redis.call('HINCRBY', KEYS[6], 'type:' .. doc['type'], -1)
else
  redis.call('HSET', KEYS[1], dedup, enc)
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('INCR', KEYS[5])
return {'ok', enc}
"""

# KEYS: open, counts — rebuilds the counts from the open alerts (restart-safe, atomic per community)
RECOUNT_LUA = """
local vals = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[2])
for _, v in ipairs(vals) do
  local doc = cjson.decode(v)
  redis.call('HINCRBY', KEYS[2], 'sev:' .. doc['severity'], 1)
  redis.call('HINCRBY', KEYS[2], 'type:' .. doc['type'], 1)
end
return #vals
"""


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
        if status not in TRANSITIONS.get(current["status"], ()):
            raise InvalidInput(key="error.alert_state", status=current["status"], wanted=status)
        closing = status in ("resolved", "false_alarm")
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


class AlertHistory:
    """Writes alert changes to SQL (the history reports and the API read)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def write(self, changes: list[AlertChange]) -> None:
        """Upsert each changed alert and append its step, in one transaction."""
        if not changes:
            return
        with self.sessions.begin() as session:
            ids = sorted({c.doc["id"] for c in changes})
            known = {r.id: r for r in session.scalars(select(AlertRecord).where(AlertRecord.id.in_(ids)))}
            for change in changes:
                record = known.get(change.doc["id"])
                if change.action in ("unchanged", "repeated") and record is not None:
                    # a repeat only raises the count (no timeline step); a redelivery changes nothing
                    record.count = change.doc.get("count", record.count)
                    record.updated_at = _ts(change.doc.get("updated_at") or change.doc["detected_at"])
                    continue
                if change.action in ("unchanged", "repeated"):
                    # the history lost it (a crash between Redis and SQL): write it as raised
                    known[change.doc["id"]] = apply_change(session, AlertChange(change.doc, "raised"), known)
                else:
                    known[change.doc["id"]] = apply_change(session, change, known)


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
    hidden: frozenset[str] = frozenset(),
    limit: int = 1000,
    most_serious_first: bool = False,
) -> list[AlertRecord]:
    """Alerts from the SQL history, newest first, filtered (``types``: only these; ``hidden``: never these)."""
    query = select(AlertRecord).where(AlertRecord.community_id.in_(communities))
    if status == "open":
        query = query.where(AlertRecord.status.in_(OPEN_STATUSES))
    if alert_type:
        query = query.where(AlertRecord.type == alert_type)
    if types is not None:
        query = query.where(AlertRecord.type.in_(sorted(types)))
    if hidden:
        query = query.where(AlertRecord.type.not_in(sorted(hidden)))
    if since is not None:
        query = query.where(AlertRecord.updated_at >= since)
    if grid is not None:
        query = query.where(AlertRecord.grid_id == grid)
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


__all__ = ["AlertChange", "AlertHistory", "AlertStore", "history_query", "ms_to_utc", "public_view", "record_view"]
