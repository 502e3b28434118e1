"""The living demo: the simulator also plays the people who handle alerts.

A station operator (the community's demo police account) takes up a share of the new alerts after
one to five minutes: acknowledges, then dispatches the guard that the closed loop ranks first (or
hands a property matter to the property office), or marks a few as false alarms with a reason.
The guards (their own accounts) accept within a minute or two, now and then decline; their
wearables then walk the community's path network to the place at walking speed, posting ordinary
``guard.position`` events, so the worker's geofence records the arrival; after a few minutes on
scene they give feedback and close. The property office accepts and closes its tasks the same way.
Some alerts are left alone, so the wall is never empty.

Everything goes through the closed loop's public API (``closedloop.service.Loop``) with principals
built from the accounts' rows as the web app builds them, and every time comes from one clock: the
one handed in, which the loop's steps, the delays and the wearables' positions all follow (the wall
clock live, a ManualClock in tests).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import select

from alerts.lifecycle import is_open
from auth.models import User
from auth.policy import PROPERTY_ALERT_TYPES
from auth.principal import Principal
from auth.service import principal_of_user
from closedloop.models import ACTIVE_TASK_STATUSES as ACTIVE
from closedloop.models import Task
from closedloop.service import Loop
from core.clock import Clock
from core.errors import SandtableError
from core.i18n import t
from geodata.network import metres
from registry.models import Guard
from store import live
from store.stores import Stores

log = logging.getLogger(__name__)

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
POSITION_EVERY_MS = 10 * SECOND_MS  # a walking guard's wearable reports this often
LINGER_EVERY_MS = 20 * SECOND_MS  # and this often while on scene
FOLLOW_EVERY_MS = 10 * SECOND_MS  # how often the people look at their tasks

Post = Callable[[str, list[dict[str, Any]]], None]  # (community, events) → posted through ingest


@dataclass(frozen=True)
class Habits:
    """How the simulated people behave: shares and delays (seconds)."""

    take_up: float = 0.75  # share of new alerts the operator handles (the others stay open)
    false_alarm: float = 0.1  # of those taken up, marked as false alarms with a reason
    to_property: float = 0.6  # of the property matters, handed to the property office
    decline: float = 0.1  # offers a guard declines
    acknowledge_s: tuple[float, float] = (60, 300)
    decide_s: tuple[float, float] = (20, 90)  # from acknowledging to dispatching
    accept_s: tuple[float, float] = (20, 120)
    on_scene_s: tuple[float, float] = (120, 360)
    property_accept_s: tuple[float, float] = (60, 180)
    property_close_s: tuple[float, float] = (240, 600)
    retry_s: float = 60  # no guard to send yet: the operator looks again after this
    retries: int = 5


OUTCOME_WEIGHTS = {"handled": 0.7, "no_problem_found": 0.2, "referred": 0.1}
FALSE_ALARM_REASONS = ("device_test", "resident", "duplicate")


@dataclass
class Walker:
    """A guard's wearable on the way to a task and on scene: the positions still to post."""

    community: str
    guard: str
    wearable: str
    task: str
    points: list[tuple[int, float, float]]  # (ts, lat, lon), oldest first
    posted_until: int = 0


@dataclass(order=True)
class Due:
    """An action the people will take at a time."""

    at: int
    seq: int
    action: Callable[[], None] = field(compare=False)


class People:
    """The people of the living demo, acting through the closed loop at the clock's time."""

    def __init__(
        self,
        stores: Stores,
        clock: Clock,
        communities: list[str],
        post: Post,
        *,
        seed: int = 42,
        habits: Habits | None = None,
    ) -> None:
        self.stores = stores
        self.clock = clock
        self.loop = Loop(stores, clock)
        self.post = post
        self.rng = random.Random(seed)
        self.habits = habits or Habits()
        self.speed = stores.settings.walking_speed_m_s
        self.agenda: list[Due] = []
        self._seq = itertools.count()
        self.seen: dict[str, set[str]] = {}  # community → open alerts the operator has judged (taken up or left)
        self.followed: dict[str, str] = {}  # alert → community, while its tasks are followed
        self.tasks_seen: set[str] = set()
        self.walkers: dict[str, Walker] = {}  # guard → walker
        self._followed_at = 0
        with stores.sessions() as session:
            self.wearables = dict(
                session.execute(
                    select(Guard.id, Guard.device_id).where(
                        Guard.community_id.in_(communities), Guard.device_id.is_not(None)
                    )
                ).all()
            )
        self.operators = {c: p for c in communities if (p := self._account(f"police.{c}")) is not None}
        self.property = {c: p for c in communities if (p := self._account(f"property.{c}")) is not None}
        for community in sorted(set(communities) - set(self.operators)):
            log.info("people: no demo police account police.%s; its alerts are left alone", community)

    # --- who acts ---------------------------------------------------------------------------------
    def _account(self, username: str) -> Principal | None:
        """The principal of an account, built from its row as a sign-in builds it."""
        with self.stores.sessions() as session:
            user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
            return principal_of_user(user) if user is not None else None

    def _guard_account(self, guard: str) -> Principal | None:
        """The account of a guard (looked up each time: accounts may be added while the demo runs)."""
        with self.stores.sessions() as session:
            user = session.scalar(
                select(User).where(User.guard_id == guard, User.active.is_(True)).order_by(User.username)
            )
            return principal_of_user(user) if user is not None else None

    # --- the clock's tick ---------------------------------------------------------------------------
    def tick(self) -> None:
        """Notice new alerts, take the actions that are due, follow the tasks, move the walkers."""
        now = self.clock.now_ms()
        for community in self.operators:
            self._notice(community, now)
        while self.agenda and self.agenda[0].at <= now:
            due = heapq.heappop(self.agenda)
            try:
                due.action()
            except SandtableError as err:  # someone else acted meanwhile, a guard left: let it be
                log.info("people: %s", err)
        if now - self._followed_at >= FOLLOW_EVERY_MS:  # a person glances at the phone now and then
            self._followed_at = now
            self._follow_tasks(now)
        self._move(now)

    def busy_wearables(self) -> set[str]:
        """Wearables walking to a task or on scene (the simulator's patrol positions skip them)."""
        return {w.wearable for w in self.walkers.values()}

    def _later(self, delay_s: float | tuple[float, float], action: Callable[[], None]) -> None:
        seconds = self.rng.uniform(*delay_s) if isinstance(delay_s, tuple) else delay_s
        heapq.heappush(self.agenda, Due(self.clock.now_ms() + int(seconds * SECOND_MS), next(self._seq), action))

    # --- the operator ---------------------------------------------------------------------------------
    def _notice(self, community: str, now: int) -> None:
        """Judge each alert seen new for the first time: take it up (acknowledge later) or leave it."""
        open_docs = self.loop.alerts.open_alerts(community)
        seen = self.seen.setdefault(community, set())
        for doc in open_docs:
            if doc["id"] in seen:
                continue
            seen.add(doc["id"])
            if doc["status"] != "new" or self.rng.random() >= self.habits.take_up:
                continue  # a person handles it already, or it stays open on the wall
            self._later(self.habits.acknowledge_s, partial(self._acknowledge, community, doc["id"]))
        seen &= {doc["id"] for doc in open_docs}  # a closed alert never opens again

    def _acknowledge(self, community: str, alert_id: str) -> None:
        operator = self.operators[community]
        self.loop.act(operator, community, alert_id, "acknowledge", expected="new", note=t("people.ack", "zh"))
        self._later(self.habits.decide_s, lambda: self._decide(community, alert_id, self.habits.retries))

    def _decide(self, community: str, alert_id: str, retries: int) -> None:
        """False alarm, to the property office, or the guard the loop ranks first."""
        operator = self.operators[community]
        doc = self.loop.visible_alert(operator, community, alert_id)
        if doc["status"] != "acknowledged":
            return
        if self.rng.random() < self.habits.false_alarm:
            reason = t(f"people.false_alarm.{self.rng.choice(FALSE_ALARM_REASONS)}", "zh")
            self.loop.act(operator, community, alert_id, "false_alarm", expected="acknowledged", note=reason)
            return
        if (
            doc["type"] in PROPERTY_ALERT_TYPES
            and community in self.property
            and self.rng.random() < self.habits.to_property
        ):
            self.loop.hand_to_property(
                operator, community, alert_id, expected="acknowledged", note=t("people.to_property", "zh")
            )
            self.followed[alert_id] = community
            return
        ranked = self.loop.suggestions(operator, community, alert_id)
        if not ranked:  # nobody free (or no place to go to): look again a little later
            if retries > 0:
                self._later(self.habits.retry_s, lambda: self._decide(community, alert_id, retries - 1))
            return
        self.loop.dispatch(
            operator, community, alert_id, ranked[0].guard, expected="acknowledged", note=t("people.dispatch", "zh")
        )
        self.followed[alert_id] = community

    # --- the guards and the property office ------------------------------------------------------------
    def _follow_tasks(self, now: int) -> None:
        """React to the tasks of the alerts dispatched: offers, acceptance, arrival, the end."""
        for alert_id, community in list(self.followed.items()):
            tasks = self.loop.tasks_of_alert(alert_id)
            if all(task.status not in ACTIVE for task in tasks) and not self._alert_open(community, alert_id):
                del self.followed[alert_id]
                self.tasks_seen -= {f"{task.id}:{status}" for task in tasks for status in ACTIVE}
            for task in tasks:
                self._react(community, task, now)

    def _alert_open(self, community: str, alert_id: str) -> bool:
        doc = self.loop.alerts.get(community, alert_id)
        return doc is not None and is_open(doc["status"])

    def _react(self, community: str, task: Task, now: int) -> None:
        """Each state of a task is reacted to once, by its assignee's account."""
        if task.status not in ACTIVE:
            self._stop_walking(task)  # closed, cancelled (a false alarm), declined or expired
            return
        step = f"{task.id}:{task.status}"
        if step in self.tasks_seen:
            return
        self.tasks_seen.add(step)
        who = self.property.get(community) if task.assignee == "property" else self._guard_account(task.assignee)
        if who is None:  # a guard without an account never hears of the offer: it expires, the loop re-offers
            return
        if task.status == "offered":
            property_task = task.assignee == "property"
            declines = not property_task and self.rng.random() < self.habits.decline
            delay = self.habits.property_accept_s if property_task else self.habits.accept_s
            self._later(
                delay, lambda: self._task(who, task.id, "decline" if declines else "accept", version=task.version)
            )
        elif task.status == "accepted" and task.assignee == "property":
            self._later(self.habits.property_close_s, lambda: self._close(who, task, "people.close.property"))
        elif task.status == "accepted":
            self._start_walking(community, task, now)
        else:  # on scene (the geofence saw the guard arrive)
            outcome = self.rng.choices(list(OUTCOME_WEIGHTS), weights=list(OUTCOME_WEIGHTS.values()))[0]
            self._later(self.habits.on_scene_s, lambda: self._close(who, task, f"people.close.{outcome}", outcome))

    def _task(self, who: Principal, task_id: str, action: str, *, version: int) -> None:
        self.loop.task_action(who, task_id, action, version=version)

    def _close(self, who: Principal, task: Task, note_key: str, outcome: str = "handled") -> None:
        current = next((x for x in self.loop.tasks_of_alert(task.alert_id or "") if x.id == task.id), None)
        if current is None or current.status not in ("accepted", "on_scene"):
            return
        self.loop.task_action(who, task.id, "close", version=current.version, outcome=outcome, notes=t(note_key, "zh"))
        self._stop_walking(current)

    # --- the wearables -------------------------------------------------------------------------------
    def _start_walking(self, community: str, task: Task, now: int) -> None:
        """The guard walks the path network from where the wearable last was to the task's place."""
        wearable = self.wearables.get(task.assignee)
        if wearable is None or task.lat is None or task.lon is None:
            return
        here = live.guard_positions(self.stores, community, [task.assignee], trail=False)
        start = (here[0].lat, here[0].lon) if here else (task.lat, task.lon)
        path = self.loop.network(community).route(start, (task.lat, task.lon)).points
        self.walkers[task.assignee] = Walker(
            community, task.assignee, wearable, task.id, timed_walk(path, now, self.speed), posted_until=now
        )

    def _stop_walking(self, task: Task) -> None:
        walker = self.walkers.get(task.assignee)
        if walker is not None and walker.task == task.id:
            del self.walkers[task.assignee]

    def _move(self, now: int) -> None:
        """Post each walker's positions up to now; one who has arrived stays on the spot, reporting."""
        by_community: dict[str, list[dict[str, Any]]] = {}
        for walker in self.walkers.values():
            last = walker.points[-1]
            while walker.posted_until + LINGER_EVERY_MS <= now and last[0] <= walker.posted_until:
                walker.points.append((walker.posted_until + LINGER_EVERY_MS, last[1], last[2]))
                last = walker.points[-1]
            due = [p for p in walker.points if walker.posted_until < p[0] <= now]
            walker.points = [p for p in walker.points if p[0] > now] or [walker.points[-1]]
            if due:
                walker.posted_until = due[-1][0]
                by_community.setdefault(walker.community, []).extend(
                    position_event(walker.wearable, *point) for point in due
                )
        for community, events in by_community.items():
            self.post(community, sorted(events, key=lambda e: int(e["ts"])))


def position_event(wearable: str, ts: int, lat: float, lon: float) -> dict[str, Any]:
    """A wearable's ordinary guard.position event (interfaces §2)."""
    return {
        "id": f"people-{wearable}-{ts}",
        "type": "guard.position",
        "device": wearable,
        "ts": ts,
        "data": {"lat": round(lat, 7), "lon": round(lon, 7), "accuracy_m": 5},
    }


def timed_walk(path: list[tuple[float, float]], start_ms: int, speed_m_s: float) -> list[tuple[int, float, float]]:
    """Positions (ts, lat, lon) every POSITION_EVERY_MS along the path at a steady walking speed,
    the last one at the path's end."""
    legs = [(a, b, metres(a[0], a[1], b[0], b[1])) for a, b in itertools.pairwise(path)]
    total = sum(length for _, _, length in legs)
    duration = math.ceil(total / speed_m_s * SECOND_MS)
    out: list[tuple[int, float, float]] = []
    for elapsed in [*range(POSITION_EVERY_MS, duration, POSITION_EVERY_MS), duration]:
        along = min(total, elapsed / SECOND_MS * speed_m_s)
        for (lat1, lon1), (lat2, lon2), length in legs:
            if along <= length:
                f = along / length if length else 1.0
                out.append((start_ms + max(elapsed, 1), lat1 + (lat2 - lat1) * f, lon1 + (lon2 - lon1) * f))
                break
            along -= length
        else:
            out.append((start_ms + max(elapsed, 1), path[-1][0], path[-1][1]))
    return out


def cast(
    stores: Stores,
    clock: Clock,
    communities: list[str],
    post: Post,
    *,
    enabled: bool,
    seed: int = 42,
    habits: Habits | None = None,
) -> People | None:
    """The people of the demo, or None when they are switched off (--no-people, or
    SANDTABLE_SIMULATE_PEOPLE=false): then nobody acts on an alert."""
    return People(stores, clock, communities, post, seed=seed, habits=habits) if enabled else None
