"""What a rule sees while it runs: the clock, the registry facts, alerts, timers, its own state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import msgspec

from alerts.live import AlertChange, AlertStore, RaiseRequest, dedup_key
from analytics.batch import BatchWrites
from core.clock import Clock
from core.settings import Settings
from core.timefmt import iso_utc
from ingest.directory import CommunityFacts, Directory
from registry.modes import AWAY, AWAY_ALERTS, MAINTENANCE, NEVER_SILENCED, count_suppressed, holds, mode_field
from store.keys import Keys
from store.redis_server import RedisClient

# the rules' state values are JSON; msgspec reads and writes it several times faster than json
STATE_DECODER = msgspec.json.Decoder()
STATE_ENCODER = msgspec.json.Encoder()
T = TypeVar("T")
FLAP_WINDOW_MS = 10 * 60_000
FLAP_CYCLES = 3


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
    pipe: Any = None  # the pipeline the batch's writes go out on
    writes: BatchWrites = field(default_factory=BatchWrites)  # coalesced writes (timers, state, marks)
    token: str = ""
    changes: list[AlertChange] = field(default_factory=list)
    _open: set[str] | None = None
    _open_types: set[str] | None = None  # the alert types among _open (a clear of another type is a no-op)
    _pending: dict[str, RaiseRequest] = field(default_factory=dict)
    _pending_types: set[str] = field(default_factory=set)  # the alert types among _pending
    _state: dict[tuple[str, str], Any] = field(default_factory=dict)
    # (rule, key) → True when set, False when deleted in this batch: written (the last value of each,
    # encoded once) when the batch is flushed
    _dirty: dict[tuple[str, str], bool] = field(default_factory=dict)
    _timer_keys: dict[str, str] = field(default_factory=dict)  # timer → its key
    # (rule, key) → (the stored value, what the rule's decode made of it): see state_view
    _views: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict)
    loop: Any = None  # the closed loop (closedloop.service.Loop), for rules that move tasks
    # SQL side effects the worker writes after the batch, each with the token (event or timer) behind
    # it: a token already applied (a redelivered batch, a timer fired again) is not written twice
    sql: list[tuple[str, Any]] = field(default_factory=list)  # (token, function(session))
    counted: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)  # (token, counter key)
    _tasks: dict[str, str] | None = None
    # the time of the fact being judged (the event's ts, the timer's due time), and the timer firing
    fact_ms: int | None = None
    firing: tuple[str, str] | None = None  # (timer, member) while a timer is handled
    _modes: dict[str, str] | None = None

    def active_tasks(self) -> dict[str, str]:
        """guard id → its accepted task (JSON), read once per batch."""
        if self._tasks is None:
            self._tasks = self.redis.hgetall(self.keys.rule_state(self.community, "tasks"))
        return self._tasks

    def __post_init__(self) -> None:
        if self.pipe is None:
            self.pipe = self.redis.pipeline(transaction=False)

    def flush(self) -> None:
        """Send the queued raises and writes."""
        self.flush_alerts()
        self._write_state()
        self.writes.send(self.pipe)
        self.pipe.execute()

    def _write_state(self) -> None:
        """Queue the rules' changed values: each value set in the batch encoded once, its last."""
        for (rule, key), kept in self._dirty.items():
            if kept:
                self.writes.hset(
                    self.keys.rule_state(self.community, rule),
                    key,
                    STATE_ENCODER.encode(self._state[(rule, key)]).decode(),
                )
            else:
                self.writes.hdel(self.keys.rule_state(self.community, rule), key)
        self._dirty.clear()

    def open_keys(self) -> set[str]:
        """Dedup keys of the community's open alerts (read once per batch)."""
        if self._open is None:
            self._open = set(self.redis.hkeys(self.keys.alerts_open(self.community)))
            self._open_types = {key.split("|", 1)[0] for key in self._open}
        return self._open

    def _may_clear(self, alert_type: str) -> bool:
        """False when no alert of the type is open or being raised in this batch: ``clear`` then has
        nothing to do, and skips building the alert's key (most events clear nothing)."""
        self.open_keys()
        return alert_type in (self._open_types or ()) or alert_type in self._pending_types

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
    ) -> None:
        """Raise (or count a repeat of) an alert; idempotent per event or timer. Raises of one batch
        are coalesced per (type, subject) and sent at the end of the batch."""
        clean = {k: v for k, v in subject.items() if v}
        if self._silenced(alert_type, clean):
            return
        key = dedup_key(alert_type, identity if identity is not None else clean)
        pending = self._pending.get(key)
        if pending is None:  # whether it is flapping is looked up for the whole batch in flush_alerts
            self._pending_types.add(alert_type)
            self._pending[key] = RaiseRequest(
                alert_type, severity, clean, identity, location, evidence, grid, self.now(), [self.token]
            )
        else:
            pending.tokens.append(self.token)

    # --- maintenance and away modes (registry/modes.py) --------------------------------------
    def mode(self, kind: str, subject: str) -> dict[str, Any] | None:
        """The maintenance (of a device) or away (of a person) period holding at the fact's time, or
        None; the community's modes hash is read once per batch."""
        if self._modes is None:
            self._modes = self.redis.hgetall(self.keys.modes(self.community))
        at = self.fact_ms if self.fact_ms is not None else self.now()
        return holds(self._modes.get(mode_field(kind, subject)), at)

    def _silenced(self, alert_type: str, subject: dict[str, Any]) -> bool:
        """True when the raise is suppressed: an away elder's elder alert, or any alert (but a wanted
        person's) whose subject device is in maintenance. The period counts it (once per event or
        timer); a silenced timer of a device in maintenance fires again when the maintenance ends."""
        period = None
        if alert_type in AWAY_ALERTS and subject.get("person"):
            period = self.mode(AWAY, str(subject["person"]))
        if period is None and alert_type not in NEVER_SILENCED and subject.get("device"):
            period = self.mode(MAINTENANCE, str(subject["device"]))
            if period is not None and self.firing is not None:
                self.schedule(self.firing[0], self.firing[1], int(period["until"]))
        if period is None:
            return False
        self.write_sql(lambda session, pid=int(period["id"]): count_suppressed(session, pid))
        return True

    def _note_clear(self, key: str) -> None:
        """Remember when an alert of this (type, subject) was cleared (flapping detection)."""
        now = self.now()
        recent = [t for t in (self.state_get("hygiene", key) or []) if now - t < FLAP_WINDOW_MS]
        self.state_set("hygiene", key, [*recent[-FLAP_CYCLES:], now])

    def _flapping(self, key: str) -> bool:
        """True after FLAP_CYCLES open/clear cycles within FLAP_WINDOW_MS."""
        now = self.now()
        return len([t for t in (self.state_get("hygiene", key) or []) if now - t < FLAP_WINDOW_MS]) >= FLAP_CYCLES

    def flush_alerts(self) -> None:
        """Send the batch's raises (one pipeline); new alerts are checked for flapping first (the
        recent clears of all their keys read in one round trip)."""
        if not self._pending:
            return
        fresh = [key for key in self._pending if key not in self.open_keys()]
        if fresh:
            self.prefetch("hygiene", set(fresh))
            for key in fresh:
                if self._flapping(key):
                    request = self._pending[key]
                    request.evidence = {**(request.evidence or {}), "flapping": True}
        for key, change in zip(
            self._pending, self.alerts.raise_many(self.community, list(self._pending.values())), strict=True
        ):
            self.open_keys().add(key)
            (self._open_types or set()).add(key.split("|", 1)[0])
            self.changes.append(change)
            self.touch(f"alert:{change.doc['id']}")
        self._pending.clear()
        self._pending_types.clear()

    def clear(
        self,
        alert_type: str,
        identity: dict[str, Any],
        note: str | Callable[[], str],
        *,
        fact_ms: int | None = None,
        since_field: str | None = None,
    ) -> None:
        """Resolve the open alert of (type, subject), if any: the condition has ended.

        ``note`` says why (a function giving it, when building it costs: it is only called when an
        alert is resolved). ``fact_ms`` is the time of the fact that ends it and ``since_field`` the
        alert's evidence field holding when the condition began: a fact older than that (an
        out-of-order event) leaves the alert open."""
        if not self._may_clear(alert_type):
            return
        key = dedup_key(alert_type, identity)
        if key in self._pending:
            self.flush_alerts()
        if key not in self.open_keys():
            return
        doc = self.alerts.open_doc(self.community, alert_type, identity)
        if doc is None:
            self.open_keys().discard(key)
            return
        began = doc.get("evidence", {}).get(since_field) if since_field else None
        if fact_ms is not None and isinstance(began, str) and iso_utc(fact_ms) <= began:
            return  # a late fact: the alert stays open, and this is no open/clear cycle
        self._note_clear(key)
        self.open_keys().discard(key)
        change = self.alerts.transition(
            self.community,
            doc["id"],
            "resolved",
            actor="system",
            at_ms=self.now(),
            note=note if isinstance(note, str) else note(),
        )
        self.changes.append(change)
        self.touch(f"alert:{doc['id']}")

    # --- timers ---------------------------------------------------------------------------
    def schedule(
        self,
        timer: str,
        key: str,
        due_ms: int,
        *,
        only_later: bool = False,
        only_existing: bool = False,
        only_new: bool = False,
    ) -> None:
        """Fire timer for key at due_ms (queued; only_later never moves it earlier, only_existing never adds,
        only_new never changes an existing one)."""
        timer_key = self._timer_keys.get(timer)
        if timer_key is None:
            timer_key = self._timer_keys[timer] = self.keys.timer(self.community, timer)
        self.writes.zadd(timer_key, key, due_ms, gt=only_later, xx=only_existing, nx=only_new)

    def cancel(self, timer: str, key: str) -> None:
        """Forget a scheduled timer (queued)."""
        self.writes.zrem(self.keys.timer(self.community, timer), key)

    def scheduled(self, timer: str, key: str) -> int | None:
        """When the timer of key is due, or None."""
        score = self.redis.zscore(self.keys.timer(self.community, timer), key)
        return int(score) if score is not None else None

    # --- rule state -----------------------------------------------------------------------
    def state_get(self, rule: str, key: str) -> Any:
        """A rule's stored value for key (JSON), or None (read once per batch)."""
        if (rule, key) in self._state:
            return self._state[(rule, key)]
        raw = self.redis.hget(self.keys.rule_state(self.community, rule), key)
        value = STATE_DECODER.decode(raw) if raw else None
        self._state[(rule, key)] = value
        return value

    def state_view(self, rule: str, key: str, decode: Callable[[Any], T]) -> T:
        """A rule's value for key as ``decode`` (a pure function, the rule's one for its values) makes
        it: decoded once per value, not once per event (``state_set``'s ``view`` hands over the
        decoded form of a value the rule stores)."""
        value = self.state_get(rule, key)
        cached = self._views.get((rule, key))
        if cached is not None and cached[0] is value:
            return cast(T, cached[1])
        view = decode(value)
        self._views[(rule, key)] = (value, view)
        return view

    def prefetch(self, rule: str, keys: set[str]) -> None:
        """Read many of a rule's values in one round trip (before the batch's events need them)."""
        wanted = sorted(k for k in keys if (rule, k) not in self._state)
        if not wanted:
            return
        for key, raw in zip(wanted, self.redis.hmget(self.keys.rule_state(self.community, rule), wanted), strict=True):
            self._state[(rule, key)] = STATE_DECODER.decode(raw) if raw else None

    def count(self, key: tuple[Any, ...]) -> None:
        """Add one to a counter the worker writes to SQL after the batch (coalesced per key)."""
        self.counted.append((self.token, key))

    def write_sql(self, write: Any) -> None:
        """A function(session) the worker runs after the batch, once per event or timer."""
        self.sql.append((self.token, write))

    def state_set(self, rule: str, key: str, value: Any, *, view: Any = None) -> None:
        """Store a rule's value for key (JSON; seen at once by later events of the batch, and written
        when the batch is flushed: a value set again in the batch is encoded once). The value must
        not be changed in place afterwards (rules store fresh values). ``view``: the value's decoded
        form, which ``state_view`` then returns without decoding it."""
        self._state[(rule, key)] = value
        self._dirty[(rule, key)] = True
        if view is not None:
            self._views[(rule, key)] = (value, view)

    def state_del(self, rule: str, key: str) -> None:
        """Forget a rule's value for key (seen at once by later events of the batch, written when the
        batch is flushed)."""
        self._state[(rule, key)] = None
        self._dirty[(rule, key)] = False

    # --- live view changes ----------------------------------------------------------------
    def touch(self, feature: str) -> None:
        """Note that a map feature changed now (the wall screen fetches only what changed)."""
        self.writes.zadd(self.keys.changes(self.community), feature, self.clock.now_ms())
