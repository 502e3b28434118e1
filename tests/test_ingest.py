"""Ingest: POST /api/v1/events — formats, auth, per-event rejection, dead-letter, dedup, hashing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from auth.service import create_token
from ingest.directory import Directory
from ingest.service import IngestService
from registry.demo import WANTED_ID
from registry.models import Device
from store.events import Backlogged, EventLog
from store.stores import Stores
from tests.conftest import LiveServer, ingest_token

DOOR = "DS-wanhu-B001-1-101"


@pytest.fixture
def server(world: Stores) -> Iterator[LiveServer]:
    live = LiveServer(world.settings)
    yield live
    live.stop()


def now_ms() -> int:
    return int(time.time() * 1000)


def door_event(state: str = "open", **extra: Any) -> dict[str, Any]:
    return {"type": "door.contact", "device": elder_sensor(), "ts": now_ms(), "data": {"state": state}, **extra}


_SENSOR: list[str] = []


def elder_sensor() -> str:
    return _SENSOR[0]


@pytest.fixture(autouse=True)
def _sensor(world: Stores) -> None:
    with world.sessions() as session:
        _SENSOR[:] = [
            session.scalars(  # type: ignore[list-item]
                select(Device.id).where(Device.type == "door_sensor", Device.community_id == "wanhu")
            ).first()
        ]


def post(
    server: LiveServer, token: str | None, body: Any, *, ndjson: bool = False, raw: bytes | None = None
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if raw is not None:
        data = raw
    elif ndjson:
        data = "\n".join(json.dumps(e) for e in body).encode()
        headers["Content-Type"] = "application/x-ndjson"
    else:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    return requests.post(server.url + "/api/v1/events", data=data, headers=headers, timeout=30)


def test_one_event_an_array_and_ndjson_are_accepted(world: Stores, server: LiveServer) -> None:
    token = ingest_token(world)
    one = post(server, token, door_event())
    assert one.status_code == 202 and one.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    many = post(server, token, [door_event("open"), door_event("closed")])
    assert many.json()["accepted"] == 2
    lines = post(server, token, [door_event("open"), door_event("closed"), door_event("open")], ndjson=True)
    assert lines.status_code == 202 and lines.json()["accepted"] == 3


@pytest.mark.also_on_cluster
def test_each_event_is_judged_alone_and_rejects_are_kept_with_their_reason(world: Stores, server: LiveServer) -> None:
    token = ingest_token(world)
    future = now_ms() + 3_600_000
    batch = [
        door_event(),
        {"type": "door.contact", "device": "NO-SUCH-DEVICE", "ts": now_ms(), "data": {"state": "open"}},
        {"type": "door.teleport", "device": elder_sensor(), "ts": now_ms(), "data": {}},
        {"type": "lock.open", "device": elder_sensor(), "ts": now_ms(), "data": {"method": "face"}},
        {"type": "door.contact", "device": elder_sensor(), "ts": "yesterday", "data": {"state": "open"}},
        {"type": "door.contact", "device": elder_sensor(), "ts": future, "data": {"state": "open"}},
        {"type": "door.contact", "device": elder_sensor(), "ts": now_ms(), "data": {"state": "ajar"}},
        {"type": "patrol.checkin", "device": "CP-wanhu-01", "ts": now_ms(), "data": {"guard": "nobody"}},
        {
            "type": "gate.vehicle",
            "device": "VG-wanhu-GATE-N-1",
            "ts": now_ms(),
            "data": {"direction": "in", "plate": "苏JI2345"},
        },
        door_event("closed"),
    ]
    body = post(server, token, batch).json()
    assert body["accepted"] == 2
    reasons = {r["index"]: r["error"] for r in body["rejected"]}
    assert reasons == {
        1: "unknown device 'NO-SUCH-DEVICE'",
        2: "unknown event type 'door.teleport'",
        3: "a door_sensor may not send lock.open",
        4: "ts must be RFC 3339 with an offset (e.g. 2026-11-25T08:00:00+08:00) or integer epoch milliseconds",
        5: "ts is 60 minutes in the future (at most 5 allowed)",
        6: "data.state must be one of open, closed",
        7: "unknown guard 'nobody'",
        8: "data.plate: plates never use the letters I and O",
    }
    dead = EventLog(world.redis, world.keys).dead_letters("wanhu", count=20)
    assert sorted(d["reason"] for d in dead) == sorted(reasons.values())
    assert {d["index"] for d in dead} == set(reasons)


def test_body_errors(world: Stores, server: LiveServer) -> None:
    token = ingest_token(world)
    assert post(server, token, None, raw=b"{not json").status_code == 400
    assert post(server, token, None, raw=b"").status_code == 400
    assert post(server, token, [door_event()] * 1001).status_code == 400
    big = b"[" + b",".join([json.dumps(door_event()).encode()] * 12000) + b"]"
    assert len(big) > 1024 * 1024
    assert post(server, token, None, raw=big).status_code == 413


def test_tokens(world: Stores, server: LiveServer) -> None:
    assert post(server, None, door_event()).status_code == 401
    assert post(server, "st_000000000000_" + "x" * 43, door_event()).status_code == 401
    with world.sessions.begin() as session:
        _, wall = create_token(session, scope="role", role="wall", community="wanhu")
        _, other = create_token(session, scope="ingest", community="xingbang")
    assert post(server, wall, door_event()).status_code == 403
    # a token of another community: the device is not one of its own
    body = post(server, other, door_event()).json()
    assert body["accepted"] == 0 and body["rejected"][0]["error"].startswith("unknown device")


@pytest.mark.also_on_cluster
def test_a_repeated_id_is_a_duplicate_within_and_across_batches(world: Stores, server: LiveServer) -> None:
    token = ingest_token(world)
    first = post(server, token, [door_event(id="evt-1"), door_event(id="evt-1"), door_event(id="evt-2")]).json()
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    again = post(server, token, door_event(id="evt-2")).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)


def test_id_numbers_never_reach_redis_in_plain_text(world: Stores, server: LiveServer) -> None:
    with world.sessions() as session:
        lock = session.scalars(
            select(Device.id).where(Device.type == "smart_lock", Device.community_id == "wanhu")
        ).first()
    token = ingest_token(world)
    good = {"type": "lock.open", "device": lock, "ts": now_ms(), "data": {"method": "face", "id_number": WANTED_ID}}
    bad = {
        "type": "lock.open",
        "device": lock,
        "ts": now_ms(),
        "data": {"method": "face", "id_number": WANTED_ID, "face_id": "F1"},
    }
    # an ID number where no identity is expected is hashed all the same, and a device may not
    # claim a hash of its own (it could pose as a watchlisted person)
    stray = door_event()
    stray["data"] = {"state": "open", "note": {"id_number": WANTED_ID}}
    forged = {"type": "lock.open", "device": lock, "ts": now_ms(), "data": {"method": "face", "id_hash": "ab" * 32}}
    body = post(server, token, [good, bad, stray, forged]).json()
    assert body["accepted"] == 2
    errors = {r["index"]: r["error"] for r in body["rejected"]}
    assert "at most one identity" in errors[1]
    assert "data.id_hash is computed by the server" in errors[3]

    for key in world.redis.scan_iter(match=f"{world.keys.prefix}:*"):
        kind = world.redis.type(key)
        if kind == "stream":
            text = json.dumps(world.redis.xrange(key), ensure_ascii=False)
        elif kind == "string":
            text = str(world.redis.get(key))
        else:
            continue
        assert WANTED_ID not in text, key
    stored = [json.loads(fields["e"]) for _, fields in world.redis.xrange(world.keys.events("wanhu"))]
    assert [e["type"] for e in stored] == ["lock.open", "door.contact"]
    assert stored[0]["data"]["id_hash"] == stored[1]["data"]["note"]["id_hash"]


@pytest.mark.also_on_cluster
def test_ingest_rate_limit_answers_429_with_retry_after(world: Stores) -> None:
    limited = world.settings.model_copy(update={"ingest_rate_per_minute": 2})
    live = LiveServer(limited)
    try:
        token = ingest_token(world)
        codes = [post(live, token, door_event()) for _ in range(3)]
    finally:
        live.stop()
    assert [c.status_code for c in codes] == [202, 202, 429]
    assert int(codes[2].headers["Retry-After"]) >= 1


@pytest.mark.also_on_cluster
def test_ingest_service_refuses_when_the_backlog_is_full(world: Stores) -> None:
    small = IngestService(
        world.__class__(
            settings=world.settings.model_copy(update={"stream_backlog_limit": 5}), engine=world.engine, keys=world.keys
        )
    )
    small.ingest("wanhu", [door_event() for _ in range(5)])
    with pytest.raises(Backlogged, match="retry later"):
        small.ingest("wanhu", [door_event()])


def test_the_registry_cache_keeps_a_bounded_number_of_communities(demo_stores: Stores) -> None:
    directory = Directory(demo_stores.sessions, max_communities=1)
    wanhu = directory.facts("wanhu")
    assert directory.facts("wanhu") is wanhu  # cached
    xingbang = directory.facts("xingbang")
    assert "xingbang-B01" in {d.building for d in xingbang.devices.values()}
    again = directory.facts("wanhu")  # dropped for Xingbang, loaded again
    assert again is not wanhu and again.devices.keys() == wanhu.devices.keys()
