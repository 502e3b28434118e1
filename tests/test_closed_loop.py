"""The closed loop: dispatch by walking time, concurrency, the alert's life from the console to the
grid worker's phone and back."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import delete, select
from stdnum.cn import ric

from alerts.live import AlertStore
from analytics.rules.occupancy import RENTAL_CATEGORIES
from auth.models import User
from auth.principal import Principal
from closedloop.duty_models import DutyShift
from closedloop.models import Task
from closedloop.service import Loop
from core.clock import ManualClock
from core.errors import Conflict, InvalidInput
from core.i18n import t
from core.secrets import keyed_hash
from core.timefmt import iso_utc, utc_to_ms
from ingest.directory import Directory
from registry import importers
from registry.models import Guard, Person, PersonTag, Residency
from store.stores import Stores
from tests.browser import (
    browser_login,
    click_button_of,
    click_text,
    press,
    text_of,
    type_into,
    until,
    wait_for,
    wait_text,
)
from tests.conftest import LiveServer, new_browser, save_screenshot
from tests.test_pipeline import devices_of
from tests.test_wall import feed, now_ms

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
OTHER_POLICE = Principal(kind="user", id="police.two", role="police", community="wanhu", name="民警二")
ORIGIN = (33.3900, 120.1550)


def at(east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) east/north of the test origin."""
    lat0, lon0 = ORIGIN
    return lat0 + north_m / 111_320, lon0 + east_m / (111_320 * math.cos(math.radians(lat0)))


def smoke_alert(world: Stores) -> dict[str, Any]:
    detector = devices_of(world, "smoke_detector", 1)[0]
    feed(world, [{"type": "smoke.alarm", "device": detector, "ts": now_ms(), "data": {"level": "alarm"}}])
    (alert,) = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "smoke"]
    return alert


def on_duty(world: Stores, *guards: str, community: str = "wanhu") -> None:
    """Only these guards on duty, whatever the hour: the demo roster's shifts are deleted (its teams
    take turns by the hour of the day) and each guard checks in, as on the tasks page."""
    with world.sessions.begin() as session:
        session.execute(delete(DutyShift).where(DutyShift.community_id == community))
    loop = Loop(world)
    for guard in guards:
        loop.duty.check(
            Principal(kind="user", id=f"guard.{guard}", role="guard", community=community, guard=guard), "in"
        )


def place_guard(world: Stores, wearable: str, lat: float, lon: float) -> None:
    feed(world, [{"type": "guard.position", "device": wearable, "ts": now_ms(), "data": {"lat": lat, "lon": lon}}])


def test_dispatch_ranks_by_walking_time_not_straight_distance(world: Stores, tmp_path: Path) -> None:
    """A guard 40 m away behind a wall walks 400 m; one 120 m away on an open path walks 120 m."""

    def line(*points: tuple[float, float]) -> dict[str, Any]:
        return {
            "type": "Feature",
            "properties": {"kind": "path"},
            "geometry": {"type": "LineString", "coordinates": [[p[1], p[0]] for p in points]},
        }

    # target at the origin; guard A east of a wall must go round it; guard B comes straight down
    network = {
        "type": "FeatureCollection",
        "features": [
            line(at(0, 0), at(0, 120)),  # B's path
            line(at(0, 0), at(0, -180), at(40, -180), at(40, 0)),  # A's way round the wall
        ],
    }
    path = tmp_path / "paths.geojson"
    path.write_text(json.dumps(network))
    with world.sessions.begin() as session:
        importers.import_geo(session, "paths", path, "wanhu")
    a_wearable, b_wearable = devices_of(world, "wearable", 2)
    on_duty(world, "wanhu-GD01", "wanhu-GD02")
    place_guard(world, a_wearable, *at(40, 0))
    place_guard(world, b_wearable, *at(0, 120))
    ranked = Loop(world).rank("wanhu", at(0, 0))
    by_guard = {s.guard: s for s in ranked}
    a, b = by_guard["wanhu-GD01"], by_guard["wanhu-GD02"]
    assert a.straight_m < b.straight_m  # straight-line distance would send A
    assert ranked[0].guard == "wanhu-GD02"  # walking time sends B
    assert b.walking_m == pytest.approx(120, abs=5) and a.walking_m == pytest.approx(400, abs=10)
    assert b.eta_minutes < a.eta_minutes


@pytest.mark.also_on_cluster
def test_the_second_of_two_simultaneous_actions_is_refused(world: Stores) -> None:
    alert = smoke_alert(world)
    loop = Loop(world)
    outcomes: list[str] = []

    def acknowledge(who: Principal) -> None:
        try:
            loop.act(who, "wanhu", alert["id"], "acknowledge", expected="new")
            outcomes.append("ok")
        except InvalidInput as err:
            outcomes.append(f"{type(err).__name__}: {err.text('zh')}")

    threads = [threading.Thread(target=acknowledge, args=(p,)) for p in (POLICE, OTHER_POLICE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["Conflict: 该记录已被他人更新，请刷新后重试", "ok"]
    timeline = [s["action"] for s in loop.timeline(alert["id"])]
    assert timeline.count("acknowledged") == 1
    # an action the current state does not allow is refused with the reason
    loop.act(POLICE, "wanhu", alert["id"], "false_alarm", expected="acknowledged", note="测试按钮")
    with pytest.raises(InvalidInput, match="An alert that is false_alarm cannot become acknowledged"):
        loop.act(POLICE, "wanhu", alert["id"], "acknowledge", expected=None)


@pytest.mark.also_on_cluster
def test_a_task_acted_on_twice_at_once_keeps_the_first(world: Stores) -> None:
    alert = smoke_alert(world)
    wearable = devices_of(world, "wearable", 1)[0]
    place_guard(world, wearable, alert["location"]["lat"], alert["location"]["lon"] + 0.0005)
    on_duty(world, "wanhu-GD01")
    loop = Loop(world)
    task = loop.dispatch(POLICE, "wanhu", alert["id"], "wanhu-GD01", expected="new")
    guard = Principal(kind="user", id="guard", role="grid_worker", community="wanhu", guard="wanhu-GD01")
    loop.task_action(guard, task.id, "accept", version=task.version)
    with pytest.raises(Conflict) as refused:
        loop.task_action(guard, task.id, "decline", version=task.version)
    assert refused.value.text("zh") == "该记录已被他人更新，请刷新后重试"


@pytest.mark.also_on_cluster
def test_an_offer_not_accepted_in_time_goes_to_the_next_guard(world: Stores) -> None:
    alert = smoke_alert(world)
    first, second = devices_of(world, "wearable", 2)
    place_guard(world, first, alert["location"]["lat"], alert["location"]["lon"] + 0.0003)
    place_guard(world, second, alert["location"]["lat"], alert["location"]["lon"] + 0.0009)
    on_duty(world, "wanhu-GD01", "wanhu-GD02")
    clock = ManualClock(now_ms())
    loop = Loop(world, clock)
    task = loop.dispatch(POLICE, "wanhu", alert["id"], "wanhu-GD01", expected="new")
    clock.advance(int(world.settings.dispatch_accept_minutes * 60_000) + 1000)
    assert loop.maintain("wanhu")["redispatched"] == 1
    tasks = loop.tasks_of_alert(alert["id"])
    assert [(t.assignee, t.status) for t in tasks] == [("wanhu-GD01", "expired"), ("wanhu-GD02", "offered")]
    assert task.id == tasks[0].id
    expired_at = tasks[0].closed_at
    assert expired_at is not None and utc_to_ms(expired_at) == utc_to_ms(tasks[1].created_at) == clock.now_ms()
    assert "redispatch" in [s["action"] for s in loop.timeline(alert["id"])]


def test_a_stage_runs_from_entering_it_and_a_repeat_of_the_alert_does_not_postpone_its_sla(world: Stores) -> None:
    alert = smoke_alert(world)
    clock = ManualClock(now_ms())
    loop = Loop(world, clock)
    loop.act(POLICE, "wanhu", alert["id"], "acknowledge", expected="new")
    detector = alert["subject"]["device"]
    repeat_at = clock.now_ms() + 2500
    feed(world, [{"type": "smoke.alarm", "device": detector, "ts": repeat_at, "data": {"level": "alarm"}}])
    (doc,) = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["id"] == alert["id"]]
    assert doc["count"] == 2 and doc["status"] == "acknowledged"
    (acknowledged,) = [s["at"] for s in doc["timeline"] if s["status"] == "acknowledged"]
    due = int(dt.datetime.fromisoformat(acknowledged.replace("Z", "+00:00")).timestamp() * 1000)
    due += int(world.settings.sla_dispatch_minutes * 60_000)
    clock.set(due - 1000)
    assert loop.maintain("wanhu")["escalated"] == 0
    clock.set(due + 1200)
    assert loop.maintain("wanhu")["escalated"] == 1  # the repeat came 2.5 s after the step
    steps = [s for s in loop.timeline(alert["id"]) if s["action"] == "escalated"]
    assert len(steps) == 1 and "dispatch" in steps[0]["note"]
    assert steps[0]["at"] == iso_utc(due + 1200)  # the escalation carries the moved time, not the wall clock


# --- registering the tenant from a task -----------------------------------------------------------
TENANT_NAME = "测试租客甲"
TENANT_PHONE = "13900001111"


@dataclass
class TenantTask:
    """A tenant.unregistered alert raised by the pipeline, handed to its grid's grid worker."""

    loop: Loop
    alert: dict[str, Any]
    task: Task
    worker: Principal


def tenant_tasks(world: Stores, n: int) -> list[TenantTask]:
    """n rentals where the same stranger opened the lock on two days (someone moved in and never
    registered): the tenant.unregistered alerts, each dispatched to its grid's grid worker."""
    facts = Directory(world.sessions).facts("wanhu")
    locks = [
        d
        for d in sorted(facts.devices.values(), key=lambda d: d.id)
        if d.type == "smart_lock" and facts.households.get(d.household or "", {}).get("category") in RENTAL_CATEGORIES
    ][:n]
    now = now_ms()
    feed(
        world,
        [
            {"type": "lock.open", "device": lock.id, "ts": ts, "data": {"method": "face", "face_id": "NEWCOMER"}}
            for lock in locks
            for ts in (now - 26 * 3_600_000, now - 60_000)
        ],
    )
    alerts = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "tenant.unregistered"]
    assert len(alerts) == n
    loop = Loop(world)
    with world.sessions() as session:
        workers = session.scalars(select(Guard.id).where(Guard.community_id == "wanhu", Guard.kind == "grid_worker"))
        on_duty(world, *workers)
    out = []
    for alert in alerts:
        with world.sessions() as session:
            guard = session.scalars(
                select(Guard.id).where(Guard.grid_id == alert["grid"], Guard.kind == "grid_worker").order_by(Guard.id)
            ).first()
        assert guard is not None
        task = loop.dispatch(POLICE, "wanhu", alert["id"], guard, expected="new")
        worker = Principal(
            kind="user",
            id=f"grid.{alert['grid']}",
            role="grid_worker",
            community="wanhu",
            grid=alert["grid"],
            guard=guard,
        )
        out.append(TenantTask(loop, alert, task, worker))
    return out


@pytest.fixture
def tenant_task(world: Stores) -> TenantTask:
    (tenant,) = tenant_tasks(world, 1)
    return tenant


def registered(world: Stores, id_number: str) -> list[Person]:
    """The people of Wanhu registered with this ID number (compared as the registry does, by its keyed hash)."""
    with world.sessions() as session:
        return list(
            session.scalars(
                select(Person).where(
                    Person.community_id == "wanhu", Person.id_hash == keyed_hash(world.id_hash_key, id_number)
                )
            )
        )


def new_id_number(world: Stores) -> str:
    """A valid ID number nobody in Wanhu has."""
    with world.sessions() as session:
        place = session.scalars(select(Person.id_number).where(Person.id_number.is_not(None))).first()
    assert place is not None
    for sequence in range(100, 1000):
        body = f"{place[:6]}19900307{sequence}"
        number = body + ric.calc_check_digit(body + "0")
        if not registered(world, number):
            return number
    raise AssertionError("no free ID number")


def task_now(loop: Loop, alert_id: str) -> Task:
    (task,) = loop.tasks_of_alert(alert_id)
    return task


def register(tenant: TenantTask, id_number: str, version: int) -> Task:
    return tenant.loop.register_floating(
        tenant.worker, tenant.task.id, version=version, name=TENANT_NAME, id_number=id_number, phone=TENANT_PHONE
    )


def test_registering_from_a_task_not_yet_accepted_registers_nobody(world: Stores, tenant_task: TenantTask) -> None:
    number = new_id_number(world)
    for _ in range(3):
        with pytest.raises(InvalidInput) as refused:
            register(tenant_task, number, tenant_task.task.version)
        assert registered(world, number) == []
        assert refused.value.key == "task.error.register_offered"
        assert refused.value.text("zh") == "请先接单，再登记流动人口"
        assert str(refused.value) == "Accept the task before registering the tenant"
    task = task_now(tenant_task.loop, tenant_task.alert["id"])
    assert (task.status, task.version) == ("offered", tenant_task.task.version)


def test_an_id_number_registered_in_the_community_already_is_refused(world: Stores, tenant_task: TenantTask) -> None:
    loop = tenant_task.loop
    accepted = loop.task_action(tenant_task.worker, tenant_task.task.id, "accept", version=tenant_task.task.version)
    with world.sessions() as session:
        existing = session.scalars(
            select(Person.id_number).where(Person.community_id == "wanhu", Person.id_number.is_not(None))
        ).first()
    assert existing is not None
    with pytest.raises(InvalidInput) as refused:
        register(tenant_task, existing.lower(), accepted.version)  # the same number as the registry keeps it
    assert len(registered(world, existing)) == 1
    with world.sessions() as session:
        assert session.scalars(select(Person.id).where(Person.name == TENANT_NAME)).all() == []
    task = task_now(loop, tenant_task.alert["id"])
    assert (task.status, task.version) == ("accepted", accepted.version)
    assert refused.value.text("zh") == t("task.error.duplicate_id", "zh")


def test_a_registration_registers_the_tenant_once_and_closes_the_task(world: Stores, tenant_task: TenantTask) -> None:
    loop = tenant_task.loop
    accepted = loop.task_action(tenant_task.worker, tenant_task.task.id, "accept", version=tenant_task.task.version)
    number = new_id_number(world)
    closed = register(tenant_task, number, accepted.version)
    assert (closed.status, closed.outcome) == ("closed", "registered")
    (person,) = registered(world, number)
    assert person.name == TENANT_NAME and person.floating_expires_on is not None
    with world.sessions() as session:
        tags = session.scalars(select(PersonTag.tag).where(PersonTag.person_id == person.id)).all()
        homes = session.execute(
            select(Residency.household_id, Residency.role).where(Residency.person_id == person.id)
        ).all()
    assert tags == ["floating"] and homes == [(tenant_task.alert["subject"]["household"], "tenant")]
    alert = AlertStore(world.redis, world.keys).get("wanhu", tenant_task.alert["id"])
    assert alert is not None and alert["status"] == "resolved"
    # pressing the button again, with the page's old or the task's new version, registers nobody
    for version in (accepted.version, closed.version):
        with pytest.raises(InvalidInput):
            register(tenant_task, number, version)
    assert len(registered(world, number)) == 1


def test_two_registrations_of_one_id_number_at_once_register_one_person(world: Stores) -> None:
    tenants = tenant_tasks(world, 2)
    accepted = [
        tenant.loop.task_action(tenant.worker, tenant.task.id, "accept", version=tenant.task.version)
        for tenant in tenants
    ]
    number = new_id_number(world)
    start = threading.Barrier(len(tenants))
    outcomes: list[str] = []

    def register_at_once(tenant: TenantTask, version: int) -> None:
        start.wait()
        try:
            register(tenant, number, version)
            outcomes.append("registered")
        except InvalidInput as err:
            outcomes.append(f"{type(err).__name__}: {err.text('zh')}")

    threads = [
        threading.Thread(target=register_at_once, args=pair)
        for pair in zip(tenants, [a.version for a in accepted], strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == sorted(["registered", f"InvalidInput: {t('task.error.duplicate_id', 'zh')}"])
    assert len(registered(world, number)) == 1


def close_with_feedback(phone: Any, outcome: str, notes: str) -> None:
    """Choose the outcome, write the notes and press 反馈并办结 on the task card; the list may be
    drawn again meanwhile (a refresh), so every element is found afresh and the form is checked
    before the press."""

    def choose() -> bool:
        options = phone.find_elements(By.CSS_SELECTOR, ".st-task [role=option], .st-task .VirtualizedSelectOption")
        if options:  # the list is open (its options are text of the select too): pick the outcome
            next(o for o in options if outcome in o.text).click()
            return False  # done only once the list is closed and shows the outcome
        if outcome in phone.find_element(By.CSS_SELECTOR, ".st-task .st-select").text:
            return True
        phone.find_element(By.CSS_SELECTOR, ".st-task .st-select").click()  # open the list (a redraw closes it)
        return False

    def fill_and_press() -> bool:
        until(choose, f"the outcome {outcome}")
        type_into(phone, ".st-task textarea", notes)
        # a redraw between the checks and the press would lose the form: check both once more
        if not choose() or phone.find_element(By.CSS_SELECTOR, ".st-task textarea").get_attribute("value") != notes:
            return False
        phone.find_element(By.XPATH, "//button[normalize-space()='反馈并办结']").click()
        return True

    until(fill_and_press, "the close form to be filled in and sent")


@pytest.mark.browser
def test_an_alert_from_creation_to_closed_in_two_sessions(world: Stores, browser) -> None:
    """The police console and a grid worker's phone, open at the same time, drive one alert to closed."""
    alert = smoke_alert(world)
    with world.sessions() as session:
        guard_id = session.scalars(select(User.guard_id).where(User.username == "grid.wanhu-G1")).one()
        guard = session.get(Guard, guard_id)
        assert guard is not None and guard.device_id is not None
        wearable = guard.device_id
    on_duty(world, guard.id)
    place_guard(world, wearable, alert["location"]["lat"] + 0.0002, alert["location"]["lon"])
    server = LiveServer(world.settings)
    phone = new_browser(390, 844, mobile=True)
    try:
        # police, at the console: acknowledge, then dispatch the grid worker
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/console")
        click_text(browser, ".st-row", "烟感报警")
        wait_for(browser, ".st-detail-type")
        type_into(browser, "#console-note", "已电话联系住户")
        press(browser, "确认")
        wait_for(browser, ".st-msg-ok")
        click_button_of(browser, ".st-suggest", "网格员")
        wait_for(browser, ".st-tl-what", minimum=4)

        # the grid worker, on the phone: accept, arrive, report and close
        browser_login(phone, server.url, "grid.wanhu-G1")
        phone.get(server.url + "/tasks")
        wait_for(phone, ".st-task-offered")
        press(phone, "接单")
        wait_for(phone, ".st-task-accepted")
        press(phone, "已到场")
        wait_for(phone, ".st-task-on_scene")
        save_screenshot(phone, "tasks_phone_on_scene")
        close_with_feedback(phone, "已处置", "厨房油烟，已处置")
        wait_for(phone, ".st-msg-ok")

        # the console, still open, shows the whole timeline
        wait_text(browser, ".st-timeline", "反馈办结")
        save_screenshot(browser, "console_timeline_closed")
    finally:
        phone.quit()
        server.stop()
    steps = [s["action"] for s in Loop(world).timeline(alert["id"])]
    assert steps[:2] == ["raised", "acknowledged"]
    for expected in ("dispatched", "task_offered", "task_accept", "task_arrive", "on_scene", "task_close", "resolved"):
        assert expected in steps, steps
    final = AlertStore(world.redis, world.keys).get("wanhu", alert["id"])
    assert final is not None and final["status"] == "resolved"


@pytest.mark.browser
def test_a_task_changed_on_another_device_meanwhile_says_so_in_chinese(world: Stores, browser) -> None:
    """Two devices act on one task: the second to press gets the conflict in the page's language,
    not the service's English sentence."""
    alert = smoke_alert(world)
    with world.sessions() as session:
        guard_id = session.scalars(select(User.guard_id).where(User.username == "grid.wanhu-G1")).one()
    assert guard_id is not None
    on_duty(world, guard_id)
    loop = Loop(world)
    task = loop.dispatch(POLICE, "wanhu", alert["id"], guard_id, expected="new")
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "grid.wanhu-G1")
        browser.get(server.url + "/tasks")
        wait_for(browser, ".st-task-offered")
        # the phone stops refreshing (as on a slow network), and the worker's other device accepts
        browser.execute_script("window.dash_clientside.set_props('tasks-refresh', {disabled: true});")
        worker = Principal(
            kind="user", id="grid.wanhu-G1", role="grid_worker", community="wanhu", grid="wanhu-G1", guard=guard_id
        )
        loop.task_action(worker, task.id, "accept", version=task.version)
        press(browser, "接单")
        message = text_of(browser, ".st-msg-error")
        save_screenshot(browser, "tasks_conflict_zh")
    finally:
        server.stop()
    assert message == "该记录已被他人更新，请刷新后重试"
