"""Gates: visitors from invitation to the gate, barriers and captures, electronic patrol."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from selenium.webdriver.common.by import By
from sqlalchemy import select

from alerts.live import dedup_key
from alerts.models import AlertRecord
from analytics.rules.gates import round_starts
from analytics.worker import Worker
from api.resident import resident_link
from auth.principal import Principal
from core.errors import InvalidInput
from core.timefmt import SHANGHAI, aware
from gates.models import GateCapture, GateHourly, PatrolRound, VisitorPass
from gates.service import FieldErrors, PassRequest, Visitors
from ingest.directory import Directory
from registry.models import Device, Household
from store.stores import Stores
from tests.browser import browser_login, click_button_of, text_of, until, wait_for
from tests.conftest import LiveServer, save_screenshot
from tests.test_rules import T0, M, Scenario

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

HOUSEHOLD = "wanhu-B002-1-101"
VISITOR_ID = "11010519491231002X"
PROPERTY = Principal(kind="user", id="property.wanhu", role="property", community="wanhu")
UTC = dt.UTC


def request(**overrides: object) -> PassRequest:
    base = {
        "household": HOUSEHOLD,
        "visitor_name": "访客甲",
        "id_number": VISITOR_ID,
        "phone": "13912345678",
        "plate": "苏A12345",
        "valid_from": dt.datetime.fromtimestamp(T0 / 1000, UTC) - dt.timedelta(hours=1),
        "valid_to": dt.datetime.fromtimestamp(T0 / 1000, UTC) + dt.timedelta(hours=3),
        "reason": "探亲",
    }
    base.update(overrides)
    return PassRequest(**base)  # type: ignore[arg-type]


def gate(world: Stores, kind: str) -> str:
    with world.sessions() as session:
        return (
            session.scalars(
                select(Device.id).where(Device.type == kind, Device.community_id == "wanhu").order_by(Device.id)
            ).first()
            or ""
        )


def face(world: Stores, ts: int, direction: str = "in", **identity: str) -> dict[str, object]:
    return {
        "type": "gate.face",
        "device": gate(world, "face_gate"),
        "ts": ts,
        "data": {"direction": direction, **identity},
    }


def car(world: Stores, ts: int, plate: str) -> dict[str, object]:
    return {
        "type": "gate.vehicle",
        "device": gate(world, "vehicle_gate"),
        "ts": ts,
        "data": {"direction": "in", "plate": plate},
    }


def now_at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, UTC)


def test_an_approved_visitor_passes_and_a_stranger_raises_an_alert(world: Stores) -> None:
    visitors = Visitors(world)
    created = visitors.request(request(), requested_by="resident", now=now_at(T0))
    assert created.status == "pending" and VISITOR_ID not in created.id_masked and created.id_masked.endswith("002X")
    visitors.decide(PROPERTY, created.id, approve=True)
    s = Scenario(world).at(
        M, face(world, T0 + M, id_number=VISITOR_ID), car(world, T0 + M, "苏A12345"), car(world, T0 + M, "苏B99999")
    )
    assert s.open("visitor.unapproved") == []
    s.at(2 * M, face(world, T0 + 2 * M, id_number="320902194001019913"))
    (alert,) = s.open("visitor.unapproved")
    assert alert["evidence"]["reason"] == "no_pass"
    with world.sessions() as session:
        hourly = {(h.kind, h.category): h.count for h in session.scalars(select(GateHourly))}
        captures = [c.plate for c in session.scalars(select(GateCapture))]
        visit = session.get(VisitorPass, created.id)
    assert hourly[("face", "visitor")] == 1 and hourly[("vehicle", "visitor")] == 1
    assert hourly[("face", "unknown")] == 1 and hourly[("vehicle", "unknown")] == 1
    assert captures == ["苏B99999"]
    assert visit is not None and visit.entered_at is not None
    # still inside after the window (and its 15 minutes of grace): flagged
    s.at(3 * 3_600_000 + 16 * M)
    reasons = sorted(a["evidence"]["reason"] for a in s.open("visitor.unapproved"))
    assert reasons == ["no_pass", "overstay"]
    # the overstay points at the host household, on the map and in its grid worker's queue
    (overstay,) = [a for a in s.open("visitor.unapproved") if a["evidence"]["reason"] == "overstay"]
    with world.sessions() as session:
        host = session.get(Household, HOUSEHOLD)
    assert host is not None
    assert overstay["subject"]["household"] == host.id and overstay["grid"] == host.grid_id
    assert overstay["location"] is not None
    with world.sessions() as session:
        record = session.get(AlertRecord, overstay["id"])
    # the history keeps the same dedup key as the live alert: type + identity (the pass)
    assert record is not None and record.dedup_key == dedup_key("visitor.unapproved", {"pass": created.id})


def test_a_visitor_leaving_in_the_grace_period_is_not_flagged(world: Stores) -> None:
    visitors = Visitors(world)
    created = visitors.request(request(), requested_by="resident", now=now_at(T0))
    visitors.decide(PROPERTY, created.id, approve=True)
    s = Scenario(world).at(M, face(world, T0 + M, id_number=VISITOR_ID))
    end = 3 * 3_600_000
    s.at(end + 5 * M, face(world, T0 + end + 5 * M, "out", id_number=VISITOR_ID))  # 5 minutes late
    s.at(end + 30 * M)
    assert s.open("visitor.unapproved") == []
    with world.sessions() as session:
        visit = session.get(VisitorPass, created.id)
        hourly = {(h.kind, h.direction, h.category): h.count for h in session.scalars(select(GateHourly))}
    assert visit is not None and visit.left_at is not None
    assert hourly[("face", "out", "visitor")] == 1


def test_a_pass_outside_its_window_does_not_open_the_gate(world: Stores) -> None:
    visitors = Visitors(world)
    later = visitors.request(
        request(valid_from=now_at(T0 + 5 * 3_600_000), valid_to=now_at(T0 + 8 * 3_600_000)),
        requested_by="resident",
        now=now_at(T0),
    )
    visitors.decide(PROPERTY, later.id, approve=True)
    s = Scenario(world).at(M, face(world, T0 + M, id_number=VISITOR_ID))
    (alert,) = s.open("visitor.unapproved")
    assert alert["evidence"]["reason"] == "not_yet_valid"


def test_a_visitor_invited_twice_gets_in_on_both_passes_even_after_redis_forgot_them(world: Stores) -> None:
    visitors = Visitors(world)
    today = visitors.request(request(), requested_by="resident", now=now_at(T0))
    tomorrow = visitors.request(
        request(valid_from=now_at(T0 + 24 * 3_600_000), valid_to=now_at(T0 + 27 * 3_600_000), plate=""),
        requested_by="resident",
        now=now_at(T0),
    )
    visitors.decide(PROPERTY, today.id, approve=True)
    visitors.decide(PROPERTY, tomorrow.id, approve=True)  # used to replace today's pass at the gates
    s = Scenario(world).at(M, face(world, T0 + M, id_number=VISITOR_ID), car(world, T0 + M, "苏A12345"))
    s.at(2 * 3_600_000, face(world, T0 + 2 * 3_600_000, "out", id_number=VISITOR_ID))
    assert s.open("visitor.unapproved") == []
    # between the windows the gate stays shut
    s.at(10 * 3_600_000, face(world, T0 + 10 * 3_600_000, id_number=VISITOR_ID))
    (between,) = s.open("visitor.unapproved")
    assert between["evidence"]["reason"] == "expired"
    s.world.redis.delete(s.world.keys.rule_state("wanhu", "passes"))  # Redis lost the gates' passes
    s.worker = Worker(world, consumer="fresh", clock=s.clock, directory=s.directory)
    s.worker.start_community("wanhu")  # a starting worker rebuilds them from SQL
    s.at(25 * 3_600_000, face(world, T0 + 25 * 3_600_000, id_number=VISITOR_ID))
    assert [a["count"] for a in s.open("visitor.unapproved")] == [1]
    with world.sessions() as session:
        visit = session.get(VisitorPass, tomorrow.id)
    assert visit is not None and visit.entered_at is not None


def test_a_batch_delivered_twice_counts_its_passages_once(world: Stores) -> None:
    """A worker that dies after writing the batch's SQL side but before its XACK: another worker
    claims the same entries and judges them again; counts, captures and alerts stay as they were."""
    s = Scenario(world)
    stranger = face(world, T0 + M, id_number="320902194001019913")
    s.ingest.ingest("wanhu", [stranger, car(world, T0 + M, "苏B99999"), car(world, T0 + M, "苏A12345")])
    entries = s.worker.events.read(["wanhu"], "rules", count=100, block_ms=None)
    assert len(entries) == 3
    for _ in range(2):  # the second time: the same entries, redelivered
        s.worker.process(entries)
        with world.sessions() as session:
            hourly = sum(h.count for h in session.scalars(select(GateHourly)))
            captures = sorted(c.plate for c in session.scalars(select(GateCapture)))
        assert hourly == 3 and captures == ["苏A12345", "苏B99999"]
        assert [a["count"] for a in s.open("visitor.unapproved")] == [1]


def test_pass_form_errors_name_the_field(world: Stores) -> None:

    visitors = Visitors(world)
    with pytest.raises(FieldErrors) as caught:
        visitors.request(
            request(id_number="110105194912310021", phone="12345", plate="苏JI2345", valid_to=now_at(T0 - 3_600_000)),
            requested_by="resident",
            now=now_at(T0),
        )
    assert set(caught.value.errors) == {"id_number", "phone", "plate", "valid_to"}
    assert caught.value.errors["valid_to"] == "the visit must end after it starts"
    visitors.request(request(), requested_by="resident", now=now_at(T0))
    with pytest.raises(FieldErrors) as overlapping:
        visitors.request(
            request(valid_from=now_at(T0 + 3_600_000), valid_to=now_at(T0 + 5 * 3_600_000)),
            requested_by="resident",
            now=now_at(T0),
        )
    assert "overlapping" in overlapping.value.errors["valid_from"]
    with pytest.raises(FieldErrors) as past:
        visitors.request(
            request(valid_from=now_at(T0 - 5 * 3_600_000), valid_to=now_at(T0 - 4 * 3_600_000)),
            requested_by="resident",
            now=now_at(T0),
        )
    assert past.value.errors["valid_to"] == "the visit is already over"


def test_a_window_given_in_local_time_is_kept_as_that_instant(world: Stores) -> None:
    visitors = Visitors(world)
    start = now_at(T0).astimezone(SHANGHAI)  # what the forms hand over: Shanghai wall time
    created = visitors.request(
        request(valid_from=start, valid_to=start + dt.timedelta(hours=2)), requested_by="resident", now=now_at(T0)
    )
    visitors.decide(PROPERTY, created.id, approve=True)
    with world.sessions() as session:
        stored = session.get(VisitorPass, created.id)
        assert stored is not None
        assert aware(stored.valid_from) == now_at(T0)
    s = Scenario(world).at(M, face(world, T0 + M, id_number=VISITOR_ID))
    assert s.open("visitor.unapproved") == []


def test_a_rejection_needs_a_reason_and_residents_cannot_approve(world: Stores) -> None:
    visitors = Visitors(world)
    pending = visitors.request(request(), requested_by="resident", now=now_at(T0))
    with pytest.raises(InvalidInput, match="reason"):
        visitors.decide(PROPERTY, pending.id, approve=False)
    grid = Principal(kind="user", id="g", role="grid_worker", community="wanhu", grid="wanhu-G1")
    with pytest.raises(Exception, match="may not approve"):
        visitors.decide(grid, pending.id, approve=True)
    assert visitors.decide(PROPERTY, pending.id, approve=False, note="主人不在家").status == "rejected"


@pytest.mark.also_on_cluster
def test_a_checkpoint_missed_in_a_round_raises_patrol_missed(world: Stores) -> None:
    facts = Directory(world.sessions).facts("wanhu")
    route = facts.routes["wanhu-R1"]
    start = next(s for s in round_starts(route, T0) if s > T0)
    checkpoints = route["checkpoints"]
    s = Scenario(world)
    s.at(start - T0 - 2 * 3_600_000)  # a sweep plans the round's checks
    for seq, device, offset in checkpoints:
        if seq == 5:
            continue  # the guard skips checkpoint 5
        ts = start + offset * M + 30_000
        s.at(ts - T0, {"type": "patrol.checkin", "device": device, "ts": ts, "data": {"guard": "wanhu-GD35"}})
    s.at(start - T0 + 65 * M)  # every check of the round is due by now; the next round starts at +2 h
    skipped = next(device for seq, device, _ in checkpoints if seq == 5)
    missed = {a["subject"]["device"]: a for a in s.open("patrol.missed")}
    assert skipped in missed and missed[skipped]["evidence"]["route"] == "wanhu-R1"
    with world.sessions() as session:
        row = session.scalars(select(PatrolRound).where(PatrolRound.round_start == now_at(start))).one()
    assert (row.expected, row.missed, row.guard_id) == (len(checkpoints), [5], "wanhu-GD35")
    assert row.on_time + len(row.late) == len(checkpoints) - 1


@pytest.mark.browser
def test_the_visitor_form_and_the_approval_page(world: Stores, browser) -> None:
    server = LiveServer(world.settings)
    try:
        browser.get_log("browser")
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})  # every host and port
        browser.get(resident_link(world, HOUSEHOLD, server.url))
        wait_for(browser, "form#invite")

        def fill(values: dict[str, str]) -> None:
            for name, value in values.items():
                field = browser.find_element(By.CSS_SELECTOR, f"form#invite [name={name}]")
                if field.get_attribute("type") == "datetime-local":
                    browser.execute_script("arguments[0].value = arguments[1]", field, value)
                else:
                    field.clear()
                    field.send_keys(value)
            browser.find_element(By.CSS_SELECTOR, "form#invite button").click()

        start = dt.datetime.now(SHANGHAI) + dt.timedelta(hours=1)  # the form is in local (Shanghai) time
        window = {
            "valid_from": start.strftime("%Y-%m-%dT%H:%M"),
            "valid_to": (start + dt.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
        }
        fill({"visitor_name": "访客乙", "id_number": "110105194912310021", "phone": "13912345678", **window})
        assert "身份证号有误" in text_of(browser, ".st-field-error")  # in the page's language
        assert (
            browser.find_element(By.CSS_SELECTOR, "form#invite [name=visitor_name]").get_attribute("value") == "访客乙"
        )
        fill({"id_number": VISITOR_ID})
        wait_for(browser, ".st-msg-ok")
        assert "待审批" in browser.find_element(By.CSS_SELECTOR, ".st-pass-pending").text
        save_screenshot(browser, "resident_visitor_invited")

        browser_login(browser, server.url, "property.wanhu")
        browser.get(server.url + "/tasks")
        row = text_of(browser, ".st-approval", text="访客乙")
        assert VISITOR_ID not in row
        click_button_of(browser, ".st-approval", "访客乙", label="通过")
        wait_for(browser, ".st-msg-ok")
        save_screenshot(browser, "property_visitor_approved")

        def status() -> str | None:
            with world.sessions() as session:
                return session.scalars(select(VisitorPass.status)).first()

        until(lambda: status() == "approved", "the pass approved in the registry")
        page = requests.get(resident_link(world, HOUSEHOLD, server.url), timeout=30).text
        assert "已通过" in page
    finally:
        server.stop()
