"""The 3D sand-table in headless Chromium with WebGL by software rendering (SwiftShader): Wanhu Xincun's
127 residential buildings (and its one public building) standing, guards and alerts live, a building
in 3D with a thrown object's path, at 1920×1080 and 3840×2160; the kiosk turning and flying to a new
alert. Screenshots in test-artifacts/ (wall3d_*.png)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from urllib3.exceptions import ReadTimeoutError

from auth.service import create_token
from layouts import ids
from store.stores import Stores
from tests.browser import browser_login, dispatch_click, press, until, wait_for
from tests.conftest import LiveServer, new_browser, save_screenshot
from tests.test_map_page import severe_errors
from tests.test_model3d import throw_camera
from tests.test_pipeline import devices_of
from tests.test_wall import feed, now_ms

pytestmark = pytest.mark.browser

SCENE = "#scene-3d .js-plotly-plot"
# software WebGL on a busy 2-core machine can keep a page from answering for minutes (two suites side
# by side, each drawing its model on the CPU): the waits for a drawn scene get longer than the shared 60 s
GL_TIMEOUT = 240.0
# the renderer too busy drawing to answer: within the script's 10 s (selenium), or within chromedriver's
# own 120 s (urllib3: software WebGL at 4K on a machine loaded 7 times over its 2 cores, issue 21)
BUSY = (TimeoutException, ReadTimeoutError)
DRILL = "#drill-3d-graph .js-plotly-plot"

# what a plotly 3D graph shows once WebGL drew it: its traces, the buildings it holds, its camera
GRAPH_STATE = """
var gd = document.querySelector(arguments[0]);
if (!gd || !gd.data || !gd._fullLayout || !gd._fullLayout.scene) { return null; }
var scene = gd._fullLayout.scene._scene;
if (!scene || !scene.glplot || !gd.querySelector('canvas')) { return null; }
var buildings = {};
gd.data.forEach(function (tr) {
  if (tr.type === 'mesh3d' && tr.customdata) { tr.customdata.forEach(function (b) { buildings[b] = 1; }); }
});
var metas = {};
function drawn(xs) { return (xs || []).filter(function (v) { return v !== null; }).length; }
gd.data.forEach(function (tr) { if (tr.meta) { metas[tr.meta] = drawn(tr.x); } });
return {traces: gd.data.length, buildings: Object.keys(buildings).length, metas: metas,
        guards: drawn(gd.data[1] && gd.data[1].x),
        alerts: [2, 3, 4, 5].map(function (i) { return drawn(gd.data[i] && gd.data[i].x); }),
        camera: JSON.parse(JSON.stringify(gd._fullLayout.scene.camera)),
        nogl: document.body.innerText.indexOf('WebGL') >= 0};
"""


@pytest.fixture
def lived_in_3d(world: Stores) -> Iterator[tuple[Stores, LiveServer, str]]:
    """The demo world with guards on the move, a smoke alarm and a thrown object from a window; served."""
    wearables = devices_of(world, "wearable", 6)
    detector = devices_of(world, "smoke_detector", 1)[0]
    camera, building, _, _ = throw_camera(world)
    t = now_ms()
    events: list[dict[str, Any]] = [
        {
            "type": "guard.position",
            "device": w,
            "ts": t - 30_000 + k * 10_000,
            "data": {"lat": 33.3880 + 0.0006 * i + 0.0001 * k, "lon": 120.1515 + 0.0009 * i},
        }
        for i, w in enumerate(wearables)
        for k in range(3)
    ]
    events.append({"type": "smoke.alarm", "device": detector, "ts": t - 2_000, "data": {"level": "alarm"}})
    events.append(
        {
            "type": "camera.throw",
            "device": camera,
            "ts": t - 1_000,
            "data": {
                "origin": {"building": building, "floor": 4, "column": 2},
                "trajectory": [[0, 400, 100], [100, 402, 140]],
            },
        }
    )
    feed(world, events)
    server = LiveServer(world.settings.model_copy(update={"refresh_seconds": 1.0}))
    yield world, server, building
    server.stop()


@pytest.fixture
def gl_browser() -> Iterator[Any]:
    """A Chromium of its own with WebGL on SwiftShader (the shared one runs with --disable-gpu)."""
    driver = new_browser(webgl=True)
    yield driver
    driver.quit()


def graph_state(driver: Any, css: str, what: str, ready: Any = lambda s: True) -> dict[str, Any]:
    """The graph's state once WebGL drew it and ``ready(state)`` holds."""

    def look() -> dict[str, Any]:
        try:
            state: dict[str, Any] | None = driver.execute_script(GRAPH_STATE, css)
        except BUSY:  # the renderer is busy drawing (software WebGL on a loaded machine): look again
            return {}
        return state if state and ready(state) else {}

    found: dict[str, Any] = until(look, what, GL_TIMEOUT, driver)
    return found


def drawn_share(driver: Any, css: str) -> float:
    """The share of the element's pixels on the screen that are not the scene's dark background."""
    element = driver.find_element(By.CSS_SELECTOR, css)
    rect = element.rect

    def png() -> bytes | None:
        try:
            taken: bytes = driver.get_screenshot_as_png()
        except BUSY:  # the renderer too busy drawing to answer: ask again
            return None
        return taken

    taken = until(png, "a screenshot", GL_TIMEOUT, driver)
    assert taken is not None
    shot = Image.open(io.BytesIO(taken)).convert("RGB")
    box = shot.crop((int(rect["x"]), int(rect["y"]), int(rect["x"] + rect["width"]), int(rect["y"] + rect["height"])))
    small = box.resize((box.width // 4, box.height // 4))
    pixels = list(small.getdata())
    lit = sum(1 for r, g, b in pixels if abs(r - 7) + abs(g - 13) + abs(b - 24) > 40)
    return lit / max(1, len(pixels))


def open_3d_building_by_click(driver: Any, building: str) -> None:
    """A click on the building in the 3D model (the graph's click event on one of its vertices)."""
    driver.execute_script(
        """
        var gd = document.querySelector(arguments[0]);
        for (var c = 0; c < gd.data.length; c++) {
          var cd = gd.data[c].customdata || [];
          var p = cd.indexOf(arguments[1]);
          if (gd.data[c].type === 'mesh3d' && p >= 0) {
            var tr = gd.data[c];
            gd.emit('plotly_click', {points: [{curveNumber: c, pointNumber: p, customdata: arguments[1],
              data: tr, fullData: gd._fullData[c], x: tr.x[p], y: tr.y[p], z: tr.z[p]}]});
            return true;
          }
        }
        return false;
        """,
        SCENE,
        building,
    )


def gl_screenshot(driver: Any, name: str) -> None:
    """save_screenshot, asked again while the renderer is too busy drawing to answer in its 10 s."""

    def take() -> bool:
        try:
            save_screenshot(driver, name)
        except BUSY:
            return False
        return True

    until(take, f"the screenshot {name}", GL_TIMEOUT, driver)


def stop_turning(driver: Any) -> bool:
    """Stop the kiosk's slow turn of the model (its ``data-turn`` seconds per turn, read on every tick)."""
    try:
        driver.execute_script(f"document.getElementById('{ids.MAP_WRAP}').setAttribute('data-turn', '0')")
    except BUSY:
        return False
    return True


# every move of the camera costs ``arguments[0]`` ms more (as a slow renderer's draw would), for four
# whole periods of the turn (from the start of a move to the start of the fifth: the measure ends on the
# turn's own pace, not on a clock): the time spent moving, the time passed, the moves
TURN_SHARE = """
var done = arguments[arguments.length - 1], cost = arguments[0], P = window.Plotly;
var own = P.__ownGuiRelayout = P.__ownGuiRelayout || P._guiRelayout;  // a measure cut short left its own
var busy = 0, starts = [];
P._guiRelayout = function () {
  var s = performance.now();
  starts.push(s);
  if (starts.length > 4) {
    P._guiRelayout = own;
    done({busy: busy, total: s - starts[0], moves: starts.length - 1});
    return own.apply(this, arguments);
  }
  while (performance.now() - s < cost) { /* the slow draw */ }
  try { return own.apply(this, arguments); } finally { busy += performance.now() - s; }
};
"""


def turn_share(driver: Any, cost_ms: int) -> dict[str, float]:
    """How much of the page's time the kiosk's turn takes when each move costs ``cost_ms`` more ({}:
    the renderer too busy drawing to answer in the script's time, measure again)."""
    try:
        found: dict[str, float] = driver.execute_async_script(TURN_SHARE, cost_ms)
    except BUSY:
        return {}
    return found


def same_origin_only(driver: Any) -> list[str]:
    """Every resource the page loaded from anywhere but its own server (nothing, offline)."""
    found: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith(location.origin) && !n.startsWith('data:') && !n.startsWith('blob:'))"
    )
    return found


def test_the_community_and_a_building_in_3d_at_1920_and_3840(
    lived_in_3d: tuple[Stores, LiveServer, str], gl_browser: Any
) -> None:
    _, server, building = lived_in_3d
    browser = gl_browser
    browser_login(browser, server.url, "police.wanhu")
    browser.get(server.url + "/?view=3d")
    state = graph_state(
        browser,
        SCENE,
        "the 3D model drawn with guards and alerts",
        lambda s: s["guards"] == 6 and sum(s["alerts"]) >= 2,
    )
    assert state["buildings"] == 128 and not state["nogl"]
    assert state["alerts"][0] == 2 and state["alerts"][1] >= 2  # the smoke alarm (critical), the throw (high)
    assert drawn_share(browser, "#scene-3d") > 0.12  # the model is on the screen, not an empty canvas
    assert same_origin_only(browser) == []  # plotly.js and everything else served by the app itself
    gl_screenshot(browser, "wall3d_1920")

    # a click on a building in the model opens it in 3D, with the throw's path and its window lit
    open_3d_building_by_click(browser, building)
    drill = graph_state(browser, DRILL, "the building in 3D", lambda s: s["metas"].get("throw", 0) >= 2)
    assert drill["metas"]["pulse"] >= 8 and drill["metas"]["window"] == 8  # the alerting cell, the window
    wait_for(browser, ".st-drill-3d .st-drill-head", text="楼栋三维")
    panel = browser.find_element(By.CSS_SELECTOR, ".st-drill-3d").rect
    assert browser.find_element(By.CSS_SELECTOR, "#drill-3d-graph").rect["height"] > panel["height"] * 0.7
    assert drawn_share(browser, "#drill-3d-graph") > 0.08
    gl_screenshot(browser, "wall3d_drill_1920")
    press(browser, "关闭")

    # the same building picked from the 2D drill-down, then its 3D button
    browser.find_element(By.XPATH, "//label[normalize-space()='平面']").click()
    wait_for(browser, "path.st-bld", minimum=128)
    index = int(building.rsplit("B", 1)[1]) - 1  # the map draws the buildings in id order
    dispatch_click(browser, "path.st-bld", index)
    wait_for(browser, ".st-drill:not(.st-hidden) .st-room", minimum=4)
    press(browser, "三维")
    graph_state(browser, DRILL, "the building in 3D from the 2D drill-down", lambda s: s["metas"].get("throw", 0) >= 2)
    press(browser, "关闭")

    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 3840, "height": 2160, "deviceScaleFactor": 1, "mobile": False}
    )
    try:
        browser.get(server.url + "/?view=3d")
        # its buildings and alerts (the guards were checked at 1920: on a loaded machine this step can come
        # more than 10 minutes after the fixture's positions, when the guards are no longer on the move)
        graph_state(browser, SCENE, "the 3D model at 4K", lambda s: s["buildings"] == 128 and sum(s["alerts"]) >= 2)
        assert drawn_share(browser, "#scene-3d") > 0.12
        gl_screenshot(browser, "wall3d_3840")
        # the building at 4K: its model drawn (no screenshot: software WebGL redrawing a 4K model and the
        # live scene behind it on a loaded machine can keep the renderer from ever answering one)
        open_3d_building_by_click(browser, building)
        graph_state(browser, DRILL, "the building in 3D at 4K", lambda s: s["metas"].get("throw", 0) >= 2)
    finally:
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False},
        )
    assert severe_errors(browser) == []


def test_the_kiosk_turns_the_model_and_flies_to_a_new_alert(
    lived_in_3d: tuple[Stores, LiveServer, str], gl_browser: Any
) -> None:
    world, server, _ = lived_in_3d
    with world.sessions.begin() as session:
        _, token = create_token(session, scope="role", role="wall", community="wanhu", name="station 3d")
    browser = gl_browser
    browser.get(f"{server.url}/wall?kiosk=1&view=3d&token={token}")
    first = graph_state(browser, SCENE, "the kiosk's 3D model", lambda s: s["guards"] == 6)["camera"]

    def turned(state: dict[str, Any]) -> bool:
        eye = state["camera"]["eye"]
        return abs(eye["x"] - first["eye"]["x"]) + abs(eye["y"] - first["eye"]["y"]) > 0.02

    graph_state(browser, SCENE, "the model to turn while no alert is new", turned)
    # a renderer that takes 400 ms for each move of the camera: the turn leaves the page at least
    # half of its time (a fixed 100 ms interval took all of it, and the page answered nothing else)
    share = until(lambda: turn_share(browser, 400), "the turn's share of the page's time", GL_TIMEOUT, browser)
    assert share["busy"] / share["total"] < 0.6, share

    # a new critical alert: the camera flies to it (its centre leaves the community's middle)
    detector = devices_of(world, "smoke_detector", 40)[-1]
    feed(world, [{"type": "smoke.alarm", "device": detector, "ts": now_ms(), "data": {"level": "alarm"}}])

    graph_state(browser, SCENE, "the new alert's column", lambda s: s["alerts"][0] >= 4)

    def flown() -> dict[str, Any] | None:
        # where the camera's flights ended, newest last: the model stays on the alert for 25 s, then
        # flies back; software WebGL on a busy machine can keep the page from answering for longer
        try:
            flights: list[dict[str, Any]] | None = browser.execute_script("return window.sandtable.flights || null")
        except BUSY:
            return None
        to_alerts = [f for f in flights or [] if f and f["alert"] and f["camera"]]
        return to_alerts[-1] if to_alerts else None

    landed = until(flown, "the camera to fly to the new alert", GL_TIMEOUT, browser)
    assert landed is not None
    centre = landed["camera"]["center"]
    assert abs(centre["x"]) + abs(centre["y"]) > 0.05  # away from the community's middle, over the alert

    def view_chosen() -> str | None:
        try:
            found = browser.find_elements(By.CSS_SELECTOR, f"#{ids.WALL_VIEW} input:checked")
            return str(found[0].get_attribute("value")) if found else None
        except BUSY:  # a find is a script in the page too: the renderer busy drawing answers it late
            return None

    assert until(view_chosen, "the view toggle's choice", GL_TIMEOUT, browser) == "3d"
    # the picture, with the model's turn stopped first: software WebGL redrawing a turning 4K-class
    # scene on a machine loaded several times over its cores can keep the renderer from ever
    # answering a screenshot (stop 35's runs: both timed out here, after every check had passed)
    until(lambda: stop_turning(browser), "the model to stop turning", GL_TIMEOUT, browser)
    gl_screenshot(browser, "wall3d_kiosk_alert")
