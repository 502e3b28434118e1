"""The event archive (issue #19): every accepted event once, with its place, whatever crashes."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from analytics.worker import Worker
from cli.supervisor import child_plan
from ingest.service import IngestService
from memory.archive import Archiver, archive_row
from memory.keyframes import Keyframe
from memory.models import ArchivedEvent
from memory.search import SearchQuery, search
from registry.models import Device
from store.events import ARCHIVE_GROUP
from store.stores import Stores
from tests.conftest import run_manage
from tests.test_pipeline import start_worker


def devices(stores: Stores, device_type: str, n: int) -> list[Device]:
    with stores.sessions() as session:
        found = list(
            session.scalars(
                select(Device).where(Device.type == device_type, Device.community_id == "wanhu").order_by(Device.id)
            )
        )[:n]
        session.expunge_all()
        return found


def archived(stores: Stores) -> list[ArchivedEvent]:
    with stores.sessions() as session:
        return list(session.scalars(select(ArchivedEvent).order_by(ArchivedEvent.ts, ArchivedEvent.entry)))


@pytest.mark.also_on_pg
@pytest.mark.also_on_cluster
def test_every_accepted_event_is_archived_once_with_its_place(world: Stores) -> None:
    now = int(time.time() * 1000)
    lock = devices(world, "smart_lock", 1)[0]
    gate = devices(world, "vehicle_gate", 1)[0]
    wearable = devices(world, "wearable", 1)[0]
    events: list[dict[str, Any]] = [
        {
            "id": "a1",
            "type": "lock.open",
            "device": lock.id,
            "ts": now - 5000,
            "data": {"method": "card", "person": "P1"},
        },
        {
            "id": "a2",
            "type": "gate.vehicle",
            "device": gate.id,
            "ts": now - 4000,
            "data": {"direction": "in", "plate": "苏J12345"},
        },
        {"type": "guard.position", "device": wearable.id, "ts": now - 3000, "data": {"lat": 33.3891, "lon": 120.1532}},
        {
            "id": "a3",
            "type": "lock.open",
            "device": lock.id,
            "ts": now - 2000,
            "data": {"method": "face", "face_id": "U1"},
        },
    ]
    assert IngestService(world).ingest("wanhu", events).accepted == 4
    worker = Worker(world)
    worker.start_community("wanhu")
    assert worker.archiver is not None
    assert worker.archiver.run_once(["wanhu"]) == 4
    assert worker.archiver.run_once(["wanhu"]) == 0  # nothing new
    rows = archived(world)
    assert [r.type for r in rows] == ["lock.open", "gate.vehicle", "guard.position", "lock.open"]
    first, barrier, position, stranger = rows
    assert (first.event_id, first.household_id, first.building_id, first.person) == (
        "a1",
        lock.household_id,
        lock.building_id,
        "P1",
    )
    assert (first.lat, first.lon) == (lock.lat, lock.lon)
    assert barrier.plate == "苏J12345" and barrier.household_id is None
    assert (position.lat, position.lon) == (33.3891, 120.1532) and position.guard_id  # where the guard was
    assert stranger.person == "face:U1"
    # searched by plate, by household, by person, by time
    with world.sessions() as session:
        by_plate = search(session, SearchQuery("wanhu", now - 60_000, now, plate="苏J12345"))
        assert [i["id"] for i in by_plate.items] == ["a2"]
        by_household = search(session, SearchQuery("wanhu", now - 60_000, now, household=lock.household_id))
        assert [i["id"] for i in by_household.items] == ["a1", "a3"]
        paged = search(session, SearchQuery("wanhu", now - 60_000, now, limit=3))
        assert len(paged.items) == 3 and paged.next is not None
        rest = search(session, SearchQuery("wanhu", now - 60_000, now, limit=3), paged.next)
        assert len(rest.items) == 1 and rest.next is None


@pytest.mark.also_on_pg
def test_a_redelivered_entry_is_not_archived_twice(world: Stores) -> None:
    now = int(time.time() * 1000)
    lock = devices(world, "smart_lock", 1)[0]
    IngestService(world).ingest(
        "wanhu",
        [{"type": "lock.open", "device": lock.id, "ts": now - i, "data": {"method": "card"}} for i in range(20)],
    )
    archiver = Archiver(world, consumer="crashing")
    archiver.start("wanhu")
    entries = archiver.events.read(["wanhu"], "crashing", count=100, block_ms=None)
    facts = archiver.directory.facts("wanhu")
    from ingest.schema import Event  # noqa: PLC0415 — test-only

    # the rows were committed, then the process died before its XACK
    archiver.insert([archive_row("wanhu", e.entry_id, Event.from_wire(e.doc or {}), facts) for e in entries[:12]])
    other = Archiver(world, consumer="survivor")
    assert other.reclaim("wanhu", min_idle_ms=0) == 20
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ArchivedEvent)) == 20
    assert world.redis.xpending(world.keys.events("wanhu"), ARCHIVE_GROUP)["pending"] == 0


def test_an_archive_process_killed_while_it_archives_leaves_every_event_archived_exactly_once(world: Stores) -> None:
    """A real ``manage.py archive`` process is SIGKILLed while it archives; a new one finishes the archive."""
    settings = world.settings.model_copy(update={"worker_claim_idle_ms": 500, "archive_batch": 100})
    locks = devices(world, "smart_lock", 50)
    now = int(time.time() * 1000)
    sent = [
        {"id": f"k{lock.id}-{i}", "type": "lock.open", "device": lock.id, "ts": now - i, "data": {"method": "card"}}
        for lock in locks
        for i in range(40)
    ]
    ingest = IngestService(world)
    for chunk in range(0, len(sent), 1000):
        assert ingest.ingest("wanhu", sent[chunk : chunk + 1000]).accepted == len(sent[chunk : chunk + 1000])

    def start() -> subprocess.Popen[bytes]:
        return start_worker(settings, "archive")

    def count() -> int:
        with world.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(ArchivedEvent)) or 0)

    first = start()
    deadline = time.monotonic() + 90
    while count() == 0 and time.monotonic() < deadline:  # killed once it has begun to archive
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert 0 < count() < len(sent), "the kill must land while the archive is being written"
    second = start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
            count() == len(sent) and world.redis.xpending(world.keys.events("wanhu"), ARCHIVE_GROUP)["pending"] == 0
        ):
            time.sleep(0.2)
        niceness = int(Path(f"/proc/{second.pid}/stat").read_text().rpartition(")")[2].split()[16])
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert niceness == settings.archive_nice == 10  # it gave way to ingest and the analytics (SANDTABLE_ARCHIVE_NICE)
    with world.sessions() as session:
        ids = list(session.scalars(select(ArchivedEvent.event_id)))
    assert len(ids) == len(sent) and sorted(str(i) for i in ids) == sorted(
        str(e["id"]) for e in sent
    )  # each once, none skipped


def test_the_archive_keeps_the_state_keyframes_up_to_now_once_it_has_caught_up(world: Stores) -> None:
    """Nobody's first look at a past moment pays for folding the whole day: the archive builds the keyframes."""
    now = int(time.time() * 1000)
    lock = devices(world, "smart_lock", 1)[0]
    day = [
        {"type": "lock.open", "device": lock.id, "ts": now - hours * 3_600_000, "data": {"method": "card"}}
        for hours in (20, 12, 5, 1)
    ]
    IngestService(world).ingest("wanhu", day)
    archiver = Archiver(world)
    archiver.start("wanhu")

    def keyframes() -> list[int]:
        with world.sessions() as session:
            return list(session.scalars(select(Keyframe.at).where(Keyframe.community_id == "wanhu")))

    assert not archiver.keyframes_due("wanhu")  # the events are not copied yet: nothing is built ahead of them
    assert keyframes() == []
    archiver.run_once(["wanhu"])
    assert archiver.keyframes_due("wanhu")
    assert not archiver.keyframes_due("wanhu")  # once per keyframe interval
    built = sorted(keyframes())
    # a keyframe at the last boundary before each later change (holding every event before it), and
    # one at the last settled boundary before now
    interval = world.settings.keyframe_minutes * 60_000
    for hours in (12, 5, 1):
        change = now - hours * 3_600_000
        assert any(change - interval <= at < change for at in built), (hours, built)


def _run_worker_over(stores: Stores, events: list[dict[str, Any]]) -> None:
    """A worker's loop until it has analysed these events, then stopped (it ends the round in hand)."""
    worker = Worker(stores)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        assert IngestService(stores).ingest("wanhu", events).accepted == len(events)
        deadline = time.monotonic() + 60
        while worker.stats.processed < len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert worker.stats.processed == len(events)


def test_the_workers_leave_the_copy_to_the_archive_process(world: Stores) -> None:
    """By default the analytics workers do not archive (their CPU is the analytics'): ``manage.py
    archive`` does, from the archive group the workers created; make run starts it beside them."""
    now = int(time.time() * 1000)
    lock = devices(world, "smart_lock", 1)[0]
    events = [{"type": "lock.open", "device": lock.id, "ts": now - i, "data": {"method": "card"}} for i in range(30)]
    _run_worker_over(world, events)
    assert archived(world) == []
    assert {g["name"] for g in world.redis.xinfo_groups(world.keys.events("wanhu"))} == {ARCHIVE_GROUP, "workers"}

    done = run_manage(world.settings, "archive", "--once", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["archived"] == len(events)
    assert len(archived(world)) == len(events)

    assert "archive" in {c.name for c in child_plan(world.settings, backfill="0", speed=1, workers=1)}
    alone = world.settings.model_copy(update={"archive_in_workers": True})
    assert "archive" not in {c.name for c in child_plan(alone, backfill="0", speed=1, workers=1)}


def test_a_single_process_deployment_archives_in_the_workers(world: Stores) -> None:
    """With SANDTABLE_ARCHIVE_IN_WORKERS the worker archives after its batch, as before issue 24."""
    alone = Stores(world.settings.model_copy(update={"archive_in_workers": True}), world.engine, world.keys)
    now = int(time.time() * 1000)
    lock = devices(world, "smart_lock", 1)[0]
    events = [{"type": "lock.open", "device": lock.id, "ts": now - i, "data": {"method": "card"}} for i in range(30)]
    _run_worker_over(alone, events)
    assert len(archived(world)) == len(events)
