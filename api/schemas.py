"""The JSON shapes of the HTTP API, defined once: the request bodies (from the msgspec Structs that
decode them, or from the constants the hand-written checks use) and the responses. api/openapi.py
puts them in the OpenAPI document's ``components/schemas``; the fuzz test (tests/test_api_fuzz.py)
holds every real answer to them, so a route and its documented shape cannot drift apart.

JSON Schema 2020-12 as OpenAPI 3.1 uses it (``"type": ["string", "null"]`` for a nullable value)."""

from __future__ import annotations

from typing import Any

import msgspec

from alerts.constants import ALERT_TYPES, INCIDENT_SOURCES, SEVERITIES
from alerts.lifecycle import CLOSED_STATUSES, OPEN_STATUSES
from api.registry_api import UNMASK_REASON_MIN
from closedloop.incidents import NAME_MAX, SUMMARY_MAX
from gates.decide import IDENTITIES as GATE_IDENTITIES
from gates.decide import REASONS as GATE_REASONS
from ingest.schema import EVENT_DEVICE_TYPES, RawEvent
from memory.search import LIMIT_DEFAULT, LIMIT_MAX, SearchBody

REF = "#/components/schemas/{name}"
HOUSEHOLD_CATEGORIES = ("rental", "group_rental", "owner", "vacant")
DEVICE_STATUSES = ("online", "offline", "unknown")


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": REF.format(name=name)}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


STRING: dict[str, Any] = {"type": "string"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
POINT: dict[str, Any] = {
    "type": "object",
    "required": ["lat", "lon"],
    "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
}


def _struct_schemas() -> dict[str, Any]:
    """The request bodies decoded by msgspec Structs, as msgspec describes them, with the bounds
    that ``check_search`` applies after decoding."""
    _, components = msgspec.json.schema_components((SearchBody, RawEvent), ref_template=REF)
    search = components["SearchBody"]
    props = search["properties"]
    props["limit"].update(minimum=1, maximum=LIMIT_MAX, default=LIMIT_DEFAULT)
    props["types"] = nullable({"type": "array", "items": {"type": "string", "enum": list(EVENT_DEVICE_TYPES)}})
    props["from"].update(format="date-time", description="inclusive, RFC 3339 with an offset")
    props["to"].update(
        format="date-time", description="exclusive; the window is at most SANDTABLE_RETAIN_EVENTS_DAYS long"
    )
    props["polygon"]["description"] = "GeoJSON Polygon, WGS-84 [longitude, latitude], closed, not self-crossing"
    props["person"]["description"] = "registry person id, face:<id> or id:<hash>"
    props["cursor"]["description"] = "the previous page's next, for the same query"
    search["additionalProperties"] = False  # forbid_unknown_fields=True
    search["description"] = "a search of the event archive (memory/search.py SearchBody)"
    event = components["RawEvent"]
    event["description"] = "one device event (interfaces §2; ingest/schema.py RawEvent)"
    event["properties"]["type"]["description"] = "one of: " + ", ".join(EVENT_DEVICE_TYPES)
    event["properties"]["ts"]["description"] = "RFC 3339 with an offset, or epoch milliseconds"
    return dict(components)


def _place() -> dict[str, Any]:
    return {
        "oneOf": [
            POINT,
            {"type": "object", "required": ["building"], "properties": {"building": STRING}},
            {"type": "object", "required": ["household"], "properties": {"household": STRING}},
        ],
        "description": "WGS-84 degrees inside the community's boundary, or a building or household of the community",
    }


ALERT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "severity", "status", "community"],
    "properties": {
        "id": STRING,
        "type": {"type": "string", "enum": list(ALERT_TYPES)},
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "status": {"type": "string", "enum": [*OPEN_STATUSES, *CLOSED_STATUSES]},
        "community": STRING,
        "subject": {"type": "object", "description": "who or what the alert is about (masked per role)"},
        "location": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
            "description": "empty when the alert has no place",
        },
        "opened_at": TIME,
        "detected_at": TIME,
        "updated_at": TIME,
        "count": {"type": "integer"},
        "evidence": {"type": "object"},
        "grid": nullable(STRING),
    },
}

PERSON: dict[str, Any] = {
    "type": "object",
    "required": ["id", "household", "households", "tags", "name", "id_number", "phone"],
    "description": "ID number and phone always masked; the name masked for roles that may not read it",
    "properties": {
        "id": STRING,
        "household": nullable({"type": "string", "description": "the first household, or null"}),
        "households": {
            "type": "array",
            "items": STRING,
            "description": "every household the person lives in, in the caller's scope",
        },
        "tags": {"type": "array", "items": STRING},
        "name": STRING,
        "id_number": nullable({"type": "string", "pattern": r"^[0-9X*]*$", "description": "masked"}),
        "phone": nullable({"type": "string", "description": "masked"}),
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "description": "a refusal in one sentence; field names the input refused when there is one",
        "properties": {
            "error": STRING,
            "field": nullable(STRING),
            "reason": {"type": "string", "description": "why access was refused (403)"},
        },
    },
    "SearchError": {
        "type": "object",
        "required": ["error", "field"],
        "properties": {
            "error": STRING,
            "field": nullable(STRING),
            "earliest": {**TIME, "description": "the earliest time that can be searched (a refused window)"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "boot"],
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "boot": {"type": "string", "description": "changes with each deploy"},
        },
    },
    "IngestResult": {
        "type": "object",
        "required": ["accepted", "duplicates", "rejected"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "duplicates": {"type": "integer", "minimum": 0},
            "rejected": {"type": "array", "items": {"type": "object"}, "description": "each refused event and why"},
        },
    },
    "GateAsk": {
        "type": "object",
        "required": ["direction"],
        "description": "at most one identity: person, face_id, id_number (face gates) or plate (barriers)",
        "properties": {
            "direction": {"type": "string", "enum": ["in", "out"]},
            **{name: {"type": "string", "minLength": 1, "maxLength": 64} for name in GATE_IDENTITIES},
        },
    },
    "GateDecision": {
        "type": "object",
        "required": ["allow", "reason", "pass"],
        "properties": {
            "allow": {"type": "boolean"},
            "reason": {"type": "string", "enum": list(GATE_REASONS)},
            "pass": nullable(STRING),
        },
    },
    "Alert": ALERT,
    "Incident": {
        "type": "object",
        "required": ["community", "source", "summary", "place"],
        "properties": {
            "community": STRING,
            "source": {"type": "string", "enum": list(INCIDENT_SOURCES)},
            "summary": {"type": "string", "minLength": 1, "maxLength": SUMMARY_MAX},
            "severity": {"type": "string", "enum": list(SEVERITIES), "default": "high"},
            "place": _place(),
            "caller": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": NAME_MAX}, "phone": STRING},
                "description": "the phone is masked in every answer",
            },
        },
    },
    "SearchPage": {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": ref("ArchivedEvent")},
            "next": nullable(STRING),
            "clipped": {"type": "boolean", "description": "a grid worker's polygon was cut to their grid"},
            "note": STRING,
        },
    },
    "ArchivedEvent": {
        "type": "object",
        "required": ["id", "type", "device", "ts"],
        "properties": {
            "id": STRING,
            "type": STRING,
            "device": STRING,
            "ts": {"type": "integer", "description": "event time, epoch milliseconds (UTC)"},
            "data": {"type": "object"},
            "community": STRING,
            "building": nullable(STRING),
            "household": nullable(STRING),
            "location": nullable(POINT),
            "guard": nullable(STRING),
            "person": nullable(STRING),
            "plate": nullable(STRING),
            "entry": STRING,
        },
    },
    "State": {
        "type": "object",
        "required": ["at", "community", "devices", "guards", "alerts"],
        "properties": {
            "at": TIME,
            "community": STRING,
            "devices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "online"],
                    "properties": {
                        "id": STRING,
                        "type": nullable(STRING),
                        "online": {"type": "boolean"},
                        "state": {"type": "object", "description": "battery, door, door_at"},
                        "last_seen": nullable(TIME),
                    },
                },
            },
            "guards": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "lat", "lon", "ts", "active"],
                    "properties": {
                        "id": STRING,
                        "lat": {"type": "number"},
                        "lon": {"type": "number"},
                        "ts": TIME,
                        "active": {"type": "boolean"},
                    },
                },
            },
            "alerts": {"type": "array", "items": ref("Alert")},
        },
    },
    "Device": {
        "type": "object",
        "required": ["id", "type", "community", "building", "household", "lat", "lon", "status"],
        "properties": {
            "id": STRING,
            "type": STRING,
            "community": STRING,
            "building": nullable(STRING),
            "household": nullable(STRING),
            "lat": {"type": "number"},
            "lon": {"type": "number"},
            "status": {"type": "string", "enum": list(DEVICE_STATUSES)},
        },
    },
    "Household": {
        "type": "object",
        "required": ["id", "building", "unit", "floor", "room", "category", "occupants", "devices"],
        "properties": {
            "id": STRING,
            "building": STRING,
            "unit": {"type": "integer"},
            "floor": {"type": "integer"},
            "room": STRING,
            "category": {"type": "string", "enum": list(HOUSEHOLD_CATEGORIES)},
            "occupants": {
                "type": "array",
                "items": STRING,
                "description": "person ids; empty for roles that may not read people",
            },
            "devices": {"type": "array", "items": STRING},
        },
    },
    "Person": PERSON,
    "Unmasked": {
        "type": "object",
        "required": ["id", "name", "id_number", "phone"],
        "description": "one person's record unmasked (audited with the reason)",
        "properties": {"id": STRING, "name": STRING, "id_number": nullable(STRING), "phone": nullable(STRING)},
    },
    "UnmaskReason": {
        "type": "object",
        "required": ["reason"],
        "properties": {
            "reason": {
                "type": "string",
                "minLength": UNMASK_REASON_MIN,
                "description": "why (audited; blanks around it do not count)",
            }
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": ["id", "at", "actor", "role", "action", "target", "community", "reason", "outcome", "ip"],
        "properties": {
            "id": {"type": "integer"},
            "at": STRING,
            "actor": STRING,
            "role": nullable(STRING),
            "action": STRING,
            "target": nullable(STRING),
            "community": nullable(STRING),
            "reason": nullable(STRING),
            "outcome": STRING,
            "ip": nullable(STRING),
        },
    },
    "FeatureCollection": {
        "type": "object",
        "required": ["type", "features"],
        "description": "GeoJSON (RFC 7946)",
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["type", "geometry", "properties"],
                    "properties": {
                        "type": {"type": "string", "enum": ["Feature"]},
                        "geometry": nullable({"type": "object"}),
                        "properties": nullable({"type": "object"}),
                    },
                },
            },
        },
    },
    "OpenAPI": {"type": "object", "required": ["openapi", "paths"], "description": "this document"},
    **_struct_schemas(),
}
