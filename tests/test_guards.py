"""Every guard is reachable: an account per guard, duty rosters and check-in, and dispatch that offers
a task only to a guard on duty with an account (the console says why the others are not asked)."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from sqlalchemy import func, select, update

from auth.models import AuditEntry, User
from auth.principal import Principal
from closedloop.duty import duty_of, import_roster, unavailable_reason
from closedloop.duty_models import DutyShift
from closedloop.models import Task
from closedloop.service import Loop
from core.clock import ManualClock
from core.errors import InvalidInput
from core.timefmt import SHANGHAI, ms_to_utc
from registry.models import Guard
from simulator.demo_roster import TEAMS
from simulator.generate import make_story, slot_events
from simulator.run import keep_roster
from simulator.world import load_world
from store.sql import utcnow
from store.stores import Stores
from tests.browser import browser_login, click_text, press, text_of, type_into, until, wait_for
from tests.conftest import LiveServer, new_browser, run_manage, save_screenshot
from tests.test_closed_loop import POLICE, on_duty, place_guard, smoke_alert
from tests.test_wall import now_ms

PASSWORD = "guardpass2026"


def guard(world: Stores, guard_id: str) -> Guard:
    with world.sessions() as session:
        found = session.get(Guard, guard_id)
    assert found is not None and found.device_id is not None
    return found


def as_guard(guard_id: str) -> Principal:
    """The principal of the guard's account, as the tasks page has it."""
    return Principal(kind="user", id=f"guard.{guard_id}", role="guard", community="wanhu", guard=guard_id)


def unlink(world: Stores, guard_id: str) -> None:
    """The guard loses their account (as the 35 of Wanhu's 40 guards had none before)."""
    with world.sessions.begin() as session:
        session.execute(update(User).where(User.guard_id == guard_id).values(guard_id=None))


def shift_now(world: Stores, guard_id: str, hours: float = 2) -> None:
    """A shift of the roster around now for the guard (imported as a roster file would be)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    end = start + dt.timedelta(hours=hours)
    with world.sessions.begin() as session:
        _, bad = import_roster(
            session, "wanhu", f"guard,start,end\n{guard_id},{start.isoformat()},{end.isoformat()}\n", dry_run=False
        )
    assert bad == []


def reasons(loop: Loop, alert: dict[str, object]) -> dict[str, str]:
    _, others = loop.dispatch_list(POLICE, "wanhu", str(alert["id"]))
    return {u.guard: u.reason for u in others}


# --- who may be offered a task ------------------------------------------------------------------
def test_a_guard_without_an_account_is_never_offered_a_task(world: Stores) -> None:
    alert = smoke_alert(world)
    lat, lon = alert["location"]["lat"], alert["location"]["lon"]
    on_duty(world, "wanhu-GD01")
    unlink(world, "wanhu-GD02")
    shift_now(world, "wanhu-GD02")  # on duty by the roster, but nobody can receive the task
    place_guard(world, guard(world, "wanhu-GD01").device_id or "", lat, lon + 0.0009)
    place_guard(world, guard(world, "wanhu-GD02").device_id or "", lat, lon + 0.0002)  # the nearer one
    clock = ManualClock(now_ms())
    loop = Loop(world, clock)
    assert [s.guard for s in loop.suggestions(POLICE, "wanhu", alert["id"])] == ["wanhu-GD01"]
    assert reasons(loop, alert)["wanhu-GD02"] == "no_account"
    with pytest.raises(InvalidInput) as refused:
        loop.dispatch(POLICE, "wanhu", alert["id"], "wanhu-GD02", expected="new")
    assert refused.value.key == "dispatch.error.no_account"
    assert refused.value.text("zh") == f"{guard(world, 'wanhu-GD02').name} 没有账号，收不到任务，不能派单"
    # the offer to the linked guard expires: the redispatch skips the unlinked one and escalates
    loop.dispatch(POLICE, "wanhu", alert["id"], "wanhu-GD01", expected="new")
    clock.advance(int(world.settings.dispatch_accept_minutes * 60_000) + 1000)
    assert loop.maintain("wanhu")["redispatched"] == 1
    assert [(t.assignee, t.status) for t in loop.tasks_of_alert(alert["id"])] == [("wanhu-GD01", "expired")]
    notes = [s["note"] for s in loop.timeline(alert["id"]) if s["action"] == "escalated"]
    assert notes == ["dispatch: no guard left to dispatch"]


def test_an_off_duty_guard_is_offered_nothing_until_they_check_in(world: Stores) -> None:
    alert = smoke_alert(world)
    on_duty(world)  # nobody
    place_guard(world, guard(world, "wanhu-GD01").device_id or "", alert["location"]["lat"], alert["location"]["lon"])
    loop = Loop(world)
    assert loop.suggestions(POLICE, "wanhu", alert["id"]) == []
    assert reasons(loop, alert)["wanhu-GD01"] == "off_duty"
    with pytest.raises(InvalidInput) as refused:
        loop.dispatch(POLICE, "wanhu", alert["id"], "wanhu-GD01", expected="new")
    assert refused.value.text("zh").endswith("不在岗，不能派单")
    loop.duty.check(as_guard("wanhu-GD01"), "in")
    assert [s.guard for s in loop.suggestions(POLICE, "wanhu", alert["id"])] == ["wanhu-GD01"]
    loop.duty.check(as_guard("wanhu-GD01"), "out", "东门岗亭钥匙已交值班室")
    assert loop.suggestions(POLICE, "wanhu", alert["id"]) == []
    with pytest.raises(InvalidInput, match="You are not on duty"):
        loop.duty.check(as_guard("wanhu-GD01"), "out")
    with world.sessions() as session:
        audited = session.scalars(
            select(AuditEntry.action).where(AuditEntry.target == "guard:wanhu-GD01").order_by(AuditEntry.id)
        ).all()
    assert audited == ["duty.check_in", "duty.check_out"]


def test_a_check_out_ends_a_shift_early_and_a_check_in_lapses(world: Stores) -> None:
    on_duty(world)
    shift_now(world, "wanhu-GD05", hours=4)
    clock = ManualClock(now_ms())
    loop = Loop(world, clock)
    who = as_guard("wanhu-GD05")
    assert loop.duty.state(who).how == "shift"
    with pytest.raises(InvalidInput, match="on duty already"):
        loop.duty.check(who, "in")
    loop.duty.check(who, "out", "")
    assert not loop.duty.state(who).on  # left early: no task for the rest of the shift
    clock.advance(60_000)
    loop.duty.check(who, "in")
    assert loop.duty.state(who).how == "checkin"
    clock.advance(int(world.settings.duty_checkin_hours * 3_600_000))
    assert not loop.duty.state(who).on  # a forgotten check-out does not keep them on duty for ever


def test_a_busy_guard_or_a_silent_wearable_is_greyed_but_may_still_be_sent_by_hand(world: Stores) -> None:
    alert = smoke_alert(world)
    on_duty(world, "wanhu-GD01", "wanhu-GD02")
    place_guard(world, guard(world, "wanhu-GD01").device_id or "", alert["location"]["lat"], alert["location"]["lon"])
    loop = Loop(world)
    assert reasons(loop, alert)["wanhu-GD02"] == "no_position"
    task = loop.dispatch(POLICE, "wanhu", alert["id"], "wanhu-GD02", expected="new")  # by radio
    assert task.assignee == "wanhu-GD02" and task.eta_minutes is None
    assert reasons(loop, alert)["wanhu-GD02"] == "busy"


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({}, None),
        ({"has_account": False, "on_duty": False}, "no_account"),
        ({"on_duty": False, "busy": True}, "off_duty"),
        ({"may_see": False}, "wanted_list"),
        ({"busy": True, "has_position": False}, "busy"),
        ({"has_position": False}, "no_position"),
        ({"in_service": False}, "retired"),
    ],
)
def test_the_first_reason_that_applies_is_given(facts: dict[str, bool], reason: str | None) -> None:
    base = {"in_service": True, "has_account": True, "on_duty": True, "may_see": True, "busy": False}
    assert unavailable_reason(**{**base, "has_position": True, **facts}) == reason


# --- the roster file ----------------------------------------------------------------------------
GOOD = "wanhu-GD20,2026-12-10 08:00,2026-12-10 20:00,早班"


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ("wanhu-GD99,2026-12-11 08:00,2026-12-11 20:00,", "unknown guard 'wanhu-GD99'"),
        ("xingbang-GD01,2026-12-11 08:00,2026-12-11 20:00,", "guard 'xingbang-GD01' belongs to community 'xingbang'"),
        (
            "wanhu-GD21,2026/12/11 8点,2026-12-11 20:00,",
            "unreadable start time '2026/12/11 8点' (RFC 3339, or YYYY-MM-DD HH:MM in Beijing time)",
        ),
        ("wanhu-GD21,2026-12-11 20:00,2026-12-11 08:00,", "the end is not after the start"),
        ("wanhu-GD20,2026-12-10T11:00:00Z,2026-12-10T13:00:00Z,", "overlaps the shift on line 2"),
        (
            "wanhu-GD22,2026-12-12 08:00,2026-12-12 20:00,",
            "overlaps the stored shift 2026-12-12 12:00 to 2026-12-12 22:00 (Beijing time)",
        ),
    ],
)
def test_a_roster_with_one_bad_row_imports_nothing_and_says_why(world: Stores, bad_row: str, reason: str) -> None:
    with world.sessions.begin() as session:
        import_roster(
            session, "wanhu", "guard,start,end\nwanhu-GD22,2026-12-12 12:00,2026-12-12 22:00\n", dry_run=False
        )
    with world.sessions.begin() as session:
        before = session.scalar(select(func.count()).select_from(DutyShift))
        rows, bad = import_roster(session, "wanhu", f"guard,start,end,note\n{GOOD}\n{bad_row}\n", dry_run=False)
    assert len(rows) == 2 and [(b.line, b.reasons) for b in bad] == [(3, [reason])]
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DutyShift)) == before


def test_roster_import_on_the_command_line(world: Stores, tmp_path: Path) -> None:
    good = tmp_path / "roster.csv"
    good.write_text(
        f"guard,start,end,note\n{GOOD}\nwanhu-GD21,2026-12-10T12:00:00Z,2026-12-11T00:00:00Z,夜班\n",
        encoding="utf-8",
    )
    dry = run_manage(world.settings, "roster", "import", str(good), "--community", "wanhu", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) | {"errors": []} == {
        "community": "wanhu",
        "dry_run": True,
        "rows": 2,
        "imported": 0,
        "errors": [],
    }
    done = run_manage(world.settings, "roster", "import", str(good), "--community", "wanhu")
    assert done.returncode == 0 and done.stdout.strip() == "2 shifts imported for community wanhu", done.stderr
    with world.sessions() as session:
        (shift,) = session.scalars(
            select(DutyShift).where(DutyShift.guard_id == "wanhu-GD20", DutyShift.source == "import")
        )
    assert shift.start_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") == "2026-12-10 08:00"
    assert shift.note == "早班"
    with world.sessions() as session:  # the demo's rotation gave way to the imported shifts
        demo = session.scalars(
            select(DutyShift).where(
                DutyShift.guard_id == "wanhu-GD20",
                DutyShift.source == "demo",
                DutyShift.start_at < shift.end_at,
                DutyShift.end_at > shift.start_at,
            )
        ).all()
    assert demo == []
    # the same file again: every row overlaps what is stored now; nothing is added, exit 1
    again = run_manage(world.settings, "roster", "import", str(good), "--community", "wanhu", "--json")
    assert again.returncode == 1
    report = json.loads(again.stdout)  # with --json the refusal is in the one JSON document (issue 21)
    assert [e["line"] for e in report["errors"]] == [2, 3]
    assert report["error"] == "roster refused: 2 of 2 rows are wrong, nothing was imported"
    missing = tmp_path / "bad.csv"
    missing.write_text("guard,begin,end\nwanhu-GD20,2026-12-10 08:00,2026-12-10 20:00\n", encoding="utf-8")
    refused = run_manage(world.settings, "roster", "import", str(missing), "--community", "wanhu")
    assert refused.returncode == 1 and refused.stderr.strip() == "error: The roster lacks the column(s): start"


# --- accounts for guards ------------------------------------------------------------------------
def test_user_add_and_link_tie_an_account_to_a_guard(world: Stores) -> None:
    volunteer = guard(world, "wanhu-GD20")
    unlink(world, "wanhu-GD20")
    unlink(world, "wanhu-GD03")

    def manage(*args: str) -> tuple[int, str]:
        result = run_manage(world.settings, "user", *args)
        return result.returncode, (result.stdout if result.returncode == 0 else result.stderr).strip()

    code, out = manage("add", "alice", "--role", "guard", "--guard", "wanhu-GD20", "--password", PASSWORD)
    assert code == 0 and out == f"user alice added (guard, guard 志愿者 {volunteer.name} (wanhu-GD20))"
    assert manage("add", "bob", "--role", "guard", "--guard", "wanhu-GD20", "--password", PASSWORD) == (
        1,
        f"error: guard 'wanhu-GD20' ({volunteer.name}) is linked to account 'alice' already",
    )
    assert manage("add", "bob", "--role", "guard", "--guard", "wanhu-GD98", "--password", PASSWORD) == (
        1,
        "error: unknown guard 'wanhu-GD98'",
    )
    code, out = manage(
        "add", "bob", "--role", "guard", "--community", "xingbang", "--guard", "wanhu-GD03", "--password", PASSWORD
    )
    assert code == 1 and out.startswith("error: guard 'wanhu-GD03'") and "not 'xingbang'" in out
    assert manage("add", "carol", "--role", "guard", "--community", "wanhu", "--password", PASSWORD)[0] == 1
    # an officer's account linked to the police guard afterwards
    assert manage("add", "officer2", "--role", "police", "--community", "wanhu", "--password", PASSWORD)[0] == 0
    code, out = manage("link", "officer2", "--guard", "wanhu-GD03")
    assert code == 0 and out.startswith("user officer2 linked to guard 民警 ")
    assert manage("link", "alice", "--guard", "wanhu-GD03")[0] == 1  # the officer has it
    code, listing = manage("list")
    (alice,) = [line for line in listing.splitlines() if line.startswith("alice ")]
    assert alice.endswith(f"志愿者 {volunteer.name} (wanhu-GD20)")
    rows = json.loads(run_manage(world.settings, "user", "list", "--json").stdout)
    assert {r["username"]: r["guard"] for r in rows}["officer2"] == "wanhu-GD03"
    # the guard's new account makes them dispatchable once on duty
    on_duty(world, "wanhu-GD20")
    alert = smoke_alert(world)
    place_guard(world, volunteer.device_id or "", alert["location"]["lat"], alert["location"]["lon"])
    assert [s.guard for s in Loop(world).suggestions(POLICE, "wanhu", alert["id"])] == ["wanhu-GD20"]


# --- the demo -----------------------------------------------------------------------------------
def test_every_demo_guard_has_an_account_and_most_are_on_duty_at_every_hour(demo_stores: Stores) -> None:
    with demo_stores.sessions() as session:
        guards = {g.id: g for g in session.scalars(select(Guard))}
        accounts = dict(session.execute(select(User.guard_id, User.username).where(User.guard_id.is_not(None))).all())
        assert set(accounts) == set(guards)
        assert accounts["wanhu-GD01"] == "guard.wanhu-GD01"
        roles = dict(session.execute(select(User.username, User.role)).all())
        assert roles["guard.wanhu-GD01"] == "police" and roles["guard.wanhu-GD04"] == "guard"
        start = utcnow().replace(minute=0, second=0, microsecond=0)
        for hours in range(0, 72):
            at = start + dt.timedelta(hours=hours, minutes=59 if hours % 2 else 0)
            for community in ("wanhu", "xingbang"):
                duty = duty_of(session, community, at, demo_stores.settings.duty_checkin_hours)
                assert sum(d.on for d in duty.values()) >= len(duty) / 2, (community, at)


def test_the_simulator_walks_the_wearables_of_the_guards_on_duty(demo_stores: Stores) -> None:
    at = utcnow()
    with demo_stores.sessions() as session:
        world = load_world(session, "wanhu", random.Random(7))
        duty = duty_of(session, "wanhu", at, demo_stores.settings.duty_checkin_hours)
    assert len(set(world.guard_teams.values())) == TEAMS
    slot = (int(at.timestamp() * 1000) // 600_000) + 1
    events = slot_events(world, make_story(world, slot * 600_000, 7), slot, 7, positions=True)
    walking = {e["device"] for e in events if e["type"] == "guard.position"}
    slot_start = ms_to_utc(slot * 600_000)
    with demo_stores.sessions() as session:
        duty = duty_of(session, "wanhu", slot_start, demo_stores.settings.duty_checkin_hours)
    on = {g for g, wearable, _ in world.guards if duty[g].on}
    assert walking == {wearable for g, wearable, _ in world.guards if g in on}


def test_the_simulator_keeps_the_demo_roster_ahead_of_its_clock(world: Stores) -> None:
    on_duty(world)  # no shift stored
    later = now_ms() + 5 * 24 * 3_600_000  # the demo running for five days
    keep_roster(world, ["wanhu", "xingbang"], later - 3_600_000, later)

    def stored() -> int:
        with world.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(DutyShift)) or 0)

    count = stored()
    keep_roster(world, ["wanhu", "xingbang"], later - 3_600_000, later)
    assert stored() == count > 0  # idempotent
    with world.sessions() as session:
        for hours in (0, 20, 47):
            duty = duty_of(session, "wanhu", ms_to_utc(later + hours * 3_600_000), 12)
            assert sum(d.on for d in duty.values()) >= len(duty) * 2 // 3


# --- the pages ----------------------------------------------------------------------------------
@pytest.mark.browser
def test_the_console_ranks_the_guards_on_duty_and_greys_the_others_with_the_reason(world: Stores, browser) -> None:
    alert = smoke_alert(world)
    lat, lon = alert["location"]["lat"], alert["location"]["lon"]
    on_duty(world, "wanhu-GD01", "wanhu-GD15")
    unlink(world, "wanhu-GD02")
    place_guard(world, guard(world, "wanhu-GD01").device_id or "", lat + 0.0003, lon)
    place_guard(world, guard(world, "wanhu-GD02").device_id or "", lat + 0.0001, lon)
    place_guard(world, guard(world, "wanhu-GD16").device_id or "", lat + 0.0001, lon)
    police, unlinked, off = guard(world, "wanhu-GD01"), guard(world, "wanhu-GD02"), guard(world, "wanhu-GD16")
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/console")
        click_text(browser, ".st-row", "烟感报警")
        wait_for(browser, ".st-suggest-off")
        deadline = time.monotonic() + 20
        while True:
            try:
                ranked = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".st-suggest")]
                greyed = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".st-suggest-off")]
                break
            except StaleElementReferenceException:
                if time.monotonic() > deadline:
                    raise
        save_screenshot(browser, "console_dispatch_reasons")
    finally:
        server.stop()
    assert len(ranked) == 1 and ranked[0].startswith(f"民警 {police.name}")
    assert any(g.startswith(f"民警 {unlinked.name}") and g.endswith("无账号") for g in greyed)
    assert any(g.startswith(f"志愿者 {off.name}") and g.endswith("不在岗") for g in greyed)
    volunteer = guard(world, "wanhu-GD15")
    assert any(g.startswith(f"志愿者 {volunteer.name}") and g.endswith("无近期位置") for g in greyed)
    assert not any("wanhu-GD" in text for text in ranked + greyed)  # names, not ids


@pytest.mark.browser
def test_a_guard_checks_in_reads_the_handover_and_checks_out_on_the_phone(world: Stores) -> None:
    on_duty(world)
    before = Loop(world)
    before.duty.check(as_guard("wanhu-GD35"), "in")  # a security guard (no grid): every guard reads it
    before.duty.check(as_guard("wanhu-GD35"), "out", "3号楼北侧路灯不亮，已报物业")
    server = LiveServer(world.settings)
    phone = new_browser(390, 844, mobile=True)
    try:
        browser_login(phone, server.url, "guard.wanhu-GD15")
        assert phone.current_url.endswith("/tasks")  # the tasks page is where a guard lands
        assert "不在岗" in text_of(phone, ".st-duty-off")
        press(phone, "签到上岗")
        wait_for(phone, ".st-duty-checkin")
        handed_over = guard(world, "wanhu-GD35").name
        until(
            lambda: any(
                "3号楼北侧路灯不亮，已报物业" in e.text and handed_over in e.text
                for e in phone.find_elements(By.CSS_SELECTOR, ".st-handover")
            ),
            "the handover note of the guard before",
        )
        type_into(phone, ".st-duty textarea", "巡逻完毕，无异常")
        press(phone, "签退交班")
        wait_for(phone, ".st-duty-off")
        save_screenshot(phone, "tasks_duty_checked_out")
        phone.get(server.url + "/")  # the start page takes a guard to their tasks page (auth.policy.landing_page) …
        wait_for(phone, ".st-duty-off")
        assert phone.current_url.endswith("/tasks")
        assert "无权访问" not in phone.find_element(By.TAG_NAME, "body").text
        phone.get(server.url + "/console")  # … which is all a guard has
        text_of(phone, "body", text="无权访问")
    finally:
        phone.quit()
        server.stop()
    with world.sessions() as session:
        audited = session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.reason)
            .where(AuditEntry.target == "guard:wanhu-GD15")
            .order_by(AuditEntry.id)
        ).all()
        assert session.scalars(select(Task)).all() == []
    assert audited == [
        ("guard.wanhu-GD15", "duty.check_in", ""),
        ("guard.wanhu-GD15", "duty.check_out", "巡逻完毕，无异常"),
    ]
