"""The Dash app (wall screen, console, grid-worker view) and the HTTP API on one Flask server.

Thin on purpose: pages live in ``layouts/``, callbacks in ``callbacks/``, HTTP routes in
``api/``. ``create_server`` is the factory gunicorn calls (``app:create_server()``).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import dash
from dash import _callback
from flask import Flask

from api.access import TrustedProxyFix
from api.access import install as install_access_control
from api.apidocs import bp as apidocs_bp
from api.context import EXTENSION, Services
from api.events import bp as events_bp
from api.gates import bp as gates_bp
from api.incidents import bp as incidents_bp
from api.map import bp as map_bp
from api.memory import bp as memory_bp
from api.metrics import bp as metrics_bp
from api.openapi import bp as openapi_bp
from api.registry_api import bp as registry_bp
from api.reports import bp as reports_bp
from api.resident import bp as resident_bp
from api.state import bp as state_bp
from api.visit import bp as visit_bp
from api.web import register_web_routes
from core.clock import Clock, WallClock
from core.i18n import t
from core.settings import ROOT, Settings, get_settings
from layouts.shell import shell_layout
from store.stores import Stores, open_stores

log = logging.getLogger(__name__)

PAGE_MODULES = (
    "layouts.city",
    "layouts.wall",
    "layouts.console",
    "layouts.tasks",
    "layouts.reports",
    "layouts.investigate",
    "layouts.cases",
    "layouts.routes",
)
CALLBACK_MODULES = (
    "callbacks.wall",
    "callbacks.scrubber",
    "callbacks.city",
    "callbacks.console",
    "callbacks.incidents",
    "callbacks.tasks",
    "callbacks.mymap",
    "callbacks.visitors",
    "callbacks.modes",
    "callbacks.reports",
    "callbacks.notifications",
    "callbacks.investigate",
    "callbacks.cases",
    "callbacks.routes",
)


def create_app(stores: Stores | None = None, settings: Settings | None = None, clock: Clock | None = None) -> dash.Dash:
    """Build the Dash app on its Flask server, bound to the given (or configured) stores and clock
    (the wall clock unless a test moves time by hand)."""
    settings = settings or (stores.settings if stores else get_settings())
    stores = stores or open_stores(settings)
    server = Flask(__name__)
    server.config.update(
        SECRET_KEY=stores.secret,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=settings.ingest_max_bytes * 4,
        JSON_AS_ASCII=False,
    )
    server.extensions[EXTENSION] = Services(stores, clock or WallClock())  # the one composition root
    # X-Forwarded-Proto/-Host/-Port only from SANDTABLE_TRUSTED_PROXIES (deploy/nginx/sandtable.conf)
    server.wsgi_app = TrustedProxyFix(server.wsgi_app, settings.proxy_networks)  # type: ignore[method-assign]

    app = dash.Dash(
        __name__,
        server=server,  # type: ignore[arg-type]
        use_pages=True,
        pages_folder="",
        assets_folder=str(ROOT / "assets"),
        serve_locally=True,
        title=t("app.title", settings.default_lang),
        update_title=None,  # type: ignore[arg-type]
        suppress_callback_exceptions=True,
        compress=False,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    for module in PAGE_MODULES + CALLBACK_MODULES:
        importlib.import_module(module)
    _take_callbacks(app)

    register_web_routes(server)
    install_access_control(
        server,
        lambda: list(app.csp_hashes()),
        lambda output: app.callback_map[output] if "callback" in app.callback_map.get(output, {}) else None,
    )
    server.register_blueprint(map_bp)
    server.register_blueprint(registry_bp)
    server.register_blueprint(events_bp)
    server.register_blueprint(gates_bp)
    server.register_blueprint(incidents_bp)
    server.register_blueprint(memory_bp)
    server.register_blueprint(state_bp)
    server.register_blueprint(openapi_bp)
    server.register_blueprint(apidocs_bp)
    server.register_blueprint(resident_bp)
    server.register_blueprint(visit_bp)
    server.register_blueprint(reports_bp)
    server.register_blueprint(metrics_bp)
    app.layout = shell_layout
    return app


_CALLBACKS: dict[str, Any] = {}  # the module-level callbacks, taken once per process


def _take_callbacks(app: dash.Dash) -> None:
    """Give this app every ``dash.callback`` of our modules. Dash hands its module-level callbacks
    to the first app that serves a request and forgets them; a process that builds more than one
    app (the tests; a server is one app per process) needs each to get its own copy."""
    if not _CALLBACKS:
        _CALLBACKS.update(
            map=dict(_callback.GLOBAL_CALLBACK_MAP),
            list=list(_callback.GLOBAL_CALLBACK_LIST),
            scripts=list(_callback.GLOBAL_INLINE_SCRIPTS),
        )
        _callback.GLOBAL_CALLBACK_MAP.clear()
        _callback.GLOBAL_CALLBACK_LIST.clear()
        _callback.GLOBAL_INLINE_SCRIPTS.clear()
    callback_map, callback_list, inline_scripts = _CALLBACKS["map"], _CALLBACKS["list"], _CALLBACKS["scripts"]
    app.callback_map.update({k: dict(v) for k, v in callback_map.items()})
    app._callback_list.extend(dict(c) for c in callback_list)
    app._inline_scripts.extend(inline_scripts)


def create_server() -> Flask:
    """The Flask server with the Dash app mounted: the WSGI entry point."""
    server: Flask = create_app().server
    return server
