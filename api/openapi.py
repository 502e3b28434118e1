"""``GET /api/v1/openapi.json`` (interfaces §3): the OpenAPI 3.1 document of the HTTP API — every
route under ``/api/`` and the plain JSON routes beside them (``/healthz``, the basemap), with their
parameters, bodies, answers and refusals.

The bodies and answers are the schemas of api/schemas.py (the msgspec Structs that decode the
search and the events, and the constants the hand-written checks use); the paged routes take their
parameters and headers from api/paging.py. tests/test_openapi.py holds the document to the routes
Flask serves, and tests/test_api_fuzz.py holds the real answers to the document.

``GET /api/v1/docs`` is the same document as a page to read (api/apidocs.py)."""

from __future__ import annotations

import copy
import functools
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from alerts.constants import ALERT_TYPES
from api import paging
from api.map import LAYERS
from api.schemas import HOUSEHOLD_CATEGORIES, SCHEMAS, ref

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

JSON = "application/json"
SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
INGEST: list[dict[str, list[str]]] = [{"bearer": []}]
PUBLIC: list[dict[str, list[str]]] = []
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _list_of(name: str, description: str) -> dict[str, Any]:
    return _json({"type": "array", "items": ref(name)}, description)


def _file(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _json(ref("Error"), description, headers)


UNAUTHORIZED = _error(
    "no token or session, or one that is invalid, expired or revoked",
    {"WWW-Authenticate": {"description": 'Bearer realm="sandtable"', "schema": {"type": "string"}}},
)
FORBIDDEN = _error("the role or the scope does not allow it (audited)")
UNAVAILABLE = _error("a store is unavailable; retry shortly", RETRY_AFTER)
TOO_LARGE = _error("the body is larger than the server takes")


def _query(name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _body(name: str, description: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"required": True, "content": {JSON: {"schema": ref(name)}}}
    if description:
        body["description"] = description
    return body


def _operation(
    summary: str,
    permission: str,
    responses: dict[str, Any],
    *,
    security: list[dict[str, list[str]]] = SIGNED_IN,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    tag: str,
) -> dict[str, Any]:
    """One operation: its refusals added as the access layer answers them (401 when a signed-in
    caller is needed, 503 when a store is away: any route)."""
    answers = dict(responses)
    if security:
        answers.setdefault("401", UNAUTHORIZED)
        answers.setdefault("403", FORBIDDEN)
    if body is not None:
        answers.setdefault("400", _error("the body cannot be used; field names what is wrong"))
        answers.setdefault("413", TOO_LARGE)
    answers.setdefault("503", UNAVAILABLE)
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "security": security,
        "x-permission": permission,
        "responses": dict(sorted(answers.items())),
    }
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    return op


COMMUNITY = _query("community", "one community of the caller's scope (default: all of them)")


def _paths() -> dict[str, dict[str, Any]]:
    return {
        "/healthz": {
            "get": _operation(
                "liveness: the web process answers and reaches Redis",
                "public",
                {"200": _json(ref("Health"), "up")},
                security=PUBLIC,
                tag="meta",
            )
        },
        "/geo/basemap.geojson": {
            "get": _operation(
                "the offline basemap (roads, water, districts) the pages draw under the communities",
                "public",
                {
                    "200": {
                        "description": "GeoJSON",
                        "content": {"application/geo+json": {"schema": ref("FeatureCollection")}},
                    }
                },
                security=PUBLIC,
                tag="meta",
            )
        },
        "/api/v1/openapi.json": {
            "get": _operation(
                "this document", "public", {"200": _json(ref("OpenAPI"), "OpenAPI 3.1")}, security=PUBLIC, tag="meta"
            )
        },
        "/api/v1/docs": {
            "get": _operation(
                "this document as a page to read (Chinese, or English by the language switch)",
                "public",
                {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
                security=PUBLIC,
                tag="meta",
            )
        },
        "/api/v1/events": {
            "post": _operation(
                "device events (interfaces §2): one object, an array of at most SANDTABLE_INGEST_MAX_BATCH, or NDJSON",
                "ingest token of the community",
                {
                    "202": _json(ref("IngestResult"), "accepted, duplicates and rejected events"),
                    "400": _error("the body is not JSON or NDJSON, or the batch is too long"),
                    "403": _error("not an ingest token, or ?community= names another community"),
                    "413": TOO_LARGE,
                    "429": _error("too many requests for this token", RETRY_AFTER),
                    "503": _error("the event stream is backlogged, or a store is unavailable; retry", RETRY_AFTER),
                },
                security=INGEST,
                parameters=[_query("community", "must be the token's community when given")],
                body={
                    "required": True,
                    "content": {
                        JSON: {"schema": {"oneOf": [ref("RawEvent"), {"type": "array", "items": ref("RawEvent")}]}},
                        "application/x-ndjson": {"schema": {"type": "string", "description": "one RawEvent per line"}},
                    },
                },
                tag="ingest",
            )
        },
        "/api/v1/gates/{device}/decide": {
            "post": _operation(
                "a face gate or barrier asks whether to open (interfaces §10)",
                "ingest token of the device's community",
                {
                    "200": _json(ref("GateDecision"), "allow or deny, with the reason"),
                    "403": _error("not an ingest token, or a device of another community"),
                    "404": _error("no such device"),
                    "409": _error("the device is not a gate"),
                },
                security=INGEST,
                parameters=[_path("device", "the gate's device id")],
                body=_body("GateAsk"),
                tag="ingest",
            )
        },
        "/api/v1/alerts": {
            "get": _operation(
                "alerts in the caller's scope, newest first (interfaces §3)",
                "read.alerts",
                {
                    "200": _json({"type": "array", "items": ref("Alert")}, "alerts", paging.openapi_headers()),
                    "400": _error("a parameter cannot be used"),
                },
                parameters=[
                    _query("status", "open (default) or all", {"type": "string", "enum": ["open", "all"]}),
                    _query("type", "one alert type", {"type": "string", "enum": list(ALERT_TYPES)}),
                    COMMUNITY,
                    _query("since", "RFC 3339 with an offset", {"type": "string", "format": "date-time"}),
                ],
                tag="alerts",
            )
        },
        "/api/v1/alerts/{community}/{alert_id}/evidence.jpg": {
            "get": _operation(
                "the evidence image of an alert the caller may see (a video detection's frame)",
                "read.evidence",
                {
                    "200": _file("image/jpeg", "the frame with the trajectory or the fall drawn"),
                    "404": _error("no such alert, one the caller may not see, or no image"),
                },
                parameters=[_path("community", "the alert's community"), _path("alert_id", "the alert's id")],
                tag="alerts",
            )
        },
        "/api/v1/incidents": {
            "post": _operation(
                "register an incident by hand (接警登记, interfaces §8)",
                "dispatch",
                {"201": _json(ref("Alert"), "the alert of type incident.reported, the caller's phone masked")},
                body=_body("Incident"),
                tag="alerts",
            )
        },
        "/api/v1/events/search": {
            "post": _operation(
                "the event archive by place and time (interfaces §9); audited",
                "investigate (a grid worker: their grid)",
                {
                    "200": _json(ref("SearchPage"), "a page, ordered by ts"),
                    "400": _json(ref("SearchError"), "the field refused and why"),
                },
                body={"required": True, "content": {JSON: {"schema": ref("SearchBody")}}},
                tag="archive",
            )
        },
        "/api/v1/state": {
            "get": _operation(
                "the sand-table at a past moment (interfaces §9): devices, guards, alerts open then",
                "read.alerts and read.registry",
                {
                    "200": _json(ref("State"), "the state at that time"),
                    "400": _error("community or at cannot be used (field names which)"),
                },
                parameters=[
                    _query("community", "a community of the caller's scope", required=True),
                    _query(
                        "at",
                        "RFC 3339 with an offset; not in the future, within the events' retention",
                        {"type": "string", "format": "date-time"},
                        required=True,
                    ),
                    _query(
                        "lang",
                        "the language of a refusal: en (default) or zh",
                        {"type": "string", "enum": ["en", "zh"]},
                    ),
                ],
                tag="archive",
            )
        },
        "/api/v1/devices": {
            "get": _operation(
                "devices in the caller's scope with their online status",
                "read.registry",
                {"200": _json({"type": "array", "items": ref("Device")}, "devices", paging.openapi_headers())},
                parameters=[_query("type", "one device type"), COMMUNITY],
                tag="registry",
            )
        },
        "/api/v1/households": {
            "get": _operation(
                "households in the caller's scope",
                "read.registry",
                {
                    "200": _json({"type": "array", "items": ref("Household")}, "households", paging.openapi_headers()),
                    "400": _error("category cannot be used"),
                },
                parameters=[
                    _query("category", "household category", {"type": "string", "enum": list(HOUSEHOLD_CATEGORIES)}),
                    COMMUNITY,
                ],
                tag="registry",
            )
        },
        "/api/v1/people": {
            "get": _operation(
                "people in the caller's scope, one row each, ID number and phone masked",
                "read.people",
                {"200": _json({"type": "array", "items": ref("Person")}, "people", paging.openapi_headers())},
                parameters=[_query("tag", "one person tag (elderly_alone, floating, …)"), COMMUNITY],
                tag="registry",
            )
        },
        "/api/v1/people/{person_id}/unmask": {
            "post": _operation(
                "one person's ID number and phone, with a stated reason (audited)",
                "unmask",
                {
                    "200": _json(ref("Unmasked"), "the record unmasked"),
                    "400": _error("no reason of at least 4 characters"),
                    "403": _error("the role may not unmask, or the person is unknown or outside the scope"),
                },
                parameters=[_path("person_id", "the person's id")],
                body=_body("UnmaskReason"),
                tag="registry",
            )
        },
        "/api/v1/audit": {
            "get": _operation(
                "the audit log, newest first (JSON, or CSV with ?format=csv)",
                "audit.read",
                {
                    "200": {
                        "description": "audit entries",
                        "headers": paging.openapi_headers(),
                        "content": {
                            JSON: {"schema": {"type": "array", "items": ref("AuditEntry")}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _error("limit is not an integer"),
                },
                parameters=[_query("format", "csv for a download", {"type": "string", "enum": ["json", "csv"]})],
                tag="audit",
            )
        },
        "/api/v1/map/{community}/{layer}.geojson": {
            "get": _operation(
                "one layer of a community's map, scoped to the caller; WGS-84, or GCJ-02 when "
                "SANDTABLE_TILE_CRS=gcj02 with a tile source. devices: each feature's battery, battery_at "
                "(Beijing time) and battery_low when reported; coverage: each camera's field of view",
                "read.registry",
                {
                    "200": _json(ref("FeatureCollection"), "a GeoJSON FeatureCollection"),
                    "404": _error("unknown layer, or a community outside the caller's scope"),
                },
                parameters=[
                    _path("community", "a community of the caller's scope"),
                    _path("layer", "the layer", {"type": "string", "enum": list(LAYERS)}),
                    _query(
                        "group",
                        "devices only: in-home devices or the rest",
                        {"type": "string", "enum": ["household", "frontend"]},
                    ),
                ],
                tag="map",
            )
        },
        "/api/v1/reports/{job_id}": {
            "get": _operation(
                "the file of a report made on the /reports page, to the user who made it",
                "view.reports (its owner)",
                {
                    "200": {
                        "description": "the report as PDF, Excel, or a ZIP of CSV files",
                        "content": {
                            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                            "application/zip": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "404": _error("no such report, not finished, or someone else's (audited)"),
                },
                parameters=[_path("job_id", "the report job's id")],
                tag="reports",
            )
        },
        "/api/v1/reports/daily/{community}/{day}": {
            "get": _operation(
                "the daily situation report of a community as PDF",
                "view.reports",
                {
                    "200": _file("application/pdf", "the daily PDF"),
                    "404": _error("no report for that day, or a community outside the scope (audited)"),
                },
                parameters=[
                    _path("community", "a community of the caller's scope"),
                    _path("day", "the day, YYYY-MM-DD (Beijing)", {"type": "string", "format": "date"}),
                ],
                tag="reports",
            )
        },
    }


@functools.cache
def _document() -> dict[str, Any]:
    paths = _paths()
    for path, method in paging.PAGED_ROUTES.items():
        op = paths[path][method]
        op["parameters"] = [*op.get("parameters", []), *paging.openapi_parameters()]
        op["responses"].setdefault("400", _error("a parameter cannot be used (e.g. cursor)"))
        op["responses"] = dict(sorted(op["responses"].items()))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sandtable API",
            "version": "1",
            "description": "The HTTP API of Sandtable (docs/api.md). Every refusal is JSON; an unknown path "
            "under /api/ answers 404 and a wrong method 405.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": [
            {"name": name} for name in ("meta", "ingest", "alerts", "archive", "registry", "audit", "map", "reports")
        ],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "manage.py token create"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "st_session",
                    "description": "signed in at /login",
                },
            },
            "schemas": SCHEMAS,
        },
        "paths": paths,
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a copy: callers may change it)."""
    return copy.deepcopy(_document())


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI document (public: it holds no data)."""
    return jsonify(_document())
