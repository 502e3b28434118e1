"""Plain web routes beside the Dash pages: language switch, offline geodata, health."""

from __future__ import annotations

import hashlib
import logging

from dash.exceptions import DashException
from flask import Flask, Response, jsonify, redirect, request, send_file
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from api.context import LANG_COOKIE, request_lang, safe_next, stores
from api.params import BadParameter
from core.errors import StoreUnavailable
from core.i18n import normalize_lang, t
from core.settings import ROOT
from geodata.layers import basemap_path
from store.redis_server import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


def _build_id() -> str:
    """Changes when the served code or assets change (a deploy): open wall screens then reload."""
    digest = hashlib.sha256()
    for folder in ("assets", "layouts", "callbacks"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".js", ".css", ".py"):
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


BUILD_ID = _build_id()


def register_web_routes(server: Flask) -> None:
    """Add the plain routes and the security headers to the server."""

    @server.get("/lang/<code>")
    def switch_language(code: str) -> ResponseReturnValue:
        response = redirect(safe_next(request.args.get("next")))
        response.set_cookie(LANG_COOKIE, normalize_lang(code), max_age=365 * 86400, samesite="Lax", httponly=True)
        return response

    @server.get("/geo/basemap.geojson")
    def basemap() -> Response:
        response = send_file(basemap_path(), mimetype="application/geo+json", max_age=3600)
        return response

    @server.errorhandler(StoreUnavailable)
    def store_down(err: Exception) -> ResponseReturnValue:
        log.error("store unavailable: %s", err)
        response = jsonify({"error": "a store is unavailable; retry shortly"})
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response

    for transient in TRANSIENT_ERRORS:  # Redis away, or a cluster failing over
        server.register_error_handler(transient, store_down)

    @server.errorhandler(BadParameter)
    def bad_parameter(err: BadParameter) -> ResponseReturnValue:
        response = jsonify({"error": str(err), "field": err.values.get("field")})
        response.status_code = 400
        return response

    @server.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> ResponseReturnValue:
        """Under /api/ every refusal is JSON (an abort(404), a body over MAX_CONTENT_LENGTH: 413…);
        elsewhere Flask's own page."""
        if not request.path.startswith("/api/") or err.code is None:
            return err
        key = "api.err.not_found" if err.code == 404 else "api.err.http"
        response = jsonify({"error": t(key, request_lang(), reason=err.name)})
        response.status_code = err.code
        return response

    @server.errorhandler(DashException)
    def bad_callback_request(err: Exception) -> ResponseReturnValue:
        log.info("refused a malformed callback request: %s", err)
        response = jsonify({"error": "malformed callback request"})
        response.status_code = 400
        return response

    @server.get("/healthz")
    def health() -> Response:
        s = stores()
        s.redis.ping()
        return jsonify({"status": "ok", "boot": BUILD_ID})
