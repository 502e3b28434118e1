"""``manage.py simulate``: post the demo world's events to the ingest API like device gateways do."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from sqlalchemy import select, update

from auth.models import ApiToken, User
from auth.service import create_token
from core.clock import Clock, WallClock
from core.errors import SandtableError, StoreUnavailable
from core.timefmt import ms_to_utc
from registry.models import Community, Guard
from simulator.demo_roster import extend_demo_roster
from simulator.generate import POSITION_EVERY_MS, SLOT_MS, Story, make_story, slot_events
from simulator.people import People, cast
from simulator.world import World, load_world
from store.redis_server import TRANSIENT_ERRORS
from store.sql import utcnow
from store.stores import Stores

log = logging.getLogger(__name__)
BATCH = 500
ROSTER_AHEAD_MS = 2 * 24 * 3_600_000  # the demo roster is kept stored this far ahead of the clock
ROSTER_EVERY_MS = 3_600_000
OLD_POSITION_EVERY_MS = 120_000  # guards' positions of the backfill older than half an hour


class Poster:
    """Posts batches to the ingest API, waiting and retrying when asked to (429, 503) or when down."""

    def __init__(self, base_url: str, token: str, stop: threading.Event) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/events"
        self.token = token
        self.stop = stop
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0

    def post(self, events: list[dict[str, Any]]) -> None:
        """Post events in batches; returns when all are accepted (or the simulator is stopping)."""
        for start in range(0, len(events), BATCH):
            batch = events[start : start + BATCH]
            delay = 0.5
            while not self.stop.is_set():
                request = urllib.request.Request(
                    self.url,
                    data=json.dumps(batch, ensure_ascii=False).encode(),
                    method="POST",
                    headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        body = json.loads(response.read())
                    self.accepted += body["accepted"]
                    self.duplicates += body["duplicates"]
                    self.rejected += len(body["rejected"])
                    for item in body["rejected"][:3]:
                        log.warning("event rejected: %s", item["error"])
                    break
                except urllib.error.HTTPError as err:
                    if err.code in (429, 503):
                        wait = float(err.headers.get("Retry-After", delay))
                        self.stop.wait(wait)
                        continue
                    raise StoreUnavailable(f"the ingest API refused a batch: HTTP {err.code}") from err
                except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                    log.info("ingest API not reachable (%s); retrying in %.0f s", err, delay)
                    self.stop.wait(delay)
                    delay = min(delay * 2, 10)


def simulator_token(stores: Stores, community: str) -> str:
    """A fresh ingest token for the simulator (its earlier ones are revoked)."""
    with stores.sessions.begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.community_id == community, ApiToken.name == "simulator", ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        _, token = create_token(session, scope="ingest", community=community, name="simulator", created_by="simulator")
    return token


def wait_for(base_url: str, stop: threading.Event, timeout_s: float = 300) -> None:
    """Wait until the web app answers."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + "/healthz", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            stop.wait(1.0)
    if not stop.is_set():
        raise StoreUnavailable(f"the web app at {base_url} did not answer within {timeout_s:.0f} s")


def run_simulator(
    stores: Stores,
    *,
    base_url: str,
    backfill_hours: float,
    speed: float,
    communities: list[str] | None,
    seed: int,
    stop: threading.Event,
    once: bool,
    fraction: float = 1.0,
    people: bool = False,
    clock: Clock | None = None,
) -> None:
    """Backfill, then stream live events until stopped; with people, the simulated operator, guards
    and property office handle alerts meanwhile (simulator/people.py), on the same clock."""
    clock = clock or WallClock()
    wait_for(base_url, stop)
    with stores.sessions() as session:
        ids = list(session.scalars(select(Community.id).order_by(Community.id)))
        wanted = [c for c in ids if communities is None or c in communities]
        if fraction < 1.0:  # a seeded sample of the city, the surveyed demo communities always in it
            pick = random.Random(seed)
            wanted = [c for c in wanted if c in ("wanhu", "xingbang") or pick.random() < fraction]
        worlds = {c: load_world(session, c, random.Random(seed)) for c in wanted}
    if not worlds:
        log.warning("no community to simulate")
        return
    anchor = clock.now_ms()
    keep_roster(stores, list(worlds), anchor - int(backfill_hours * 3_600_000), anchor)
    stories = {c: make_story(w, anchor, seed) for c, w in worlds.items()}
    posters = {c: Poster(base_url, simulator_token(stores, c), stop) for c in worlds}
    crew = cast(stores, clock, list(worlds), lambda c, events: posters[c].post(events), enabled=people, seed=seed)
    if backfill_hours > 0:
        began = time.monotonic()
        for community, world in worlds.items():
            events = window(world, stories[community], anchor - int(backfill_hours * 3_600_000), anchor, seed)
            posters[community].post(events)
            log.info(
                "backfill %s: %d events (%d accepted, %d duplicates, %d rejected) in %.1f s",
                community,
                len(events),
                posters[community].accepted,
                posters[community].duplicates,
                posters[community].rejected,
                time.monotonic() - began,
            )
            play(crew)  # the backfill's first alerts are on the screens already: the operator notices them
    if once:
        return
    cursor = rostered = anchor
    while not stop.is_set():
        stop.wait(max(0.2, 2.0 / speed))
        now = clock.now_ms()
        if now - rostered >= ROSTER_EVERY_MS:
            keep_roster(stores, list(worlds), now, now)
            rostered = now
        busy = crew.busy_wearables() if crew is not None else set()
        for community, world in worlds.items():
            events = window(world, stories[community], cursor, now, seed, rate=speed)
            posters[community].post([e for e in events if e["device"] not in busy])  # walkers post their own
        cursor = now
        play(crew)


def play(crew: People | None) -> None:
    """One tick of the people (when on); a store away or a refused action is logged, never fatal."""
    if crew is None:
        return
    try:
        crew.tick()
    except (*TRANSIENT_ERRORS, StoreUnavailable) as err:
        log.warning("people: the stores are unavailable (%s); trying again", err)
    except SandtableError as err:
        log.warning("people: %s", err)


def keep_roster(stores: Stores, communities: list[str], start_ms: int, now_ms: int) -> None:
    """Store the demo roster's shifts from start_ms to two days ahead of now (simulator.demo_roster),
    so that a demo running for days has guards on duty at every hour; only in the communities whose
    guards have accounts (not the synthetic city's: nobody could be dispatched there anyway)."""
    with stores.sessions.begin() as session:
        staffed = set(
            session.scalars(
                select(Guard.community_id)
                .join(User, User.guard_id == Guard.id)
                .where(Guard.community_id.in_(communities))
            )
        )
        for community in sorted(staffed):
            extend_demo_roster(session, community, ms_to_utc(start_ms), ms_to_utc(now_ms + ROSTER_AHEAD_MS))


def window(world: World, story: Story, start: int, end: int, seed: int, *, rate: float = 1.0) -> list[dict[str, Any]]:
    """Every event with start <= ts < end; guards' positions every 20 s in the last half hour and
    one per guard every 2 minutes before (the archive keeps where the guards were)."""
    out: list[dict[str, Any]] = []
    for slot in range(start // SLOT_MS, end // SLOT_MS + 1):
        slot_start = slot * SLOT_MS
        recent = slot_start + SLOT_MS > end - 30 * 60_000
        every = POSITION_EVERY_MS if recent else OLD_POSITION_EVERY_MS
        for event in slot_events(world, story, slot, seed, positions=True, position_every_ms=every):
            if start <= event["ts"] < end:
                out.append(event)
        if rate > 1.0:  # faster than real time: more activity per minute
            for extra in range(1, int(rate)):
                for event in slot_events(world, story, slot + 10_000_000 * extra, seed, positions=False):
                    if event["type"] in ("gate.face", "gate.vehicle", "lock.open"):
                        shifted = dict(event, ts=slot_start + (event["ts"] % SLOT_MS), id=f"{event['id']}-x{extra}")
                        if start <= shifted["ts"] < end:
                            out.append(shifted)
    out.sort(key=lambda e: e["ts"])
    return out
