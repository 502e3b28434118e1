"""The living demo: the simulator's people handle alerts through the closed loop, on one clock with
the worker, and walk their wearables to the place so that the geofence records the arrival."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlalchemy import select

from alerts.live import AlertStore
from analytics.worker import Worker
from auth.models import User
from auth.service import principal_of_user
from cli.supervisor import child_plan
from closedloop.service import Loop
from core.clock import ManualClock
from geodata.network import metres
from ingest.service import IngestService
from layouts.wall_data import response_minutes
from registry.models import Guard
from simulator.people import Habits, cast
from store.stores import Stores
from tests.test_pipeline import devices_of, drain
from tests.test_wall import now_ms

TICK_MS = 10_000
EAGER = Habits(take_up=1.0, false_alarm=0.0, to_property=0.0, decline=0.0)  # every alert goes the whole way


def guards_with_accounts(world: Stores) -> dict[str, str]:
    """guard → wearable of the demo guards who have an account (the grid workers)."""
    with world.sessions() as session:
        rows = session.execute(
            select(Guard.id, Guard.device_id)
            .join(User, User.guard_id == Guard.id)
            .where(Guard.community_id == "wanhu", Guard.device_id.is_not(None))
        )
        return {guard: wearable for guard, wearable in rows if wearable}


class DemoPeriod:
    """A stretch of the demo on one hand-moved clock: device events through ingest, the worker
    processing them (geofence arrival) and keeping the loop's timers, the people (when on) ticking."""

    def __init__(
        self, world: Stores, *, people_on: bool, habits: Habits = EAGER, communities: tuple[str, ...] = ("wanhu",)
    ) -> None:
        self.world = world
        self.communities = communities
        self.clock = ManualClock(now_ms())
        self.ingest = IngestService(world, clock=self.clock)
        self.worker = Worker(world, clock=self.clock)
        for community in communities:
            self.worker.start_community(community, seed_timers=False)
        settings = world.settings.model_copy(update={"simulate_people": people_on})
        self.walked: list[dict[str, Any]] = []  # what the people's wearables posted
        on = settings.simulate_people
        self.people = cast(world, self.clock, list(communities), self.walk, enabled=on, habits=habits)
        self.guards = guards_with_accounts(world)
        nodes = sorted(Loop(world).network("wanhu").graph.nodes)
        spread = [nodes[i * 37 % len(nodes)] for i in range(len(self.guards))]  # network nodes, (lon, lat)
        self.posts = {g: (lat, lon) for g, (lon, lat) in zip(self.guards, spread, strict=True)}

    def post(self, community: str, events: list[dict[str, Any]]) -> None:
        self.ingest.ingest(community, events)

    def walk(self, community: str, events: list[dict[str, Any]]) -> None:
        self.walked.extend(events)
        self.post(community, events)

    def patrol(self) -> None:
        """The guards who are not on a task report where they are (the story's patrol positions)."""
        busy = self.people.busy_wearables() if self.people is not None else set()
        now = self.clock.now_ms()
        self.post(
            "wanhu",
            [
                {"type": "guard.position", "device": w, "ts": now, "data": {"lat": lat, "lon": lon}}
                for g, w in self.guards.items()
                if w not in busy
                for lat, lon in [self.posts[g]]
            ],
        )

    def raise_alerts(self, community: str = "wanhu") -> list[dict[str, Any]]:
        """Three alerts a guard can be sent to: two smoke alarms and a fall."""
        now = self.clock.now_ms()
        detectors = devices_of(self.world, "smoke_detector", 2, community)
        camera = devices_of(self.world, "camera", 1, community)[0]
        self.post(
            community,
            [{"type": "smoke.alarm", "device": d, "ts": now, "data": {"level": "alarm"}} for d in detectors]
            + [{"type": "camera.fall", "device": camera, "ts": now, "data": {"bbox": [620, 410, 180, 70]}}],
        )
        drain(self.worker, community)
        return AlertStore(self.world.redis, self.world.keys).open_alerts(community)

    def run(self, minutes: int, until_closed: set[str] | None = None) -> None:
        """Move the clock in 10 s ticks, as the live simulator and the worker would."""
        for tick in range(minutes * 60_000 // TICK_MS):
            self.clock.advance(TICK_MS)
            if tick % 6 == 0:
                self.patrol()
            if self.people is not None:
                self.people.tick()
            for community in self.communities:
                drain(self.worker, community)
                self.worker.loop.maintain(community)  # type: ignore[union-attr]
            if until_closed is not None and not until_closed & open_ids(self.world):
                return


def open_ids(world: Stores) -> set[str]:
    return {a["id"] for a in AlertStore(world.redis, world.keys).open_alerts("wanhu")}


def police_principal(world: Stores) -> Any:
    with world.sessions() as session:
        user = session.scalar(select(User).where(User.username == "police.wanhu"))
        assert user is not None
        return principal_of_user(user)


def test_the_people_acknowledge_dispatch_walk_arrive_by_geofence_and_close(world: Stores) -> None:
    period = DemoPeriod(world, people_on=True)
    period.patrol()
    alerts = period.raise_alerts()
    assert len(alerts) == 3 and all(a["status"] == "new" for a in alerts)
    assert response_minutes(world, police_principal(world), "wanhu", period.clock.now_ms())["acknowledged"] == []
    ids = {a["id"] for a in alerts}
    period.run(minutes=45, until_closed=ids)
    assert not ids & open_ids(world), "every alert taken up is closed within 45 minutes"
    loop = Loop(world)
    guards = set(period.guards)
    for alert in alerts:
        steps = loop.timeline(alert["id"])
        actions = [s["action"] for s in steps]
        by_action = {s["action"]: s for s in steps}
        assert by_action["acknowledged"]["actor"] == "police.wanhu"
        assert by_action["acknowledged"]["note"] == "值班民警已查看，正在核实"
        assert by_action["dispatched"]["actor"] == "police.wanhu"
        accepted = by_action["task_accept"]
        (task,) = [t for t in loop.tasks_of_alert(alert["id"]) if t.status == "closed"]
        with world.sessions() as session:  # the guard's own account accepted
            assert session.scalar(select(User.guard_id).where(User.username == accepted["actor"])) == task.assignee
        assert by_action["task_arrive"]["note"] == "geofence" and by_action["task_arrive"]["actor"] == "system"
        closed = by_action["task_close"]
        assert closed["note"].split(" ", 1)[0] in ("handled", "no_problem_found", "referred")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in closed["note"])  # a short Chinese note
        assert actions.index("acknowledged") < actions.index("dispatched") < actions.index("task_accept")
        assert actions.index("task_accept") < actions.index("task_arrive") < actions.index("task_close")
        assert task.assignee in guards and task.arrived_at is not None
        # the delays a person takes: acknowledged 1–5 minutes after detection
        detected, acked = _ms(alert["detected_at"]), _ms(by_action["acknowledged"]["at"])
        assert 60_000 <= acked - detected <= 300_000 + 2 * TICK_MS
    assert period.people is not None and period.people.busy_wearables() == set()  # back on patrol
    chart = response_minutes(world, police_principal(world), "wanhu", period.clock.now_ms())
    assert {stage: len(minutes) for stage, minutes in chart.items()} == dict.fromkeys(chart, 3)  # arrival included
    assert all(1 <= m <= 5.4 for m in chart["acknowledged"])


def test_the_property_office_takes_its_matters_and_false_alarms_carry_a_reason(world: Stores) -> None:
    """Smoke and falls are property matters: handed over, accepted and closed by the property account;
    with every alert a false alarm, each is closed by the operator with one of the reasons."""
    period = DemoPeriod(world, people_on=True, habits=Habits(take_up=1.0, false_alarm=0.0, to_property=1.0))
    period.patrol()
    alerts = period.raise_alerts()
    ids = {a["id"] for a in alerts}
    period.run(minutes=30, until_closed=ids)
    loop = Loop(world)
    for alert in alerts:
        (task,) = loop.tasks_of_alert(alert["id"])
        assert (task.assignee, task.kind, task.status, task.outcome) == ("property", "property", "closed", "handled")
        steps = {s["action"]: s for s in loop.timeline(alert["id"])}
        assert steps["task_accept"]["actor"] == steps["task_close"]["actor"] == "property.wanhu"
        assert steps["task_close"]["note"] == "handled 物业已派人到场处理完毕"
    falsely = DemoPeriod(world, people_on=True, habits=Habits(take_up=1.0, false_alarm=1.0))
    falsely.patrol()
    fresh = [a for a in falsely.raise_alerts() if a["id"] not in ids]
    falsely.run(minutes=10, until_closed={a["id"] for a in fresh})
    reasons = {"视频复核为设备自检误触发", "电话核实为住户正常活动", "与已处置警情重复"}
    for alert in fresh:
        steps = {s["action"]: s for s in loop.timeline(alert["id"])}
        assert steps["false_alarm"]["actor"] == "police.wanhu" and steps["false_alarm"]["note"] in reasons
        assert loop.tasks_of_alert(alert["id"]) == []


def test_each_alert_is_judged_once_and_some_are_left_open_in_every_community(world: Stores) -> None:
    """The operator takes up about half (Habits.take_up) and leaves the others 新警情 for good, in each
    community (one community's tick never makes the operator judge another's alerts again)."""
    communities = ("wanhu", "xingbang")
    period = DemoPeriod(world, people_on=True, habits=Habits(take_up=0.5), communities=communities)
    alerts = {c: period.raise_alerts(c) for c in communities}
    period.run(minutes=15)
    for community, raised in alerts.items():
        now = {a["id"]: a["status"] for a in AlertStore(world.redis, world.keys).open_alerts(community)}
        left = [a for a in raised if now.get(a["id"]) == "new"]
        assert 0 < len(left) < len(raised), (community, now)


def test_the_walk_follows_the_path_network_at_walking_speed(world: Stores) -> None:
    period = DemoPeriod(world, people_on=True)
    period.patrol()
    period.raise_alerts()
    period.run(minutes=20)
    walked = [e for e in period.walked if e["type"] == "guard.position"]
    assert walked, "a dispatched guard's wearable reports its way"
    by_wearable: dict[str, list[dict[str, Any]]] = {}
    for event in walked:
        by_wearable.setdefault(event["device"], []).append(event)
    speed = world.settings.walking_speed_m_s
    for events in by_wearable.values():
        for a, b in itertools.pairwise(events):
            step = metres(a["data"]["lat"], a["data"]["lon"], b["data"]["lat"], b["data"]["lon"])
            assert step <= speed * (b["ts"] - a["ts"]) / 1000 + 0.5  # never faster than walking


def test_with_the_people_switched_off_nothing_is_acted_on(world: Stores) -> None:
    period = DemoPeriod(world, people_on=False)
    assert period.people is None
    period.patrol()
    alerts = period.raise_alerts()
    period.run(minutes=20)
    loop = Loop(world)
    still = {a["id"]: a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu")}
    for alert in alerts:
        assert still[alert["id"]]["status"] == "new"
        assert loop.tasks_of_alert(alert["id"]) == []
        assert {s["actor"] for s in loop.timeline(alert["id"])} <= {"system"}  # escalations at most
    chart = response_minutes(world, police_principal(world), "wanhu", period.clock.now_ms())
    assert chart == {"acknowledged": [], "dispatched": [], "on_scene": [], "resolved": []}


def test_the_flag_reaches_the_simulator_of_make_run(settings: Any) -> None:
    def simulator_args(**people: bool) -> list[str]:
        plan = child_plan(settings, backfill="24h", speed=1, workers=1, **people)
        return next(c.args for c in plan if c.name == "simulator")

    assert "--no-people" in simulator_args(people=False)
    default = simulator_args()
    assert "--people" not in default and "--no-people" not in default  # SANDTABLE_SIMULATE_PEOPLE decides


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
