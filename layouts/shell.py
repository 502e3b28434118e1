"""The page shell: header with title, language switch and clock, then the page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import dash
from dash import dcc, html

from api.access import audit
from api.context import request_lang, stores
from auth.policy import can
from auth.principal import current_principal
from core.i18n import t
from layouts import ids
from layouts.attrs import data_attrs
from layouts.notifications import notification_area


def header(lang: str, *, subtitle: str = "", tools: list[Any] | None = None, path: str = "/") -> html.Header:
    """The top bar shared by every page (``path``: the page, for the language switch to come back to)."""
    other = "en" if lang == "zh" else "zh"
    back = quote(path, safe="")
    return html.Header(
        className="st-header",
        children=[
            html.Div(
                className="st-brand",
                children=[
                    html.Span(className="st-logo", children="◈"),
                    html.Span(t("app.title", lang), className="st-title"),
                    html.Span(subtitle, className="st-subtitle"),
                ],
            ),
            html.Div(
                className="st-header-right",
                children=[
                    *(tools or []),
                    html.Span(
                        id=ids.CONN_STATUS,
                        className="st-live",
                        children=t("status.live", lang),
                        **data_attrs(offline=t("status.offline", lang)),
                    ),
                    html.Span(id=ids.CLOCK, className="st-clock"),
                    html.A(t("lang.switch", lang), href=f"/lang/{other}?next={back}", className="st-lang"),
                    *user_menu(lang),
                ],
            ),
        ],
    )


def nav_links(lang: str) -> list[Any]:
    """Links to the pages the caller may open."""
    principal = current_principal()
    links = [
        ("/city", "nav.city", "view.city"),
        ("/", "nav.wall", "view.wall"),
        ("/console", "nav.console", "view.console"),
        ("/investigate", "nav.investigate", "investigate"),
        ("/tasks", "nav.tasks", "view.tasks"),
        ("/reports", "nav.reports", "view.reports"),
        ("/cases", "nav.cases", "investigate"),
        ("/routes", "nav.routes", "routes.edit"),
    ]
    return [
        html.A(t(key, lang), href=href, className="st-nav")
        for href, key, perm in links
        if can(principal, perm) and (href != "/city" or principal.city_wide)
    ]


def user_menu(lang: str) -> list[Any]:
    """The signed-in user's name and a sign-out link (nothing for a kiosk display)."""
    principal = current_principal()
    if principal.kind != "user":
        return []
    return [
        html.Span(principal.name, className="st-user"),
        html.A(t("nav.logout", lang), href="/logout", className="st-logout"),
    ]


def forbidden(lang: str, permission: str) -> html.Div | None:
    """None when the caller may see the page; else an audited refusal to show instead."""
    principal = current_principal()
    if can(principal, permission):
        return None

    audit("denied", target=permission, reason=f"page needs {permission}", outcome="denied")
    return html.Div(
        className="st-page",
        children=[
            header(lang),
            html.Main(className="st-empty", children=t("error.forbidden", lang)),
        ],
    )


def notifications(lang: str) -> list[Any]:
    """The in-app notifications, for those who may read them (nobody else polls for them)."""
    if not can(current_principal(), "read.notifications"):
        return []
    return [notification_area(lang, int(stores().settings.refresh_seconds * 1000))]


def shell_layout() -> html.Div:
    """The app's root layout (a function: it depends on the request's language)."""
    lang = request_lang()
    return html.Div(
        className="st-root",
        lang="zh-CN" if lang == "zh" else "en",
        children=[
            dcc.Location(id=ids.URL),
            dcc.Store(id=ids.LANG, data=lang),
            dcc.Interval(id=ids.CLOCK_TICK, interval=1000),
            dash.page_container,
            *notifications(lang),
        ],
    )
