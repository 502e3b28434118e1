"""Situation reports (态势报告): make a report of chosen communities and dates (PDF, CSV or XLSX, Chinese or
English), follow its progress and download it; and the daily PDFs of the communities in scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import dcc, html

from api.context import request_lang, stores
from auth.principal import current_principal
from core.i18n import t
from core.timefmt import SHANGHAI
from layouts import ids
from layouts.shell import forbidden, header, nav_links
from registry import queries
from reports.model import coverage_text, local_minute
from reports.scheduler import DailyReport, list_daily


def daily_state(report: DailyReport, lang: str) -> list[html.Span]:
    """How far a daily report's data runs, and when it was rendered again with late data."""
    if report.sidecar is None:
        return []
    out = [html.Span(coverage_text(report.sidecar.coverage, lang), className="st-daily-until")]
    if report.sidecar.renders > 1:
        at = local_minute(report.sidecar.rendered_ms, lang)
        text = t("report.daily.rerendered", lang, at=at, n=report.sidecar.renders)
        out.append(html.Span(text, className="st-daily-again"))
    return out


def daily_list(lang: str, communities: list[tuple[str, str]]) -> html.Div | html.Ul:
    """Links to the daily PDFs of the caller's communities, newest first."""
    names = dict(communities)
    found = list_daily(stores().settings, [cid for cid, _ in communities])
    if not found:
        return html.Div(t("report.page.no_daily", lang), className="st-empty st-empty-small")
    return html.Ul(
        className="st-daily-list",
        children=[
            html.Li(
                className="st-daily",
                children=[
                    html.Span(r.day.isoformat(), className="st-daily-day"),
                    html.Div(
                        className="st-daily-what",
                        children=[
                            html.Span(names.get(r.community, r.community), className="st-daily-name"),
                            *daily_state(r, lang),
                        ],
                    ),
                    html.A(
                        t("report.page.download", lang) + f" PDF · {max(1, r.size // 1024)} KB",
                        href=f"/api/v1/reports/daily/{r.community}/{r.day.isoformat()}",
                        className="st-daily-link",
                    ),
                ],
            )
            for r in found[:62]
        ],
    )


def layout(**_: Any) -> html.Div:
    """The reports page (police and admins)."""
    lang = request_lang()
    refused = forbidden(lang, "view.reports")
    if refused is not None:
        return refused
    principal = current_principal()
    with stores().sessions() as session:
        visible = queries.communities(session, principal.scope)
        communities = [(c.id, c.name if lang == "zh" else (c.name_en or c.name)) for c in visible]
    if not communities:
        return html.Div(
            className="st-page", children=[header(lang), html.Main(t("wall.no_community", lang), className="st-empty")]
        )
    options = [{"label": name, "value": cid} for cid, name in communities]
    if len(communities) > 1:
        options.insert(0, {"label": t("report.page.all", lang), "value": "all"})
    today = dt.datetime.now(SHANGHAI).date()
    max_days = stores().settings.report_max_days

    def field(label: str, control: Any) -> html.Label:
        return html.Label(className="st-field", children=[html.Span(label, className="st-field-label"), control])

    return html.Div(
        className="st-page st-reports",
        children=[
            header(lang, subtitle=t("nav.reports", lang), tools=nav_links(lang), path="/reports"),
            html.Main(
                className="st-reports-grid",
                children=[
                    html.Section(
                        className="st-panel st-report-form",
                        children=[
                            html.Div(t("report.page.make", lang), className="st-panel-title"),
                            field(
                                t("community.label", lang),
                                dcc.Dropdown(
                                    id=ids.REPORT_COMMUNITY,
                                    options=options,
                                    value=[communities[0][0]],
                                    multi=True,
                                    clearable=False,
                                    className="st-select",
                                ),
                            ),
                            field(
                                t("report.page.period", lang),
                                dcc.DatePickerRange(
                                    id=ids.REPORT_DATES,
                                    start_date=(today - dt.timedelta(days=6)).isoformat(),
                                    end_date=today.isoformat(),
                                    display_format="YYYY-MM-DD",
                                    first_day_of_week=1,
                                    start_date_placeholder_text=t("report.page.from", lang),
                                    end_date_placeholder_text=t("report.page.to", lang),
                                    className="st-dates",
                                ),
                            ),
                            html.Div(t("report.page.max_days", lang, days=max_days), className="st-hint"),
                            field(
                                t("report.page.format", lang),
                                dcc.RadioItems(
                                    id=ids.REPORT_FORMAT,
                                    value="pdf",
                                    inline=True,
                                    className="st-radio",
                                    options=[
                                        {"label": "PDF", "value": "pdf"},
                                        {"label": t("report.page.csv", lang), "value": "csv"},
                                        {"label": "Excel (XLSX)", "value": "xlsx"},
                                    ],
                                ),
                            ),
                            field(
                                t("report.page.lang", lang),
                                dcc.RadioItems(
                                    id=ids.REPORT_LANG,
                                    value=lang,
                                    inline=True,
                                    className="st-radio",
                                    options=[{"label": "中文", "value": "zh"}, {"label": "English", "value": "en"}],
                                ),
                            ),
                            html.Button(t("report.page.generate", lang), id=ids.REPORT_GENERATE, className="st-btn"),
                            html.Div(
                                className="st-progress",
                                children=html.Div(id=ids.REPORT_PROGRESS, className="st-progress-bar"),
                            ),
                            html.Div(id=ids.REPORT_STATUS, className="st-msg", role="status"),
                            html.A(
                                t("report.page.download", lang),
                                id=ids.REPORT_LINK,
                                href="",
                                className="st-btn st-report-link st-hidden",
                            ),
                            html.Div(t("report.page.privacy", lang), className="st-hint"),
                        ],
                    ),
                    html.Section(
                        className="st-panel st-report-daily",
                        children=[
                            html.Div(
                                t("report.page.daily", lang, at=stores().settings.report_daily_at),
                                className="st-panel-title",
                            ),
                            daily_list(lang, communities),
                        ],
                    ),
                ],
            ),
            dcc.Store(id=ids.REPORT_PAGE, data={"lang": lang}),
            dcc.Store(id=ids.REPORT_JOB),
            dcc.Interval(id=ids.REPORT_POLL, interval=1000, disabled=True),
        ],
    )


dash.register_page(__name__, path="/reports", name="reports", title="态势报告", layout=layout)
