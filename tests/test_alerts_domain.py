"""The alert domain (alerts/): one rule of who may see which alert, applied the same way by the wall,
the console, the HTTP API and the closed loop."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import sessionmaker

from alerts.access import alert_filter, visible_to
from alerts.history import AlertHistory, history_query, record_view
from alerts.lifecycle import CLOSED_STATUSES, OPEN_STATUSES, STATUSES, TRANSITIONS, can_become, is_open
from alerts.live import AlertStore, RaiseRequest
from alerts.models import AlertRecord, AlertStep
from app import create_app
from auth.models import User
from auth.policy import can
from auth.principal import Principal
from auth.service import principal_of_user
from closedloop.service import Loop
from core.errors import NotFound
from layouts.wall_data import visible_alerts
from store.stores import Stores
from tests.conftest import DEMO_PASSWORD
from tests.test_reports import raise_and_handle

pytestmark = pytest.mark.also_on_pg  # the tests using world run on PostgreSQL too


def principal_of(world: Stores, username: str) -> Principal:
    with world.sessions() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        return principal_of_user(user)


def seen_through_each_reader(world: Stores, username: str) -> dict[str, set[str]]:
    """The open alerts the user sees, as each reader hands them out."""
    principal = principal_of(world, username)
    settings = world.settings
    wall = {a["id"] for a in visible_alerts(world, AlertStore(world.redis, world.keys).open_alerts("wanhu"), principal)}
    with world.sessions() as session:
        rows = history_query(session, communities=["wanhu"], status="open", visible=alert_filter(principal, settings))
        console = {a["id"] for a in visible_to(principal, (record_view(r) for r in rows), settings)}
    server = create_app(world).server
    client = server.test_client()
    origin = {"Origin": "http://localhost"}
    assert (
        client.post("/login", data={"username": username, "password": DEMO_PASSWORD}, headers=origin).status_code == 302
    )
    response = client.get("/api/v1/alerts?status=open")
    loop = Loop(world)
    closed_loop = set()
    for doc in AlertStore(world.redis, world.keys).open_alerts("wanhu"):
        try:
            closed_loop.add(loop.visible_alert(principal, "wanhu", doc["id"])["id"])
        except NotFound:
            continue
    seen = {"wall": wall, "console": console, "closed loop": closed_loop}
    if can(principal, "read.alerts"):
        seen["api"] = {a["id"] for a in response.get_json()}
    else:  # property staff read their matters through tasks, not the alerts API
        assert response.status_code == 403
    return seen


def test_property_staff_and_grid_workers_see_the_same_alerts_through_every_reader(world: Stores) -> None:
    raise_and_handle(world)
    everyone = {a["id"]: a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu")}
    offline = next(a for a in everyone.values() if a["type"] == "device.offline")
    grid_user = f"grid.{offline['grid']}"
    seen: dict[str, dict[str, set[str]]] = {}
    for username in ("police.wanhu", "property.wanhu", grid_user):
        seen[username] = seen_through_each_reader(world, username)
        sets = list(seen[username].values())
        assert all(s == sets[0] for s in sets), f"{username}: {seen[username]}"
    police, staff, grid = (seen[u]["closed loop"] for u in ("police.wanhu", "property.wanhu", grid_user))
    assert police == set(everyone)
    assert offline["id"] in staff and offline["id"] in grid
    assert staff < police and grid < police  # each sees less than the police, not nothing
    wanted = {i for i, a in everyone.items() if a["type"] == "watchlist.match"}
    assert wanted and not wanted & (staff | grid)


def test_the_lifecycle_is_one_table() -> None:
    assert set(OPEN_STATUSES) | set(CLOSED_STATUSES) == set(STATUSES)
    assert all(not TRANSITIONS[s] for s in CLOSED_STATUSES)  # a closed alert stays closed
    assert all(is_open(s) for s in OPEN_STATUSES) and not any(is_open(s) for s in CLOSED_STATUSES)
    assert can_become("new", "acknowledged") and not can_become("false_alarm", "acknowledged")


def test_two_workers_writing_the_same_new_alert_at_once_both_succeed(world: Stores) -> None:
    """One worker raises an alert while another counts a repeat of it in another batch: both write
    the alert's history at once, and the second to commit meets the first one's row. It writes again
    (the soak found a worker that crashed on it: UNIQUE constraint failed: alert.id)."""
    alerts = AlertStore(world.redis, world.keys)
    now = int(time.time() * 1000)

    def alarm(token: str) -> RaiseRequest:
        subject = {"device": "SD-race", "household": None, "building": None}
        return RaiseRequest("smoke", "critical", subject, {"device": "SD-race"}, None, {}, None, now, [token])

    raised = alerts.raise_many("wanhu", [alarm("e1")])
    repeated = alerts.raise_many("wanhu", [alarm("e2")])
    assert [c.action for c in raised + repeated] == ["raised", "repeated"]

    # the second worker has read which alerts the history knows (none) and is about to write …
    second_read = threading.Event()
    first_committed = threading.Event()
    racing = sessionmaker(bind=world.engine)

    @event.listens_for(racing, "before_flush")
    def hold(*_: object) -> None:
        if not first_committed.is_set():
            second_read.set()
            assert first_committed.wait(60)

    failures: list[BaseException] = []

    def second_worker() -> None:
        try:
            AlertHistory(racing).write(repeated)
        except BaseException as err:  # noqa: BLE001  (reported to the test's thread)
            failures.append(err)

    thread = threading.Thread(target=second_worker)
    thread.start()
    assert second_read.wait(60)
    AlertHistory(world.sessions).write(raised)  # … when the first commits the new alert
    first_committed.set()
    thread.join(60)
    assert failures == []
    with world.sessions() as session:
        rows = session.scalars(select(AlertRecord).where(AlertRecord.id == raised[0].doc["id"])).all()
        assert len(rows) == 1 and rows[0].count == 2
        steps = session.scalars(select(AlertStep.action).where(AlertStep.alert_id == rows[0].id)).all()
        assert steps == ["raised"]


def test_a_batchs_repeats_and_resolutions_reach_the_history_in_order(world: Stores) -> None:
    """A batch counts repeats of stored alerts (written as one UPDATE of their counts), repeats one
    twice, and resolves another after its repeat: the history shows each alert's newest count, the
    resolution last, and no timeline step for a repeat."""
    alerts = AlertStore(world.redis, world.keys)
    history = AlertHistory(world.sessions)
    now = int(time.time() * 1000)

    def alarm(device: str, token: str, at: int) -> RaiseRequest:
        subject = {"device": device, "household": None, "building": None}
        return RaiseRequest("smoke", "critical", subject, {"device": device}, None, {}, None, at, [token])

    raised = alerts.raise_many("wanhu", [alarm("SD-a", "a1", now), alarm("SD-b", "b1", now)])
    history.write(raised)
    first, second = (c.doc["id"] for c in raised)
    batch = alerts.raise_many("wanhu", [alarm("SD-a", "a2", now + 1000), alarm("SD-b", "b2", now + 1000)])
    batch += alerts.raise_many("wanhu", [alarm("SD-a", "a3", now + 2000)])
    batch.append(alerts.transition("wanhu", second, "resolved", actor="system", at_ms=now + 3000, note="back"))
    assert [c.action for c in batch] == ["repeated", "repeated", "repeated", "resolved"]
    history.write(batch)
    with world.sessions() as session:
        rows = {r.id: r for r in session.scalars(select(AlertRecord).where(AlertRecord.id.in_([first, second])))}
        steps = {
            alert_id: session.scalars(select(AlertStep.action).where(AlertStep.alert_id == alert_id)).all()
            for alert_id in (first, second)
        }
    assert (rows[first].count, rows[first].status, rows[first].closed_at) == (3, "new", None)
    assert rows[first].updated_at.timestamp() * 1000 == pytest.approx(now + 2000, abs=1)
    assert (rows[second].count, rows[second].status) == (2, "resolved")
    closed = rows[second].closed_at
    assert closed is not None and closed.timestamp() * 1000 == pytest.approx(now + 3000, abs=1)
    assert steps == {first: ["raised"], second: ["raised", "resolved"]}
