"""The closed loop (预警指令下发、处置、反馈): acknowledge, dispatch the nearest force, accept, arrive,
feed back, close — with every step in the alert's timeline and the audit log.

Every function takes the caller's principal (built on the server) and checks role and scope
itself, so that a page, a callback or a script cannot go around it. Two people acting on the same
alert or task at once: the second gets a clear refusal and nothing is overwritten (the alert's
status is compared in Redis; tasks carry a version column).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from alerts.access import WANTED_LIST_TYPES, alert_filter, alert_for, role_sees_wanted_list
from alerts.history import AlertHistory
from alerts.lifecycle import CLOSED_STATUSES, is_open
from alerts.live import AlertChange, AlertStore
from alerts.models import AlertStep
from auth.models import User
from auth.policy import PROPERTY_ALERT_TYPES, can
from auth.principal import SYSTEM, Principal
from auth.service import Auditor
from closedloop.duty import REFUSING, Duty, duty_of, unavailable_reason
from closedloop.models import ACTIVE_TASK_STATUSES, OUTCOMES, Task
from core.clock import Clock, WallClock
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.i18n import t
from core.metrics import metrics
from core.secrets import keyed_hash
from core.timefmt import SHANGHAI, aware, iso_utc, ms_to_utc
from gates.identities import project_identities
from geodata.network import Network, metres, path_graph
from notify.outbox import record_step
from registry import validate
from registry.models import Community, Guard, Household, Person, PersonTag, Residency
from registry.queries import path_geometries
from store import live
from store.stores import Stores

log = logging.getLogger(__name__)
SLA_STAGES = ("acknowledge", "dispatch", "arrive", "close")  # the stages an SLA times (Loop._deadline)
ACTIVE_GUARD_MS = 10 * 60_000
ACTIONS = {"acknowledge": "acknowledged", "false_alarm": "false_alarm", "resolve": "resolved", "on_scene": "on_scene"}
# the refusal of a direct dispatch to a guard who may not take it (closedloop.duty.REFUSING)
REFUSALS = {
    "retired": "dispatch.error.retired",
    "no_account": "dispatch.error.no_account",
    "off_duty": "dispatch.error.off_duty",
    "wanted_list": "error.wanted_list_guard",
}


@dataclass
class Suggestion:
    """A guard who could go, with the walking distance over the path network and the ETA."""

    guard: str
    name: str
    kind: str
    walking_m: float
    straight_m: float
    eta_minutes: float


@dataclass
class Unavailable:
    """A guard who is not offered the task now, with the reason (a key of closedloop.duty.REASONS)."""

    guard: str
    name: str
    kind: str
    reason: str


class Loop:
    """The closed-loop operations on one set of stores."""

    def __init__(self, stores: Stores, clock: Clock | None = None) -> None:
        self.stores = stores
        self.settings = stores.settings
        self.clock = clock or WallClock()  # every step, task and expiry is stamped from it
        self.alerts = AlertStore(stores.redis, stores.keys, clock=self.clock)
        self.history = AlertHistory(stores.sessions)
        self.auditor = Auditor(stores.sessions)
        self._networks: dict[str, Network] = {}
        self.duty = Duty(stores, self.clock, self.auditor)  # check-in and check-out on the tasks page

    def _now(self) -> dt.datetime:
        """The loop's clock as an aware UTC datetime."""
        return ms_to_utc(self.clock.now_ms())

    # --- reading ------------------------------------------------------------------------------
    def visible_alert(self, principal: Principal, community: str, alert_id: str) -> dict[str, Any]:
        """An alert the principal may see, as they may see it (alerts/access.py), or NotFound
        (outside the scope looks the same as absent)."""
        doc = self._alert_in_scope(principal, community, alert_id)
        seen = alert_for(principal, doc, self.settings)
        if seen is None:
            raise NotFound(key="error.no_alert", alert=alert_id)
        return seen

    def _alert_in_scope(self, principal: Principal, community: str, alert_id: str) -> dict[str, Any]:
        """The whole stored alert, after the same checks as visible_alert (for acting on it)."""
        if not can(principal, "read.alerts") and principal.role != "property":
            raise Forbidden(key="error.role_alerts")
        if not principal.scope.allows_community(community):
            raise NotFound(key="error.no_alert", alert=alert_id)
        doc = self.alerts.get(community, alert_id)
        if doc is None or alert_for(principal, doc, self.settings) is None:
            raise NotFound(key="error.no_alert", alert=alert_id)
        return doc

    def timeline(self, alert_id: str) -> list[dict[str, Any]]:
        """Every step of an alert, oldest first (from the history)."""
        with self.stores.sessions() as session:
            steps = session.scalars(select(AlertStep).where(AlertStep.alert_id == alert_id).order_by(AlertStep.id))
            return [
                {
                    "at": iso_utc(int(aware(s.at).timestamp() * 1000)),
                    "action": s.action,
                    "status": s.status,
                    "actor": s.actor,
                    "note": s.note,
                }
                for s in steps
            ]

    def tasks_of_alert(self, alert_id: str) -> list[Task]:
        """The tasks created for an alert, oldest first."""
        with self.stores.sessions() as session:
            return list(session.scalars(select(Task).where(Task.alert_id == alert_id).order_by(Task.created_at)))

    # --- acting on alerts -----------------------------------------------------------------------
    def act(
        self, principal: Principal, community: str, alert_id: str, action: str, *, expected: str | None, note: str = ""
    ) -> dict[str, Any]:
        """Acknowledge, mark as false alarm (with a reason), record arrival or resolve an alert."""
        if not can(principal, "act.alerts"):
            self._deny(principal, f"alert:{alert_id}", f"{action} needs act.alerts", community)
        if action not in ACTIONS:
            raise InvalidInput(key="error.unknown_action", action=action)
        self._alert_in_scope(principal, community, alert_id)
        if action == "false_alarm" and len(note.strip()) < 2:
            raise InvalidInput(key="error.false_alarm_reason")
        change = self.alerts.transition(
            community,
            alert_id,
            ACTIONS[action],
            actor=principal.id,
            at_ms=self.clock.now_ms(),
            note=note.strip(),
            expected=expected,
        )
        self.history.write([change])
        if ACTIONS[action] in CLOSED_STATUSES:
            self._cancel_tasks(alert_id, principal.id)
        self.auditor.record(
            principal, f"alert.{action}", target=f"alert:{alert_id}", reason=note[:500], community=community
        )
        return change.doc

    def suggestions(self, principal: Principal, community: str, alert_id: str) -> list[Suggestion]:
        """Available guards ranked by walking time to the alert over the path network."""
        if not can(principal, "dispatch"):
            self._deny(principal, f"alert:{alert_id}", "suggestions need dispatch", community)
        doc = self._alert_in_scope(principal, community, alert_id)
        location = doc.get("location") or {}
        if location.get("lat") is None:
            return []
        return self.rank(community, (float(location["lat"]), float(location["lon"])), alert_type=doc["type"])

    def dispatch_list(
        self, principal: Principal, community: str, alert_id: str
    ) -> tuple[list[Suggestion], list[Unavailable]]:
        """The console's dispatch list: the available guards ranked by walking time, and the others
        with the reason each is not offered the task."""
        if not can(principal, "dispatch"):
            self._deny(principal, f"alert:{alert_id}", "dispatch list needs dispatch", community)
        doc = self._alert_in_scope(principal, community, alert_id)
        return self.board(community, _target(doc), alert_type=doc["type"])

    def rank(
        self,
        community: str,
        target: tuple[float, float],
        exclude: set[str] | None = None,
        *,
        alert_type: str | None = None,
    ) -> list[Suggestion]:
        """The guards who may be offered the task (see board), nearest (by walking) first."""
        return self.board(community, target, exclude=exclude, alert_type=alert_type)[0]

    def board(
        self,
        community: str,
        target: tuple[float, float] | None,
        exclude: set[str] | None = None,
        *,
        alert_type: str | None = None,
    ) -> tuple[list[Suggestion], list[Unavailable]]:
        """Every guard of the community, at the loop's clock: those who may be offered the task
        (in service, with an account, on duty by roster or check-in, allowed to see an alert of
        alert_type, not busy, with a recent position, not in exclude) ranked by walking time to
        the target, and the others, each with the first reason that applies."""
        exclude = exclude or set()
        now = self.clock.now_ms()
        with self.stores.sessions() as session:
            guards = {
                g.id: g
                for g in session.scalars(select(Guard).where(Guard.community_id == community).order_by(Guard.id))
            }
            roles: dict[str, set[str]] = {}
            for guard_id, role in session.execute(
                select(User.guard_id, User.role).where(User.guard_id.in_(list(guards)), User.active.is_(True))
            ):
                roles.setdefault(str(guard_id), set()).add(role)
            duty = duty_of(session, community, ms_to_utc(now), self.settings.duty_checkin_hours)
            busy = set(
                session.scalars(
                    select(Task.assignee).where(Task.community_id == community, Task.status.in_(ACTIVE_TASK_STATUSES))
                )
            )
        positions = {
            p.guard: (p.lat, p.lon)
            for p in live.guard_positions(self.stores, community, list(guards), trail=False)
            if now - p.ts < ACTIVE_GUARD_MS
        }
        others: list[Unavailable] = []
        sources: dict[str, tuple[float, float]] = {}
        for gid, guard in guards.items():
            reason = unavailable_reason(
                in_service=guard.on_duty,
                has_account=gid in roles,
                on_duty=duty[gid].on,
                may_see=self._may_see(roles.get(gid, set()), guard.kind, alert_type),
                busy=gid in busy,
                has_position=gid in positions and target is not None,
                asked=gid in exclude,
            )
            if reason is None:
                sources[gid] = positions[gid]
            else:
                others.append(Unavailable(guard=gid, name=guard.name, kind=guard.kind, reason=reason))
        walks = self.network(community).walks_to(target, sources) if target is not None and sources else {}
        speed = self.settings.walking_speed_m_s
        ranked = [
            Suggestion(
                guard=g,
                name=guards[g].name,
                kind=guards[g].kind,
                walking_m=round(w.metres),
                straight_m=round(w.straight_m),
                eta_minutes=round(w.metres / speed / 60, 1),
            )
            for g, w in walks.items()
        ]
        return sorted(ranked, key=lambda s: (s.walking_m, s.guard)), others

    def _may_see(self, roles: set[str], kind: str, alert_type: str | None) -> bool:
        """True when a guard may be given an alert of this type: a wanted-list hit only to a guard
        whose every account's role may see it (by their kind when they have none)."""
        if alert_type not in WANTED_LIST_TYPES:
            return True
        return all(role_sees_wanted_list(role, self.settings) for role in roles or {kind})

    def network(self, community: str) -> Network:
        """The community's path network (built once per process)."""
        found = self._networks.get(community)
        if found is None:
            with self.stores.sessions() as session:
                found = Network(path_graph(path_geometries(session, community)))
            self._networks[community] = found
        return found

    def dispatch(
        self,
        principal: Principal,
        community: str,
        alert_id: str,
        guard_id: str,
        *,
        expected: str | None,
        note: str = "",
    ) -> Task:
        """Send a guard (or grid worker) to the alert: the alert becomes dispatched, the guard gets a task."""
        if not can(principal, "dispatch"):
            self._deny(principal, f"alert:{alert_id}", "dispatch needs dispatch", community)
        doc = self._alert_in_scope(principal, community, alert_id)
        with self.stores.sessions() as session:
            guard = session.get(Guard, guard_id)
            if guard is None or guard.community_id != community:
                raise InvalidInput(key="error.no_guard", guard=guard_id)
            guard_name = guard.name
        ranked, others = self.board(community, _target(doc), alert_type=doc["type"])
        refused = next((u.reason for u in others if u.guard == guard_id and u.reason in REFUSING), None)
        if refused is not None:
            raise InvalidInput(key=REFUSALS[refused], guard=guard_name)
        suggestion = next((s for s in ranked if s.guard == guard_id), None)
        change = self.alerts.transition(
            community,
            alert_id,
            "dispatched",
            actor=principal.id,
            at_ms=self.clock.now_ms(),
            note=f"{guard_name} {note}".strip(),
            expected=expected,
        )
        task = self._offer(
            community, doc, guard_id, created_by=principal.id, eta=suggestion.eta_minutes if suggestion else None
        )
        self.history.write([change])
        self.auditor.record(
            principal, "alert.dispatch", target=f"alert:{alert_id}", reason=f"guard {guard_id}", community=community
        )
        return task

    def hand_to_property(
        self, principal: Principal, community: str, alert_id: str, *, expected: str | None, note: str = ""
    ) -> Task:
        """Hand a non-police matter to the property office, with the same loop."""
        if not can(principal, "dispatch"):
            self._deny(principal, f"alert:{alert_id}", "handing over needs dispatch", community)
        doc = self._alert_in_scope(principal, community, alert_id)
        if doc["type"] not in PROPERTY_ALERT_TYPES:
            raise InvalidInput(key="error.police_matter")
        change = self.alerts.transition(
            community,
            alert_id,
            "dispatched",
            actor=principal.id,
            at_ms=self.clock.now_ms(),
            note=f"property {note}".strip(),
            expected=expected,
        )
        task = self._offer(community, doc, "property", created_by=principal.id, kind="property")
        self.history.write([change])
        self.auditor.record(principal, "alert.to_property", target=f"alert:{alert_id}", community=community)
        return task

    def _offer(
        self,
        community: str,
        doc: dict[str, Any],
        assignee: str,
        *,
        created_by: str,
        eta: float | None = None,
        kind: str = "dispatch",
    ) -> Task:
        target = _target(doc)
        prefill: dict[str, Any] = {}
        if doc["type"] == "tenant.unregistered":
            kind = "register" if kind == "dispatch" else kind
            prefill = {
                "household": doc.get("subject", {}).get("household"),
                "opener": doc.get("evidence", {}).get("opener"),
                "opener_kind": doc.get("evidence", {}).get("opener_kind"),
            }
        task = Task(
            id=secrets.token_hex(8),
            community_id=community,
            alert_id=doc["id"],
            kind=kind,
            assignee=assignee,
            grid_id=doc.get("grid"),
            status="offered",
            title=doc["type"],
            lat=target[0] if target else None,
            lon=target[1] if target else None,
            geofence_m=self.settings.geofence_m,
            eta_minutes=eta,
            prefill=prefill,
            created_by=created_by,
            created_at=self._now(),
        )
        with self.stores.sessions.begin() as session:
            session.add(task)
            session.add(
                AlertStep(
                    alert_id=doc["id"],
                    at=self._now(),
                    action="task_offered",
                    status="dispatched",
                    actor=created_by,
                    note=f"{assignee}",
                )
            )
            record_step(session, doc, "task_offered", self._now(), assignee=assignee)
        self.stores.redis.incr(self.stores.keys.version(community))
        return task

    # --- tasks ----------------------------------------------------------------------------------
    def my_tasks(self, principal: Principal, *, include_closed: bool = False) -> list[Task]:
        """The tasks of the signed-in guard, grid worker or property office (never of an alert type
        hidden from them: a task offered before the wanted-list setting narrowed stays out of sight)."""
        hidden = alert_filter(principal, self.settings).hidden
        with self.stores.sessions() as session:
            query = select(Task).order_by(Task.created_at.desc())
            if hidden:
                query = query.where(or_(Task.title.is_(None), Task.title.not_in(sorted(hidden))))
            if principal.role == "property":
                query = query.where(Task.assignee == "property", Task.community_id == principal.community)
            elif principal.guard:
                query = query.where(Task.assignee == principal.guard)
            elif principal.role in ("police", "admin"):
                scope = principal.scope
                if scope.communities is not None:
                    query = query.where(Task.community_id.in_(sorted(scope.communities)))
            else:
                return []
            if not include_closed:
                query = query.where(Task.status.in_(ACTIVE_TASK_STATUSES))
            return list(session.scalars(query.limit(200)))

    def task_action(
        self, principal: Principal, task_id: str, action: str, *, version: int, outcome: str = "", notes: str = ""
    ) -> Task:
        """accept / decline / arrive / close a task (who may: its assignee; version guards against a
        second, concurrent action)."""
        if action not in ("accept", "decline", "arrive", "close"):
            raise InvalidInput(key="error.unknown_action", action=action)
        if action == "close" and outcome not in OUTCOMES:
            raise InvalidInput(key="task.error.outcome", outcomes=", ".join(OUTCOMES))
        try:
            with self.stores.sessions.begin() as session:
                task = self._own_task(session, principal, task_id)
                if task.version != version:
                    raise Conflict()
                allowed = {
                    "accept": ("offered",),
                    "decline": ("offered",),
                    "arrive": ("accepted",),
                    "close": ("accepted", "on_scene"),
                }[action]
                if task.status not in allowed:
                    raise InvalidInput(key="task.error.state", status=task.status, action=action)
                self._apply(session, task, action, principal.id, outcome=outcome, notes=notes)
                session.flush()  # the version counter moves at the flush: the copy carries the new one
                snapshot = _detach(task)
        except StaleDataError:
            raise Conflict() from None
        self._follow_alert(snapshot, action, principal, outcome=outcome, notes=notes)
        return snapshot

    def _own_task(self, session: Session, principal: Principal, task_id: str) -> Task:
        task = session.get(Task, task_id)
        mine = task is not None and (
            (principal.guard is not None and task.assignee == principal.guard)
            or (
                principal.role == "property"
                and task.assignee == "property"
                and task.community_id == principal.community
            )
            or principal.kind == "system"
        )
        if task is None or not mine:
            self._deny(principal, f"task:{task_id}", "not the assignee", task.community_id if task else None)
        assert task is not None
        return task

    def _apply(self, session: Session, task: Task, action: str, actor: str, *, outcome: str, notes: str) -> None:
        now = self._now()
        if action == "accept":
            task.status, task.accepted_at = "accepted", now
        elif action == "decline":
            task.status, task.closed_at = "declined", now
        elif action == "arrive":
            task.status, task.arrived_at = "on_scene", now
        else:
            task.status, task.closed_at, task.outcome, task.notes = "closed", now, outcome, notes[:4000]
        if task.alert_id:
            session.add(
                AlertStep(
                    alert_id=task.alert_id,
                    at=now,
                    action=f"task_{action}",
                    status={"arrive": "on_scene", "close": "resolved"}.get(action, "dispatched"),
                    actor=actor,
                    note=(outcome + " " + notes).strip()[:2000],
                )
            )

    def _follow_alert(self, task: Task, action: str, principal: Principal, *, outcome: str, notes: str) -> None:
        """After the task's change is committed: the guard's active task (for arrival by geofence) and
        the alert follow it (on scene when the guard arrives, closed with the feedback)."""
        if action == "accept":
            self._set_active(task)
        elif action in ("decline", "close"):
            self._clear_active(task)
        if task.alert_id is None:
            return
        target = {"arrive": "on_scene", "close": "false_alarm" if outcome == "false_alarm" else "resolved"}.get(action)
        changes: list[AlertChange] = []
        if target is not None:
            doc = self.alerts.get(task.community_id, task.alert_id)
            if doc is not None and is_open(doc["status"]) and doc["status"] != target:
                try:
                    changes.append(
                        self.alerts.transition(
                            task.community_id,
                            task.alert_id,
                            target,
                            actor=principal.id,
                            at_ms=self.clock.now_ms(),
                            note=f"{outcome} {notes}".strip()[:2000],
                        )
                    )
                except InvalidInput as err:
                    log.info("alert %s did not follow task %s: %s", task.alert_id, task.id, err)
        if action == "decline":
            self.redispatch(task, reason="declined")
        self.history.write(changes)
        self.auditor.record(
            principal, f"task.{action}", target=f"task:{task.id}", reason=outcome, community=task.community_id
        )
        self.stores.redis.incr(self.stores.keys.version(task.community_id))

    def _set_active(self, task: Task) -> None:
        if task.assignee == "property" or task.lat is None:
            return
        self.stores.redis.hset(
            self.stores.keys.rule_state(task.community_id, "tasks"),
            task.assignee,
            json.dumps({"task": task.id, "lat": task.lat, "lon": task.lon, "radius": task.geofence_m}),
        )

    def _clear_active(self, task: Task) -> None:
        self.stores.redis.hdel(self.stores.keys.rule_state(task.community_id, "tasks"), task.assignee)

    def _cancel_tasks(self, alert_id: str, actor: str) -> None:
        with self.stores.sessions.begin() as session:
            for task in session.scalars(
                select(Task).where(Task.alert_id == alert_id, Task.status.in_(ACTIVE_TASK_STATUSES))
            ):
                task.status, task.closed_at = "cancelled", self._now()
                self._clear_active(task)

    # --- arrival by geofence ---------------------------------------------------------------------
    def arrived_if_inside(self, community: str, guard: str, lat: float, lon: float) -> bool:
        """Record arrival when the guard's position enters the task's geofence (called by the worker)."""
        raw = self.stores.redis.hget(self.stores.keys.rule_state(community, "tasks"), guard)
        if not raw:
            return False
        active = json.loads(raw)
        if metres(lat, lon, active["lat"], active["lon"]) > float(active["radius"]):
            return False
        with self.stores.sessions() as session:
            task = session.get(Task, active["task"])
            version = task.version if task is not None and task.status == "accepted" else None
        if version is None:
            return False
        try:
            self.task_action(SYSTEM, active["task"], "arrive", version=version, notes="geofence")
        except InvalidInput:
            return False
        return True

    # --- the loop's timers -------------------------------------------------------------------------
    def redispatch(self, expired: Task, *, reason: str) -> Task | None:
        """Offer the task's alert to the next nearest guard (not one already asked)."""
        if expired.alert_id is None or expired.assignee == "property":
            return None
        doc = self.alerts.get(expired.community_id, expired.alert_id)
        if doc is None or not is_open(doc["status"]) or not _target(doc):
            return None
        asked = {t.assignee for t in self.tasks_of_alert(expired.alert_id)}
        ranked = self.rank(expired.community_id, _target(doc), exclude=asked, alert_type=doc["type"])  # type: ignore[arg-type]
        with self.stores.sessions.begin() as session:
            session.add(
                AlertStep(
                    alert_id=expired.alert_id,
                    at=self._now(),
                    action="redispatch",
                    status=doc["status"],
                    actor="system",
                    note=f"{expired.assignee} {reason}",
                )
            )
        if not ranked:
            self._escalate(doc, "dispatch", "no guard left to dispatch")
            return None
        return self._offer(expired.community_id, doc, ranked[0].guard, created_by="system", eta=ranked[0].eta_minutes)

    def maintain(self, community: str) -> dict[str, int]:
        """Re-dispatch offers not accepted in time; escalate stages that missed their SLA (at the
        loop's clock: the steps it adds carry that time)."""
        now = self.clock.now_ms()
        cutoff = ms_to_utc(now - int(self.settings.dispatch_accept_minutes * 60_000))
        expired: list[Task] = []
        with self.stores.sessions.begin() as session:
            for task in session.scalars(
                select(Task).where(
                    Task.community_id == community, Task.status == "offered", Task.assignee != "property"
                )
            ):
                if aware(task.created_at) <= cutoff:
                    task.status, task.closed_at = "expired", self._now()
                    expired.append(_detach(task))
        for task in expired:
            self.redispatch(task, reason=f"not accepted within {self.settings.dispatch_accept_minutes:g} min")
        escalated = 0
        for doc in self.alerts.open_alerts(community):
            stage, deadline = self._deadline(doc)
            if deadline is not None and now > deadline and self._escalate(doc, stage, "SLA missed"):
                escalated += 1
                metrics().sla_misses.labels(stage, doc["severity"]).inc()
        return {"redispatched": len(expired), "escalated": escalated}

    def _deadline(self, doc: dict[str, Any]) -> tuple[str, int | None]:
        s = self.settings
        # a stage runs from the step that entered it (repeats of the alert move updated_at, not this)
        entered = [step["at"] for step in doc.get("timeline") or [] if step.get("status") == doc["status"]]
        since = _ms(entered[-1] if entered else doc["detected_at"])

        if doc["status"] == "new":
            return "acknowledge", _ms(doc["detected_at"]) + int(s.sla_ack_minutes.get(doc["severity"], 15) * 60_000)
        if doc["status"] == "acknowledged":
            return "dispatch", since + int(s.sla_dispatch_minutes * 60_000)
        if doc["status"] == "dispatched":
            return "arrive", since + int(s.sla_arrive_minutes * 60_000)
        if doc["status"] == "on_scene":
            return "close", since + int(s.sla_close_minutes * 60_000)
        return "", None

    def _escalate(self, doc: dict[str, Any], stage: str, why: str) -> bool:
        """Add one escalation step per alert and stage (timeline and audit log)."""
        marker = f"escalated:{stage}:{doc['status']}"
        key = self.stores.keys.rule_state(doc["community"], "escalations")
        if not self.stores.redis.hsetnx(key, f"{doc['id']}|{marker}", "1"):
            return False
        with self.stores.sessions.begin() as session:
            session.add(
                AlertStep(
                    alert_id=doc["id"],
                    at=self._now(),
                    action="escalated",
                    status=doc["status"],
                    actor="system",
                    note=f"{stage}: {why}",
                )
            )
            record_step(session, doc, "escalated", self._now())
        self.auditor.record(
            SYSTEM, "alert.escalate", target=f"alert:{doc['id']}", reason=f"{stage}: {why}", community=doc["community"]
        )
        self.stores.redis.incr(self.stores.keys.version(doc["community"]))
        return True

    # --- registering the tenant from the task -------------------------------------------------------
    def register_floating(
        self, principal: Principal, task_id: str, *, version: int, name: str, id_number: str, phone: str
    ) -> Task:
        """Register the unregistered tenant as floating population, right from the task, and close it.

        Everything is checked before anything is kept: the caller's permission and scope, the task's
        version and status (accepted or on scene), and that the ID number is not registered in the
        community yet; the person and the task's close are then one transaction, so a refusal
        leaves neither a person nor a changed task behind."""
        if not can(principal, "register.floating"):
            self._deny(principal, f"task:{task_id}", "registration needs register.floating", None)
        number = validate.id_number(id_number)
        mobile = validate.phone(phone)
        clean_name = validate.normalise_text(name)
        if not 2 <= len(clean_name) <= 64:
            raise InvalidInput(key="visitor.err.name")
        id_hash = keyed_hash(self.stores.id_hash_key, number)
        notes = t("task.registered_note", "zh", name=clean_name)
        person_id = ""
        try:
            with self.stores.sessions.begin() as session:
                task = self._own_task(session, principal, task_id)
                if task.version != version:
                    raise Conflict()
                if task.status == "offered":
                    raise InvalidInput(key="task.error.register_offered")
                if task.status not in ("accepted", "on_scene"):
                    raise InvalidInput(key="task.error.register_ended")
                household_id = (task.prefill or {}).get("household") if task.kind == "register" else None
                household = session.get(Household, household_id) if household_id else None
                if household is None or household.community_id != task.community_id:
                    raise InvalidInput(key="task.error.no_household")
                if not principal.scope.allows_grid(household.grid_id):
                    self._deny(principal, f"task:{task_id}", "household outside the grid", task.community_id)
                community = household.community_id
                # registrations in a community one at a time, so that two of the same ID number cannot
                # both pass the check below: PostgreSQL locks the community's row; SQLite has one
                # writer, and the check follows the first write (the insert) for that reason
                session.execute(select(Community.id).where(Community.id == community).with_for_update())
                person_id = f"{community}-R{secrets.token_hex(4)}"
                today = ms_to_utc(self.clock.now_ms()).astimezone(SHANGHAI).date()  # Beijing's date
                prefill = task.prefill or {}
                session.add(
                    Person(
                        id=person_id,
                        community_id=community,
                        name=clean_name,
                        id_number=number,
                        id_hash=id_hash,
                        phone=mobile,
                        face_id=prefill.get("opener") if prefill.get("opener_kind") == "face_id" else None,
                        floating_registered_on=today,
                        floating_expires_on=today + dt.timedelta(days=365),
                    )
                )
                session.flush()
                registered = session.scalar(
                    select(Person.id)
                    .where(Person.community_id == community, Person.id_hash == id_hash, Person.id != person_id)
                    .limit(1)
                )
                if registered is not None:
                    raise InvalidInput(key="task.error.duplicate_id")
                session.add(PersonTag(person_id=person_id, tag="floating"))
                session.add(Residency(person_id=person_id, household_id=household.id, role="tenant", since=today))
                self._apply(session, task, "close", principal.id, outcome="registered", notes=notes)
                session.flush()  # the task's version moves here: a concurrent change fails the whole registration
                snapshot = _detach(task)
        except StaleDataError:
            raise Conflict() from None
        self.auditor.record(
            principal,
            "person.register_floating",
            target=f"person:{person_id}",
            reason=f"task:{task_id}",
            community=snapshot.community_id,
        )
        self._follow_alert(snapshot, "close", principal, outcome="registered", notes=notes)
        # the gates answer from Redis: the new resident passes at once (gates/identities.py)
        project_identities(self.stores, snapshot.community_id)
        # the wanted list: the police get the critical alert; the grid worker sees nothing different
        from closedloop.wanted import check_person  # noqa: PLC0415 — cycle: wanted → incidents → service

        check_person(
            self.stores,
            snapshot.community_id,
            id_hash,
            household_id,
            source="registration",
            extra={"person": person_id},
            loop=self,
        )
        return snapshot

    # --- errors -----------------------------------------------------------------------------------
    def _deny(self, principal: Principal, target: str, reason: str, community: str | None) -> None:
        self.auditor.record(principal, "denied", target=target, reason=reason, outcome="denied", community=community)
        raise Forbidden(key="error.forbidden")


def _target(doc: dict[str, Any]) -> tuple[float, float] | None:
    location = doc.get("location") or {}
    if location.get("lat") is None:
        return None
    return float(location["lat"]), float(location["lon"])


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _detach(task: Task) -> Task:
    """A copy of the task's current values usable after its session closed."""
    copy = Task(**{c.key: getattr(task, c.key) for c in Task.__table__.columns})
    return copy
