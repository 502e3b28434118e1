"""The wall screen in headless Chromium: live figures, the alert feed, guards, fly-to, drill-down, kiosk."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from analytics.worker import Worker
from auth.service import create_token
from callbacks.gate import GATE_JS, STALE_MS
from ingest.service import IngestService
from layouts import ids
from registry.demo import WANTED_ID
from store.stores import Stores
from tests.browser import browser_login, click_text, dispatch_click, settled, text_of, until, wait_for
from tests.conftest import LiveServer, save_screenshot
from tests.test_map_page import severe_errors
from tests.test_pipeline import devices_of, drain

pytestmark = pytest.mark.browser


def now_ms() -> int:
    return int(time.time() * 1000)


def feed(world: Stores, events: list[dict[str, Any]]) -> None:
    """Ingest events and let a worker process them, as the running system would."""
    IngestService(world).ingest("wanhu", events)
    worker = Worker(world)
    worker.start_community("wanhu", seed_timers=False)
    drain(worker)


@pytest.fixture
def lived_in(world: Stores) -> Iterator[tuple[Stores, LiveServer]]:
    """The demo world with guards on the move, devices reporting and a smoke alarm; served."""
    wearables = devices_of(world, "wearable", 6)
    cameras = devices_of(world, "camera", 30)
    detector = devices_of(world, "smoke_detector", 1)[0]
    t = now_ms()
    events: list[dict[str, Any]] = [
        {
            "type": "guard.position",
            "device": w,
            "ts": t - 60_000 + k * 20_000,
            "data": {"lat": 33.3880 + 0.0004 * i + 0.0001 * k, "lon": 120.1520 + 0.0005 * i},
        }
        for i, w in enumerate(wearables)
        for k in range(3)
    ]
    events += [{"type": "device.heartbeat", "device": c, "ts": t - 5_000, "data": {"battery": 90}} for c in cameras]
    events.append({"type": "smoke.alarm", "device": detector, "ts": t - 2_000, "data": {"level": "alarm"}})
    feed(world, events)
    server = LiveServer(world.settings.model_copy(update={"refresh_seconds": 1.0}))
    yield world, server
    server.stop()


def test_the_wall_shows_figures_feed_guards_and_pulsing_alerts(lived_in: tuple[Stores, LiveServer], browser) -> None:
    world, server = lived_in
    browser_login(browser, server.url, "police.wanhu")
    browser.get(server.url + "/")
    wait_for(browser, "path.st-bld", minimum=128)
    wait_for(browser, ".st-card.st-sev-critical.st-pulse", text="烟感报警")
    # guards and alerts are drawn in the live pane, above the buildings and devices (never under a polygon)
    assert len(wait_for(browser, ".leaflet-live-pane path.st-guard-active", minimum=6)) == 6
    wait_for(browser, ".leaflet-live-pane .st-alert-marker.st-sev-critical")
    kpis = text_of(browser, "#kpi-panel", text="实有人口")
    assert "实有人口" in kpis and "13,0" in kpis
    wait_for(browser, "#chart-alert-types .bars, #chart-alert-types .barlayer")
    settled(browser)
    save_screenshot(browser, "wall_1920_zh")

    # the alert cards pulse with the page's beat: the glow comes and goes, and no CSS animation keeps
    # the screen drawn 60 times a second (more than a core of a station PC without a graphics card)
    glows: set[str] = set()

    def both_glows() -> bool:
        glows.add(browser.execute_script(CARD_GLOW))
        return len(glows) >= 2

    until(both_glows, "the card to pulse", driver=browser)
    assert "none" in glows
    assert browser.execute_script(ENDLESS_ANIMATIONS) == []
    # a user who asked the system for reduced motion: nothing blinks
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]}
    )
    until(lambda: not browser.execute_script(BEAT_ON), "the beat to stop", driver=browser)
    assert not any(browser.execute_async_script(BEATS_OVER_TWO_CYCLES))
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    # a new critical alert while the wall is open: it appears and pulses within a few refreshes
    wanted_at_a_lock(world)
    wait_for(browser, ".st-card.st-sev-critical.st-pulse", minimum=2)
    wait_for(browser, ".st-card.st-sev-critical.st-pulse", text="在逃人员比中")
    settled(browser)  # the flight to the alert
    save_screenshot(browser, "wall_fly_to_alert")
    assert severe_errors(browser) == []


def test_drill_down_masks_per_role(lived_in: tuple[Stores, LiveServer], browser) -> None:
    world, server = lived_in
    browser_login(browser, server.url, "police.wanhu")
    browser.get(server.url + "/")
    wait_for(browser, "path.st-bld", minimum=128)
    dispatch_click(browser, "path.st-bld", 10)
    wait_for(browser, ".st-drill:not(.st-hidden) .st-room", minimum=10)
    police_text = text_of(browser, ".st-drill")
    assert "层" in police_text and "单元" in police_text
    assert browser.find_elements(By.CSS_SELECTOR, ".st-room-names")  # police see who lives where
    save_screenshot(browser, "wall_drill_police")

    with world.sessions.begin() as session:
        _, token = create_token(session, scope="role", role="wall", community="wanhu", name="station")
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})  # every host and port
    browser.get(f"{server.url}/wall?kiosk=1&token={token}")
    wait_for(browser, "path.st-bld", minimum=128)
    dispatch_click(browser, "path.st-bld", 10)
    wait_for(browser, ".st-drill:not(.st-hidden) .st-room", minimum=10)
    assert browser.find_elements(By.CSS_SELECTOR, ".st-room-names") == []
    assert "大屏不显示个人信息" in text_of(browser, ".st-drill")


def test_kiosk_at_4k_has_no_chrome(lived_in: tuple[Stores, LiveServer], browser) -> None:
    world, server = lived_in
    with world.sessions.begin() as session:
        _, token = create_token(session, scope="role", role="wall", community="wanhu", name="station 4k")
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})  # every host and port
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 3840, "height": 2160, "deviceScaleFactor": 1, "mobile": False}
    )
    try:
        browser.get(f"{server.url}/wall?kiosk=1&token={token}")
        wait_for(browser, "path.st-bld", minimum=128)
        wait_for(browser, ".st-card")
        assert "token" not in browser.current_url
        assert (
            browser.find_elements(By.CSS_SELECTOR, ".st-logout") == []
            or not browser.find_element(By.CSS_SELECTOR, ".st-logout").is_displayed()
        )
        value = browser.find_element(By.CSS_SELECTOR, ".st-kpi-value")
        assert int(value.value_of_css_property("font-size").removesuffix("px").split(".")[0]) >= 40

        def px(element: Any) -> float:
            return float(str(element.value_of_css_property("font-size")).removesuffix("px"))

        # the legend and the charts' text are drawn for the 4K screen too (legible across the room)
        assert px(browser.find_element(By.CSS_SELECTOR, ".st-legend")) >= 20
        until(
            lambda: (
                max(
                    (px(e) for e in browser.find_elements(By.CSS_SELECTOR, f"#{ids.CHART_ALERT_TYPES} text")), default=0
                )
                >= 20
            ),
            "the 24-hour chart's text drawn large on the 4K wall",
        )
        settled(browser)

        save_screenshot(browser, "wall_kiosk_3840")
    finally:
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False},
        )


def test_the_wall_opened_at_the_root_stays_on_its_page(lived_in: tuple[Stores, LiveServer], browser) -> None:
    """Opened at /, the wall shows its default community without reloading itself.

    It used to write ?community=… into the address by a second navigation, which cancelled a page
    the user opened right after signing in (a click on 警务工作台 could land back on the wall).
    """
    _, server = lived_in
    browser_login(browser, server.url, "admin")  # admin: both communities in the switcher
    counter = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "sessionStorage.stDocs = String(Number(sessionStorage.stDocs || 0) + 1);"},
    )
    try:
        browser.get(server.url + "/")
        wait_for(browser, "path.st-bld", minimum=128)
        text_of(browser, "#kpi-panel", text="实有人口")
        settled(browser)
        assert browser.execute_script("return sessionStorage.stDocs") == "1", browser.current_url
        # the switcher still opens the other community
        browser.execute_script("sessionStorage.stDocs = '0'")
        other = "兴邦中央公园" if "万户新村" in text_of(browser, f"#{ids.COMMUNITY_SELECT}") else "万户新村"
        click_text(browser, f"#{ids.COMMUNITY_SELECT}", "")
        click_text(browser, "[role=option]", other)
        until(lambda: "community=" in browser.current_url, "the switcher to open the other community", driver=browser)
        wait_for(browser, f"#{ids.COMMUNITY_SELECT}", text=other)
        wait_for(browser, "path.st-bld", minimum=10)
        assert browser.execute_script("return sessionStorage.stDocs") == "1"
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": counter["identifier"]})


def wanted_at_a_lock(world: Stores) -> None:
    """A person on the wanted list opens a rental's smart lock: a new critical alert (在逃人员比中)."""
    lock = devices_of(world, "smart_lock", 3)[2]
    event = {"type": "lock.open", "device": lock, "ts": now_ms(), "data": {"method": "face", "id_number": WANTED_ID}}
    feed(world, [event])


@contextmanager
def slow_link(browser: Any, latency_ms: int) -> Iterator[None]:
    """Every request of the page takes latency_ms (Chromium's own throttling: the link, not the app, is slow)."""
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    try:
        yield
    finally:
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        browser.execute_cdp_cmd("Network.disable", {})


def test_a_refresh_slower_than_its_interval_still_lands(lived_in: tuple[Stores, LiveServer], browser) -> None:
    """On a slow link (or a slow server, or a slow PC) every answer of the wall's refresh comes after
    its next tick. dash-renderer drops a callback still executing when the same callback is asked
    again, so without the gate every answer was thrown away and the wall froze (found under load,
    issue 21). Here each request takes 3 s against a 1 s interval: a new alert must still show."""
    world, server = lived_in
    browser_login(browser, server.url, "police.wanhu")
    browser.get(server.url + "/")
    wait_for(browser, ".st-card.st-sev-critical", text="烟感报警")
    settled(browser)
    with slow_link(browser, 3000):
        wanted_at_a_lock(world)
        wait_for(browser, ".st-card.st-sev-critical", text="在逃人员比中")
        # it keeps landing: the next change shows too
        smoke = devices_of(world, "smoke_detector", 2)[1]
        feed(world, [{"type": "smoke.alarm", "device": smoke, "ts": now_ms(), "data": {"level": "alarm"}}])
        wait_for(browser, ".st-card.st-sev-critical", minimum=3)


# the glow of the first critical alert card, as drawn now
CARD_GLOW = "return getComputedStyle(document.querySelector('.st-card.st-sev-critical.st-pulse')).boxShadow"
# the page's animations that never end (each keeps Chromium drawing the screen at 60 frames a second)
ENDLESS_ANIMATIONS = """
return document.getAnimations().filter(function (a) {
  return a.playState === 'running' && a.effect && a.effect.getComputedTiming().iterations === Infinity;
}).map(function (a) { return a.animationName || String(a.id); });
"""
BEAT_ON = "return document.documentElement.classList.contains('st-beat')"
# whether the page's beat was on, looked at every 100 ms over two of its 1.6 s cycles
BEATS_OVER_TWO_CYCLES = """
var done = arguments[arguments.length - 1], seen = [];
var look = window.setInterval(function () {
  seen.push(document.documentElement.classList.contains('st-beat'));
  if (seen.length >= 32) { window.clearInterval(look); done(seen); }
}, 100);
"""

GATE_STEPS = """
var gate = eval("(" + arguments[0] + ")"), clock = 0, realNow = Date.now, out = [];
window.dash_clientside = window.dash_clientside || {};
var held = window.dash_clientside.no_update = window.dash_clientside.no_update || {held: true};
Date.now = function () { return clock; };
try {
    var last = null;
    arguments[1].forEach(function (step) {
        clock = step[0];
        var tick = gate.apply(null, [1, last].concat(step.slice(1)));
        out.push(tick === held ? null : tick.wait);
        if (tick !== held) { last = tick; }
    });
} finally { Date.now = realNow; }
return out;
"""


def test_the_gate_holds_a_tick_while_a_refresh_is_out_and_waits_longer_each_time_one_is_taken_as_lost(
    browser,
) -> None:
    """The gate's own decisions, run in Chromium with a fake clock: (ms, busy flags…) per interval
    tick → the tick's wait before a refresh still out is taken as lost, or None when held."""
    steps = [
        [0, False, False],  # first tick: passes
        [5_000, True, False],  # a refresh out: held
        [29_000, False, True],  # the other still out: held
        [31_000, False, True],  # out for 31 s: taken as lost, asked again; the next wait is 60 s
        [62_000, False, True],  # 31 s after that: held (a slow server's answer gets its time)
        [92_000, True, True],  # 61 s: asked again, the wait 120 s
        [95_000, False, False],  # answered: passes, the wait back to 30 s
        [99_000, True, False],
        [126_000, True, False],  # 31 s: asked again
    ]
    assert browser.execute_script(GATE_STEPS, GATE_JS, steps) == [
        STALE_MS,
        None,
        None,
        2 * STALE_MS,
        None,
        4 * STALE_MS,
        STALE_MS,
        None,
        2 * STALE_MS,
    ]


def test_the_console_keeps_refreshing_on_a_link_slower_than_its_interval(
    lived_in: tuple[Stores, LiveServer], browser
) -> None:
    """The console hangs four refreshes on its 5 s interval (the queue, the detail, the residents'
    calls, the modes). With every request taking 6 s, each was asked again before it had answered
    and dash-renderer threw every answer away: the queue froze. The gate holds the tick until all
    four have answered, so a new alert reaches the queue."""
    world, server = lived_in
    browser_login(browser, server.url, "police.wanhu")
    browser.get(server.url + "/console")
    assert "在逃人员比中" not in text_of(browser, f"#{ids.CONSOLE_LIST}", text="烟感报警")
    settled(browser)
    with slow_link(browser, 6000):
        wanted_at_a_lock(world)
        wait_for(browser, f"#{ids.CONSOLE_LIST}", text="在逃人员比中", timeout=120)
