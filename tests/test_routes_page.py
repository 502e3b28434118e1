"""The patrol route editor in a real browser: place two checkpoints on the map, save a route through
them, see it listed, delete it."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from store.stores import Stores
from tests.browser import browser_login
from tests.conftest import LiveServer, save_screenshot


def place_checkpoint(browser, dx: int, name: str) -> None:
    """Click the map dx pixels right of its centre, name the checkpoint and add it."""
    wait = WebDriverWait(browser, 30)
    the_map = browser.find_element(By.CSS_SELECTOR, ".st-rt-map .leaflet-container")
    ActionChains(browser).move_to_element_with_offset(the_map, dx, 40).click().perform()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "path.st-rt-place")))
    field = browser.find_element(By.ID, "routes-cp-name")
    field.clear()
    field.send_keys(name)
    browser.find_element(By.ID, "routes-cp-add").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "routes-cp-msg"), name))


@pytest.mark.browser
def test_a_route_through_two_new_checkpoints_is_saved_and_listed(world: Stores, browser) -> None:
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/routes?community=wanhu")
        wait = WebDriverWait(browser, 60)
        wait.until(ec.text_to_be_present_in_element((By.ID, "routes-list"), "夜间巡更路线"))  # the demo's route
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".st-rt-cp")))
        place_checkpoint(browser, -60, "东门岗亭")
        place_checkpoint(browser, 60, "西门岗亭")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "path.st-rt-line")))  # drawn in order
        assert len(browser.find_elements(By.CSS_SELECTOR, ".st-rt-cp-picked")) == 2
        browser.find_element(By.ID, "routes-name").send_keys("门岗巡更")
        browser.find_element(By.ID, "routes-save").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "routes-msg"), "已保存路线 门岗巡更"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "routes-list"), "东门岗亭 → 西门岗亭"))
        listed = browser.find_element(By.CSS_SELECTOR, "#routes-list [data-route='wanhu-R2']").text
        assert "门岗巡更" in listed and "每120分钟一轮 20:00–06:00" in listed
        wait.until(ec.text_to_be_present_in_element((By.ID, "routes-pick"), "门岗巡更"))  # still being edited
        assert len(browser.find_elements(By.CSS_SELECTOR, ".st-rt-cp-picked")) == 2
        save_screenshot(browser, "routes-editor")
        browser.find_element(By.ID, "routes-delete").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "routes-msg"), "已删除路线 门岗巡更"))
        wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, "#routes-list [data-route='wanhu-R2']")))
    finally:
        server.stop()
