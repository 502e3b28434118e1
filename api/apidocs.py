"""``GET /api/v1/docs``: the OpenAPI document (api/openapi.py) as a page to read — every route with
its method, summary, access, parameters, body and answers, and the schemas they refer to.

Rendered on the server from the document itself (no Swagger UI, nothing fetched from a CDN): the
page cannot say anything the document does not. Its own words are in core/i18n.py (Chinese by
default, English by the language switch); the summaries are the document's (English)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, make_response, render_template_string
from flask.typing import ResponseReturnValue

from api.context import request_lang
from api.openapi import document
from core.i18n import t

bp = Blueprint("apidocs", __name__, url_prefix="/api/v1")

METHODS = ("get", "post", "put", "patch", "delete")

PAGE = (Path(__file__).parent / "apidocs.html").read_text(encoding="utf-8")  # a Jinja template


def schema_text(schema: dict[str, Any]) -> str:
    """A short name of a schema: its component's name, an array of one, or its type."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return f"[{schema_text(schema['items'])}]"
    for combined in ("oneOf", "anyOf"):
        if combined in schema:
            return " | ".join(schema_text(s) for s in schema[combined])
    text = str(schema.get("type", "object"))
    if "enum" in schema:
        text += " (" + ", ".join(map(str, schema["enum"])) + ")"
    if "format" in schema:
        text += f" ({schema['format']})"
    return text


def operations(doc: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """The document's operations as the page shows them, in the document's order."""
    ops = []
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            security = op.get("security") or []
            auth = "apidocs.public" if not security else "apidocs.signed_in" if len(security) > 1 else "apidocs.ingest"
            body = op.get("requestBody", {}).get("content", {})
            ops.append(
                {
                    "method": method,
                    "path": path,
                    "anchor": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                    "summary": op.get("summary", ""),
                    "permission": op.get("x-permission", ""),
                    "auth": t(auth, lang),
                    "parameters": [{**p, "type": schema_text(p.get("schema", {}))} for p in op.get("parameters", [])],
                    "body": [(media, schema_text(c.get("schema", {}))) for media, c in body.items()],
                    "responses": [
                        {
                            "status": status,
                            "description": r.get("description", ""),
                            "content": [(m, schema_text(c.get("schema", {}))) for m, c in r.get("content", {}).items()],
                            "headers": ", ".join(r.get("headers", {})),
                        }
                        for status, r in op["responses"].items()
                    ],
                }
            )
    return ops


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """The API reference page (public, like the document)."""
    lang = request_lang()
    doc = document()
    html = render_template_string(
        PAGE,
        lang=lang,
        other="en" if lang == "zh" else "zh",
        tr=lambda key: t(key, lang),
        doc=doc,
        ops=operations(doc, lang),
        schemas=[
            (name, json.dumps(schema, ensure_ascii=False, indent=2))
            for name, schema in doc["components"]["schemas"].items()
        ],
    )
    response = make_response(html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response
