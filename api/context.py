"""The web app's composition root and request context, below every route, page and callback.

``create_app`` builds one ``Services`` object (the stores, the clock, and the services built on
them) and puts it on the Flask server; routes, access control, layouts and callbacks reach it
through ``services()``, ``stores()`` and ``clock()`` instead of caching services of their own.
Each service is made on first use in a process (a gunicorn worker opens its own connections after
the fork).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlparse

from flask import current_app, request

from closedloop.service import Loop
from core.clock import Clock
from core.i18n import normalize_lang
from ingest.directory import Directory
from ingest.service import IngestService
from reports.jobs import JobStore
from store.stores import Stores

LANG_COOKIE = "st_lang"
EXTENSION = "sandtable"


@dataclass
class Services:
    """Everything a request may need, built once per app."""

    stores: Stores
    clock: Clock

    @cached_property
    def directory(self) -> Directory:
        """The registry facts cached in this process (shared by ingest and the wall)."""
        return Directory(self.stores.sessions)

    @cached_property
    def ingest(self) -> IngestService:
        """The ingest service."""
        return IngestService(self.stores, directory=self.directory, clock=self.clock)

    @cached_property
    def loop(self) -> Loop:
        """The closed loop."""
        return Loop(self.stores, self.clock)

    @cached_property
    def reports(self) -> JobStore:
        """The report jobs of the /reports page."""
        return JobStore(self.stores, self.clock)


def services() -> Services:
    """The running app's services."""
    found: Services = current_app.extensions[EXTENSION]
    return found


def stores() -> Stores:
    """The stores of the running app."""
    return services().stores


def clock() -> Clock:
    """The clock of the running app (the wall clock; a test's hand-moved one)."""
    return services().clock


def request_lang() -> str:
    """The language of this request: the cookie, else the configured default (Chinese)."""
    return normalize_lang(request.cookies.get(LANG_COOKIE), stores().settings.default_lang)


def safe_next(target: str | None) -> str:
    """A same-site path to go back to (never an absolute URL: no open redirect)."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
