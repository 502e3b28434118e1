"""Ingest under hostile input: bodies that are not JSON we can read, huge values, odd nesting, times
out of range or older than the horizon, and a seeded fuzz of malformed bodies — every answer is one of
the contract's, never a 500 or a traceback; every rejected event is kept with its reason, in a
dead-letter stream bounded in bytes per entry and in all."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from alerts.live import AlertStore
from analytics.replay import run_replay
from analytics.worker import Worker
from core.clock import ManualClock
from core.errors import ConfigError
from core.secrets import keyed_hash
from core.settings import load_settings
from ingest.directory import Directory
from ingest.schema import MAX_DEPTH, NESTED_TOO_DEEP
from ingest.service import IngestService
from registry.demo import WANTED_ID
from registry.models import Device
from store.events import GROUP, EventLog
from store.stores import Stores
from tests.conftest import LiveServer, ingest_token, run_manage

EVENTS_PATH = "/api/v1/events"


@pytest.fixture
def server(world: Stores) -> Iterator[LiveServer]:
    live = LiveServer(world.settings.model_copy(update={"ingest_rate_per_minute": 100_000}))
    yield live
    live.stop()


def now_ms() -> int:
    return int(time.time() * 1000)


def device_of(world: Stores, device_type: str) -> str:
    with world.sessions() as session:
        found = session.scalars(
            select(Device.id).where(Device.type == device_type, Device.community_id == "wanhu").order_by(Device.id)
        ).first()
    assert found is not None
    return found


def post_raw(server: LiveServer, token: str, body: bytes, content_type: str = "application/json") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    return requests.post(server.url + EVENTS_PATH, data=body, headers=headers, timeout=60)


def dead_letters(world: Stores) -> list[dict[str, Any]]:
    return EventLog(world.redis, world.keys).dead_letters("wanhu", count=100)


def no_traceback_in_the_log(server: LiveServer) -> None:
    text = server.log.read_text(errors="replace")
    assert "Traceback" not in text and "Exception on" not in text, text[-3000:]


# --- bodies that cannot be read: 400 with the reason, in the endpoint's error shape -------------------


def test_a_body_of_100000_open_brackets_gets_400_with_the_reason(world: Stores, server: LiveServer) -> None:
    answer = post_raw(server, ingest_token(world), b"[" * 100_000)
    assert answer.status_code == 400
    assert answer.json() == {"error": "the body is nested too deeply to be read"}
    no_traceback_in_the_log(server)


def test_an_ndjson_line_nested_too_deeply_gets_400_naming_the_line(world: Stores, server: LiveServer) -> None:
    sensor = device_of(world, "door_sensor")
    door = {"type": "door.contact", "device": sensor, "ts": now_ms(), "data": {"state": "open"}}
    body = json.dumps(door).encode() + b"\n" + b"[" * 50_000
    answer = post_raw(server, ingest_token(world), body, "application/x-ndjson")
    assert answer.status_code == 400
    assert answer.json() == {"error": "line 2 is nested too deeply to be read"}


def test_bytes_that_are_not_utf8_inside_a_string_get_400(world: Stores, server: LiveServer) -> None:
    body = b'{"type": "door.contact", "device": "D\xff\xfe", "ts": 1, "data": {"state": "open"}}'
    answer = post_raw(server, ingest_token(world), body)
    assert answer.status_code == 400
    assert answer.json() == {"error": "the body is not UTF-8 text"}


# --- bodies that can be read: each event judged alone, a bad one kept with its reason -----------------


def test_a_battery_of_10_to_the_400_is_a_rejected_event_kept_with_its_reason(world: Stores, server: LiveServer) -> None:
    sensor = device_of(world, "door_sensor")
    huge = {"type": "device.heartbeat", "device": sensor, "ts": now_ms(), "data": {"battery": 10**400}}
    good = {"type": "device.heartbeat", "device": sensor, "ts": now_ms(), "data": {"battery": 80}}
    answer = post_raw(server, ingest_token(world), json.dumps([huge, good]).encode())
    assert answer.status_code == 202
    assert answer.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [{"index": 0, "error": "data.battery must be between 0 and 100"}],
    }
    (kept,) = dead_letters(world)
    assert kept["reason"] == "data.battery must be between 0 and 100"
    assert kept["raw"]["data"]["battery"] == 10**400  # kept as sent
    no_traceback_in_the_log(server)


def test_data_nested_900_levels_is_refused_and_kept_cut_at_the_depth_limit(world: Stores, server: LiveServer) -> None:
    sensor = device_of(world, "door_sensor")
    nested = b"[" * 900 + b"]" * 900
    body = (
        b'{"type": "door.contact", "device": "' + sensor.encode() + b'", "ts": ' + str(now_ms()).encode()
        + b', "data": {"state": "open", "note": ' + nested + b"}}"
    )  # fmt: skip
    answer = post_raw(server, ingest_token(world), body)
    assert answer.status_code == 202
    assert answer.json()["rejected"] == [{"index": 0, "error": f"data is nested more than {MAX_DEPTH} levels deep"}]
    (kept,) = dead_letters(world)
    assert kept["raw"]["device"] == sensor and kept["raw"]["data"]["state"] == "open"
    assert NESTED_TOO_DEEP in json.dumps(kept["raw"])
    no_traceback_in_the_log(server)


def test_an_id_number_nested_2000_levels_deep_is_refused_not_a_crash(world: Stores) -> None:
    deep: Any = "11010519491231002X"
    for _ in range(2000):
        deep = [deep]
    sensor = device_of(world, "door_sensor")
    note = {"id_number": deep}
    event = {"type": "door.contact", "device": sensor, "ts": now_ms(), "data": {"state": "open", "note": note}}
    result = IngestService(world).ingest("wanhu", [event])
    assert result.rejected == [{"index": 0, "error": f"data is nested more than {MAX_DEPTH} levels deep"}]
    (kept,) = dead_letters(world)
    assert "11010519491231002X" not in json.dumps(kept) and "id_hash" in kept["raw"]["data"]["note"]


def test_a_megabyte_device_id_is_quoted_short_in_the_reason(world: Stores, server: LiveServer) -> None:
    event = {"type": "door.contact", "device": "D" * 900_000, "ts": now_ms(), "data": {"state": "open"}}
    answer = post_raw(server, ingest_token(world), json.dumps(event).encode())
    (rejected,) = answer.json()["rejected"]
    assert rejected["error"].startswith("unknown device 'DDDD") and len(rejected["error"]) < 100


# --- fuzz -------------------------------------------------------------------------------------------


class BodyFuzzer:
    """Malformed and odd bodies for POST /api/v1/events, from a seed: (body, content type)."""

    ODD_TIMES: tuple[Any, ...] = (
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-23:59",
        "2026-12-06T10:00:00+24:00",
        "2026-12-06T10:00:00+99:99",
        "2026-12-06T10:00:00.123456789Z",
        "2026-12-06T23:59:60Z",
        "2026-12-06T24:00:00Z",
        "2026-12-06T10:00:00z",
        "2026-12-06T10:00:00",
        "２０２６-１２-０６T10:00:00+08:00",
        "٢٠٢٦-١٢-٠٦T10:00:00+08:00",
        "",
        "now",
        -1,
        0,
        10**14,
        10**400,
        -(10**400),
        1.5,
        True,
        None,
        [],
        {},
    )
    ODD_VALUES: tuple[Any, ...] = (
        None,
        True,
        0,
        -1,
        10**400,
        -(10**30),
        1e308,
        0.1,
        "",
        "٥٠",
        "５０",
        "x" * 10_000,
        [],
        {},
        [1, 2, 3],
        {"id_number": "11010519491231002X"},
        {"id_number": ["11010519491231002X"]},
    )

    def __init__(self, seed: int, devices: list[str]) -> None:
        self.rng = random.Random(seed)
        self.devices = devices

    def event(self) -> dict[str, Any]:
        rng = self.rng
        types = ["door.contact", "device.heartbeat", "lock.open", "gate.vehicle", "camera.throw", "x" * 300]
        event: dict[str, Any] = {
            "type": rng.choice(types),
            "device": rng.choice([*self.devices, "NOPE", ""]),
            "ts": rng.choice([now_ms(), now_ms() - 86_400_000, *self.ODD_TIMES]),
            "data": {"state": "open", "battery": 50, "method": "face", "direction": "in", "plate": "苏J12345"},
        }
        for _ in range(rng.randrange(4)):
            key = rng.choice(["type", "device", "ts", "data", "id", "battery", "state", "lat", "trajectory", "extra"])
            value = copy.deepcopy(rng.choice(self.ODD_VALUES))  # never shared between events
            if key in ("battery", "state", "lat", "trajectory", "extra"):
                if isinstance(event["data"], dict):
                    event["data"][key] = value
            else:
                event[key] = value
        if rng.random() < 0.1:
            event["data"] = {"deep": self.nested(rng.randrange(20, 800))}
        return event

    def nested(self, depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = [value] if self.rng.random() < 0.5 else {"k": value}
        return value

    def body(self) -> tuple[bytes, str]:
        rng = self.rng
        kind = rng.randrange(11)
        json_type = "application/json"
        if kind == 0:  # deep nesting, bare
            depth = rng.choice([1_000, 5_000, 100_000, 500_000])
            return rng.choice([b"[", b'{"a":', b"[{", b'{"data":['])[:] * depth, json_type
        if kind == 1:  # huge number literals in place of numbers
            digits = rng.choice([20, 400, 4_000, 5_000, 50_000])
            literal = rng.choice([b"1" + b"0" * digits, b"-" + b"9" * digits, b"1e" + str(digits).encode()])
            text = json.dumps({**self.event(), "ts": 123456789}).encode()
            return text.replace(b"123456789", literal), json_type
        if kind == 2:  # NaN and Infinity (not JSON)
            literal = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"nan", b"1e999"])
            return json.dumps({**self.event(), "ts": 42}).encode().replace(b"42", literal), json_type
        if kind == 3:  # non-UTF-8 bytes somewhere
            body = bytearray(json.dumps(self.event()).encode())
            for _ in range(rng.randrange(1, 4)):
                body.insert(rng.randrange(len(body) + 1), rng.choice([0xFF, 0xC0, 0xED, 0x80, 0x00]))
            return bytes(body), json_type
        if kind == 4:  # very long strings
            long = self.event()
            long[rng.choice(["device", "type", "id"])] = rng.choice(["é", "x", "\u202e", "😀"]) * rng.choice(
                [65, 5_000, 200_000]
            )
            return json.dumps(long, ensure_ascii=rng.random() < 0.5).encode(), json_type
        if kind == 5:  # truncated or byte-flipped JSON
            body = bytearray(json.dumps([self.event() for _ in range(rng.randrange(1, 5))]).encode())
            if rng.random() < 0.5:
                del body[rng.randrange(1, len(body)) :]
            else:
                for _ in range(rng.randrange(1, 6)):
                    body[rng.randrange(len(body))] = rng.randrange(256)
            return bytes(body), json_type
        if kind == 6:  # NDJSON with odd lines
            lines = [json.dumps(self.event()).encode() for _ in range(rng.randrange(1, 6))]
            if rng.random() < 0.5:
                lines.insert(rng.randrange(len(lines) + 1), rng.choice([b"[" * 3000, b"{", b"\xff", b"null", b"[]"]))
            return b"\n".join(lines), rng.choice(["application/x-ndjson", "application/jsonlines"])
        if kind == 7:  # not an object at all
            value = rng.choice([b"null", b"true", b"1", b'"event"', b"[]", b"[[]]", b"[1, 2]", b"{}", b" ", b""])
            return value, json_type
        if kind == 8:  # too many events, or too large a body
            if rng.random() < 0.5:
                return json.dumps([self.event() for _ in range(1_001)]).encode(), json_type
            return b'{"pad": "' + b"x" * (1024 * 1024) + b'"}', json_type
        # odd batches of odd events (kinds 9, 10)
        return json.dumps([self.event() for _ in range(rng.randrange(1, 30))]).encode(), json_type


FUZZ_BODIES = 300


def test_a_seeded_fuzz_of_malformed_bodies_never_gets_a_500_or_a_traceback(world: Stores, server: LiveServer) -> None:
    token = ingest_token(world)
    devices = [device_of(world, t) for t in ("door_sensor", "smart_lock", "vehicle_gate", "throw_camera")]
    fuzzer = BodyFuzzer(seed=20261206, devices=devices)
    statuses: dict[int, int] = {}
    for number in range(FUZZ_BODIES):
        body, content_type = fuzzer.body()
        answer = post_raw(server, token, body, content_type)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        assert answer.status_code in (202, 400, 413), (number, answer.status_code, body[:300], answer.text[:300])
        assert "Traceback" not in answer.text
        reply = answer.json()
        if answer.status_code == 202:
            assert set(reply) == {"accepted", "duplicates", "rejected"}
            assert all(isinstance(r["error"], str) and len(r["error"]) < 300 for r in reply["rejected"])
        else:
            assert set(reply) == {"error"} and reply["error"]
    assert statuses.get(202, 0) > 50 and statuses.get(400, 0) > 50, statuses  # the fuzz reached both paths
    no_traceback_in_the_log(server)


# --- times: a lower bound that converts, and a horizon -----------------------------------------------

DAY = 86_400_000


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        (
            "0001-01-01T00:00:00+14:00",
            "ts '0001-01-01T00:00:00+14:00' is out of range (it must fall between 1970 and 5138)",
        ),
        (
            "9999-12-31T23:59:59-23:59",
            "ts '9999-12-31T23:59:59-23:59' is out of range (it must fall between 1970 and 5138)",
        ),
        ("1969-12-31T23:59:59Z", "ts '1969-12-31T23:59:59Z' is out of range (it must fall between 1970 and 5138)"),
    ],
)
def test_a_time_that_does_not_convert_is_rejected_with_the_reason_and_kept(world: Stores, ts: str, reason: str) -> None:
    sensor = device_of(world, "door_sensor")
    event = {"type": "door.contact", "device": sensor, "ts": ts, "data": {"state": "open"}}
    # replay (no horizon) as well as live ingest: the range holds for both
    for service in (IngestService(world), IngestService(world, horizon=False)):
        result = service.ingest("wanhu", [event])
        assert (result.accepted, result.rejected) == (0, [{"index": 0, "error": reason}])
    assert [d["reason"] for d in dead_letters(world)] == [reason, reason]
    assert dead_letters(world)[0]["raw"]["ts"] == ts


def test_an_event_from_year_1_gets_a_reject_over_http_and_lands_in_the_dead_letters(
    world: Stores, server: LiveServer
) -> None:
    sensor = device_of(world, "door_sensor")
    event = {"type": "door.contact", "device": sensor, "ts": "0001-01-01T00:00:00+14:00", "data": {"state": "open"}}
    answer = post_raw(server, ingest_token(world), json.dumps(event).encode())
    assert answer.status_code == 202
    assert answer.json()["rejected"] == [
        {"index": 0, "error": "ts '0001-01-01T00:00:00+14:00' is out of range (it must fall between 1970 and 5138)"}
    ]
    assert [d["raw"]["ts"] for d in dead_letters(world)] == ["0001-01-01T00:00:00+14:00"]


def test_an_event_31_days_old_is_refused_and_one_29_days_old_accepted(world: Stores) -> None:
    now = 1_796_000_000_000
    sensor = device_of(world, "door_sensor")
    service = IngestService(world, clock=ManualClock(now))
    old, recent = (
        {"type": "door.contact", "device": sensor, "ts": now - days * DAY, "data": {"state": "open"}}
        for days in (31, 29)
    )
    result = service.ingest("wanhu", [old, recent])
    assert result.accepted == 1
    assert result.rejected == [{"index": 0, "error": "ts is 31.0 days in the past (at most 30 allowed)"}]
    (kept,) = dead_letters(world)
    assert kept["raw"]["ts"] == now - 31 * DAY and kept["reason"].startswith("ts is 31.0 days in the past")
    assert world.redis.xlen(world.keys.events("wanhu")) == 1


def test_the_max_age_setting_moves_the_horizon(world: Stores) -> None:
    narrow = world.settings.model_copy(update={"ingest_max_age_days": 2, "ingest_rate_per_minute": 1000})
    live = LiveServer(narrow)  # the setting reaches the server as SANDTABLE_INGEST_MAX_AGE_DAYS
    try:
        sensor = device_of(world, "door_sensor")
        events = [
            {"type": "door.contact", "device": sensor, "ts": now_ms() - days * DAY, "data": {"state": "open"}}
            for days in (3, 1)
        ]
        answer = post_raw(live, ingest_token(world), json.dumps(events).encode())
    finally:
        live.stop()
    assert answer.json()["accepted"] == 1
    assert answer.json()["rejected"] == [{"index": 0, "error": "ts is 3.0 days in the past (at most 2 allowed)"}]


def test_a_backfill_beyond_the_horizon_is_refused_by_the_simulator_with_the_reason(world: Stores) -> None:
    result = run_manage(world.settings, "simulate", "--backfill", "31d", "--once", timeout=60)
    assert result.returncode != 0
    assert "SANDTABLE_INGEST_MAX_AGE_DAYS" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_stream_entry_from_year_1_goes_to_the_dead_letters_and_never_reaches_a_rule(world: Stores) -> None:
    """An entry accepted before ingest bounded times (it made a rule fail with 'year 0 is out of range')."""
    directory = Directory(world.sessions)
    sensor = next(iter(directory.facts("wanhu").elder_sensors))
    smoke = device_of(world, "smoke_detector")
    year_1 = -62_135_596_800_000 - 14 * 3_600_000
    stream = world.keys.events("wanhu")
    world.redis.xadd(
        stream,
        {"e": json.dumps({"type": "door.contact", "device": sensor, "ts": year_1, "data": {"state": "open"}, "rx": 1})},
    )
    IngestService(world, directory=directory).ingest(
        "wanhu", [{"type": "smoke.alarm", "device": smoke, "ts": now_ms(), "data": {"level": "alarm"}}]
    )
    worker = Worker(world, consumer="w", directory=directory)
    worker.start_community("wanhu", seed_timers=False)
    while entries := worker.events.read(["wanhu"], worker.consumer, count=100, block_ms=None):
        worker.process(entries)
    assert worker.stats.rule_errors == 0
    (kept,) = dead_letters(world)
    assert kept["reason"] == f"undecodable stream entry (ts {year_1} is out of range)"
    assert kept["raw"]["device"] == sensor
    assert [a["type"] for a in AlertStore(world.redis, world.keys).open_alerts("wanhu")] == ["smoke"]
    assert world.redis.xpending(stream, GROUP)["pending"] == 0


# --- the dead-letter stream: bounded per entry and in all -------------------------------------------

MB_OF_DATA = "x" * 1_000_000


def megabyte_reject(sensor: str) -> dict[str, Any]:
    """A door event refused for its state, carrying 1 MB of data besides."""
    return {"type": "door.contact", "device": sensor, "ts": now_ms(), "data": {"state": "ajar", "blob": MB_OF_DATA}}


def newest_stored_entry(world: Stores) -> bytes:
    (_, fields), *_ = world.redis.xrevrange(world.keys.dead("wanhu"), count=1)
    return str(fields["d"]).encode()


def test_a_rejected_event_with_1_mb_of_data_is_kept_truncated_with_its_reason_and_size(
    world: Stores, server: LiveServer
) -> None:
    sensor = device_of(world, "door_sensor")
    answer = post_raw(server, ingest_token(world), json.dumps(megabyte_reject(sensor)).encode())
    assert answer.json()["rejected"] == [{"index": 0, "error": "data.state must be one of open, closed"}]
    assert len(newest_stored_entry(world)) <= 4096  # SANDTABLE_DEAD_LETTER_MAX_BYTES by default
    (kept,) = dead_letters(world)
    assert kept["reason"] == "data.state must be one of open, closed" and kept["index"] == 0
    assert kept["truncated"] is True and kept["raw_bytes"] > 1_000_000
    assert (kept["raw"]["type"], kept["raw"]["device"]) == ("door.contact", sensor)
    assert kept["raw_head"].startswith('{"data":{"state":"ajar","blob":"xxxx')
    assert EventLog(world.redis, world.keys).dead_letter_counts("wanhu") == {"kept": 1, "truncated": 1}


def test_40_rejected_megabyte_events_leave_the_dead_letter_stream_small(world: Stores, server: LiveServer) -> None:
    token = ingest_token(world)
    body = json.dumps(megabyte_reject(device_of(world, "door_sensor"))).encode()
    for _ in range(40):
        assert post_raw(server, token, body).json()["rejected"]
    used = world.redis.memory_usage(world.keys.dead("wanhu"), samples=0)
    assert used is not None and used < 40 * 8192, used  # 41 MB before the entries were capped
    assert EventLog(world.redis, world.keys).dead_letter_counts("wanhu") == {"kept": 40, "truncated": 40}


def test_the_dead_letter_stream_keeps_the_newest_entries_within_its_byte_budget(world: Stores) -> None:
    settings = world.settings.model_copy(update={"dead_letter_max_bytes": 2048, "dead_letter_budget_mb": 1})
    small = dataclasses.replace(world, settings=settings)
    small.__dict__["redis"] = world.redis
    sensor = device_of(world, "door_sensor")
    rejects = [{"type": "door.contact", "device": sensor, "ts": now_ms(), "data": {"state": "ajar", "n": "y" * 3000}}]
    for _ in range(3):
        IngestService(small).ingest("wanhu", rejects * 1000)
    cap = 1024 * 1024 // 2048
    assert cap <= world.redis.xlen(world.keys.dead("wanhu")) <= cap + 100  # MAXLEN ~ trims whole nodes
    used = world.redis.memory_usage(world.keys.dead("wanhu"), samples=0)
    assert used is not None and used < 2 * 1024 * 1024, used
    assert dead_letters(world)[0]["index"] == 999  # the newest are the ones kept
    assert EventLog(world.redis, world.keys).dead_letter_counts("wanhu")["truncated"] == 3000


def test_a_megabyte_poison_entry_of_the_worker_is_kept_truncated_the_same_way(world: Stores) -> None:
    world.redis.xadd(world.keys.events("wanhu"), {"e": "{not json " + MB_OF_DATA})
    worker = Worker(world, consumer="w")
    worker.start_community("wanhu", seed_timers=False)
    while entries := worker.events.read(["wanhu"], worker.consumer, count=100, block_ms=None):
        worker.process(entries)
    assert len(newest_stored_entry(world)) <= 4096
    (kept,) = dead_letters(world)
    assert kept["reason"] == "undecodable stream entry (not a JSON object)"
    assert kept["truncated"] is True and kept["raw_bytes"] > 1_000_000
    assert kept["raw_head"].startswith("{not json xxx")
    assert EventLog(world.redis, world.keys).dead_letter_counts("wanhu") == {"kept": 1, "truncated": 1}


def test_doctor_shows_the_dead_letters_kept_and_truncated_per_community(world: Stores) -> None:
    sensor = device_of(world, "door_sensor")
    small_reject = {"type": "door.contact", "device": sensor, "ts": now_ms(), "data": {"state": "ajar"}}
    IngestService(world).ingest("wanhu", [megabyte_reject(sensor), small_reject])
    result = run_manage(world.settings, "doctor")
    line = next(row for row in result.stdout.splitlines() if " dead-letters " in row)
    assert line.startswith("ok") and "wanhu 2 kept, 1 truncated" in line, result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [("dead_letter_max_bytes", 100), ("dead_letter_budget_mb", 0), ("ingest_max_age_days", 0)],
)
def test_the_new_limits_refuse_values_out_of_their_bounds_by_name(name: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"SANDTABLE_{name.upper()}: Input should be greater than"):
        load_settings(**{name: value})


# --- replay reads its file the way ingest reads a body -----------------------------------------------


def test_replay_reports_unreadable_lines_and_times_out_of_range_without_crashing(world: Stores, tmp_path: Path) -> None:
    sensor = device_of(world, "door_sensor")
    door = {"type": "door.contact", "device": sensor, "ts": 1_790_000_000_000, "data": {"state": "open"}}
    year_1 = {**door, "ts": "0001-01-01T00:00:00+14:00"}
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(door).encode(),  # 1: older than the horizon, and replayed all the same
                b"[" * 100_000,  # 2
                b'{"device": "\xff\xfe"}',  # 3
                b'{"ts": 1' + b"0" * 5_000 + b"}",  # 4
                json.dumps(year_1).encode(),  # 5
            ]
        )
        + b"\n"
    )
    summary = run_replay(world, path, until_ms=None, out=tmp_path / "alerts.jsonl")
    assert summary["accepted"] == 1
    reasons = {r["line"]: r["error"] for r in summary["rejects"]}
    assert reasons[2] == "the line is nested too deeply to be read"
    assert reasons[3] == "the line is not UTF-8 text"
    assert reasons[4].startswith("the line is not JSON")
    assert reasons[5] == "ts '0001-01-01T00:00:00+14:00' is out of range (it must fall between 1970 and 5138)"


def test_replay_refuses_an_until_that_does_not_convert_in_one_line(world: Stores, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("")
    result = run_manage(world.settings, "replay", str(path), "--until", "9999-12-31T23:59:59-23:59", timeout=60)
    assert result.returncode != 0
    assert "--until must be RFC 3339 with an offset, between 1970 and 5138" in result.stderr
    assert "Traceback" not in result.stderr


# --- ID numbers of any JSON type ------------------------------------------------------------------


def test_an_id_number_sent_as_a_number_or_a_list_never_reaches_redis_in_plain_text(world: Stores) -> None:
    sensor, lock = device_of(world, "door_sensor"), device_of(world, "smart_lock")

    def door(note: Any) -> dict[str, Any]:
        return {"type": "door.contact", "device": sensor, "ts": now_ms(), "data": {"state": "open", "note": note}}

    as_number, as_list = door({"id_number": int(WANTED_ID)}), door({"id_number": [WANTED_ID]})
    refused = {  # two identities: rejected, kept in the dead letters
        "type": "lock.open",
        "device": lock,
        "ts": now_ms(),
        "data": {"method": "face", "face_id": "F1", "id_number": int(WANTED_ID)},
    }
    result = IngestService(world).ingest("wanhu", [as_number, as_list, refused])
    assert result.accepted == 2 and [r["index"] for r in result.rejected] == [2]
    for key in world.redis.scan_iter(match=f"{world.keys.prefix}:*"):
        if world.redis.type(key) == "stream":
            assert WANTED_ID not in json.dumps(world.redis.xrange(key)), key
    stored = [json.loads(fields["e"]) for _, fields in world.redis.xrange(world.keys.events("wanhu"))]
    # the number hashes as its text does: the watchlist still recognises it
    assert stored[0]["data"]["note"]["id_hash"] == keyed_hash(world.id_hash_key, WANTED_ID)
