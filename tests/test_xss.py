"""Stored text is rendered as text: XSS payloads in names open no dialog in headless Chromium."""

from __future__ import annotations

import time

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from sqlalchemy import select

from auth.service import create_user
from registry import importers
from registry.models import Building, Grid
from store.stores import Stores
from tests.browser import browser_login, until, wait_for
from tests.conftest import LiveServer, save_screenshot
from tests.test_importers import WANHU

pytestmark = pytest.mark.browser
PAYLOAD_GRID = '<img src=x onerror="alert(1)">'
PAYLOAD_BUILDING = "<script>alert(2)</script><b>楼</b>"


def no_dialog(driver) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018
    except NoAlertPresentException:
        return True
    return False


def test_payloads_in_names_are_shown_as_text(stores: Stores, browser) -> None:
    with stores.sessions.begin() as session:
        for kind in ("boundary", "grids", "buildings"):
            importers.import_geo(session, kind, WANHU / f"{kind}.geojson", "wanhu", community_name="万户新村")
        session.scalars(select(Grid).where(Grid.id == "wanhu-G1")).one().name = PAYLOAD_GRID
        session.scalars(select(Building).where(Building.id == "wanhu-B001")).one().name = PAYLOAD_BUILDING
        create_user(session, "police.x", "sandtable2026", "police", community="wanhu")
    server = LiveServer(stores.settings)
    try:
        browser_login(browser, server.url, "police.x")
        browser.get(server.url + "/")
        labels = [e.text for e in wait_for(browser, ".st-grid-label", minimum=5)]
        assert PAYLOAD_GRID in labels
        assert browser.find_elements(By.CSS_SELECTOR, "img[src='x']") == []
        wait_for(browser, "path.st-bld", minimum=128)
        time.sleep(0.5)
        assert no_dialog(browser)
        save_screenshot(browser, "xss_grid_label")
        # the login form echoes the username back: escaped
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})  # every host and port
        browser.get(server.url + "/login")
        browser.find_element(By.NAME, "username").send_keys('"><script>alert(3)</script>')
        browser.find_element(By.NAME, "password").send_keys("wrong-password-1")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        # the form comes back with the name typed in (escaped), and no script ran
        until(
            lambda: (
                "/login" in browser.current_url
                and browser.find_element(By.NAME, "username").get_attribute("value") == '"><script>alert(3)</script>'
            ),
            "the login form back with the name typed in",
        )
        assert no_dialog(browser)
    finally:
        server.stop()
