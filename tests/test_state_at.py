"""The sand-table at any moment (issue #19): the state at T rebuilt from keyframes and the archive
equals what the live views showed at T, whatever the stream; a late event rebuilds the keyframes."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import delete, func, select

from alerts.live import AlertStore
from analytics.worker import Worker
from auth.principal import Principal
from auth.service import create_token
from closedloop.service import Loop
from core.clock import ManualClock
from core.errors import InvalidInput
from core.timefmt import iso_utc, local_text
from ingest.directory import Directory
from ingest.service import IngestService
from layouts.scrubber import (
    SCRUB_BANNER,
    SCRUB_GO,
    SCRUB_LIVE,
    SCRUB_OPEN,
    SCRUB_PANEL,
    SCRUB_PLAY,
    SCRUB_SPEED,
    SCRUB_TICK,
    SCRUB_TIME,
    next_state,
)
from memory.keyframes import Keyframe
from memory.state import Folded, Frame, _save, live_state, state_at
from store.stores import Stores
from tests.browser import browser_login, click_text, text_of, until, wait_for
from tests.conftest import LiveServer, save_screenshot

pytestmark = pytest.mark.also_on_pg

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
MINUTE = 60_000


class Community:
    """The demo community driven by a hand-moved clock: ingest, a real worker, the archiver."""

    def __init__(self, world: Stores, start_ms: int) -> None:
        self.world = world
        self.clock = ManualClock(start_ms)
        self.ingest = IngestService(world, clock=self.clock)
        self.worker = Worker(world, clock=self.clock)
        self.worker.start_community("wanhu", seed_timers=False)
        self.loop = Loop(world, self.clock)
        facts = Directory(world.sessions).facts("wanhu")
        by_type: dict[str, list[str]] = {}
        for device in sorted(facts.devices.values(), key=lambda d: d.id):
            by_type.setdefault(device.type, []).append(device.id)
        self.doors = by_type["door_sensor"][:3]
        self.detectors = by_type["smoke_detector"][:3]
        self.locks = by_type["smart_lock"][:2]
        self.wearables = sorted(facts.wearables)[:3]

    def feed(self, events: list[dict[str, Any]]) -> None:
        """Ingest, process and archive, as the running system does."""
        result = self.ingest.ingest("wanhu", events)
        assert result.accepted == len(events), result.body()
        while entries := self.worker.events.read(["wanhu"], self.worker.consumer, count=500, block_ms=None):
            self.worker.process(entries)
        assert self.worker.archiver is not None
        self.worker.archiver.run_once(["wanhu"])

    def open_alerts(self) -> list[dict[str, Any]]:
        return AlertStore(self.world.redis, self.world.keys).open_alerts("wanhu")


def random_event(rng: random.Random, c: Community, ts: int) -> dict[str, Any]:
    kind = rng.choice(["heartbeat", "heartbeat", "door", "position", "position", "smoke"])
    if kind == "heartbeat":
        device = rng.choice(c.doors + c.detectors + c.locks)
        data = {"battery": rng.randint(5, 100)} if rng.random() < 0.7 else {}
        return {"type": "device.heartbeat", "device": device, "ts": ts, "data": data}
    if kind == "door":
        state = rng.choice(["open", "closed"])
        return {"type": "door.contact", "device": rng.choice(c.doors), "ts": ts, "data": {"state": state}}
    if kind == "position":
        lat, lon = 33.389 + rng.uniform(-0.002, 0.002), 120.153 + rng.uniform(-0.002, 0.002)
        return {"type": "guard.position", "device": rng.choice(c.wearables), "ts": ts, "data": {"lat": lat, "lon": lon}}
    return {"type": "smoke.alarm", "device": rng.choice(c.detectors), "ts": ts, "data": {"level": "alarm"}}


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """What the wall shows: devices (online, battery, last door contact, last seen), guards, and the
    open alerts with their status (the door's open/closed and an alert's count are not on the wall)."""
    devices = [
        {**d, "state": {k: v for k, v in d["state"].items() if k in ("battery", "door_at")}} for d in state["devices"]
    ]
    alerts = sorted(
        (a["id"], a["type"], a["severity"], a["status"], json.dumps(a["subject"], sort_keys=True), a["opened_at"])
        for a in state["alerts"]
    )
    return {"at": state["at"], "devices": devices, "guards": state["guards"], "alerts": alerts}


def run_stream(world: Stores, seed: int, steps: int) -> tuple[Community, list[tuple[int, dict[str, Any]]]]:
    """A random stream over a few hours; the live state recorded at random moments."""
    rng = random.Random(seed)
    c = Community(world, int(time.time() * 1000) - 26 * 3_600_000)
    recorded: list[tuple[int, dict[str, Any]]] = []
    for _ in range(steps):
        start = c.clock.now_ms() + 1  # nothing new lands at a moment already recorded
        c.clock.advance(rng.choice([MINUTE, 3 * MINUTE, 7 * MINUTE, 20 * MINUTE, 50 * MINUTE]))
        times = sorted(rng.randint(start, c.clock.now_ms()) for _ in range(rng.randint(1, 4)))
        c.feed([random_event(rng, c, ts) for ts in times])
        for alert in c.open_alerts():
            roll = rng.random()
            if roll < 0.3 and alert["status"] == "new":
                c.loop.act(POLICE, "wanhu", alert["id"], "acknowledge", expected="new")
            elif roll < 0.5:
                c.loop.act(POLICE, "wanhu", alert["id"], "resolve", expected=alert["status"])
        if rng.random() < 0.6:
            recorded.append((c.clock.now_ms(), live_state(world, POLICE, "wanhu", c.clock.now_ms())))
        c.clock.advance(1)
    return c, recorded


@pytest.mark.parametrize("seed", [19, 2026])
def test_the_state_at_any_recorded_moment_equals_what_the_wall_showed_then(world: Stores, seed: int) -> None:
    c, recorded = run_stream(world, seed, steps=28)
    assert len(recorded) >= 8
    assert any(s["alerts"] for _, s in recorded) and any(not d["online"] for _, s in recorded for d in s["devices"])
    now = int(time.time() * 1000)
    order = list(recorded)
    random.Random(seed).shuffle(order)  # keyframes built by a later moment serve an earlier one's neighbours
    for at, shown in order:
        assert comparable(state_at(world, POLICE, "wanhu", at, now_ms=now)) == comparable(shown), iso_utc(at)
    with world.sessions() as session:
        assert (session.scalar(select(func.count()).select_from(Keyframe)) or 0) > 3
    # a second pass reads the keyframes now stored: the same answers
    for at, shown in recorded[::3]:
        assert comparable(state_at(world, POLICE, "wanhu", at, now_ms=now)) == comparable(shown)
    # an alert that was open at some moment and closed since is shown open then, with its status then
    closed_since = [
        (at, a) for at, s in recorded for a in s["alerts"] if a["id"] not in {x["id"] for x in c.open_alerts()}
    ]
    assert closed_since, "the stream closed none of the alerts it raised"


def test_the_http_api_answers_the_state_and_refuses_bad_times(world: Stores) -> None:
    _c, recorded = run_stream(world, 7, steps=10)
    with world.sessions.begin() as session:
        _, police = create_token(session, scope="role", role="police", community="wanhu", name="test")
        _, wall = create_token(session, scope="role", role="wall", community="wanhu", name="test wall")
        _, grid = create_token(session, scope="role", role="grid_worker", community="wanhu", grid="wanhu-G1")
    server = LiveServer(world.settings)
    try:

        def get(token: str, query: str) -> tuple[int, Any]:
            request = urllib.request.Request(
                f"{server.url}/api/v1/state?{query}", headers={"Authorization": f"Bearer {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read() or b"null")

        at, shown = recorded[-1]
        when = urllib.parse.quote(iso_utc(at))
        status, body = get(police, f"community=wanhu&at={when}")
        assert status == 200 and comparable(body) == comparable(shown)
        status, body = get(wall, f"community=wanhu&at={when}")
        assert status == 200 and all("person" not in a["subject"] for a in body["alerts"])
        status, body = get(grid, f"community=wanhu&at={when}")
        facts = Directory(world.sessions).facts("wanhu")
        assert status == 200 and all(facts.devices[d["id"]].grid == "wanhu-G1" for d in body["devices"])
        for query, field in [
            ("community=wanhu", "at"),
            ("community=wanhu&at=yesterday", "at"),
            ("community=wanhu&at=2026-12-05T01:12:00", "at"),  # no offset
            (f"community=wanhu&at={urllib.parse.quote(iso_utc(int(time.time() * 1000) + 3_600_000))}", "at"),
            ("community=wanhu&at=2020-01-01T00:00:00Z", "at"),  # before the retention
            ("community=elsewhere&at=2026-12-05T01:12:00Z", "community"),
        ]:
            status, body = get(police, query)
            assert (status, body["field"]) == (400, field), query
            assert body["error"]
        status, body = get(police, "community=wanhu&at=2020-01-01T00:00:00Z")
        assert "earliest" in body["error"]
    finally:
        server.stop()


def test_a_late_event_rebuilds_the_keyframes_after_it(world: Stores) -> None:
    c = Community(world, int(time.time() * 1000) - 3 * 3_600_000)
    door = c.doors[0]
    start = c.clock.now_ms()
    for step in range(1, 7):
        c.clock.set(start + step * 15 * MINUTE)
        c.feed([{"type": "device.heartbeat", "device": door, "ts": c.clock.now_ms(), "data": {"battery": 90 - step}}])
    at = c.clock.now_ms() + MINUTE
    now = int(time.time() * 1000)
    before = state_at(world, POLICE, "wanhu", at, now_ms=now)
    with world.sessions() as session:
        frames = list(session.scalars(select(Keyframe.at).where(Keyframe.community_id == "wanhu")))
    assert len(frames) >= 5
    # a gateway's backlog: a door contact from before the last keyframes arrives now
    late = start + 50 * MINUTE
    c.feed([{"type": "door.contact", "device": door, "ts": late, "data": {"state": "open"}}])
    with world.sessions() as session:
        kept = list(session.scalars(select(Keyframe.at).where(Keyframe.community_id == "wanhu")))
    assert kept and max(kept) < late < max(frames)
    after = state_at(world, POLICE, "wanhu", at, now_ms=now)
    (row,) = [d for d in after["devices"] if d["id"] == door]
    assert row["state"] == {"battery": 84, "door_at": iso_utc(late), "door": "open"}
    (was,) = [d for d in before["devices"] if d["id"] == door]
    assert was["state"] == {"battery": 84}
    # the moment before the late event still shows the door untouched
    (earlier,) = [d for d in state_at(world, POLICE, "wanhu", late - 1, now_ms=now)["devices"] if d["id"] == door]
    assert "door" not in earlier["state"]
    # a keyframe whose span gained an event while the fold ran (a late event racing the reader) is not saved
    edge = max(kept) + 10 * MINUTE
    with world.sessions.begin() as session:
        session.execute(delete(Keyframe).where(Keyframe.at >= edge))
    stale = Folded(at=edge).encode(edge)
    _save(world, "wanhu", [Frame(max(kept), edge, 0, stale)], now)
    with world.sessions() as session:
        assert session.scalar(select(Keyframe.at).where(Keyframe.at == edge)) is None


@pytest.mark.browser
def test_the_wall_replays_a_past_moment_and_goes_back_to_live(world: Stores, browser: Any) -> None:
    c = Community(world, int(time.time() * 1000) - 50 * MINUTE)
    detector = c.detectors[0]
    c.clock.set(c.clock.now_ms() + 5 * MINUTE)
    positions = [
        {"type": "guard.position", "device": w, "ts": c.clock.now_ms() - k * MINUTE, "data": {"lat": lat, "lon": lon}}
        for i, w in enumerate(c.wearables)
        for k in range(4)
        for lat, lon in [(33.3880 + 0.0004 * i + 0.0001 * k, 120.1520 + 0.0005 * i)]
    ]
    c.feed(
        [*positions, {"type": "smoke.alarm", "device": detector, "ts": c.clock.now_ms(), "data": {"level": "alarm"}}]
    )
    (alert,) = [a for a in c.open_alerts() if a["type"] == "smoke"]
    then = c.clock.now_ms() + 2 * MINUTE
    c.clock.set(int(time.time() * 1000))
    c.loop.act(POLICE, "wanhu", alert["id"], "resolve", expected="new")  # closed now
    assert not [a for a in c.open_alerts() if a["id"] == alert["id"]]
    server = LiveServer(world.settings.model_copy(update={"refresh_seconds": 1.0}))
    try:
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/")
        wait_for(browser, "path.st-bld", minimum=128)
        wait_for(browser, ".st-card.st-closed")  # live: the smoke alert is closed
        assert not browser.find_elements(By.CSS_SELECTOR, ".st-card.st-sev-critical:not(.st-closed)")
        browser.find_element(By.ID, SCRUB_OPEN).click()
        wait_for(browser, f"#{SCRUB_PANEL}:not(.st-hidden)")
        typed = local_text(then, "%Y-%m-%d %H:%M")
        box = browser.find_element(By.ID, SCRUB_TIME)
        box.send_keys(typed)
        browser.find_element(By.ID, SCRUB_GO).click()
        banner = text_of(browser, f"#{SCRUB_BANNER}", text=f"回放 {typed}")
        assert "当时未结警情 1 起" in banner
        card = text_of(browser, ".st-card.st-sev-critical:not(.st-closed)", text="新警情")
        assert "烟" in card
        wait_for(browser, ".st-alert-marker.st-sev-critical")
        wait_for(browser, "path.st-guard-active", minimum=len(c.wearables))
        save_screenshot(browser, "wall_replay")
        # the wall's live polling (every second here) is held: the replay is still what it shows
        assert browser.find_elements(By.CSS_SELECTOR, ".st-card.st-sev-critical:not(.st-closed)")
        click_text(browser, f"#{SCRUB_LIVE}", "")
        wait_for(browser, f"#{SCRUB_BANNER}.st-hidden")
        wait_for(browser, ".st-card.st-closed")
        until(
            lambda: not browser.find_elements(By.CSS_SELECTOR, ".st-card.st-sev-critical:not(.st-closed)"),
            "the live feed to leave the replayed alert",
        )
        save_screenshot(browser, "wall_back_to_live")
    finally:
        server.stop()


def test_the_scrubber_plays_from_t_and_returns_to_live_when_it_catches_up() -> None:
    now = int(time.time() * 1000)
    state = {"community": "wanhu", "lang": "zh", "at": None, "playing": False, "speed": 1, "open": False}
    values: dict[str, Any] = {"slider": -30, "time": None, "speed": 60}
    opened = next_state(state, SCRUB_OPEN, values, now)
    assert opened["open"] and opened["at"] == now - 30 * MINUTE
    playing = next_state(next_state(opened, SCRUB_SPEED, values, now), SCRUB_PLAY, values, now)
    assert playing["playing"] and playing["speed"] == 60
    ticked = next_state(playing, SCRUB_TICK, values, now)
    assert ticked["at"] == now - 30 * MINUTE + 60_000  # a tick a second at 60×: a minute
    caught_up = next_state({**ticked, "at": now - 30_000}, SCRUB_TICK, values, now)
    assert caught_up["at"] is None and not caught_up["playing"]  # live again
    typed = next_state(opened, SCRUB_GO, {**values, "time": "2026-12-05 01:12"}, now)
    assert local_text(typed["at"], "%Y-%m-%d %H:%M") == "2026-12-05 01:12"
    with pytest.raises(InvalidInput) as refused:
        next_state(opened, SCRUB_GO, {**values, "time": "5 Dec, 1am"}, now)
    assert refused.value.text("zh") == "时间格式应为 2026-12-05 01:12"
    assert next_state(opened, SCRUB_LIVE, values, now)["at"] is None
