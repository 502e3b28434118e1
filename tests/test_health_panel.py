"""The console's data-integrity panel: the admin sees what the system dropped, and why; nobody else does."""

from __future__ import annotations

import pytest

from store.events import EventLog
from store.stores import Stores
from tests.browser import browser_login, text_of, until
from tests.conftest import LiveServer, save_screenshot

pytestmark = pytest.mark.browser


def test_the_admin_sees_what_was_dropped_and_why(world: Stores, browser) -> None:
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "admin")
        browser.get(server.url + "/console?community=wanhu")
        assert "未丢弃任何已确认事件" in text_of(browser, "#health-drops", text="未丢弃")

        # a power cut took 1,000 acknowledged events (counted by the ingest process that had them:
        # tests/test_pipeline.py), and a flood of rejects pushed dead letters out of a small cap
        world.redis.hincrby(world.keys.drops("wanhu"), "lost_on_restart", 1000)
        log = EventLog(world.redis, world.keys)
        log.dead_maxlen = 100  # XADD MAXLEN ~ trims whole nodes of 100 entries
        log.dead_letter("wanhu", [{"reason": f"test {i}", "raw": {"i": i}, "at": 0} for i in range(400)])
        over = log.drops("wanhu")["dead_letters_over_cap"]
        assert over >= 100
        browser.get(server.url + "/console?community=wanhu")
        shown = text_of(browser, "#health-drops", text="1,000")
        assert "Redis 重启后丢失的已确认事件 1,000 条" in shown and f"被挤出的死信 {over:,} 条" in shown
        save_screenshot(browser, "console_health_admin")

        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/console?community=wanhu")
        text_of(browser, ".st-queue", text="发布提醒")
        until(lambda: browser.find_elements("css selector", "#health-drops") == [], "no panel for the police")
    finally:
        server.stop()
