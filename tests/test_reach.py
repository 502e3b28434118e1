"""Issue 18, browser test (a): a phone call entered in the console reaches a guard whose account was
linked a minute earlier; the guard accepts on the phone, arrives (the geofence sees it) and closes
with feedback; the console's timeline shows every step."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import delete, select

from alerts.live import AlertStore
from auth.models import User
from auth.principal import Principal
from closedloop.service import Loop
from notify.inbox import notices_for
from registry.models import Guard
from store.stores import Stores
from tests.browser import browser_login, click_button_of, click_text, press, wait_for, wait_text
from tests.conftest import LiveServer, new_browser, run_manage, save_screenshot
from tests.test_closed_loop import POLICE, close_with_feedback, on_duty, place_guard, smoke_alert

PASSWORD = "volunteer-pass-2026"


@pytest.mark.browser
def test_a_phone_call_reaches_a_guard_linked_a_minute_earlier_who_closes_it_from_the_phone(
    world: Stores, browser: Any
) -> None:
    with world.sessions.begin() as session:
        volunteer = session.scalars(
            select(Guard).where(Guard.community_id == "wanhu", Guard.kind == "volunteer").order_by(Guard.id)
        ).first()
        assert volunteer is not None and volunteer.device_id is not None
        session.execute(delete(User).where(User.guard_id == volunteer.id))  # one of the guards without an account
        guard_id, name, wearable = volunteer.id, volunteer.name, volunteer.device_id
    on_duty(world)  # nobody else on duty: the call can only go to the volunteer once they can be reached

    # a minute before the call: the station links an account to the volunteer, who checks in on the phone
    linked = run_manage(
        world.settings, "user", "add", "volunteer.fu", "--role", "guard", "--guard", guard_id, "--password", PASSWORD
    )
    assert linked.returncode == 0, linked.stderr
    server = LiveServer(world.settings)
    phone = new_browser(390, 844, mobile=True)
    try:
        browser_login(phone, server.url, "volunteer.fu", PASSWORD)
        phone.get(server.url + "/tasks")
        wait_for(phone, ".st-duty-off")
        press(phone, "签到上岗")
        wait_for(phone, ".st-duty-checkin")

        # the station takes a phone call and enters it at the console
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/console")
        click_text(browser, "details.st-incident > summary", "")  # a fresh server's first console: slow
        browser.find_element(By.ID, "incident-summary").send_keys("来电：楼道内有人晕倒")
        browser.find_element(By.ID, "incident-address").send_keys("52幢2单元402室" + Keys.ENTER)
        wait_text(browser, "#incident-place", "52幢2单元402室")
        browser.find_element(By.ID, "incident-caller-phone").send_keys("13912345678")
        browser.find_element(By.ID, "incident-submit").click()
        wait_text(browser, ".st-detail-type", "接警登记")
        (alert,) = [
            a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "incident.reported"
        ]
        place_guard(world, wearable, alert["location"]["lat"] + 0.0006, alert["location"]["lon"])  # ~70 m away

        # acknowledge, then dispatch the volunteer, who is ranked (named, not by id)
        press(browser, "确认")
        wait_for(browser, ".st-msg-ok")
        click_button_of(browser, ".st-suggest", name)
        wait_text(browser, ".st-timeline", name)

        # the volunteer, on the phone: accept; walking up to the place is seen by the geofence
        phone.get(server.url + "/tasks")
        wait_for(phone, ".st-task-offered")
        press(phone, "接单")
        wait_for(phone, ".st-task-accepted")
        place_guard(world, wearable, alert["location"]["lat"], alert["location"]["lon"])
        wait_for(phone, ".st-task-on_scene")
        close_with_feedback(phone, "已处置", "老人低血糖晕倒，已送医")
        wait_for(phone, ".st-msg-ok")
        save_screenshot(phone, "reach_volunteer_closed")

        # the console, still open, shows the whole timeline
        wait_text(browser, ".st-timeline", "老人低血糖晕倒，已送医")
        timeline = wait_text(browser, ".st-timeline", "登记")  # entered by the officer, not detected by a rule
        assert "系统发现" not in timeline and "wanhu-" not in timeline  # and every actor by name
        save_screenshot(browser, "reach_console_timeline")
    finally:
        phone.quit()
        server.stop()
    steps = Loop(world).timeline(alert["id"])
    actions = [s["action"] for s in steps]
    for expected in (
        "raised",
        "acknowledged",
        "dispatched",
        "task_offered",
        "task_accept",
        "task_arrive",
        "on_scene",
        "task_close",
        "resolved",
    ):
        assert expected in actions, actions
    arrive = next(s for s in steps if s["action"] == "task_arrive")
    assert arrive["note"] == "geofence"  # arrival came from the wearable, not a button
    accept = next(s for s in steps if s["action"] == "task_accept")
    assert accept["actor"] == "volunteer.fu"
    final = AlertStore(world.redis, world.keys).get("wanhu", alert["id"])
    assert final is not None and final["status"] == "resolved"


def test_the_guard_asked_is_told_in_the_app_and_nobody_else_is(world: Stores) -> None:
    """A task offered reaches, as a notification, the account of the guard it is offered to (their
    tasks page shows it), not the other guards."""
    alert = smoke_alert(world)
    with world.sessions() as session:
        first, second = session.scalars(
            select(Guard).where(Guard.community_id == "wanhu", Guard.kind == "volunteer").order_by(Guard.id).limit(2)
        ).all()
    on_duty(world, first.id)
    assert first.device_id is not None
    place_guard(world, first.device_id, alert["location"]["lat"] + 0.0003, alert["location"]["lon"])
    Loop(world).dispatch(POLICE, "wanhu", alert["id"], first.id, expected="new")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)

    def told(guard: Guard) -> list[str]:
        account = Principal(kind="user", id=f"guard.{guard.id}", role="guard", community="wanhu", guard=guard.id)
        with world.sessions() as session:
            found = notices_for(session, world.settings, account, "zh", after=None, since=since)
        return [n.text for n in found if n.event == "task.offered"]

    (text,) = told(first)
    assert "烟感报警" in text and "wanhu-" not in text  # read by a person: the place and the alert, no ids
    assert told(second) == []
