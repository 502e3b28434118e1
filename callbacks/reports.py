"""Callbacks of the reports page. Role, scope and masking come from the server session; the browser only
says which communities, dates, format and language it wants, and which job it is waiting for (the
job is read back only when it belongs to the caller)."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from api.context import services, stores
from auth.callbacks import page_callback
from auth.policy import can
from auth.principal import current_principal
from callbacks.util import as_dict
from core.i18n import t
from layouts import ids
from reports.request import ReportInputError, build_request, check_format

HIDDEN = "st-btn st-report-link st-hidden"
SHOWN = "st-btn st-report-link"


def page_lang(page: Any) -> str:
    """The page's language (only used to choose texts)."""
    return "en" if as_dict(page).get("lang") == "en" else "zh"


def as_strings(value: Any) -> list[str]:
    """The dropdown's value as a list of community ids (anything else: none)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def error(text: str) -> html.Span:
    """A one-sentence refusal."""
    return html.Span(text, className="st-msg-error")


@page_callback(
    "view.reports",
    Output(ids.REPORT_JOB, "data"),
    Output(ids.REPORT_STATUS, "children"),
    Output(ids.REPORT_POLL, "disabled"),
    Output(ids.REPORT_LINK, "className"),
    Output(ids.REPORT_LINK, "href"),
    Output(ids.REPORT_PROGRESS, "style"),
    Input(ids.REPORT_GENERATE, "n_clicks"),
    Input(ids.REPORT_POLL, "n_intervals"),
    State(ids.REPORT_COMMUNITY, "value"),
    State(ids.REPORT_DATES, "start_date"),
    State(ids.REPORT_DATES, "end_date"),
    State(ids.REPORT_FORMAT, "value"),
    State(ids.REPORT_LANG, "value"),
    State(ids.REPORT_JOB, "data"),
    State(ids.REPORT_PAGE, "data"),
    prevent_initial_call=True,
)
def report_job(
    clicks: Any, _tick: Any, communities: Any, start: Any, end: Any, fmt: Any, lang_choice: Any, job: Any, page: Any
) -> Any:
    """Generate: check the request against the caller's scope and start a job. Poll: the job's
    progress, and the download link once it is done."""
    principal = current_principal()
    if not can(principal, "view.reports"):
        raise PreventUpdate
    lang = page_lang(page)
    if ctx.triggered_id == ids.REPORT_GENERATE:
        if not clicks:
            raise PreventUpdate
        try:
            check_format(str(fmt))
            with stores().sessions() as session:
                request = build_request(
                    session,
                    principal,
                    stores().settings,
                    communities=as_strings(communities),
                    start=start if isinstance(start, str) else "",
                    end=end if isinstance(end, str) else "",
                    lang="en" if lang_choice == "en" else "zh",
                )
            job_id = services().reports.start(principal, request, str(fmt))
        except ReportInputError as err:
            return no_update, error(err.text(lang)), True, HIDDEN, "", {"width": "0%"}
        return {"job": job_id}, t("report.progress.registry", lang), False, HIDDEN, "", {"width": "2%"}
    waited = as_dict(job).get("job")
    found = services().reports.owned(waited, principal) if isinstance(waited, str) else None
    if found is None:
        return no_update, error(t("error.not_found", lang)), True, HIDDEN, "", {"width": "0%"}
    width = {"width": f"{max(2, min(100, found.progress))}%"}
    if found.status == "running":
        return no_update, t(found.step, lang), False, HIDDEN, "", width
    if found.status == "done":
        done = html.Span(t("report.page.ready", lang, name=found.filename), className="st-msg-ok")
        return no_update, done, True, SHOWN, f"/api/v1/reports/{found.id}", width
    return no_update, error(t(found.step or "report.job.failed", lang)), True, HIDDEN, "", {"width": "0%"}
