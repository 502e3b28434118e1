"""The visitor-approval panel, shared by the police console and the property office's tasks page."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from auth.masking import mask_phone
from core.i18n import t
from core.timefmt import aware, local_text
from gates.models import VisitorPass
from gates.service import SELF_APPLIED
from layouts import ids


def approval_panel(lang: str) -> html.Div:
    """The panel: pending passes with approve / reject (a rejection needs a reason)."""
    return html.Div(
        className="st-approvals",
        children=[
            html.Div(t("visitor.approvals", lang), className="st-panel-title st-gap"),
            dcc.RadioItems(
                id=ids.VISITOR_ORDER,
                options=[
                    {"label": t("visitor.newest_first", lang), "value": "newest"},
                    {"label": t("visitor.oldest_first", lang), "value": "oldest"},
                ],
                value="newest",
                inline=True,
                className="st-radio st-order",
            ),
            html.Div(id=ids.VISITOR_LIST),
            html.Div(
                className="st-pager",
                children=[
                    html.Button("‹", id=ids.VISITOR_PREV, className="st-btn st-btn-small st-btn-ghost", n_clicks=0),
                    html.Span(id=ids.VISITOR_PAGER, className="st-muted"),
                    html.Button("›", id=ids.VISITOR_NEXT, className="st-btn st-btn-small st-btn-ghost", n_clicks=0),
                ],
            ),
            dcc.Store(id=ids.VISITOR_PAGE, data=0),
            html.Div(id=ids.VISITOR_MSG, className="st-msg", role="status"),
            dcc.Store(id=ids.VISITOR_DONE, data=0),
            dcc.Store(id=ids.VISITOR_LANG, data=lang),
            html.Div(t("visitor.revocable", lang), className="st-panel-title st-gap"),
            html.Div(id=ids.VISITOR_REVOCABLE),
            html.Div(id=ids.VISITOR_REVOKE_MSG, className="st-msg", role="status"),
            dcc.Store(id=ids.VISITOR_REVOKED, data=0),
        ],
    )


def _when(value: Any) -> str:
    return local_text(int(aware(value).timestamp() * 1000), "%m-%d %H:%M")


def _pass_row(
    p: VisitorPass, lang: str, places: dict[str, str], note: dict[str, str], placeholder: str, buttons: list[Any]
) -> html.Div:
    """One pass: visitor (masked), address, window, plate, reason; a note field and the buttons."""
    return html.Div(
        className="st-approval st-revocable" if note["type"] == "visitor-revoke-note" else "st-approval",
        id=f"visitor-{p.id}",
        children=[
            html.Div(
                [
                    html.B(p.visitor_name),
                    f" · {p.id_masked} · {mask_phone(p.phone)}",
                    html.Div(
                        f"{places.get(p.household_id, '—')} · {_when(p.valid_from)} – {_when(p.valid_to)}"
                        + (f" · {p.plate}" if p.plate else "")
                        + (f" · {p.reason}" if p.reason else "")
                        + (f" · {t('visitor.self_applied', lang)}" if p.requested_by == SELF_APPLIED else ""),
                        className="st-muted",
                    ),
                    dcc.Input(id=note, placeholder=placeholder, maxLength=200, className="st-note"),
                ]
            ),
            html.Div(className="st-actions", children=buttons),
        ],
    )


def approval_rows(passes: list[VisitorPass], lang: str, places: dict[str, str]) -> list[Any]:
    """One row per pending pass (places: household id → its address)."""
    if not passes:
        return [html.Div(t("visitor.none_pending", lang), className="st-muted")]
    return [
        _pass_row(
            p,
            lang,
            places,
            {"type": "visitor-note", "pass": p.id},
            t("console.reason", lang),
            [
                html.Button(
                    t("visitor.approve", lang),
                    id={"type": "visitor-act", "pass": p.id, "approve": 1},
                    className="st-btn st-btn-small",
                ),
                html.Button(
                    t("visitor.reject", lang),
                    id={"type": "visitor-act", "pass": p.id, "approve": 0},
                    className="st-btn st-btn-small st-btn-ghost",
                ),
            ],
        )
        for p in passes
    ]


def revocable_rows(passes: list[VisitorPass], lang: str, places: dict[str, str]) -> list[Any]:
    """One row per approved pass that has not ended, with a reason field and **revoke**."""
    if not passes:
        return [html.Div(t("visitor.none_revocable", lang), className="st-muted")]
    return [
        _pass_row(
            p,
            lang,
            places,
            {"type": "visitor-revoke-note", "pass": p.id},
            t("visitor.revoke_reason", lang),
            [
                html.Button(
                    t("visitor.revoke", lang),
                    id={"type": "visitor-revoke", "pass": p.id},
                    className="st-btn st-btn-small st-btn-danger",
                )
            ],
        )
        for p in passes
    ]
