"""The event contract of interfaces §2: parsing and per-event validation (msgspec, fast).

Each event is judged alone. A valid event comes out normalised (``ts`` as epoch ms, plates
normalised, an ``id_number`` replaced by its keyed hash ``id_hash``); an invalid one gives one
specific reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from core.errors import InvalidInput
from core.secrets import keyed_hash
from core.timefmt import parse_rfc3339
from registry import validate
from registry.models import DEVICE_TYPES
from store.evidence import evidence_id

log = logging.getLogger(__name__)

EVENT_DEVICE_TYPES: dict[str, tuple[str, ...] | None] = {
    "door.contact": ("door_sensor",),
    "device.heartbeat": None,  # any device type
    "lock.open": ("smart_lock",),
    "gate.face": ("face_gate",),
    "gate.vehicle": ("vehicle_gate",),
    "guard.position": ("wearable",),
    "patrol.checkin": ("checkpoint",),
    "smoke.alarm": ("smoke_detector",),
    "camera.throw": ("throw_camera",),
    "camera.fall": ("camera",),
    "meter.water": ("water_meter",),
    "meter.power": ("power_meter",),
}
EVIDENCE_EVENTS = ("camera.throw", "camera.fall")  # their data.image: an evidence image (store/evidence.py)
LOCK_METHODS = ("face", "fingerprint", "card", "password", "app", "key")
IDENTITY_FIELDS = ("person", "id_number", "face_id")
_CONTAINERS = (dict, list)  # where an ID number may hide in an event's data
_SCALARS = frozenset((str, int, float, bool, type(None)))  # a data value that holds no ID number under it
# levels of nesting an event's data may have (the contract's deepest, a trajectory point, has 3): a
# deeper structure is refused, and kept in the dead letters cut at this depth, so that walking it
# (hashing ID numbers, encoding) can never exhaust Python's stack
MAX_DEPTH = 32
NESTED_TOO_DEEP = "(nested too deeply: cut)"
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)  # msgspec raises the latter for bad UTF-8 in a string
# the times an event may carry, in epoch ms (both excluded): after 1970 and before the year 5138, so
# that every conversion of an accepted time (to UTC, to local time, to a SQL column, plus a rule's
# hours) is defined; the ingest horizon and the future tolerance are narrower still
TS_MIN_MS = 0
TS_MAX_MS = 10**14
DAY_MS = 86_400_000
# a meter reading's plausible bounds: a flat's water pipe gives well under 100 L a minute, its supply
# well under 50 kW; beyond, the reading is a meter fault (or a reading over months), not a sign of life
MAX_LITRES = 100_000.0
MAX_WATTS = 50_000.0
MAX_WH = 10_000_000.0


class RawEvent(msgspec.Struct, forbid_unknown_fields=False):
    """One event as a producer sends it."""

    type: str
    device: str
    ts: str | int
    data: dict[str, Any] = {}
    id: str | None = None


class Rejected(Exception):
    """An event that breaks the contract; str(err) is the reason."""


@dataclass(frozen=True)
class DeviceInfo:
    """What ingest and the rules need to know of a registered device."""

    id: str
    type: str
    community: str
    building: str | None
    household: str | None
    grid: str | None
    lat: float
    lon: float
    floor: int | None = None


class Event(msgspec.Struct, frozen=True):
    """A validated, normalised event (what the stream holds; ``received`` is ``rx`` on the wire)."""

    type: str
    device: str
    ts: int
    data: dict[str, Any]
    id: str | None
    received: int = msgspec.field(name="rx")

    def to_wire(self) -> dict[str, Any]:
        """The dict stored in the stream."""
        return {
            "id": self.id,
            "type": self.type,
            "device": self.device,
            "ts": self.ts,
            "data": self.data,
            "rx": self.received,
        }

    @classmethod
    def from_wire(cls, doc: dict[str, Any]) -> Event:
        """An event read back from the stream."""
        ts = int(doc["ts"])
        if not TS_MIN_MS < ts < TS_MAX_MS:  # an entry written before ingest bounded times (issue #16)
            raise ValueError(f"ts {ts} is out of range")
        return cls(
            type=doc["type"],
            device=doc["device"],
            ts=ts,
            data=doc.get("data") or {},
            id=doc.get("id"),
            received=int(doc.get("rx", doc["ts"])),
        )


_batch_decoder = msgspec.json.Decoder(list[RawEvent])
_one_decoder = msgspec.json.Decoder(RawEvent)
_any_decoder = msgspec.json.Decoder()
encoder = msgspec.json.Encoder()


def split_body(body: bytes, content_type: str, max_batch: int) -> list[Any]:
    """The body's events, not yet validated: typed RawEvents when the whole body fits the shape (fast
    path), else raw JSON values judged one by one; ValueError when it is not JSON/NDJSON."""
    text = body.strip()
    if "ndjson" not in content_type and "jsonlines" not in content_type:
        try:
            typed = _batch_decoder.decode(text) if text[:1] == b"[" else [_one_decoder.decode(text)]
        except (*_DECODE_ERRORS, RecursionError):
            typed = None  # some event is malformed: judge each alone below
        if typed is not None:
            if len(typed) > max_batch:
                raise ValueError(f"a batch holds at most {max_batch} events, not {len(typed)}")
            return typed
    if not text:
        raise ValueError("the body is empty")
    if "ndjson" in content_type or "jsonlines" in content_type:
        items = []
        for number, line in enumerate(text.split(b"\n"), start=1):
            if line.strip():
                items.append(decode_json(line, f"line {number}"))
    else:
        parsed = decode_json(text, "the body")
        items = parsed if isinstance(parsed, list) else [parsed]
    if len(items) > max_batch:
        raise ValueError(f"a batch holds at most {max_batch} events, not {len(items)}")
    return items


def decode_json(text: bytes, what: str) -> Any:
    """Any JSON value; ValueError naming what (the body, line N) and why it is not JSON we can read
    (ingest's bodies and replay's files alike)."""
    try:
        return _any_decoder.decode(text)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to be read") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not UTF-8 text") from None
    except msgspec.DecodeError as err:
        raise ValueError(f"{what} is not JSON ({err})") from None


def _number(data: dict[str, Any], key: str, low: float, high: float, *, required: bool = True) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise Rejected(f"data.{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Rejected(f"data.{key} must be a number")
    if isinstance(value, float) and math.isnan(value):  # an int is never NaN (and math.isnan(10**400) overflows)
        raise Rejected(f"data.{key} must be a number")
    if not low <= value <= high:
        raise Rejected(f"data.{key} must be between {low:g} and {high:g}")
    return float(value)


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise Rejected(f"data.{key} must be one of {', '.join(allowed)}")
    return str(value)


def _identity(data: dict[str, Any], hash_key: bytes) -> dict[str, Any]:
    present = [f for f in IDENTITY_FIELDS if data.get(f) not in (None, "")]
    if len(present) > 1:
        raise Rejected(f"at most one identity field, not {', '.join(present)}")
    out = dict(data)
    if "id_number" in out:
        raw = out.pop("id_number")
        if present == ["id_number"]:
            try:
                number = validate.id_number(raw)
            except InvalidInput as err:
                raise Rejected(f"data.id_number: {err}") from None
            out["id_hash"] = keyed_hash(hash_key, number)
    for field in ("person", "face_id"):
        if field in out and (not isinstance(out[field], str) or not 0 < len(out[field]) <= 64):
            raise Rejected(f"data.{field} must be a string of 1–64 characters")
    return out


def _door(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    _choice(data, "state", ("open", "closed"))
    return data


def _heartbeat(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    _number(data, "battery", 0, 100, required=False)
    return data


def _lock(data: dict[str, Any], key: bytes) -> dict[str, Any]:
    _choice(data, "method", LOCK_METHODS)
    return _identity(data, key)


def _face_gate(data: dict[str, Any], key: bytes) -> dict[str, Any]:
    _choice(data, "direction", ("in", "out"))
    _number(data, "score", 0, 1, required=False)
    return _identity(data, key)


def _vehicle_gate(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    _choice(data, "direction", ("in", "out"))
    try:
        plate = validate.plate(data.get("plate"))
    except InvalidInput as err:
        raise Rejected(f"data.plate: {err}") from None
    return {**data, "plate": plate}


def _position(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    _number(data, "lat", -90, 90)
    _number(data, "lon", -180, 180)
    _number(data, "accuracy_m", 0, 100_000, required=False)
    return data


def _checkin(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    guard = data.get("guard")
    if not isinstance(guard, str) or not guard:
        raise Rejected("data.guard is required (a guard id)")
    return data


def _smoke(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    level = _choice(data, "level", ("alarm", "test"), default="alarm")
    return {**data, "level": level}


def _throw(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    origin = data.get("origin")
    if not isinstance(origin, dict):
        raise Rejected("data.origin must be an object with building, floor and column")
    if not isinstance(origin.get("building"), str):
        raise Rejected("data.origin.building must be a building id")
    for field in ("floor", "column"):
        value = origin.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 200:
            raise Rejected(f"data.origin.{field} must be a whole number from 1")
    trajectory = data.get("trajectory")
    if not isinstance(trajectory, list) or len(trajectory) < 2:
        raise Rejected("data.trajectory must be a list of at least two [t_ms, x, y] points")
    for point in trajectory:
        if (
            not isinstance(point, list)
            or len(point) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
        ):
            raise Rejected("data.trajectory points must be [t_ms, x, y] numbers")
    return data


def _fall(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    bbox = data.get("bbox")
    if (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in bbox)
    ):
        raise Rejected("data.bbox must be [x, y, w, h] non-negative numbers")
    return data


def _water(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    litres = _number(data, "litres", 0, MAX_LITRES, required=False)
    if litres is None:
        raise Rejected("data.litres is required (litres since the meter's last reading)")
    return data


def _power(data: dict[str, Any], _key: bytes) -> dict[str, Any]:
    watts = _number(data, "watts", 0, MAX_WATTS, required=False)
    wh = _number(data, "wh", 0, MAX_WH, required=False)
    if watts is None and wh is None:
        raise Rejected("data.watts (mean power since the last reading) or data.wh (energy since it) is required")
    return data


CHECKS: dict[str, Callable[[dict[str, Any], bytes], dict[str, Any]]] = {
    "door.contact": _door,
    "device.heartbeat": _heartbeat,
    "lock.open": _lock,
    "gate.face": _face_gate,
    "gate.vehicle": _vehicle_gate,
    "guard.position": _position,
    "patrol.checkin": _checkin,
    "smoke.alarm": _smoke,
    "camera.throw": _throw,
    "camera.fall": _fall,
    "meter.water": _water,
    "meter.power": _power,
}


def parse_ts(value: Any) -> int:
    """RFC 3339 with offset, or integer epoch milliseconds, as epoch ms between 1970 and 5138 (TS_MIN_MS,
    TS_MAX_MS); Rejected with the reason for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not TS_MIN_MS < value < TS_MAX_MS:
            raise Rejected("ts in epoch milliseconds is out of range")
        return value
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        ms = parse_rfc3339(value)
    except (TypeError, ValueError, OverflowError):
        raise Rejected(
            "ts must be RFC 3339 with an offset (e.g. 2026-11-25T08:00:00+08:00) or integer epoch milliseconds"
        ) from None
    if not TS_MIN_MS < ms < TS_MAX_MS:
        raise Rejected(f"ts {shown(value)} is out of range (it must fall between 1970 and 5138)")
    return ms


def check_event(
    raw: Any,
    *,
    devices: Callable[[str], DeviceInfo | None],
    community: str,
    hash_key: bytes,
    now_ms: int,
    future_tolerance_ms: int,
    max_age_ms: int | None,
    guard_known: Callable[[str], bool],
    evidence: Callable[[object], str | None] = evidence_id,
) -> Event:
    """A valid, normalised event, or Rejected with the reason (max_age_ms None: no horizon, for replay).

    ``evidence`` turns a camera event's ``image`` reference into the evidence id it stands for in the
    event's community, or None (default: only an evidence id itself is taken).
    """
    if isinstance(raw, RawEvent):
        parsed = raw
    elif not isinstance(raw, dict):
        raise Rejected("an event must be a JSON object")
    else:
        try:
            parsed = msgspec.convert(raw, RawEvent)
        except msgspec.ValidationError as err:
            raise Rejected(f"{err}") from None
    if parsed.id is not None and not 1 <= len(parsed.id) <= 64:
        raise Rejected("id must have 1–64 characters")
    check = CHECKS.get(parsed.type)
    if check is None:
        raise Rejected(f"unknown event type {shown(parsed.type)}")
    device = devices(parsed.device)
    if device is None:
        raise Rejected(f"unknown device {shown(parsed.device)}")
    if device.community != community:
        raise Rejected(f"device {parsed.device} belongs to another community")
    allowed = EVENT_DEVICE_TYPES[parsed.type]
    if allowed is not None and device.type not in allowed:
        raise Rejected(f"a {device.type} may not send {parsed.type}")
    ts = parse_ts(parsed.ts)
    if ts > now_ms + future_tolerance_ms:
        raise Rejected(
            f"ts is {(ts - now_ms) / 60000:.0f} minutes in the future (at most {future_tolerance_ms // 60000} allowed)"
        )
    if max_age_ms is not None and ts < now_ms - max_age_ms:
        raise Rejected(f"ts is {(now_ms - ts) / DAY_MS:.1f} days in the past (at most {max_age_ms / DAY_MS:g} allowed)")
    if "id_hash" in parsed.data:
        raise Rejected("data.id_hash is computed by the server: send the ID number as data.id_number")
    # the type's own check hashes the identity it expects; an ID number anywhere else is hashed too
    data = check(dict(parsed.data), hash_key)
    if "id_number" in data or not _SCALARS.issuperset(map(type, data.values())):
        data = redact(data, hash_key, cut=False)

    if parsed.type in EVIDENCE_EVENTS and "image" in data:
        image = evidence(data["image"])
        if image is None:
            # the detection still counts; a reference to a file outside the community's evidence never does
            log.warning("%s of %s: image reference dropped (no evidence of %s)", parsed.type, parsed.device, community)
            del data["image"]
        else:
            data["image"] = image
    if parsed.type == "patrol.checkin" and not guard_known(str(data["guard"])):
        raise Rejected(f"unknown guard {shown(data['guard'])}")
    return Event(type=parsed.type, device=parsed.device, ts=ts, data=data, id=parsed.id, received=now_ms)


def shown(value: Any, limit: int = 64) -> str:
    """A producer's value as quoted in a reason, cut to limit characters (a reason stays one short line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact(raw: Any, hash_key: bytes, *, cut: bool = True, depth: int = 0) -> Any:
    """Any ID number (a value of any type under an ``id_number`` key) replaced by its hash (an accepted
    event's data, or a rejected event as kept in the dead-letter stream). Containers deeper than
    MAX_DEPTH are cut (cut=True, the dead letters) or refused with Rejected (cut=False, an event's
    data): the recursion stays shallow."""
    if type(raw) in _CONTAINERS and depth >= MAX_DEPTH:
        if not cut:
            raise Rejected(f"data is nested more than {MAX_DEPTH} levels deep")
        return NESTED_TOO_DEEP
    if isinstance(raw, dict):
        out = {}
        for key, value in raw.items():
            if key == "id_number" and value is not None:
                # a number (or a list…) is hashed as its JSON text: 130102199003159913 as "130102199003159913";
                # a container is bounded first, like any other (its encoding must not recurse deeply)
                plain = redact(value, hash_key, cut=cut, depth=depth + 1)
                text = plain if isinstance(plain, str) else encoder.encode(plain).decode()
                out["id_hash"] = keyed_hash(hash_key, text)
            else:
                out[key] = redact(value, hash_key, cut=cut, depth=depth + 1)
        return out
    if isinstance(raw, list):
        return [redact(v, hash_key, cut=cut, depth=depth + 1) for v in raw]
    return raw


assert set(EVENT_DEVICE_TYPES) == set(CHECKS)
assert all(t in DEVICE_TYPES for types in EVENT_DEVICE_TYPES.values() if types for t in types)
