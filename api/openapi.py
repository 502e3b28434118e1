"""``GET /api/v1/openapi.json`` (interfaces §3): the OpenAPI document of the HTTP API, built from the
same constants the routes check (alert types, severities, incident sources), so that it cannot
drift from them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from alerts.constants import ALERT_TYPES, INCIDENT_SOURCES, SEVERITIES
from alerts.lifecycle import CLOSED_STATUSES, OPEN_STATUSES
from api.map import LAYERS
from gates.decide import IDENTITIES as GATE_IDENTITIES
from gates.decide import REASONS as GATE_REASONS
from ingest.schema import EVENT_DEVICE_TYPES
from memory.search import LIMIT_DEFAULT, LIMIT_MAX

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

BEARER: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
ERROR = {
    "description": "a refusal with one sentence",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_of(ref: str, description: str) -> dict[str, Any]:
    return _json({"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}, description)


def _query(name: str, description: str, enum: tuple[str, ...] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = list(enum)
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def document() -> dict[str, Any]:
    """The OpenAPI 3.0 document."""
    place = {
        "oneOf": [
            {
                "type": "object",
                "required": ["lat", "lon"],
                "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
            },
            {"type": "object", "required": ["building"], "properties": {"building": {"type": "string"}}},
            {"type": "object", "required": ["household"], "properties": {"household": {"type": "string"}}},
        ],
        "description": "WGS-84 degrees inside the community's boundary, or a building or household of the community",
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Sandtable API", "version": "1"},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "manage.py token create"},
                "session": {"type": "apiKey", "in": "cookie", "name": "st_session"},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}, "field": {"type": "string"}}},
                "GateAsk": {
                    "type": "object",
                    "required": ["direction"],
                    "description": "at most one identity: person, face_id, id_number (face gates) or plate (barriers)",
                    "properties": {
                        "direction": {"type": "string", "enum": ["in", "out"]},
                        **{name: {"type": "string", "maxLength": 64} for name in GATE_IDENTITIES},
                    },
                },
                "GateDecision": {
                    "type": "object",
                    "properties": {
                        "allow": {"type": "boolean"},
                        "reason": {"type": "string", "enum": list(GATE_REASONS)},
                        "pass": {"type": "string", "nullable": True},
                    },
                },
                "State": {
                    "type": "object",
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "community": {"type": "string"},
                        "devices": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "type": {"type": "string"},
                                    "online": {"type": "boolean"},
                                    "state": {"type": "object", "description": "battery, door, door_at"},
                                    "last_seen": {"type": "string", "format": "date-time"},
                                },
                            },
                        },
                        "guards": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "lat": {"type": "number"},
                                    "lon": {"type": "number"},
                                    "ts": {"type": "string", "format": "date-time"},
                                    "active": {"type": "boolean"},
                                },
                            },
                        },
                        "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                    },
                },
                "Alert": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"type": "string", "enum": list(ALERT_TYPES)},
                        "severity": {"type": "string", "enum": list(SEVERITIES)},
                        "status": {"type": "string", "enum": [*OPEN_STATUSES, *CLOSED_STATUSES]},
                        "community": {"type": "string"},
                        "subject": {"type": "object"},
                        "location": {
                            "type": "object",
                            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                        },
                        "opened_at": {"type": "string", "format": "date-time"},
                        "detected_at": {"type": "string", "format": "date-time"},
                        "count": {"type": "integer"},
                        "evidence": {"type": "object"},
                    },
                },
                "Incident": {
                    "type": "object",
                    "required": ["community", "source", "summary", "place"],
                    "properties": {
                        "community": {"type": "string"},
                        "source": {"type": "string", "enum": list(INCIDENT_SOURCES)},
                        "summary": {"type": "string", "minLength": 1, "maxLength": 1000},
                        "severity": {"type": "string", "enum": list(SEVERITIES), "default": "high"},
                        "place": place,
                        "caller": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "phone": {"type": "string"}},
                            "description": "the phone is masked in every answer",
                        },
                    },
                },
                "SearchQuery": {
                    "type": "object",
                    "required": ["community", "from", "to"],
                    "additionalProperties": False,
                    "properties": {
                        "community": {"type": "string"},
                        "from": {"type": "string", "format": "date-time", "description": "inclusive"},
                        "to": {
                            "type": "string",
                            "format": "date-time",
                            "description": "exclusive; the window is at most SANDTABLE_RETAIN_EVENTS_DAYS long",
                        },
                        "polygon": {
                            "type": "object",
                            "description": "GeoJSON Polygon, WGS-84 [longitude, latitude], closed, not self-crossing",
                        },
                        "building": {"type": "string"},
                        "household": {"type": "string"},
                        "device": {"type": "string"},
                        "types": {"type": "array", "items": {"type": "string", "enum": list(EVENT_DEVICE_TYPES)}},
                        "plate": {"type": "string"},
                        "person": {"type": "string", "description": "registry person id, face:<id> or id:<hash>"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": LIMIT_DEFAULT},
                        "cursor": {"type": "string", "description": "the previous page's next, for the same query"},
                    },
                },
                "SearchPage": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/ArchivedEvent"}},
                        "next": {"type": "string", "nullable": True},
                        "clipped": {"type": "boolean", "description": "a grid worker's polygon was cut to their grid"},
                        "note": {"type": "string"},
                    },
                },
                "ArchivedEvent": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"type": "string"},
                        "device": {"type": "string"},
                        "ts": {"type": "integer", "description": "event time, epoch milliseconds (UTC)"},
                        "data": {"type": "object"},
                        "community": {"type": "string"},
                        "building": {"type": "string", "nullable": True},
                        "household": {"type": "string", "nullable": True},
                        "location": {
                            "type": "object",
                            "nullable": True,
                            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                        },
                        "guard": {"type": "string", "nullable": True},
                        "person": {"type": "string", "nullable": True},
                        "plate": {"type": "string", "nullable": True},
                        "entry": {"type": "string"},
                    },
                },
                "SearchError": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "field": {"type": "string"},
                        "earliest": {"type": "string", "format": "date-time"},
                    },
                },
                "Device": {"type": "object"},
                "Household": {"type": "object"},
                "Person": {"type": "object", "description": "ID number and phone masked"},
            },
        },
        "paths": {
            "/api/v1/events": {
                "post": {
                    "summary": "device events (interfaces §2): one object, an array of at most 1,000, or NDJSON",
                    "security": [{"bearer": []}],
                    "responses": {
                        "202": _json({"type": "object"}, "accepted, duplicates and rejected events"),
                        "400": ERROR,
                        "401": ERROR,
                        "403": ERROR,
                        "413": ERROR,
                        "429": ERROR,
                    },
                }
            },
            "/api/v1/gates/{device}/decide": {
                "post": {
                    "summary": "a face gate or barrier asks whether to open (interfaces §10); ingest token",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "device", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GateAsk"}}},
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/GateDecision"}, "allow or deny, with the reason"),
                        "400": ERROR,
                        "401": ERROR,
                        "403": ERROR,
                        "404": ERROR,
                        "409": ERROR,
                    },
                }
            },
            "/api/v1/alerts": {
                "get": {
                    "summary": "alerts in the caller's scope (interfaces §3)",
                    "security": BEARER,
                    "parameters": [
                        _query("status", "open (default) or all", ("open", "all")),
                        _query("type", "one alert type", ALERT_TYPES),
                        _query("community", "one community of the caller's scope"),
                        _query("since", "RFC 3339"),
                    ],
                    "responses": {"200": _list_of("Alert", "alerts, newest first"), "400": ERROR, "403": ERROR},
                }
            },
            "/api/v1/incidents": {
                "post": {
                    "summary": "register an incident by hand (接警登记, interfaces §8): police or admin",
                    "security": BEARER,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Incident"}}},
                    },
                    "responses": {
                        "201": _json({"$ref": "#/components/schemas/Alert"}, "the alert of type incident.reported"),
                        "400": ERROR,
                        "403": ERROR,
                    },
                }
            },
            "/api/v1/events/search": {
                "post": {
                    "summary": "the event archive by place and time (interfaces §9): police, admin, grid worker",
                    "security": BEARER,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchQuery"}}},
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/SearchPage"}, "a page, ordered by ts"),
                        "400": _json({"$ref": "#/components/schemas/SearchError"}, "the field refused and why"),
                        "401": ERROR,
                        "403": ERROR,
                    },
                }
            },
            "/api/v1/state": {
                "get": {
                    "summary": "the sand-table at a past moment (interfaces §9): devices, guards, alerts open then",
                    "security": BEARER,
                    "parameters": [
                        {**_query("community", "community"), "required": True},
                        {
                            **_query("at", "RFC 3339 with an offset; not in the future, within the events' retention"),
                            "required": True,
                        },
                    ],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/State"}, "the state at that time"),
                        "400": ERROR,
                        "403": ERROR,
                    },
                }
            },
            "/api/v1/devices": {
                "get": {
                    "security": BEARER,
                    "parameters": [_query("type", "device type"), _query("community", "community")],
                    "responses": {"200": _list_of("Device", "devices"), "403": ERROR},
                }
            },
            "/api/v1/households": {
                "get": {
                    "security": BEARER,
                    "parameters": [
                        _query("category", "household category", ("rental", "group_rental", "owner", "vacant")),
                        _query("community", "community"),
                    ],
                    "responses": {"200": _list_of("Household", "households"), "400": ERROR, "403": ERROR},
                }
            },
            "/api/v1/people": {
                "get": {
                    "security": BEARER,
                    "parameters": [_query("tag", "person tag"), _query("community", "community")],
                    "responses": {"200": _list_of("Person", "people, masked"), "403": ERROR},
                }
            },
            "/api/v1/map/{community}/{layer}.geojson": {
                "get": {
                    "summary": "one layer of a community's map as a GeoJSON FeatureCollection, scoped to the caller; "
                    "WGS-84, or GCJ-02 when SANDTABLE_TILE_CRS=gcj02 with a tile source. devices: each feature's "
                    "battery, battery_at (Beijing time) and battery_low when the device has reported one; "
                    "coverage: each camera's field of view as a polygon with heading, fov, range_m",
                    "security": BEARER,
                    "parameters": [
                        {"name": "community", "in": "path", "required": True, "schema": {"type": "string"}},
                        {
                            "name": "layer",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(LAYERS)},
                        },
                        _query("group", "devices only: in-home devices or the rest", ("household", "frontend")),
                    ],
                    "responses": {
                        "200": _json({"type": "object"}, "a GeoJSON FeatureCollection"),
                        "404": {"description": "unknown layer, or a community outside the caller's scope"},
                    },
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI document (public: it holds no data)."""
    return jsonify(document())
