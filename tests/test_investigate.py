"""The Investigate page (研判) tells the article's two stories from the simulator's own data: the
dog that walked out of the east gate at 19:40 with a resident while a guard passed the building,
and the car that came at night, seen nowhere else that week."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from shapely import box
from shapely.geometry import mapping, shape
from sqlalchemy import select

from analytics.worker import Worker
from auth.principal import SYSTEM, Principal
from core.errors import InvalidInput
from core.timefmt import local_text
from ingest.service import IngestService
from memory.cases import read_case
from memory.investigation import investigate, local_ms, read_window
from memory.models import ArchivedEvent
from registry.models import Community, Device, Household
from registry.queries import entity_labels
from simulator.generate import SLOT_MS, Story, local_midnight, make_story, slot_events
from simulator.world import World, load_world
from store.stores import Stores
from tests.browser import browser_login, click_text, until
from tests.conftest import LiveServer, save_screenshot

browser_test = pytest.mark.browser

SEED = 7
BROWSER: list[Any] = []
HOUR_MS = 3_600_000
MIN_MS = 60_000


def story_events(
    world: World,
    story: Story,
    start: int,
    end: int,
    keep: Callable[[dict[str, Any]], bool],
    *,
    positions: bool = True,
) -> list[dict[str, Any]]:
    """The simulator's events in [start, end) that the story needs (guards' positions every 2 minutes,
    as the backfill sends them)."""
    out = []
    for slot in range(start // SLOT_MS, end // SLOT_MS + 1):
        for event in slot_events(world, story, slot, SEED, positions=positions, position_every_ms=2 * MIN_MS):
            if start <= event["ts"] < end and keep(event):
                out.append(event)
    return out


def archive(stores: Stores, events: list[dict[str, Any]]) -> None:
    """Ingest the events as the gateways would, then let a worker's archive consumer store them."""
    service = IngestService(stores)
    for first in range(0, len(events), 500):
        result = service.ingest("wanhu", events[first : first + 500])
        assert result.accepted == len(events[first : first + 500]), result
    worker = Worker(stores)
    worker.start_community("wanhu")
    assert worker.archiver is not None
    while worker.archiver.run_once(["wanhu"]):
        pass


def simulated(stores: Stores) -> tuple[World, Story]:
    with stores.sessions() as session:
        world = load_world(session, "wanhu", random.Random(SEED))
    return world, make_story(world, int(time.time() * 1000), SEED)


@pytest.fixture
def server(world: Stores) -> Iterator[LiveServer]:
    live = LiveServer(world.settings)
    yield live
    live.stop()


def texts(browser: Any, css: str) -> list[str]:
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, css)]


def pick(browser: Any, label: str, picker: str = "inv-place") -> None:
    """Choose an option of a dropdown (the place picker by default) by typing its label."""
    click_text(browser, f"#{picker}", "")
    until(
        lambda: browser.find_element(By.CSS_SELECTOR, "input.dash-dropdown-search").send_keys(label) or True,
        "the search",
    )
    until(
        lambda: (
            next(o for o in browser.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text.strip() == label).click()
            or True
        ),
        f"the option {label}",
    )
    for still_open in browser.find_elements(By.CSS_SELECTOR, "input.dash-dropdown-search"):  # a multiple choice
        still_open.send_keys(Keys.ESCAPE)
    until(lambda: label in browser.find_element(By.ID, picker).text, f"{label} picked")


def choose(browser: Any, name: str, value: str) -> None:
    """Click the radio button or checkbox of a Dash RadioItems or Checklist by its value."""
    browser.find_element(By.CSS_SELECTOR, f"input[name={name}][value={value}]").find_element(
        By.XPATH, "./ancestor::label"
    ).click()


def custom_window(browser: Any, start_ms: int, end_ms: int) -> None:
    """Type a custom window (Asia/Shanghai) into the date and time fields."""
    choose(browser, "inv-preset", "custom")
    for element, value in (
        ("inv-from-date", local_text(start_ms, "%Y-%m-%d")),
        ("inv-from-time", local_text(start_ms, "%H:%M")),
        ("inv-to-date", local_text(end_ms, "%Y-%m-%d")),
        ("inv-to-time", local_text(end_ms, "%H:%M")),
    ):
        field = browser.find_element(By.ID, element)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(value)
        assert field.get_attribute("value") == value


@browser_test
def test_the_dog_walk_at_the_east_gate_and_the_guard_who_passed(world: Stores, server: LiveServer, browser) -> None:
    the_world, story = simulated(world)
    dog = story.dog
    assert dog is not None
    evening = local_midnight(story.anchor) - 24 * HOUR_MS + 19 * HOUR_MS  # yesterday 19:00, Asia/Shanghai
    events = story_events(
        the_world,
        story,
        evening,
        evening + 90 * MIN_MS,
        lambda e: (e["type"] == "gate.face" and e["device"] == dog.gate) or e["type"] == "guard.position",
    )
    archive(world, events)
    BROWSER[:] = [browser]
    browser_login(browser, server.url, "police.wanhu")
    browser.get(server.url + "/investigate?community=wanhu")
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "path.st-bld"), "the map's buildings")
    with world.sessions() as session:
        found = entity_labels(session, [dog.gate, dog.building, dog.person, dog.guard], "zh")
    pick(browser, found[dog.gate])
    pick(browser, found[dog.building])
    browser.find_element(By.ID, "inv-box").click()
    until(lambda: "米" in browser.find_element(By.ID, "inv-area-text").text, "the rectangle around the picks")
    custom_window(browser, evening, evening + 90 * MIN_MS)
    browser.find_element(By.ID, "inv-search").click()
    until(lambda: browser.find_elements(By.CSS_SELECTOR, ".st-inv-entry"), "the timeline")
    entries = texts(browser, ".st-inv-entry")
    passage = [e for e in entries if found[dog.person] in e and "19:40" in e and "出门" in e]
    assert passage, entries
    assert local_text(evening, "%Y-%m-%d %H:%M") in browser.find_element(By.ID, "inv-msg").text  # the window typed
    assert found[dog.gate] in passage[0] and "登记住户" in passage[0]
    stay = [e for e in entries if found[dog.guard] in e and "在区域内" in e]
    assert stay, entries
    passing = [s for s in stay if "19:3" in s or "19:4" in s]  # the walk past the building, 19:35–19:50
    assert any(f"{found[dog.building]}附近" in s for s in passing), stay
    # both are on the map, and clicking the passage highlights its marker
    assert browser.find_elements(By.CSS_SELECTOR, "path.st-inv-marker.st-inv-m-face")
    assert browser.find_elements(By.CSS_SELECTOR, "path.st-inv-marker.st-inv-m-guard")
    row = next(
        e
        for e in browser.find_elements(By.CSS_SELECTOR, ".st-inv-entry")
        if found[dog.person] in e.text and "19:40" in e.text
    )
    row.find_element(By.CSS_SELECTOR, ".st-inv-place").click()
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "path.st-inv-hl.st-inv-m-face"), "the highlighted marker")
    assert browser.find_elements(By.CSS_SELECTOR, ".st-inv-entry.st-inv-selected")
    # the filter by kind hides the guards
    choose(browser, "inv-kinds", "guard")
    until(lambda: not browser.find_elements(By.CSS_SELECTOR, "path.st-inv-m-guard"), "the guards hidden")
    choose(browser, "inv-kinds", "guard")
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "path.st-inv-m-guard"), "the guards back")
    # saved as a case, the passage pinned to it (memory.cases)
    browser.find_element(By.ID, "inv-case-name").send_keys("东门遛狗走失")
    browser.find_element(By.ID, "inv-save").click()
    link = until(lambda: browser.find_elements(By.CSS_SELECTOR, "#inv-case-msg a.st-inv-caselink"), "the case")[0]
    href = link.get_attribute("href")
    assert "/cases?case=" in href
    passage_row = next(
        e
        for e in browser.find_elements(By.CSS_SELECTOR, ".st-inv-entry")
        if found[dog.person] in e.text and "19:40" in e.text
    )
    passage_row.find_element(By.CSS_SELECTOR, ".st-inv-pin").click()
    until(lambda: "已钉选到案件" in browser.find_element(By.ID, "inv-case-msg").text, "the pin")
    with world.sessions() as session:
        case = read_case(session, SYSTEM, href.split("case=")[1])
    assert case["name"] == "东门遛狗走失"
    assert [p["item"]["person"] for p in case["pins"]] == [dog.person]
    save_screenshot(browser, "investigate_dog_zh")
    browser.get(server.url + "/lang/en?next=%2Finvestigate%3Fcommunity%3Dwanhu")
    until(lambda: "Investigate" in " ".join(texts(browser, ".st-subtitle")), "English")
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "path.st-bld"), "the map's buildings")
    save_screenshot(browser, "investigate_empty_en")
    browser.get(server.url + "/lang/zh?next=/")


@browser_test
def test_the_night_car_seen_nowhere_else_that_week(world: Stores, server: LiveServer, browser) -> None:
    the_world, story = simulated(world)
    assert story.night_plate is not None
    night = [ts for ts, e in story.incidents if e["data"].get("plate") == story.night_plate]
    assert len(night) == 2
    midnight = local_midnight(night[0])
    # every barrier passage of the week around that night, up to now (the summary's "that week")
    week_start, now = midnight - 84 * HOUR_MS, int(time.time() * 1000)
    barriers = story_events(
        the_world, story, week_start, min(now, midnight + 84 * HOUR_MS), lambda e: e["type"] == "gate.vehicle",
        positions=False,
    )  # fmt: skip
    archive(world, barriers)
    browser_login(browser, server.url, "police.wanhu")
    browser.get(server.url + "/investigate?community=wanhu")
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "path.st-bld"), "the map's buildings")
    with world.sessions() as session:
        boundary = session.get(Community, "wanhu")
        assert boundary is not None
        outline = mapping(shape(json.loads(boundary.boundary)).envelope)
    # the rectangle as the EditControl reports a drawn one (its geojson property)
    drawn = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"type": "rectangle"}, "geometry": outline}],
    }
    until(lambda: browser.find_elements(By.CSS_SELECTOR, ".leaflet-draw-draw-rectangle"), "the drawing tools")
    browser.execute_script(
        "window.dash_clientside.set_props({type: 'inv-draw', index: 0}, {geojson: arguments[0]});", drawn
    )
    until(lambda: "米" in browser.find_element(By.ID, "inv-area-text").text, "the drawn area")
    custom_window(browser, midnight, midnight + 4 * HOUR_MS)
    browser.find_element(By.ID, "inv-search").click()
    assert local_text(midnight, "%Y-%m-%d %H:%M") in until(
        lambda: browser.find_element(By.ID, "inv-msg").text, "the window searched"
    )
    row = until(
        lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-plate='{story.night_plate}']"), "the plate's row"
    )[0]
    assert "本周仅此一次出现" in row.text and "外来车辆" in row.text
    first = browser.find_element(By.CSS_SELECTOR, ".st-inv-platetable tr[data-plate]")
    assert first.get_attribute("data-plate") == story.night_plate  # the visiting car seen once comes first
    assert "st-inv-once" in row.get_attribute("class")
    residents = [
        r for r in browser.find_elements(By.CSS_SELECTOR, ".st-inv-platetable tr[data-plate]") if "登记车辆" in r.text
    ]
    assert residents and not any("本周仅此一次出现" in r.text for r in residents)  # a resident's car is no lead
    row.find_element(By.CSS_SELECTOR, "button").click()
    title = until(lambda: texts(browser, ".st-inv-followtitle"), "the followed plate")[0]
    assert story.night_plate in title and "2" in title
    followed = texts(browser, ".st-inv-follow .st-inv-entry")
    assert len(followed) == 2
    assert "驶入" in followed[0] and "01:1" in followed[0]
    assert "驶出" in followed[1] and ("01:3" in followed[1] or "01:4" in followed[1])
    assert len(browser.find_elements(By.CSS_SELECTOR, "path.st-inv-follow")) == 2
    choose(browser, "inv-follow-span", "week")  # the week around the night: still those two, nowhere else
    week_from = local_text(midnight - 84 * HOUR_MS + 4 * HOUR_MS // 2, "%m-%d")
    title = until(
        lambda: [
            x for x in texts(browser, ".st-inv-followtitle") if x.startswith(f"追踪 {story.night_plate}：{week_from}")
        ],
        "the plate followed over the week",
    )[0]
    assert "2 次记录" in title and len(texts(browser, ".st-inv-follow .st-inv-entry")) == 2
    save_screenshot(browser, "investigate_car_zh")


def test_a_window_typed_wrong_gets_a_clear_error() -> None:
    now = local_ms("2026-12-06", "12:00")
    assert read_window("custom", ("2026-12-05", "19:00", "2026-12-05", "20:30"), now) == (
        local_ms("2026-12-05", "19:00"),
        local_ms("2026-12-05", "19:00") + 90 * MIN_MS,
    )
    for parts, key in (
        (("2026-12-05", "20:30", "2026-12-05", "19:00"), "inv.error.window"),
        (("2026-12-05", "7pm", "2026-12-05", "20:30"), "inv.error.time"),
        (("2026-10-01", "00:00", "2026-12-05", "00:00"), "inv.error.long"),
    ):
        with pytest.raises(InvalidInput) as refused:
            read_window("custom", parts, now)
        assert refused.value.key == key
    # 昨晚 22:00–06:00: the night that has ended (at 03:00, the night so far)
    assert read_window("last_night", ("", "", "", ""), now) == (
        local_ms("2026-12-05", "22:00"),
        local_ms("2026-12-06", "06:00"),
    )
    early = local_ms("2026-12-06", "03:00")  # the night still going on: from 22:00 to now
    assert read_window("last_night", ("", "", "", ""), early) == (local_ms("2026-12-05", "22:00"), early)


def test_a_grid_workers_area_is_clipped_to_their_grid(world: Stores) -> None:
    with world.sessions() as session:
        locks = session.execute(
            select(Device.id, Household.grid_id)
            .join(Household, Household.id == Device.household_id)
            .where(Device.community_id == "wanhu", Device.type == "smart_lock")
            .order_by(Device.id)
        ).all()
        boundary = session.get(Community, "wanhu")
        assert boundary is not None
        everywhere = mapping(shape(json.loads(boundary.boundary)).envelope)
    mine, theirs = locks[0], next(lock for lock in locks if lock[1] != locks[0][1])
    now = int(time.time() * 1000)
    archive(
        world,
        [
            {"id": f"t{i}", "type": "lock.open", "device": lock, "ts": now - 60_000 + i, "data": {"method": "card"}}
            for i, (lock, _) in enumerate((mine, theirs))
        ],
    )
    worker = Principal(kind="user", id="gw", role="grid_worker", community="wanhu", grid=mine[1], name="gw")
    police = Principal(kind="user", id="p", role="police", community="wanhu", name="p")
    with world.sessions() as session:
        seen = investigate(session, worker, "wanhu", everywhere, (now - HOUR_MS, now), "zh", world.settings)
        assert seen["clipped"] is True
        assert [e["entry"] for e in seen["entries"] if e["kind"] == "lock"] == [
            r.entry for r in session.scalars(select(ArchivedEvent).where(ArchivedEvent.device_id == mine[0]))
        ]
        whole = investigate(session, police, "wanhu", everywhere, (now - HOUR_MS, now), "zh", world.settings)
        assert whole["clipped"] is False
        assert len([e for e in whole["entries"] if e["kind"] == "lock"]) == 2
        with pytest.raises(InvalidInput) as refused:
            investigate(session, police, "wanhu", mapping(box(0, 0, 1, 1)), (now - HOUR_MS, now), "zh", world.settings)
        assert refused.value.key == "inv.error.outside"
