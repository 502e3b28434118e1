"""The map page renders the demo community in headless Chromium."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.browser import browser_login, settled, wait_for
from tests.conftest import LiveServer, save_screenshot

pytestmark = pytest.mark.browser


def severe_errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_map_page_shows_the_community_by_category(demo_server: LiveServer, browser) -> None:
    browser_login(browser, demo_server.url, "police.wanhu")
    browser.get(demo_server.url + "/?community=wanhu")
    wait_for(browser, ".leaflet-container")
    buildings = wait_for(browser, "path.st-bld", minimum=128)
    assert len(buildings) == 128  # 127 residential buildings and the community centre
    assert len(browser.find_elements(By.CSS_SELECTOR, "path.st-cat-rental")) > 5  # rentals drawn blue
    assert browser.find_elements(By.CSS_SELECTOR, "path.st-cat-group_rental")
    assert browser.find_elements(By.CSS_SELECTOR, "path.st-elder")
    assert len(wait_for(browser, "path.st-dev-face_gate", minimum=6)) == 6
    assert len(wait_for(browser, "path.st-dev-door_sensor", minimum=200)) == 200
    # whichever layer's data arrives last, the devices lie above the buildings, and the buildings
    # above the grids: what is under the pointer is the marker, then the building
    assert len(browser.find_elements(By.CSS_SELECTOR, ".leaflet-devices-pane path.st-dev-door_sensor")) == 200
    assert len(browser.find_elements(By.CSS_SELECTOR, ".leaflet-buildings-pane path.st-bld")) == 128
    assert not browser.find_elements(
        By.CSS_SELECTOR, ".leaflet-overlay-pane path.st-dev, .leaflet-overlay-pane path.st-bld"
    )
    z_index = "return Number(getComputedStyle(document.querySelector(arguments[0])).zIndex)"
    panes = [browser.execute_script(z_index, f".leaflet-{name}-pane") for name in ("overlay", "buildings", "devices")]
    assert panes == sorted(panes) and len(set(panes)) == 3, panes
    grid_labels = [e.text for e in wait_for(browser, ".st-grid-label", minimum=5)]
    assert "第一网格" in grid_labels
    assert "万户新村" in browser.find_element(By.CSS_SELECTOR, ".st-subtitle").text
    assert "出租房" in browser.find_element(By.CSS_SELECTOR, ".st-legend").text
    settled(browser)
    assert save_screenshot(browser, "map_wanhu_zh").stat().st_size > 10_000
    assert severe_errors(browser) == []


def test_map_page_in_english_and_the_second_community(demo_server: LiveServer, browser) -> None:
    browser_login(browser, demo_server.url, "admin")
    browser.get(demo_server.url + "/lang/en?next=/%3Fcommunity%3Dxingbang")
    wait_for(browser, "path.st-bld", minimum=16)
    assert "Xingbang Central Park" in browser.find_element(By.CSS_SELECTOR, ".st-subtitle").text
    assert "Rental" in browser.find_element(By.CSS_SELECTOR, ".st-legend").text
    settled(browser)
    save_screenshot(browser, "map_xingbang_en")
    browser.get(demo_server.url + "/lang/zh?next=/")
    assert severe_errors(browser) == []
