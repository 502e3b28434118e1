"""Maintenance mode of a device and away mode of an elder (issue #20): alerts silenced and counted,
the watch resumed from the end of the away time, refusals, the audit, the worker's rebuild from SQL,
and the command line."""

from __future__ import annotations

import json
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import select

from analytics.worker import Worker
from auth.models import AuditEntry
from auth.principal import Principal
from core.errors import Forbidden, InvalidInput, NotFound
from core.timefmt import iso_utc, local_text
from layouts import ids as layout_ids
from registry.models import Device
from registry.modes import ModePeriod
from registry.queries import Scope, building_layer, entity_labels
from store.stores import Stores
from tests import test_rules
from tests.browser import browser_login, hover_tooltip, text_of, until
from tests.conftest import DEMO_PASSWORD, LiveServer, run_manage, save_screenshot
from tests.test_investigate import pick
from tests.test_rules import T0, H, Ids, M, Scenario, beat, door
from upkeep.modes import Modes, person_labels

ids = test_rules.ids  # the demo world's devices and identities (a fixture)

pytestmark = pytest.mark.also_on_pg

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="police")


def smoke(device: str, ts: int) -> dict[str, object]:
    return {"type": "smoke.alarm", "device": device, "ts": ts, "data": {"level": "alarm"}}


def period(world: Stores, subject: str) -> ModePeriod:
    with world.sessions() as session:
        found = session.scalars(select(ModePeriod).where(ModePeriod.subject == subject).order_by(ModePeriod.id)).all()
    return found[-1]


def audit(world: Stores, prefix: str) -> list[tuple[str, str, str]]:
    with world.sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action.like(f"{prefix}%")).order_by(AuditEntry.id))
        return [(a.action, a.actor, a.target) for a in rows]


def test_a_page_opened_after_a_device_went_into_maintenance_draws_it_so(world: Stores, ids: Ids) -> None:
    """The devices layer carries live marks: the browser must ask again, not reuse a copy of a minute ago
    (the survey layers may be cached)."""
    from app import create_app  # noqa: PLC0415 — the web app only for this test

    client = create_app(world).server.test_client()
    login = client.post(
        "/login", data={"username": "police.wanhu", "password": DEMO_PASSWORD}, headers={"Origin": "http://localhost"}
    )
    assert login.status_code == 302
    url = "/api/v1/map/wanhu/devices.geojson?group=frontend"

    def camera_props() -> tuple[str, dict[str, object]]:
        answer = client.get(url)
        assert answer.status_code == 200
        (props,) = [f["properties"] for f in answer.get_json()["features"] if f["properties"]["id"] == ids.camera]
        return answer.headers["Cache-Control"], props

    cache, before = camera_props()
    assert "no-cache" in cache and "maintenance_until" not in before
    Modes(world).start(POLICE, "maintenance", ids.camera, int(time.time() * 1000) + 30 * H, "更换镜头")
    assert "maintenance_until" in camera_props()[1]
    assert "max-age" in client.get("/api/v1/map/wanhu/buildings.geojson").headers["Cache-Control"]


def test_a_device_in_maintenance_raises_no_alert_until_its_end(world: Stores, ids: Ids) -> None:
    s = Scenario(world)
    Modes(world, s.clock).start(POLICE, "maintenance", ids.detector, T0 + 2 * H, "detector replaced")
    s.at(M, smoke(ids.detector, T0 + M))
    s.at(2 * M, smoke(ids.detector, T0 + 2 * M))
    assert s.open("smoke") == []
    assert period(world, ids.detector).suppressed == 2  # the police can see what was kept back
    s.at(2 * H + M, smoke(ids.detector, T0 + 2 * H + M))  # the maintenance is over: alarms count again
    assert len(s.open("smoke")) == 1
    assert audit(world, "device.maintenance") == [("device.maintenance", "police.wanhu", f"device:{ids.detector}")]


def test_maintenance_ended_early_lets_alerts_through_and_is_audited(world: Stores, ids: Ids) -> None:
    s = Scenario(world)
    modes = Modes(world, s.clock)
    modes.start(POLICE, "maintenance", ids.detector, T0 + 5 * H)
    s.at(H)
    ended = modes.end(POLICE, "maintenance", ids.detector)
    assert ended["ended_at"] == iso_utc(T0 + H)
    s.at(H + M, smoke(ids.detector, T0 + H + M))
    assert len(s.open("smoke")) == 1
    assert [a for a, _, _ in audit(world, "device.maintenance")] == ["device.maintenance", "device.maintenance_end"]
    with pytest.raises(NotFound):
        modes.end(POLICE, "maintenance", ids.detector)  # nothing left to end


def test_a_silence_timer_due_in_maintenance_fires_when_it_ends(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(0, beat(ids.sensor, T0))
    Modes(world, s.clock).start(POLICE, "maintenance", ids.sensor, T0 + 5 * H, "sensor taken down")
    s.at(4 * H)
    assert s.open("sensor.silent") == []  # due at 2 h, silenced
    s.at(5 * H + M)
    assert len(s.open("sensor.silent")) == 1  # still silent once the maintenance is over


@pytest.mark.parametrize(
    ("until", "key"),
    [
        (T0 - M, "modes.error.until_past"),
        (T0 + 91 * 24 * H, "modes.error.until_far"),
        ("soon", "modes.error.until_format"),
    ],
)
def test_an_end_in_the_past_or_too_far_ahead_is_refused(world: Stores, ids: Ids, until: object, key: str) -> None:
    s = Scenario(world)
    with pytest.raises(InvalidInput) as refused:
        Modes(world, s.clock).start(POLICE, "maintenance", ids.detector, until)  # type: ignore[arg-type]
    assert refused.value.key == key
    assert str(refused.value).startswith("until:")
    assert refused.value.text("zh").startswith("结束时间 until")


def test_unknown_subjects_and_roles_without_the_permission_are_refused(world: Stores, ids: Ids) -> None:
    modes = Modes(world, Scenario(world).clock)
    with pytest.raises(NotFound):
        modes.start(POLICE, "maintenance", "no-such-device", T0 + H)
    with pytest.raises(NotFound):
        modes.start(POLICE, "away", "no-such-person", T0 + H)
    other = Principal(kind="user", id="police.xb", role="police", community="xingbang")
    with pytest.raises(NotFound):
        modes.start(other, "maintenance", ids.detector, T0 + H)  # another community's device
    grid = Principal(kind="user", id="grid.w1", role="grid_worker", community="wanhu", grid="wanhu-G1")
    with pytest.raises(Forbidden):
        modes.start(grid, "away", ids.elder, T0 + H)


def test_an_away_elder_gets_no_inactivity_alert_and_the_watch_resumes_from_the_end(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(0, door(ids, T0))
    Modes(world, s.clock).start(POLICE, "away", ids.elder, T0 + 20 * H, "in hospital")
    s.at(19 * H)
    assert s.open("elder.inactive") == []  # due at 12 h: away
    s.at(31 * H)
    assert s.open("elder.inactive") == []  # the first deadline counts from the end (20 h), not the door (0 h)
    s.at(32 * H + M)
    alerts = s.open("elder.inactive")
    assert len(alerts) == 1 and alerts[0]["detected_at"] == iso_utc(T0 + 32 * H)
    assert period(world, ids.elder).suppressed == 1
    assert [a for a, _, _ in audit(world, "person.away")] == ["person.away"]


def test_an_away_ended_early_resumes_the_watch_from_that_moment(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(0, door(ids, T0))
    modes = Modes(world, s.clock)
    modes.start(POLICE, "away", ids.elder, T0 + 20 * H)
    s.at(5 * H)
    modes.end(POLICE, "away", ids.elder)
    s.at(16 * H)
    assert s.open("elder.inactive") == []  # not at 12 h after the door: 12 h after the return (17 h)
    s.at(17 * H + M)
    assert len(s.open("elder.inactive")) == 1
    assert [a for a, _, _ in audit(world, "person.away")] == ["person.away", "person.away_end"]


def test_the_routine_watch_runs_from_the_end_of_the_away_time(world: Stores, ids: Ids) -> None:
    s = Scenario(world).at(0, door(ids, T0))
    Modes(world, s.clock).start(POLICE, "away", ids.elder, T0 + 5 * H)
    s.at(5 * H + M)
    profile = json.loads(world.redis.hget(world.keys.rule_state("wanhu", "elder.routine"), ids.sensor) or "{}")
    assert profile["in"] == T0 + 5 * H  # like a return through a gate: the allowance runs from here


def test_a_starting_worker_rebuilds_the_modes_from_sql(world: Stores, ids: Ids) -> None:
    s = Scenario(world)
    Modes(world, s.clock).start(POLICE, "maintenance", ids.detector, T0 + 2 * H)
    world.redis.delete(world.keys.modes("wanhu"))  # a flushed Redis
    s.worker = Worker(world, consumer="fresh", clock=s.clock, directory=s.directory)
    s.worker.start_community("wanhu")
    s.at(M, smoke(ids.detector, T0 + M))
    assert s.open("smoke") == []


def test_the_command_line_sets_ends_and_refuses(world: Stores, ids: Ids) -> None:
    until = local_text(int(time.time() * 1000) + 26 * H, "%Y-%m-%d %H:%M")
    done = run_manage(
        world.settings, "device", "maintenance", ids.detector, "--until", until, "--reason", "换电池", "--json"
    )
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["kind"] == "maintenance" and view["reason"] == "换电池" and view["ended_at"] is None
    assert world.redis.hget(world.keys.modes("wanhu"), f"maintenance:{ids.detector}")
    past = run_manage(world.settings, "device", "maintenance", ids.detector, "--until", "2020-01-01 08:00")
    assert past.returncode != 0 and past.stderr.strip() == "error: until: the end is in the past"
    ended = run_manage(world.settings, "device", "maintenance", ids.detector, "--end")
    assert ended.returncode == 0 and "maintenance ended at" in ended.stdout
    unknown = run_manage(world.settings, "person", "away", "nobody", "--until", until)
    assert unknown.returncode != 0 and "person: no person nobody" in unknown.stderr
    assert "Traceback" not in past.stderr + unknown.stderr
    assert [a for a, _, _ in audit(world, "device.maintenance")] == ["device.maintenance", "device.maintenance_end"]


# --- on the console, the wall map and the drill-down (headless Chromium) ----------------------


@pytest.mark.browser
def test_the_console_sets_modes_and_the_wall_shows_them(world: Stores, ids: Ids, browser) -> None:
    with world.sessions() as session:
        camera = session.get(Device, ids.camera)
        assert camera is not None
        device_label = entity_labels(session, [ids.camera], "zh")[ids.camera]
        elder_label = person_labels(session, POLICE, [ids.elder], "zh")[ids.elder]
        buildings = [f["properties"]["id"] for f in building_layer(session, Scope(), "wanhu")["features"]]
        elder_building = session.get(Device, ids.sensor).building_id  # type: ignore[union-attr]
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/console?community=wanhu")
        # the dropdowns' code is loaded on demand: on a busy machine it takes a while
        until(lambda: browser.find_elements(By.ID, layout_ids.MODES_DEVICE), "the device picker", timeout=90)
        ends = local_text(int(time.time() * 1000) + 30 * H, "%Y-%m-%d %H:%M")
        pick(browser, device_label, picker=layout_ids.MODES_DEVICE)
        browser.find_element(By.ID, layout_ids.MODES_UNTIL).send_keys(ends)
        browser.find_element(By.ID, layout_ids.MODES_REASON).send_keys("更换镜头")
        browser.find_element(By.ID, layout_ids.MODES_SET_MAINTENANCE).click()
        row = text_of(browser, f"#mode-maintenance-{ids.camera}")
        assert "维护中 至" in row and device_label in row and ids.camera not in row
        pick(browser, elder_label, picker=layout_ids.MODES_PERSON)
        browser.find_element(By.ID, layout_ids.MODES_REASON).send_keys("住院")
        browser.find_element(By.ID, layout_ids.MODES_SET_AWAY).click()
        until(lambda: browser.find_elements(By.ID, f"mode-away-{ids.elder}"), "the away row")
        save_screenshot(browser, "modes_console")

        # a bad end is refused in the form, nothing else changes
        field = browser.find_element(By.ID, layout_ids.MODES_UNTIL)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys("2020-01-01 08:00")
        browser.find_element(By.ID, layout_ids.MODES_SET_MAINTENANCE).click()
        until(lambda: "不能早于现在" in browser.find_element(By.ID, layout_ids.MODES_MSG).text, "the refusal")

        # the wall: the camera's marker says so, and the elder's household in the drill-down
        browser.get(server.url + "/")

        hover_tooltip(browser, "path.st-dev-maintenance", "维护中 至")  # the marker in maintenance
        save_screenshot(browser, "modes_wall_marker")
        paths = until(lambda: browser.find_elements(By.CSS_SELECTOR, "path.st-bld")[127:], "the buildings")
        assert paths
        at = buildings.index(elder_building)
        until(
            lambda: browser.execute_script(
                "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true})); return true;",
                browser.find_elements(By.CSS_SELECTOR, "path.st-bld")[at],
            ),
            "a click on the elder's building",
        )
        away = text_of(browser, ".st-drill .st-room-away", text="住院")
        assert "外出 至" in away
        save_screenshot(browser, "modes_drill_away")
    finally:
        server.stop()
