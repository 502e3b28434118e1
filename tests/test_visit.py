"""Visitors apply themselves on the public page /visit: approval, the status link, the gate, bad input."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from sqlalchemy import func, select

from api.resident import resident_link
from api.visit import pass_key
from callbacks.util import dash_request, prop
from core.timefmt import SHANGHAI
from gates.models import GateHourly, VisitorPass
from gates.service import SELF_APPLIED, Visitors
from layouts import ids
from registry.address import building_key, room_key, unit_number
from store.stores import Stores
from tests.browser import text_of, wait_for
from tests.conftest import ARTIFACTS, LiveServer, http_login, new_browser
from tests.test_gates import PROPERTY, VISITOR_ID, face
from tests.test_rules import T0, M, Scenario

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

HOUSEHOLD = "wanhu-B002-1-101"  # 2幢 1单元 101
STATUS_LINK = re.compile(r'href="(/visit/status\?[^"]+)"')


def local(at: dt.datetime) -> str:
    """A datetime-local form value (Shanghai)."""
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def application(**overrides: str) -> dict[str, str]:
    """A good application to 2幢 1单元 101 of wanhu, for the next three hours."""
    now = dt.datetime.now(dt.UTC)
    form = {
        "c": "wanhu",
        "visitor_name": "访客丙",
        "id_number": VISITOR_ID,
        "phone": "13912345678",
        "plate": "苏A12345",
        "building": "2幢",
        "unit": "1",
        "room": "101",
        "valid_from": local(now - dt.timedelta(minutes=5)),
        "valid_to": local(now + dt.timedelta(hours=3)),
        "reason": "探望父母",
    }
    return form | overrides


def passes(world: Stores) -> int:
    with world.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(VisitorPass)) or 0)


def approval_queue(session: requests.Session, url: str) -> str:
    """What the approval panel lists for the signed-in user (its Dash callback, called as the page does)."""
    payload = dash_request(
        ((ids.VISITOR_LIST, "children"), (ids.VISITOR_PAGE, "data"), (ids.VISITOR_PAGER, "children")),
        [
            prop(ids.VISITOR_DONE, "data", 0),
            prop(ids.VISITOR_LANG, "data", "zh"),
            prop(ids.VISITOR_ORDER, "value", "newest"),
            prop(ids.VISITOR_PREV, "n_clicks", 0),
            prop(ids.VISITOR_NEXT, "n_clicks", 0),
        ],
        [prop(ids.VISITOR_PAGE, "data", 0)],
        f"{ids.VISITOR_DONE}.data",
    )
    response = session.post(url + "/_dash-update-component", json=payload, timeout=30)
    if response.status_code == 204:
        return ""
    assert response.status_code == 200, response.text[:300]
    return json.dumps(response.json(), ensure_ascii=False)


def approve(session: requests.Session, url: str, pass_id: str, *, yes: bool = True, note: str = "请走北门") -> str:
    """Press 'approve' (or 'reject') on a pass in the approval panel."""
    button = {"type": "visitor-act", "pass": pass_id, "approve": 1 if yes else 0}
    payload: dict[str, Any] = {
        "output": "..visitor-msg.children...visitor-done.data..",
        "outputs": [{"id": "visitor-msg", "property": "children"}, {"id": "visitor-done", "property": "data"}],
        "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
        "state": [
            [{"id": {"type": "visitor-note", "pass": pass_id}, "property": "value", "value": note}],
            {"id": "visitor-lang", "property": "data", "value": "zh"},
            {"id": "visitor-done", "property": "data", "value": 0},
        ],
        "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
    }
    response = session.post(url + "/_dash-update-component", json=payload, timeout=30)
    assert response.status_code == 200, response.text[:300]
    return json.dumps(response.json(), ensure_ascii=False)


def test_a_visitor_applies_is_approved_and_the_face_gate_lets_them_in(world: Stores) -> None:
    server = LiveServer(world.settings)
    try:
        page = requests.get(server.url + "/visit?c=wanhu", timeout=30)
        assert page.status_code == 200 and "访客预约登记" in page.text and "万户新村" in page.text
        sent = requests.post(server.url + "/visit", data=application(), timeout=30)
        assert sent.status_code == 200, sent.text
        assert "申请已提交" in sent.text and "待审批" in sent.text
        link = html.unescape(STATUS_LINK.search(sent.text).group(1))  # type: ignore[union-attr]
        with world.sessions() as session:
            created = session.scalars(select(VisitorPass)).one()
        assert (created.household_id, created.status, created.requested_by) == (HOUSEHOLD, "pending", SELF_APPLIED)
        assert f"p={created.id}" in link
        assert f'content="60; url=/visit/status?p={created.id}' in sent.text  # the confirmation moves on to it

        # the host household sees the application on its page
        hosts = requests.get(resident_link(world, HOUSEHOLD, server.url), timeout=30).text
        assert "访客丙" in hosts and "访客自助申请" in hosts

        # property of that community has it in the approval queue (ID masked); the other community's police
        # have not (property.xingbang is locked out by test_access in the shared demo registry)
        other = http_login(server.url, "police.xingbang")
        assert created.id not in approval_queue(other, server.url)
        staff = http_login(server.url, "property.wanhu")
        queue = approval_queue(staff, server.url)
        assert created.id in queue and "访客自助申请" in queue and VISITOR_ID not in queue
        refused = approve(staff, server.url, created.id, yes=False, note="")
        assert "驳回须填写原因" in refused  # the service's refusal, in the page's language
        assert "st-msg-ok" in approve(staff, server.url, created.id)

        status = requests.get(server.url + link, timeout=30)
        assert status.status_code == 200 and "已通过" in status.text and "请走北门" in status.text
        assert "访客丙" not in status.text and "13912345678" not in status.text  # the status, nothing else
    finally:
        server.stop()

    # inside the window, the visitor's face at the gate is let through
    now = int(time.time() * 1000)
    s = Scenario(world)
    s.clock.set(now)
    s.at(now - T0 + M, face(world, now + M, id_number=VISITOR_ID))
    assert s.open("visitor.unapproved") == []
    with world.sessions() as session:
        entered = session.get(VisitorPass, created.id)
        visitors_counted = session.scalar(
            select(func.sum(GateHourly.count)).where(GateHourly.kind == "face", GateHourly.category == "visitor")
        )
    assert entered is not None and entered.entered_at is not None
    assert visitors_counted == 1


def field_error(page: str, field: str) -> str:
    found = re.search(rf'id="error-{field}" role="alert">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


BAD_INPUT = [  # (what the visitor typed differently, the field that says so, what it says)
    ({"id_number": "110105194912310021"}, "id_number", "身份证号有误"),
    ({"phone": "12345"}, "phone", "手机号有误"),
    ({"plate": "苏JI2345"}, "plate", "车牌号有误"),
    ({"valid_from": "2020-01-01T08:00", "valid_to": "2020-01-01T10:00"}, "valid_to", "该时段已过"),
    ({"building": "199幢"}, "host", "没有这个住户"),
    ({"room": "9901"}, "host", "没有这个住户"),
    ({"unit": ""}, "host", "请填写单元号"),
    ({"reason": ""}, "reason", "请填写来访事由"),
]


def test_bad_input_is_named_at_its_field_and_nothing_is_created(world: Stores, live_visit: LiveServer) -> None:
    # one server for the whole table: starting one per case would cost more than the cases
    for change, field, message in BAD_INPUT:
        form = application(**change)
        page = requests.post(live_visit.url + "/visit", data=form, timeout=30)
        assert page.status_code == 400, change
        assert message in field_error(page.text, field), change
        flagged = [
            f for f in ("id_number", "phone", "plate", "valid_to", "host", "reason") if field_error(page.text, f)
        ]
        assert flagged == [field], change
        for name in ("visitor_name", "phone", "building", "room", "valid_from"):  # what was typed stays
            assert f'name="{name}" type="' in page.text and f'value="{html.escape(form[name])}"' in page.text, name
    assert passes(world) == 0


@pytest.fixture
def live_visit(world: Stores) -> Iterator[LiveServer]:
    server = LiveServer(world.settings)
    yield server
    server.stop()


def test_an_overlapping_application_is_refused(world: Stores, live_visit: LiveServer) -> None:
    assert requests.post(live_visit.url + "/visit", data=application(), timeout=30).status_code == 200
    again = requests.post(live_visit.url + "/visit", data=application(), timeout=30)
    assert again.status_code == 400 and "已有访客申请" in field_error(again.text, "valid_from")
    assert passes(world) == 1


def test_the_public_pages_open_nothing_else(world: Stores, live_visit: LiveServer) -> None:
    url = live_visit.url
    assert requests.get(url + "/visit?c=nowhere", timeout=30).status_code == 404
    assert requests.get(url + "/visit", timeout=30).status_code == 404
    forged = requests.get(f"{url}/visit/status?p=abc&k={pass_key(world, 'abd')}", timeout=30)
    assert forged.status_code == 404 and "链接无效" in forged.text
    for path in ("/visitors", "/visit/other", "/console"):  # exact public paths: no prefix opens a page
        response = requests.get(url + path, timeout=30, allow_redirects=False)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    english = requests.get(url + "/visit?c=wanhu&lang=en", timeout=30)
    assert "Visitor registration" in english.text and "Wanhu" in english.text
    bad = requests.post(url + "/visit", data=application(phone="12345", lang="en"), timeout=30)
    assert "Give an 11-digit mobile number" in field_error(bad.text, "phone")


def test_applications_are_rate_limited_per_address(world: Stores) -> None:
    server = LiveServer(world.settings.model_copy(update={"visit_rate_per_hour": 3}))
    try:
        codes = [
            requests.post(server.url + "/visit", data=application(phone="1"), timeout=30).status_code for _ in range(3)
        ]
        limited = requests.post(server.url + "/visit", data=application(), timeout=30)
    finally:
        server.stop()
    assert codes == [400, 400, 400]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0 and "提交过于频繁" in limited.text
    assert passes(world) == 0


@pytest.mark.parametrize(
    ("typed", "key"),
    [("2幢", "2"), ("2号楼", "2"), ("Bldg 2", "2"), ("第２栋", "2"), ("二幢", "2"), ("12 幢", "12"), ("B座", "b")],
)
def test_building_names_are_read_as_people_type_them(typed: str, key: str) -> None:
    assert building_key(typed) == key


def test_units_and_rooms_are_read_as_people_type_them() -> None:
    assert [unit_number(u) for u in ("1", "1单元", "一单元", "Unit 2", "", "x")] == [1, 1, 1, 2, None, None]
    assert [room_key(r) for r in ("301", "301室", "Room 301", "#301", "a01")] == ["301", "301", "301", "301", "A01"]


def full_page(driver: Any, name: str) -> Path:
    """A PNG of the whole page (beyond the phone's viewport) under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@pytest.mark.browser
def test_a_visitor_fills_the_form_on_a_phone(world: Stores, live_visit: LiveServer) -> None:
    phone = new_browser(390, 844, mobile=True)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)

    def fill(values: dict[str, str]) -> None:
        for name, value in values.items():
            field = phone.find_element(By.CSS_SELECTOR, f"form#visit [name={name}]")
            if field.get_attribute("type") == "datetime-local":
                phone.execute_script("arguments[0].value = arguments[1]", field, value)
            else:
                field.clear()
                field.send_keys(value)
        phone.find_element(By.CSS_SELECTOR, "form#visit button[type=submit]").click()

    try:
        # zh (the default): a wrong phone first, then the fix
        phone.get(live_visit.url + "/visit?c=wanhu")
        wait_for(phone, "form#visit")
        full_page(phone, "visit_form_zh")
        form = {k: v for k, v in application().items() if k != "c"}
        fill(form | {"phone": "12345", "valid_from": local(start), "valid_to": local(start + dt.timedelta(hours=2))})
        assert "手机号有误" in text_of(phone, "#error-phone")
        assert phone.find_element(By.NAME, "visitor_name").get_attribute("value") == "访客丙"
        full_page(phone, "visit_error_zh")
        fill({"phone": "13912345678"})
        assert "申请已提交" in text_of(phone, ".st-msg-ok")
        assert "待审批" in phone.find_element(By.ID, "visit-status").text
        full_page(phone, "visit_sent_zh")

        # en, another visitor for another household
        phone.get(live_visit.url + "/visit?c=wanhu&lang=en")
        wait_for(phone, "form#visit")
        full_page(phone, "visit_form_en")
        fill(
            {
                "visitor_name": "Li Si",
                "id_number": "320902194001019913",
                "phone": "13812345678",
                "building": "Bldg 3",
                "unit": "1",
                "room": "101",
                "valid_from": local(start),
                "valid_to": local(start + dt.timedelta(hours=2)),
                "reason": "Delivering a parcel",
            }
        )
        assert "sent" in text_of(phone, ".st-msg-ok")
        full_page(phone, "visit_sent_en")
        phone.find_element(By.CSS_SELECTOR, "a.st-visit-link").click()
        assert "Waiting for approval" in text_of(phone, "#visit-status")
        with world.sessions() as session:
            pass_id = session.scalars(select(VisitorPass.id).where(VisitorPass.visitor_name == "Li Si")).one()
        Visitors(world).decide(PROPERTY, pass_id, approve=False, note="主人不在家 / nobody at home")
        phone.refresh()
        status = text_of(phone, "#visit-status")
        assert "Rejected" in status and "nobody at home" in status
        full_page(phone, "visit_status_en")
    finally:
        phone.quit()
    with world.sessions() as session:
        households = sorted(session.scalars(select(VisitorPass.household_id)))
    assert households == [HOUSEHOLD, "wanhu-B003-1-101"]
