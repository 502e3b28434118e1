"""The pipeline against a real Redis server: projections, alerts, crashes, restarts, stalls, poison."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, sessionmaker

from alerts.live import AlertStore
from analytics.context import RuleContext
from analytics.projections import HOUSEHOLD_LOG_LENGTH
from analytics.worker import Worker, next_batch
from core.clock import ManualClock
from core.settings import ROOT
from gates.models import GateHourly
from ingest.directory import Directory
from ingest.service import IngestService
from registry import queries
from registry.models import Device
from store import live
from store.applied import AppliedToken
from store.events import ARCHIVE_GROUP, DURABLE_AFTER_S, GROUP, EventLog
from store.keys import Keys
from store.redis_server import client_for_url, start_embedded
from store.stores import Stores
from tests.conftest import env_for, free_port, run_manage

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

HOUR = 3_600_000


def devices_of(stores: Stores, device_type: str, n: int, community: str = "wanhu") -> list[str]:
    with stores.sessions() as session:
        return list(
            session.scalars(
                select(Device.id)
                .where(Device.type == device_type, Device.community_id == community)
                .order_by(Device.id)
                .limit(n)
            )
        )


def smoke(device: str, ts: int, event_id: str) -> dict[str, Any]:
    return {"id": event_id, "type": "smoke.alarm", "device": device, "ts": ts, "data": {"level": "alarm"}}


def start_worker(settings: Any, command: str = "worker") -> subprocess.Popen[bytes]:
    """A real ``manage.py worker`` (or another long-running command) process on these settings (quiet)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), command],
        env=env_for(settings),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def drain(worker: Worker, community: str = "wanhu") -> None:
    while entries := worker.events.read([community], worker.consumer, count=500, block_ms=None):
        worker.process(entries)


@pytest.mark.also_on_cluster
def test_projections_and_alerts_end_to_end(world: Stores) -> None:
    now = int(time.time() * 1000)
    wearable = devices_of(world, "wearable", 1)[0]
    detectors = devices_of(world, "smoke_detector", 2)
    ingest = IngestService(world)
    result = ingest.ingest(
        "wanhu",
        [
            {"type": "guard.position", "device": wearable, "ts": now, "data": {"lat": 33.389, "lon": 120.153}},
            smoke(detectors[0], now, "s1"),
            smoke(detectors[0], now + 1, "s2"),
            smoke(detectors[1], now, "s3"),
        ],
    )
    assert result.accepted == 4
    worker = Worker(world)
    worker.start_community("wanhu")
    drain(worker)
    positions = world.redis.geopos(world.keys.guards_geo("wanhu"), "wanhu-GD01")
    assert positions[0] is not None and abs(positions[0][1] - 33.389) < 1e-5
    open_alerts = AlertStore(world.redis, world.keys).open_alerts("wanhu")
    smokes = sorted((a["subject"]["device"], a["count"]) for a in open_alerts if a["type"] == "smoke")
    assert smokes == [(detectors[0], 2), (detectors[1], 1)]


@pytest.mark.also_on_cluster
def test_a_batchs_openings_reach_every_households_log_newest_first(world: Stores) -> None:
    """One batch opens the locks of several households, one of them more often than its log keeps
    (the batch's lists are written by one script call): each household's log holds its newest
    openings, newest first, and no other household's."""
    now = int(time.time() * 1000)
    facts = Directory(world.sessions).facts("wanhu")
    locks = sorted((d.household, d.id) for d in facts.devices.values() if d.type == "smart_lock" and d.household)
    (busy_home, busy), (home, lock), (other_home, other) = locks[0], locks[1], locks[2]
    events = [
        {"type": "lock.open", "device": busy, "ts": now + i, "data": {"method": "card"}, "id": f"b{i}"}
        for i in range(HOUSEHOLD_LOG_LENGTH + 20)
    ]
    events += [
        {"type": "lock.open", "device": lock, "ts": now + 5, "data": {"method": "key"}, "id": "k1"},
        {"type": "lock.open", "device": other, "ts": now + 7, "data": {"method": "password"}, "id": "p1"},
    ]
    assert IngestService(world).ingest("wanhu", events).accepted == len(events)
    worker = Worker(world)
    worker.start_community("wanhu")
    drain(worker)
    log = live.household_log(world, "wanhu", busy_home, limit=1000)
    assert [e["ts"] for e in log] == [now + i for i in reversed(range(20, HOUSEHOLD_LOG_LENGTH + 20))]
    assert {e["device"] for e in log} == {busy} and log[0]["method"] == "card"
    assert [(e["device"], e["method"], e["identified"]) for e in live.household_log(world, "wanhu", home)] == [
        (lock, "key", False)
    ]
    assert [e["method"] for e in live.household_log(world, "wanhu", other_home)] == ["password"]


def test_devices_go_offline_on_the_map_after_their_types_threshold(world: Stores) -> None:
    """A door sensor is offline after sensor_silent_hours (2 h), like its sensor.silent alert; other
    devices after device_offline_hours (1 h), like device.offline."""
    now = int(time.time() * 1000)
    door = devices_of(world, "door_sensor", 1)[0]
    camera = devices_of(world, "camera", 1)[0]
    beat = 90 * 60_000  # both last heard from 90 minutes ago
    events = [
        {"type": "device.heartbeat", "device": d, "ts": now - beat, "data": {}, "id": f"hb-{d}"} for d in (door, camera)
    ]
    assert IngestService(world).ingest("wanhu", events).accepted == 2
    worker = Worker(world)
    worker.start_community("wanhu")
    drain(worker)
    with world.sessions() as session:
        doors = queries.door_sensor_ids(session, "wanhu")
    assert live.offline_devices(world, "wanhu", now, doors) == {camera}
    assert live.device_status(world, "wanhu", now, door_sensors=doors) == {door: "online", camera: "offline"}
    assert live.device_counts(world, "wanhu", now, doors) == (1, 2)
    later = now + 31 * 60_000  # 2 h 1 min after the heartbeats: the door sensor too
    assert live.offline_devices(world, "wanhu", later, doors) == {door, camera}


@pytest.mark.also_on_cluster
def test_a_consumer_that_dies_between_read_and_ack_loses_nothing(world: Stores) -> None:
    """Consumer A reads and dies before acking; B takes the entries over: every alert once, counts exact."""
    settings = world.settings.model_copy(update={"worker_claim_idle_ms": 100})
    stores = dataclasses.replace(world, settings=settings)
    stores.__dict__["redis"] = world.redis
    detectors = devices_of(world, "smoke_detector", 50)
    now = int(time.time() * 1000)
    events = [smoke(d, now + i, f"e{d}-{i}") for d in detectors for i in range(3)]
    IngestService(stores).ingest("wanhu", events)
    dying = Worker(stores, consumer="A")
    dying.start_community("wanhu")
    half = dying.events.read(["wanhu"], "A", count=75, block_ms=None)
    assert len(half) == 75  # read, never acknowledged: A "crashed" here
    survivor = Worker(stores, consumer="B")
    survivor.start_community("wanhu")
    drain(survivor)
    time.sleep(0.2)
    assert survivor.reclaim("wanhu") == 75
    alerts = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "smoke"]
    assert len(alerts) == 50 and all(a["count"] == 3 for a in alerts)
    assert world.redis.xpending(world.keys.events("wanhu"), GROUP)["pending"] == 0


@pytest.mark.also_on_cluster
def test_kill_9_of_a_worker_process_under_load(world: Stores) -> None:
    """A real worker process is killed with SIGKILL while it works; a new one finishes: nothing lost."""
    settings = world.settings.model_copy(update={"worker_claim_idle_ms": 500, "worker_batch": 50})
    detectors = devices_of(world, "smoke_detector", 200)
    now = int(time.time() * 1000)
    IngestService(world).ingest("wanhu", [smoke(d, now + i, f"k{d}-{i}") for d in detectors for i in range(5)])

    def start() -> subprocess.Popen[bytes]:
        return start_worker(settings)

    first = start()
    stream = world.keys.events("wanhu")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the workers' group, not the archive's (no archive runs here)
        groups = world.redis.xinfo_groups(stream) if world.redis.exists(stream) else []
        if any(g["name"] == GROUP and g["last-delivered-id"] != "0-0" for g in groups):
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the first worker never read the stream")
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            alerts = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "smoke"]
            if (
                len(alerts) == 200
                and all(a["count"] == 5 for a in alerts)
                and world.redis.xpending(stream, GROUP)["pending"] == 0
            ):
                break
            time.sleep(0.3)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert len(alerts) == 200
    bad = [(a["count"], a.get("tokens")) for a in alerts if a["count"] != 5]
    assert sorted({a["count"] for a in alerts}) == [5], bad[:3]


@pytest.mark.sqlite_only  # Redis is the subject: the SQL is the registry read once
def test_redis_killed_and_restarted_under_load_loses_at_most_the_aof_window(world: Stores, tmp_path: Path) -> None:
    """Ingest keeps posting while Redis is SIGKILLed and restarted on its AOF."""
    port = free_port()
    server = start_embedded(tmp_path / "redis", port)
    client = client_for_url(server.url)
    stores = dataclasses.replace(
        world, settings=world.settings.model_copy(update={"redis_url": server.url}), keys=Keys("r")
    )
    stores.__dict__["redis"] = client
    detectors = devices_of(world, "smoke_detector", 100)
    acknowledged: list[tuple[float, str]] = []
    stop = threading.Event()

    def produce() -> None:
        ingest = IngestService(stores, directory=Directory(world.sessions))
        n = 0
        while not stop.is_set():
            batch = [smoke(detectors[(n + i) % 100], int(time.time() * 1000), f"r{n + i}") for i in range(20)]
            try:
                result = ingest.ingest("wanhu", batch)
            except Exception:  # noqa: BLE001  (Redis is down: a gateway retries the same batch later)
                time.sleep(0.05)
                continue
            if result.accepted + result.duplicates == 20:
                acknowledged.extend((time.monotonic(), e["id"]) for e in batch)
                n += 20

    def acknowledged_past(count: int) -> None:
        """Wait until the producer has had more than count events acknowledged (a busy machine is slow
        to load the registry for the first batch: the kill waits for load, not for a time)."""
        deadline = time.monotonic() + 120
        while len(acknowledged) <= count and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    thread = threading.Thread(target=produce)
    thread.start()
    acknowledged_past(1000)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    killed_at = time.monotonic()
    time.sleep(0.5)  # Redis stays down a moment: the producer's batches fail and are retried
    restarted = start_embedded(tmp_path / "redis", port)
    acknowledged_past(len(acknowledged) + 200)  # ingest goes on on the restarted server
    stop.set()
    thread.join()
    try:
        fresh = client_for_url(restarted.url)
        stored = {json.loads(f["e"])["id"] for _, f in fresh.xrange(stores.keys.events("wanhu"))}
        lost = [(t, i) for t, i in acknowledged if i not in stored]
        assert len(acknowledged) > 1000
        # only what was acknowledged in the last fsync window (1 s, plus scheduling slack) may be missing
        assert all(killed_at - t < 2.0 for t, _ in lost), f"lost {len(lost)} events older than the AOF window"
    finally:
        restarted.stop()


@pytest.mark.sqlite_only  # Redis is the subject: the SQL is the registry read once
def test_acknowledged_events_lost_to_a_power_cut_are_counted_as_dropped(world: Stores, tmp_path: Path) -> None:
    """A SIGKILL of Redis loses nothing (its AOF writes are in the page cache); a power cut loses what
    was not yet fsynced (up to a second). That is emulated by cutting the AOF back to its size of an
    earlier moment. The process that acknowledged the lost events finds them gone once they should
    have been on disk, and counts them, with the reason, where doctor shows them."""
    server = start_embedded(tmp_path / "redis", free_port())
    client = client_for_url(server.url)
    stores = dataclasses.replace(
        world, settings=world.settings.model_copy(update={"redis_url": server.url}), keys=Keys("p")
    )
    stores.__dict__["redis"] = client
    detectors = devices_of(world, "smoke_detector", 20)
    ingest = IngestService(stores, directory=Directory(world.sessions))
    now = int(time.time() * 1000)

    def batch(n: int) -> list[dict[str, Any]]:
        return [smoke(detectors[i % 20], now + n * 20 + i, f"pc{n}-{i}") for i in range(20)]

    for n in range(10):
        assert ingest.ingest("wanhu", batch(n)).accepted == 20
    aof = tmp_path / "redis" / "appendonly.aof"
    synced = aof.stat().st_size  # what the disk holds when the power goes
    for n in range(10, 15):
        assert ingest.ingest("wanhu", batch(n)).accepted == 20  # acknowledged, not yet on disk
    last_ack = time.monotonic()
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    with aof.open("r+b") as f:
        f.truncate(synced)
    restarted = start_embedded(tmp_path / "redis", server.port)
    try:
        assert client.xlen(stores.keys.events("wanhu")) == 200  # the last 100 acknowledged are gone
        assert ingest.log.verify_durable() == {}  # not yet: they might still be on their way to disk
        time.sleep(max(0.0, DURABLE_AFTER_S - (time.monotonic() - last_ack)) + 0.1)
        assert ingest.log.verify_durable() == {"wanhu": 100}
        assert ingest.log.verify_durable() == {}  # counted once
        assert EventLog(client, stores.keys).drops("wanhu")["lost_on_restart"] == 100
        settings = stores.settings.model_copy(update={"redis_url": restarted.url, "key_prefix": "p"})
        doctor = json.loads(run_manage(settings, "doctor", "--json").stdout)
        drops = next(c for c in doctor if c["name"] == "drops")
        assert not drops["ok"] and "wanhu: 100 acknowledged events lost when Redis restarted" in drops["detail"]
    finally:
        restarted.stop()


@pytest.mark.sqlite_only
@pytest.mark.also_on_cluster
def test_the_stream_cap_trims_acknowledged_history_only(world: Stores) -> None:
    """SANDTABLE_STREAM_MAXLEN is a soft cap on a stream's acknowledged history; what some group has
    not acknowledged is kept whatever the cap."""
    log = EventLog(world.redis, world.keys)
    archive = EventLog(world.redis, world.keys, group=ARCHIVE_GROUP)
    for group_log in (log, archive):
        group_log.ensure_group("wanhu")
    stream = world.keys.events("wanhu")
    # the cap's position is estimated from the entries' times, so they are written evenly in time: 30
    # batches of 100, 3 ms apart, at explicit ids (appends timed by the clock were uneven on a loaded
    # machine, and the estimate kept 1,700 entries in one run under load)
    began = int(time.time() * 1000) - 10_000
    pipe = world.redis.pipeline(transaction=False)
    for n in range(30):
        for i in range(100):
            pipe.xadd(stream, {"e": b'{"n": %d}' % (n * 100 + i)}, id=f"{began + 3 * n}-{i}")
    pipe.execute()
    for group_log in (log, archive):
        entries = group_log.read(["wanhu"], "c", count=2500, block_ms=None)
        group_log.ack("wanhu", [e.entry_id for e in entries])
    log.trim("wanhu", retain_ms=3_600_000)  # an hour's retention alone keeps everything
    assert world.redis.xlen(stream) == 3000
    log.trim("wanhu", retain_ms=3_600_000, maxlen=1000)
    assert world.redis.xlen(stream) >= 500  # the 500 the groups have not read are all there …
    first_left = world.redis.xrange(stream, count=1)[0][0]
    assert 500 < world.redis.xlen(stream) < 1500  # … and about the cap's worth in all
    unread = world.redis.xrange(stream, min=first_left)[-500:]
    assert [json.loads(f["e"])["n"] for _, f in unread] == list(range(2500, 3000))
    log.trim("wanhu", retain_ms=0, maxlen=1000)
    # acknowledged history gone (XTRIM ~ drops whole nodes of 100 entries), the unacknowledged kept
    assert 500 <= world.redis.xlen(stream) <= 600
    assert json.loads(world.redis.xrange(stream, min=first_left)[-500][1]["e"])["n"] == 2500


@pytest.mark.also_on_cluster
def test_a_stalled_consumer_with_a_small_cap_loses_nothing(world: Stores) -> None:
    """Producers are told to wait (backlog limit) and trimming never drops unacknowledged entries."""
    settings = world.settings.model_copy(update={"stream_backlog_limit": 300})
    stores = dataclasses.replace(world, settings=settings)
    stores.__dict__["redis"] = world.redis
    detectors = devices_of(world, "smoke_detector", 100)
    ingest = IngestService(stores)
    worker = Worker(stores, consumer="slow")
    worker.start_community("wanhu")
    stalled = worker.events.read(["wanhu"], "slow", count=10, block_ms=None)
    assert stalled == []
    sent = refused = 0
    now = int(time.time() * 1000)
    for batch in range(10):
        events = [smoke(detectors[i % 100], now + batch * 100 + i, f"c{batch}-{i}") for i in range(100)]
        try:
            sent += ingest.ingest("wanhu", events).accepted
        except Exception as err:  # noqa: BLE001
            assert "retry later" in str(err)
            refused += 1
    assert sent == 300 and refused == 7
    pending = worker.events.read(["wanhu"], "slow", count=300, block_ms=None)  # read, not acknowledged
    assert len(pending) == 300
    worker.events.trim("wanhu", retain_ms=0)
    assert world.redis.xlen(world.keys.events("wanhu")) == 300  # nothing unacknowledged was trimmed
    worker.process(pending)
    worker.events.trim("wanhu", retain_ms=0)
    alerts = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "smoke"]
    assert sum(a["count"] for a in alerts) == 300


@pytest.mark.sqlite_only
@pytest.mark.also_on_cluster
def test_a_dead_letter_is_written_once_whatever_the_retries(world: Stores) -> None:
    """A poison entry redelivered after a crash between its dead letter and its XACK, and a rejected
    event sent again by a gateway that did not hear the answer, are each one dead letter (the soak
    counted 65 dead letters for 64 poison entries and rejects)."""
    log = EventLog(world.redis, world.keys)
    world.redis.xadd(world.keys.events("wanhu"), {"e": "{not json"})
    worker = Worker(world, consumer="w")
    worker.start_community("wanhu")
    entries = worker.events.read(["wanhu"], "w", count=10, block_ms=None)
    worker.process(entries)
    worker.process(entries)  # delivered again: the first XACK was lost with the process
    assert log.dead_letter_counts("wanhu")["kept"] == 1
    detector = devices_of(world, "smoke_detector", 1)[0]
    bad = {"id": "bad-1", "type": "smoke.alarm", "device": "no-such-device", "ts": int(time.time() * 1000)}
    batch = [smoke(detector, int(time.time() * 1000), "ok-1"), bad]
    for _ in range(2):  # the gateway sends the batch again
        result = IngestService(world).ingest("wanhu", batch)
        assert [r["index"] for r in result.rejected] == [1]  # the answer says so each time
    assert log.dead_letter_counts("wanhu")["kept"] == 2
    assert log.drops("wanhu")["dead_letters_over_cap"] == 0


@pytest.mark.also_on_cluster
def test_poison_entries_go_to_the_dead_letter_stream_while_healthy_ones_flow(world: Stores) -> None:
    settings = world.settings.model_copy(update={"worker_claim_idle_ms": 50, "worker_max_deliveries": 2})
    stores = dataclasses.replace(world, settings=settings)
    stores.__dict__["redis"] = world.redis
    log = EventLog(world.redis, world.keys)
    stream = world.keys.events("wanhu")
    world.redis.xadd(stream, {"e": "{not json"})  # undecodable
    detectors = devices_of(world, "smoke_detector", 3)
    now = int(time.time() * 1000)
    IngestService(stores).ingest("wanhu", [smoke(d, now, f"p{d}") for d in detectors])
    # an entry that kills every consumer that takes it: read repeatedly, never acknowledged
    crash_id = world.redis.xadd(stream, {"e": json.dumps(smoke(detectors[0], now, "killer") | {"rx": now})})
    worker = Worker(stores, consumer="w")
    worker.start_community("wanhu")
    for _ in range(3):
        world.redis.xclaim(stream, GROUP, "ghost", 0, [crash_id]) if world.redis.xpending_range(
            stream, GROUP, min=crash_id, max=crash_id, count=1
        ) else world.redis.xreadgroup(GROUP, "ghost", {stream: ">"}, count=100)
        time.sleep(0.06)
    drain(worker)
    time.sleep(0.06)
    worker.reclaim("wanhu")
    dead = log.dead_letters("wanhu", count=10)
    reasons = sorted(d["reason"].split(" (")[0].split(":")[0] for d in dead)
    assert "poison" in reasons and "undecodable stream entry" in reasons
    alerts = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "smoke"]
    assert len(alerts) == 3  # the healthy events all made it
    assert world.redis.xpending(stream, GROUP)["pending"] == 0


@pytest.mark.also_on_cluster
def test_elder_timer_fires_at_its_deadline_and_survives_a_new_worker(world: Stores) -> None:
    directory = Directory(world.sessions)
    sensor, (person, _) = next(iter(directory.facts("wanhu").elder_sensors.items()))
    start = 1_790_000_000_000
    clock = ManualClock(start)
    ingest = IngestService(world, directory=directory)
    ingest.clock = clock
    ingest.ingest(
        "wanhu",
        [
            {"type": "door.contact", "device": sensor, "ts": start, "data": {"state": "open"}},
            {"type": "device.heartbeat", "device": sensor, "ts": start, "data": {}},
        ],
    )
    first = Worker(world, consumer="one", clock=clock, directory=directory)
    first.start_community("wanhu", seed_timers=False)
    drain(first)
    # heartbeats keep the sensor alive; the door stays shut
    for hour in range(1, 12):
        clock.set(start + hour * HOUR)
        ingest.ingest("wanhu", [{"type": "device.heartbeat", "device": sensor, "ts": clock.now_ms(), "data": {}}])
        drain(first)
        first.sweep("wanhu")
    clock.set(start + 12 * HOUR - 1)
    assert AlertStore(world.redis, world.keys).open_doc("wanhu", "elder.inactive", {"person": person}) is None
    # a brand-new worker process (restart): the timer lives in Redis
    clock.set(start + 12 * HOUR + 20_000)
    second = Worker(world, consumer="two", clock=clock, directory=directory)
    assert second.sweep("wanhu") >= 1
    alert = AlertStore(world.redis, world.keys).open_doc("wanhu", "elder.inactive", {"person": person})
    assert alert is not None and "2026-09-22T02:13:20.000Z" <= alert["detected_at"] <= "2026-09-22T02:14:20.000Z"
    assert alert["evidence"]["threshold_hours"] == 12
    # the next door event clears it
    clock.set(start + 13 * HOUR)
    ingest.ingest(
        "wanhu", [{"type": "door.contact", "device": sensor, "ts": clock.now_ms(), "data": {"state": "open"}}]
    )
    drain(second)
    assert AlertStore(world.redis, world.keys).open_doc("wanhu", "elder.inactive", {"person": person}) is None


@pytest.mark.also_on_cluster
def test_timers_do_not_fire_while_a_backlog_is_worked_off(world: Stores) -> None:
    """A backfill of old events must not raise alerts that its own later events would prevent."""
    directory = Directory(world.sessions)
    sensor = next(iter(directory.facts("wanhu").elder_sensors))
    now = int(time.time() * 1000)
    events = [
        {"type": "door.contact", "device": sensor, "ts": now - 20 * HOUR + h * HOUR, "data": {"state": "open"}}
        for h in range(20)
    ]
    IngestService(world, directory=directory).ingest("wanhu", events)
    worker = Worker(world, directory=directory)
    worker.start_community("wanhu", seed_timers=False)
    worker.process(worker.events.read(["wanhu"], worker.consumer, count=5, block_ms=None))
    assert worker.sweep("wanhu") == 0  # 15 old events still unread: the horizon is the event time reached
    drain(worker)
    worker.sweep("wanhu")
    assert not [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "elder.inactive"]


@pytest.mark.also_on_cluster
def test_replay_writes_alerts_in_the_interface_format_and_leaves_live_state_alone(
    world: Stores, tmp_path: Path
) -> None:
    directory = Directory(world.sessions)
    sensor, (person, _) = next(iter(directory.facts("wanhu").elder_sensors.items()))
    lock = devices_of(world, "smart_lock", 1)[0]
    start = 1_790_000_000_000
    lines = [
        {"type": "door.contact", "device": sensor, "ts": start + 3 * HOUR, "data": {"state": "open"}},
        {"type": "door.contact", "device": sensor, "ts": start, "data": {"state": "closed"}},  # out of order
        {"type": "lock.open", "device": lock, "ts": start + HOUR, "data": {"method": "face", "face_id": "UNKNOWN1"}},
        {"type": "door.contact", "device": "NOPE", "ts": start, "data": {"state": "open"}},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    before = sorted(world.redis.scan_iter(match=f"{world.keys.prefix}:*"))
    out = tmp_path / "alerts.jsonl"
    result = run_manage(
        world.settings, "replay", str(path), "--clock", "event", "--until", "2026-09-23T00:00:00Z", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["accepted"] == 3 and summary["rejected"] == 2
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    by_type = {a["type"]: a for a in alerts}
    elder = by_type["elder.inactive"]
    # the last door event was at start + 3 h: the rule fires exactly 12 h later
    assert elder["detected_at"] == "2026-09-22T05:13:20.000Z"
    assert elder["subject"]["person"] == person
    assert set(elder) >= {
        "id",
        "type",
        "severity",
        "status",
        "community",
        "subject",
        "location",
        "opened_at",
        "detected_at",
        "count",
        "evidence",
    }
    assert by_type["lock.unregistered"]["detected_at"] == "2026-09-21T15:13:20.000Z"
    assert sorted(world.redis.scan_iter(match=f"{world.keys.prefix}:*")) == before


def test_two_workers_recording_the_same_entries_at_once_both_succeed(world: Stores) -> None:
    """A worker woken from a stall still holds a batch that another worker claimed meanwhile: both
    count its gate passages at once. The second to commit meets the first one's applied tokens and
    writes again, finding them applied: the passages count once and neither worker dies (the
    30-minute cluster soak found a worker that exited on UNIQUE constraint failed: applied_token)."""
    day = dt.date(2026, 12, 7)
    tokens = ["1796634033233-161", "1796634033233-171", "1796634033238-9"]
    racing = sessionmaker(bind=world.engine)
    second_read = threading.Event()
    first_committed = threading.Event()

    @event.listens_for(racing, "do_orm_execute")
    def hold(state: ORMExecuteState) -> None:  # the second worker is about to record its tokens …
        if state.is_insert and not first_committed.is_set():
            second_read.set()
            assert first_committed.wait(60)

    def recorded(worker: Worker) -> RuleContext:
        ctx = worker.context("wanhu")
        for token in tokens:
            ctx.token = token
            ctx.count(("gate_hourly", day, 8, "face", "in", "resident"))
        return ctx

    stalled = dataclasses.replace(world)
    stalled.__dict__.update(redis=world.redis, sessions=racing)
    failures: list[BaseException] = []

    def second_worker() -> None:
        try:
            worker = Worker(stalled, consumer="woken")
            worker._record(recorded(worker))
        except BaseException as err:  # noqa: BLE001  (reported to the test's thread)
            failures.append(err)

    thread = threading.Thread(target=second_worker)
    thread.start()
    assert second_read.wait(60)
    first = Worker(world, consumer="claimer")
    first._record(recorded(first))  # … when the first commits the same tokens
    first_committed.set()
    thread.join(60)
    assert failures == []
    with world.sessions() as session:
        counts = session.scalars(select(GateHourly.count).where(GateHourly.day == day, GateHourly.hour == 8)).all()
        applied = session.scalars(select(AppliedToken.token).where(AppliedToken.token.in_(tokens))).all()
    assert counts == [3] and sorted(applied) == sorted(tokens)


@pytest.mark.parametrize(
    ("current", "got", "expected"),
    [
        (500, 500, 1000),  # a full read: a backlog, the batch doubles
        (2000, 2000, 4000),
        (4000, 4000, 4000),  # never past the ceiling
        (4000, 1500, 4000),  # still busy: kept
        (4000, 900, 2000),  # less than a quarter: halved back
        (1000, 10, 500),  # never under the base
        (500, 0, 500),
    ],
)
def test_the_batch_grows_in_a_backlog_and_shrinks_back_in_a_steady_flow(current: int, got: int, expected: int) -> None:
    assert next_batch(current, got, 500, 4000) == expected


@pytest.mark.sqlite_only  # Redis and the worker's loop are the subject
def test_a_backlog_is_worked_off_in_fewer_bigger_batches(world: Stores) -> None:
    """7,500 events waiting: the running worker doubles its batch after each full read (500, 1,000,
    2,000, 4,000), so it takes 4 batches where a fixed 500 would take 15; every event processed once."""
    detectors = devices_of(world, "smoke_detector", 50)
    now = int(time.time() * 1000) - 60_000
    beats = [
        {"id": f"hb{i}", "type": "device.heartbeat", "device": detectors[i % 50], "ts": now + i, "data": {}}
        for i in range(7_500)
    ]
    service = IngestService(world)
    for start in range(0, len(beats), 500):
        service.ingest("wanhu", beats[start : start + 500])
    worker = Worker(world, consumer="backlog")
    worker.start_community("wanhu")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while worker.stats.processed < len(beats) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert worker.stats.processed == len(beats)
    assert worker.stats.batches <= 5, worker.stats.batches  # 4, and at most one read split by timing
    assert world.redis.xpending(world.keys.events("wanhu"), GROUP)["pending"] == 0
