"""The map page renders in headless Chromium."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from tests.conftest import LiveServer, save_screenshot

pytestmark = pytest.mark.browser


def wait_for(driver, css: str, minimum: int = 1, timeout: float = 30.0) -> list:
    deadline = time.monotonic() + timeout
    found: list = []
    while time.monotonic() < deadline:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if len(found) >= minimum:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{css}: {len(found)} found, wanted {minimum}")


def test_map_page_renders_the_community(live_server: LiveServer, browser) -> None:
    browser.get(live_server.url + "/")
    wait_for(browser, ".leaflet-container")
    # the 127 buildings and the community centre are drawn as SVG paths on the overlay pane
    paths = wait_for(browser, ".leaflet-overlay-pane path", minimum=128)
    assert len(paths) >= 128
    wait_for(browser, ".leaflet-pane path")  # the basemap pane
    assert "智慧安防小区数字沙盘" in browser.find_element(By.CSS_SELECTOR, ".st-title").text
    time.sleep(0.5)
    shot = save_screenshot(browser, "map_page_zh")
    assert shot.stat().st_size > 10_000
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
