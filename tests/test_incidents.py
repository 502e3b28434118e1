"""Incidents by hand (接警登记), the resident's call in the closed loop, and device.battery_low
(interfaces §8): the API over a real server, the loop's operations, the residents' page in Chromium."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import select

from alerts.live import AlertStore
from api.resident import resident_link
from auth.models import User
from auth.principal import Principal
from auth.service import create_token
from closedloop.incidents import Incidents, find_places
from closedloop.models import ResidentReport, Task
from closedloop.service import Loop
from registry.models import Guard, Household
from store.stores import Stores
from tests.browser import browser_login, click_text, wait_text
from tests.conftest import LiveServer, http_login, new_browser, save_screenshot
from tests.test_closed_loop import on_duty
from tests.test_rules import T0, Ids, M, Scenario, ids  # noqa: F401  (ids: the fixture)
from tests.test_wall import feed, now_ms

pytestmark = pytest.mark.also_on_pg

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
HOUSEHOLD = "wanhu-B052-2-402"
INSIDE = {"lat": 33.389, "lon": 120.153}  # inside Wanhu's boundary
OUTSIDE = {"lat": 33.333, "lon": 120.180}  # inside Xingbang's


def role_token(world: Stores, role: str, community: str | None = "wanhu") -> dict[str, str]:
    """Authorization headers of a fresh token of a role (a grid worker's for grid wanhu-G1)."""
    grid = "wanhu-G1" if role == "grid_worker" else None
    with world.sessions.begin() as session:
        _, text = create_token(session, scope="role", role=role, community=community, grid=grid, name="test")
    return {"Authorization": f"Bearer {text}"}


def incident(**changes: Any) -> dict[str, Any]:
    """A good incident report, with fields changed (None removes one)."""
    body: dict[str, Any] = {
        "community": "wanhu",
        "source": "110",
        "summary": "报警人称楼上有人吵架并摔东西",
        "place": {"household": HOUSEHOLD},
        "caller": {"name": "王先生", "phone": "13812345678"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def server(world: Stores) -> Any:
    live = LiveServer(world.settings)
    yield live
    live.stop()


def test_a_call_to_110_becomes_an_alert_of_its_own_with_the_caller_masked(world: Stores, server: LiveServer) -> None:
    url = server.url + "/api/v1/incidents"
    headers = role_token(world, "police")
    first = requests.post(url, json=incident(severity="critical"), headers=headers, timeout=30)
    assert first.status_code == 201, first.text
    alert = first.json()
    assert (alert["type"], alert["severity"], alert["status"], alert["community"]) == (
        "incident.reported",
        "critical",
        "new",
        "wanhu",
    )
    assert alert["subject"] == {"household": HOUSEHOLD, "building": "wanhu-B052"}
    assert alert["location"]["lat"] and alert["location"]["lon"]
    assert alert["evidence"]["source"] == "110"
    assert alert["evidence"]["summary"] == "报警人称楼上有人吵架并摔东西"
    assert alert["evidence"]["caller"] == {"name": "王先生", "phone": "138****5678"}
    assert "13812345678" not in first.text

    # the same place again: a second alert, never merged into the first
    again = requests.post(url, json=incident(source="phone"), headers=headers, timeout=30)
    assert again.status_code == 201 and again.json()["id"] != alert["id"]
    # a click on the map and a building are places too; a session works as well as a token
    police = http_login(server.url, "police.wanhu")
    point = police.post(url, json=incident(place=INSIDE, caller=None, source="patrol"), timeout=30)
    assert point.status_code == 201, point.text
    assert point.json()["location"] == INSIDE and point.json()["severity"] == "high"
    building = police.post(url, json=incident(place={"building": "wanhu-B052"}, source="walk_in"), timeout=30)
    assert building.json()["subject"] == {"building": "wanhu-B052"}

    # the alerts API lists them like the rules' alerts; the wall sees no caller at all
    listed = police.get(server.url + "/api/v1/alerts", params={"type": "incident.reported"}, timeout=30).json()
    assert {a["id"] for a in listed} >= {alert["id"], again.json()["id"]}
    wall = requests.get(
        server.url + "/api/v1/alerts",
        params={"type": "incident.reported"},
        headers=role_token(world, "wall"),
        timeout=30,
    ).json()
    assert wall and all("caller" not in a["evidence"] and "summary" not in a["evidence"] for a in wall)

    # the OpenAPI document (public) knows the new types and the route
    spec = requests.get(server.url + "/api/v1/openapi.json", timeout=30).json()
    alert_types = spec["components"]["schemas"]["Alert"]["properties"]["type"]["enum"]
    assert {"incident.reported", "resident.call", "device.battery_low"} <= set(alert_types)
    assert "201" in spec["paths"]["/api/v1/incidents"]["post"]["responses"]


REFUSALS = [
    (incident(place=None), "place"),
    (incident(place={}), "place"),
    (incident(place={"lat": 33.0, "lon": 120.0}), "place.lat"),
    (incident(place=OUTSIDE), "place.lat"),
    (incident(place={"lat": "north", "lon": 120.15}), "place.lat"),
    (incident(place={"building": "wanhu-B999"}), "place.building"),
    (incident(place={"household": "wanhu-B999-1-101"}), "place.household"),
    (incident(place={"building": "xingbang-B001"}), "place.building"),
    (incident(source="fax"), "source"),
    (incident(source=None), "source"),
    (incident(summary="   "), "summary"),
    (incident(summary=None), "summary"),
    (incident(severity="urgent"), "severity"),
    (incident(caller={"name": "王", "phone": "12345"}), "caller.phone"),
    (incident(community=None), "community"),
    (incident(community="atlantis"), "community"),
]


def test_every_refusal_names_its_field_and_nothing_is_raised(world: Stores, server: LiveServer) -> None:
    url = server.url + "/api/v1/incidents"
    headers = role_token(world, "admin", None)
    for body, field in REFUSALS:
        answer = requests.post(url, json=body, headers=headers, timeout=30)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["field"] == field, (body, answer.json())
        assert field.split(".")[0] in answer.json()["error"], answer.json()
    not_json = requests.post(url, data="summary=x", headers=headers, timeout=30)
    assert not_json.status_code == 400 and not_json.json()["field"] == "body"
    assert AlertStore(world.redis, world.keys).open_alerts("wanhu") == []


def test_only_police_and_admins_of_the_community_may_register_an_incident(world: Stores, server: LiveServer) -> None:
    url = server.url + "/api/v1/incidents"
    for role, community in (("grid_worker", "wanhu"), ("property", "wanhu"), ("wall", "wanhu")):
        denied = requests.post(url, json=incident(), headers=role_token(world, role, community), timeout=30)
        assert denied.status_code == 403, (role, denied.text)
    elsewhere = requests.post(url, json=incident(), headers=role_token(world, "police", "xingbang"), timeout=30)
    assert elsewhere.status_code == 403
    anonymous = requests.post(url, json=incident(), timeout=30)
    assert anonymous.status_code in (401, 403)
    assert AlertStore(world.redis, world.keys).open_alerts("wanhu") == []


def test_an_incident_follows_the_loop_to_its_close(world: Stores) -> None:
    loop = Loop(world)
    alert = Incidents(loop).report(POLICE, incident())
    loop.act(POLICE, "wanhu", alert["id"], "acknowledge", expected="new")
    guard, worker = nearest_guard(world, alert)
    task = loop.dispatch(POLICE, "wanhu", alert["id"], guard.id, expected="acknowledged")
    task = loop.task_action(worker, task.id, "accept", version=task.version)
    task = loop.task_action(worker, task.id, "close", version=task.version, outcome="handled", notes="已劝解")
    assert AlertStore(world.redis, world.keys).get("wanhu", alert["id"])["status"] == "resolved"  # type: ignore[index]
    steps = [s["action"] for s in loop.timeline(alert["id"])]
    assert steps[0] == "raised" and "task_close" in steps and steps[-1] == "resolved"


def test_an_address_typed_as_people_write_it_finds_the_place(world: Stores) -> None:
    with world.sessions() as session:
        (room,) = find_places(session, "wanhu", "52幢2单元402室", "zh")
        assert (room.kind, room.id, room.label) == ("household", HOUSEHOLD, "52幢2单元402室")
        building = find_places(session, "wanhu", "52幢", "zh")
        assert [(b.kind, b.id) for b in building] == [("building", "wanhu-B052")]
        assert find_places(session, "wanhu", "52-2-402", "zh")[0].id == HOUSEHOLD
        assert find_places(session, "wanhu", "东门", "zh") == []


# --- device.battery_low -----------------------------------------------------------------------------


def battery(device: str, ts: int, percent: float) -> dict[str, Any]:
    return {"type": "device.heartbeat", "device": device, "ts": ts, "data": {"battery": percent}}


def test_a_low_battery_raises_one_alert_per_device_until_a_new_battery(world: Stores, ids: Ids) -> None:  # noqa: F811
    s = Scenario(world).at(0, battery(ids.detector, T0, 21), battery(ids.lock, T0, 80))
    assert s.open("device.battery_low") == []
    s.at(M, battery(ids.detector, T0 + M, 20))
    s.at(2 * M, battery(ids.detector, T0 + 2 * M, 12))
    (low,) = s.open("device.battery_low")
    assert low["subject"]["device"] == ids.detector and low["count"] == 2 and low["severity"] == "low"
    assert low["evidence"]["battery"] == 20 and low["evidence"]["threshold_percent"] == 20
    s.at(3 * M, battery(ids.detector, T0 + 3 * M, 25))  # just above: not yet a new battery
    assert len(s.open("device.battery_low")) == 1
    s.at(4 * M, battery(ids.detector, T0 + 4 * M, 100))
    assert s.open("device.battery_low") == []


# --- the resident's call ------------------------------------------------------------------------------


def nearest_guard(world: Stores, alert: dict[str, Any]) -> tuple[Guard, Principal]:
    """The guard of the grid worker account grid.wanhu-G1 (a guard with an account), placed next to the
    alert so that dispatch finds them, on duty whatever the hour (the demo roster's teams take turns),
    and the principal of that account."""
    with world.sessions() as session:
        guard_id = session.scalars(select(User.guard_id).where(User.username == "grid.wanhu-G1")).one()
        guard = session.get(Guard, guard_id)
    assert guard is not None and guard.device_id is not None
    on_duty(world, guard.id)
    lat, lon = alert["location"]["lat"], alert["location"]["lon"] + 0.0003
    position = {"type": "guard.position", "device": guard.device_id, "ts": now_ms(), "data": {"lat": lat, "lon": lon}}
    feed(world, [position])
    worker = Principal(
        kind="user", id="grid.wanhu-G1", role="grid_worker", community="wanhu", grid="wanhu-G1", guard=guard.id
    )
    return guard, worker


def call_police(server: LiveServer, link: str, text: str, contact: str = "13912345678") -> requests.Response:
    key = link.split("k=")[1]
    form = {"h": HOUSEHOLD, "k": key, "text": text, "contact": contact, "to": "police"}
    return requests.post(server.url + "/resident/report", data=form, timeout=30)


def test_a_residents_call_is_an_alert_at_the_household_and_a_flood_is_refused(
    world: Stores, server: LiveServer
) -> None:
    link = resident_link(world, HOUSEHOLD, server.url)
    sent = call_police(server, link, "楼道里有陌生人撬门")
    assert sent.status_code == 200 and "楼道里有陌生人撬门" in sent.text and "已收到" in sent.text
    with world.sessions() as session:
        call = session.scalars(select(ResidentReport)).one()
        building = session.get(Household, HOUSEHOLD).building  # type: ignore[union-attr]
        assert call.alert_id is not None
        loc = (building.lat, building.lon)
    alert = AlertStore(world.redis, world.keys).get("wanhu", call.alert_id)
    assert alert is not None and alert["type"] == "resident.call"
    assert alert["subject"] == {"household": HOUSEHOLD, "building": "wanhu-B052"}
    assert (alert["location"]["lat"], alert["location"]["lon"]) == loc
    police = http_login(server.url, "police.wanhu")
    listed = police.get(server.url + "/api/v1/alerts", params={"type": "resident.call"}, timeout=30).json()
    assert [a["evidence"]["caller"]["phone"] for a in listed] == ["139****5678"]
    status = requests.get(link.replace("/resident?", "/resident/calls?"), timeout=30).json()
    assert [(c["text"], c["stage"], c["label"]) for c in status] == [("楼道里有陌生人撬门", "received", "已收到")]

    for n in range(world.settings.resident_calls_per_hour - 1):
        assert call_police(server, link, f"第{n}次").status_code == 200
    flood = call_police(server, link, "又一次")
    assert flood.status_code == 429 and "提交过于频繁" in flood.text and flood.headers["Retry-After"]
    with world.sessions() as session:
        assert len(session.scalars(select(ResidentReport)).all()) == world.settings.resident_calls_per_hour
    forged = requests.get(f"{server.url}/resident/calls?h={HOUSEHOLD}&k=0000", timeout=30)
    assert forged.status_code == 404


@pytest.mark.browser
def test_a_call_entered_in_the_console_is_placed_refused_by_field_and_selected(
    world: Stores, server: LiveServer, browser: Any
) -> None:
    call_police(server, resident_link(world, HOUSEHOLD, server.url), "邻居家传来争吵声")
    browser_login(browser, server.url, "police.wanhu")
    browser.get(server.url + "/console")
    # the resident's call: in the queue, and in the residents' calls by its address; a click opens it
    wait_text(browser, ".st-queue-list", "居民报警求助")
    wait_text(browser, ".st-reports", "52幢2单元402室")
    click_text(browser, "button.st-report", "邻居家传来争吵声")
    wait_text(browser, ".st-detail-type", "居民报警求助")
    wait_text(browser, ".st-evidence", "139****5678")

    click_text(browser, "details.st-incident > summary", "")
    click_text(browser, "#incident-submit", "")
    wait_text(browser, "#incident-error-summary", "请填写警情摘要")
    browser.find_element(By.ID, "incident-summary").send_keys("楼上住户家中传出呼救声")
    browser.find_element(By.ID, "incident-submit").click()
    wait_text(browser, "#incident-error-place", "请指定地点")
    assert browser.find_element(By.ID, "incident-error-summary").text == ""

    # a click on the map chooses a point; typing an address replaces it by the household found
    browser.find_element(By.ID, "incident-map").click()
    wait_text(browser, "#incident-place", "地图选点")
    browser.find_element(By.ID, "incident-address").send_keys("52幢2单元402室" + Keys.ENTER)
    wait_text(browser, "#incident-place", "52幢2单元402室")
    browser.find_element(By.ID, "incident-caller-phone").send_keys("12345")
    browser.find_element(By.ID, "incident-submit").click()
    wait_text(browser, "#incident-error-caller-phone", "不是有效的手机号")
    phone = browser.find_element(By.ID, "incident-caller-phone")
    phone.send_keys(Keys.CONTROL, "a")
    phone.send_keys(Keys.BACKSPACE, "13812345678")
    browser.find_element(By.ID, "incident-submit").click()

    # the new alert is selected: its detail opens, and it is in the queue
    wait_text(browser, ".st-detail-type", "接警登记")
    wait_text(browser, ".st-evidence", "楼上住户家中传出呼救声")
    wait_text(browser, ".st-evidence", "138****5678")
    wait_text(browser, ".st-queue-list", "接警登记")
    save_screenshot(browser, "console-incident-registered")
    (alert,) = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "incident.reported"]
    assert alert["subject"]["household"] == HOUSEHOLD


@pytest.mark.browser
def test_browser_b_a_resident_watches_their_call_move_until_the_feedback(world: Stores, server: LiveServer) -> None:
    """Issue 18, browser test (b): the resident calls the police on their page and watches the status
    move (received → someone on the way → done, with the feedback text) while the loop runs."""
    driver = new_browser(420, 900, mobile=True)
    try:
        driver.get(resident_link(world, HOUSEHOLD, server.url))
        driver.find_element(By.NAME, "text").send_keys("家门口有人持刀吵闹")
        driver.find_element(By.CSS_SELECTOR, "button[value=police]").click()
        stage_is(driver, "已收到")

        with world.sessions() as session:
            alert_id = session.scalars(select(ResidentReport.alert_id)).one()
        assert alert_id is not None
        loop = Loop(world)
        loop.act(POLICE, "wanhu", alert_id, "acknowledge", expected="new")
        stage_is(driver, "已收到")
        doc = loop.visible_alert(POLICE, "wanhu", alert_id)
        guard, worker = nearest_guard(world, doc)
        task = loop.dispatch(POLICE, "wanhu", alert_id, guard.id, expected="acknowledged")
        stage_is(driver, "民警/卫士正在赶来")
        task = loop.task_action(worker, task.id, "accept", version=task.version)
        task = loop.task_action(worker, task.id, "arrive", version=task.version)
        stage_is(driver, "民警/卫士正在赶来")
        loop.task_action(worker, task.id, "close", version=task.version, outcome="handled", notes="已劝离，双方和解")
        stage_is(driver, "已处理")
        feedback = wait_text(driver, ".st-call-feedback", "已劝离，双方和解")
        assert "已处置" in feedback  # the outcome, then the notes
        save_screenshot(driver, "resident-call-done")
        with world.sessions() as session:
            assert session.get(Task, task.id).status == "closed"  # type: ignore[union-attr]
    finally:
        driver.quit()


def stage_is(driver: Any, label: str) -> None:
    """The newest call shows this stage."""
    wait_text(driver, ".st-call:first-child .st-call-stage", label)
