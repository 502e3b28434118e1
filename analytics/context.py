"""What a rule sees while it runs: the clock, the registry facts, alerts, timers, its own state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core.clock import Clock
from core.settings import Settings
from core.timefmt import iso_utc
from ingest.directory import CommunityFacts, Directory
from store.alerts import AlertChange, AlertStore, dedup_key
from store.keys import Keys
from store.redis_server import RedisClient


@dataclass
class RuleContext:
    """One community's context for a batch of events (or a sweep of timers)."""

    community: str
    clock: Clock
    facts: CommunityFacts
    directory: Directory
    redis: RedisClient
    keys: Keys
    alerts: AlertStore
    settings: Settings
    pipe: Any = None  # writes queued for the end of the batch (timers, state, change marks)
    token: str = ""
    changes: list[AlertChange] = field(default_factory=list)
    _open: set[str] | None = None

    def __post_init__(self) -> None:
        if self.pipe is None:
            self.pipe = self.redis.pipeline(transaction=False)

    def flush(self) -> None:
        """Send the queued writes."""
        self.pipe.execute()

    def open_keys(self) -> set[str]:
        """Dedup keys of the community's open alerts (read once per batch)."""
        if self._open is None:
            self._open = set(self.redis.hkeys(self.keys.alerts_open(self.community)))
        return self._open

    def now(self) -> int:
        """The clock's time (wall time live, event time in replay)."""
        return self.clock.now_ms()

    # --- alerts ---------------------------------------------------------------------------
    def alert(
        self,
        alert_type: str,
        *,
        severity: str,
        subject: dict[str, Any],
        identity: dict[str, Any] | None = None,
        location: dict[str, float] | None = None,
        evidence: dict[str, Any] | None = None,
        grid: str | None = None,
    ) -> AlertChange:
        """Raise (or count a repeat of) an alert; idempotent per event or timer."""
        change = self.alerts.raise_alert(
            self.community,
            alert_type,
            severity=severity,
            subject={k: v for k, v in subject.items() if v},
            identity=identity,
            location=location,
            evidence=evidence,
            grid=grid,
            at_ms=self.now(),
            token=self.token,
        )
        self.changes.append(change)
        self.touch(f"alert:{change.doc['id']}")
        return change

    def clear(self, alert_type: str, identity: dict[str, Any], note: str, *, not_before_ms: int | None = None) -> None:
        """Resolve the open alert of (type, subject), if any: the condition has ended.

        ``not_before_ms``: the time of the fact that ends it; an alert detected after that
        (an out-of-order event) stays open."""
        key = dedup_key(alert_type, identity)
        if key not in self.open_keys():
            return
        doc = self.alerts.open_doc(self.community, alert_type, identity)
        if doc is None:
            self.open_keys().discard(key)
            return
        if not_before_ms is not None and iso_utc(not_before_ms) < doc["detected_at"]:
            return
        self.open_keys().discard(key)
        change = self.alerts.transition(
            self.community, doc["id"], "resolved", actor="system", at_ms=self.now(), note=note
        )
        self.changes.append(change)
        self.touch(f"alert:{doc['id']}")

    # --- timers ---------------------------------------------------------------------------
    def schedule(
        self, timer: str, key: str, due_ms: int, *, only_later: bool = False, only_existing: bool = False
    ) -> None:
        """Fire timer for key at due_ms (queued; only_later never moves it earlier, only_existing never adds)."""
        self.pipe.zadd(self.keys.timer(self.community, timer), {key: due_ms}, gt=only_later, xx=only_existing)

    def cancel(self, timer: str, key: str) -> None:
        """Forget a scheduled timer (queued)."""
        self.pipe.zrem(self.keys.timer(self.community, timer), key)

    def scheduled(self, timer: str, key: str) -> int | None:
        """When the timer of key is due, or None."""
        score = self.redis.zscore(self.keys.timer(self.community, timer), key)
        return int(score) if score is not None else None

    # --- rule state -----------------------------------------------------------------------
    def state_get(self, rule: str, key: str) -> Any:
        """A rule's stored value for key (JSON), or None."""
        raw = self.redis.hget(self.keys.rule_state(self.community, rule), key)
        return json.loads(raw) if raw else None

    def state_set(self, rule: str, key: str, value: Any) -> None:
        """Store a rule's value for key (JSON), at once (a later event of the batch may read it)."""
        self.redis.hset(self.keys.rule_state(self.community, rule), key, json.dumps(value, ensure_ascii=False))

    # --- live view changes ----------------------------------------------------------------
    def touch(self, feature: str) -> None:
        """Note that a map feature changed now (the wall screen fetches only what changed)."""
        self.pipe.zadd(self.keys.changes(self.community), {feature: self.clock.now_ms()})
