"""Case files (案件, issue #19): the list of the caller's cases, and one case (``/cases?case=ID``): its
query, pins (remove), notes (add), close, and its export (PDF, or a ZIP of the four files with their
manifest). Opening a case here is audited (memory.cases.get_case); callbacks/cases.py acts on it."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from api.context import request_lang, stores
from auth.labels import labels
from auth.principal import Principal, current_principal
from core.errors import SandtableError
from core.i18n import t
from core.timefmt import local_text
from layouts.shell import forbidden, header, nav_links
from memory import cases

PERMISSION = "investigate"
PAGE = "case-page"
BODY = "case-body"
LIST = "case-list"
MESSAGE = "case-message"
NOTE = "case-note-text"
ADD_NOTE = "case-add-note"
CLOSE = "case-close"
CLOSE_CONFIRM = "case-close-confirm"
EXPORT_PDF = "case-export-pdf"
EXPORT_ZIP = "case-export-zip"
EXPORT_MESSAGE = "case-export-message"
DOWNLOAD = "case-download"
UNPIN = "case-unpin"  # dict ids: {"type": UNPIN, "pin": id}


def _minute(value: Any) -> str:
    return local_text(int(value.timestamp() * 1000), "%Y-%m-%d %H:%M") if value is not None else "—"


def where(row: dict[str, Any]) -> str:
    """Place, device, person and plate of a timeline row (the place once, when the device's name holds it)."""
    place = "" if row["place"] and row["place"] in row["device"] else row["place"]
    return " ".join(x for x in (place, row["device"], row["who"], row["plate"]) if x)


def case_list(rows: list[dict[str, Any]], lang: str, current: str | None) -> html.Div | html.Ul:
    """The caller's cases, newest first; each a link to its view."""
    if not rows:
        return html.Div(t("case.page.none", lang), className="st-empty st-empty-small")
    return html.Ul(
        className="st-case-list",
        children=[
            html.Li(
                className="st-case-item" + (" st-case-current" if c["id"] == current else ""),
                children=[
                    html.A(c["name"], href=f"/cases?case={c['id']}", className="st-case-name"),
                    html.Span(t(f"case.status.{c['status']}", lang), className=f"st-case-status st-case-{c['status']}"),
                    html.Span(
                        t(
                            "case.page.item",
                            lang,
                            at=_minute(c["created_at"]),
                            by=c["created_by_name"],
                            pins=c["pins"],
                            notes=c["notes"],
                        ),
                        className="st-case-meta",
                    ),
                ],
            )
            for c in rows
        ],
    )


def case_view(session: Any, principal: Principal, doc: dict[str, Any], lang: str) -> list[Any]:
    """A case's facts, query, pins (with remove while open) and notes."""
    from memory.case_export import pin_items, query_lines, readable  # noqa: PLC0415 — with its PDF (2 s) on use

    is_open = doc["status"] == "open"
    found = labels(session, principal, [v for v in doc["query"].values() if isinstance(v, str)], lang)
    pins = readable(session, principal, pin_items(doc), lang)
    return [
        html.H2(
            className="st-case-title",
            children=[
                doc["name"],
                html.Span(t(f"case.status.{doc['status']}", lang), className=f"st-case-status st-case-{doc['status']}"),
            ],
        ),
        html.Div(
            t(
                "case.page.facts",
                lang,
                id=doc["id"],
                at=_minute(doc["created_at"]),
                by=doc["created_by_name"],
                closed=_minute(doc["closed_at"]),
            ),
            className="st-case-meta",
        ),
        html.H3(t("case.pdf.query", lang), className="st-panel-title"),
        html.Ul(
            className="st-case-query",
            children=[html.Li(line) for line in query_lines(doc["query"], found, lang)]
            or [html.Li(t("case.q.none", lang))],
        ),
        html.H3(t("case.page.pins", lang, n=len(pins)), className="st-panel-title"),
        html.Div(t("case.page.no_pins", lang), className="st-empty-small")
        if not pins
        else html.Ul(
            className="st-case-pins",
            children=[
                html.Li(
                    className="st-case-pin",
                    children=[
                        html.Span(p["time"], className="st-case-time"),
                        html.Span(f"{t('case.kind.' + p['kind'], lang)} · {p['type']}", className="st-case-type"),
                        html.Span(
                            where(p),
                            className="st-case-place",
                        ),
                        html.Button(
                            t("case.page.unpin", lang),
                            id={"type": UNPIN, "pin": p["pin"]},
                            className="st-btn st-btn-small st-btn-ghost",
                            disabled=not is_open,
                        ),
                    ],
                )
                for p in pins
            ],
        ),
        html.H3(t("case.pdf.notes", lang), className="st-panel-title"),
        html.Ul(
            className="st-case-notes",
            children=[
                html.Li(
                    className="st-case-note",
                    children=[
                        html.Span(f"{_minute(n['at'])} · {n['author_name']}", className="st-case-meta"),
                        html.Div(n["text"], className="st-case-note-text"),
                    ],
                )
                for n in doc["notes"]
            ]
            or [html.Li(t("case.pdf.no_notes", lang), className="st-empty-small")],
        ),
    ]


def controls(lang: str, is_open: bool) -> html.Div:
    """Add a note, close the case, export it (the buttons stay; a closed case disables the first two)."""
    return html.Div(
        className="st-case-controls",
        children=[
            dcc.Textarea(
                id=NOTE,
                className="st-case-note-input",
                placeholder=t("case.page.note_placeholder", lang),
                disabled=not is_open,
                maxLength=cases.NOTE_MAX,
            ),
            html.Div(
                className="st-field-row",
                children=[
                    html.Button(t("case.page.add_note", lang), id=ADD_NOTE, className="st-btn", disabled=not is_open),
                    dcc.ConfirmDialogProvider(
                        id=CLOSE_CONFIRM,
                        message=t("case.page.close_confirm", lang),
                        children=html.Button(
                            t("case.page.close", lang), id=CLOSE, className="st-btn st-btn-danger", disabled=not is_open
                        ),
                    ),
                    html.Button(t("case.page.export_pdf", lang), id=EXPORT_PDF, className="st-btn st-btn-ghost"),
                    html.Button(t("case.page.export_zip", lang), id=EXPORT_ZIP, className="st-btn st-btn-ghost"),
                ],
            ),
            html.Div(id=MESSAGE),
            dcc.Loading(html.Div(id=EXPORT_MESSAGE), type="dot"),
            dcc.Download(id=DOWNLOAD),
        ],
    )


def layout(case: str | None = None, **_: Any) -> html.Div:
    """The cases page (police, admins, grid workers: their own)."""
    lang = request_lang()
    refused = forbidden(lang, PERMISSION)
    if refused is not None:
        return refused
    principal = current_principal()
    view: list[Any] = []
    with stores().sessions.begin() as session:
        listed = cases.list_cases(session, principal)
        if case:
            try:
                doc = cases.get_case(session, principal, case)
            except SandtableError as err:
                view = [html.Div(err.text(lang), className="st-msg-error")]
            else:
                view = [
                    html.Div(id=BODY, children=case_view(session, principal, doc, lang)),
                    controls(lang, doc["status"] == "open"),
                ]
    return html.Div(
        className="st-page st-cases",
        children=[
            header(lang, subtitle=t("nav.cases", lang), tools=nav_links(lang), path="/cases"),
            dcc.Store(id=PAGE, data={"lang": lang, "case": case or ""}),
            html.Main(
                className="st-cases-grid",
                children=[
                    html.Section(
                        className="st-panel",
                        children=[
                            html.Div(t("case.page.list", lang), className="st-panel-title"),
                            html.Div(id=LIST, children=case_list(listed, lang, case)),
                        ],
                    ),
                    html.Section(
                        className="st-panel st-case-view",
                        children=view or [html.Div(t("case.page.pick", lang), className="st-empty st-empty-small")],
                    ),
                ],
            ),
        ],
    )


dash.register_page(__name__, path="/cases", name="cases", title="案件", layout=layout)
