"""Formula injection: text typed by anyone (a username at the login, a note on an alert, a tenant's
name) reaches every CSV and XLSX export as text, never as a formula a spreadsheet would run."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app import create_app
from auth.service import create_user
from closedloop.service import Loop
from core.i18n import t
from core.spreadsheet import safe_cell
from registry.importers import import_records
from registry.models import Household
from reports.service import make_report
from store.stores import Stores
from tests.conftest import run_manage
from tests.test_pipeline import devices_of
from tests.test_reports import POLICE, feed_and_sweep, now_ms, open_alert, request_for

ORIGIN = {"Origin": "http://localhost"}
LINK = '=HYPERLINK("http://127.0.0.1:9/x","click")'
ADMIN_PASSWORD = "admin-password-2026"


def fail_a_login_as(app: Any, username: str) -> None:
    """Type a username at the login page (with a wrong password): it lands in the audit log."""
    response = app.server.test_client().post(
        "/login", data={"username": username, "password": "wrong-password-1"}, headers=ORIGIN
    )
    assert response.status_code == 401


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("张三", "张三"),
        ("a=1", "a=1"),
        (-3, -3),
        (-2.5, -2.5),
        (None, ""),
        (dt.date(2026, 1, 2), dt.date(2026, 1, 2)),
    ],
)
def test_text_that_would_run_as_a_formula_becomes_text_and_numbers_stay_numbers(value: object, cell: object) -> None:
    assert safe_cell(value) == cell


def test_the_audit_export_command_writes_a_typed_username_as_text(stores: Stores) -> None:
    fail_a_login_as(create_app(stores), LINK)
    done = run_manage(stores.settings, "audit", "export", "--out", "-")
    assert done.returncode == 0, done.stderr
    targets = [row[5] for row in csv_rows(done.stdout)[1:]]
    assert "'" + LINK in targets
    assert LINK not in targets


def test_the_audit_api_csv_writes_a_typed_username_as_text(stores: Stores) -> None:
    with stores.sessions.begin() as session:
        create_user(session, "auditor", ADMIN_PASSWORD, "admin")
    app = create_app(stores)
    fail_a_login_as(app, LINK)
    admin = app.server.test_client()
    signed_in = admin.post("/login", data={"username": "auditor", "password": ADMIN_PASSWORD}, headers=ORIGIN)
    assert signed_in.status_code == 302
    response = admin.get("/api/v1/audit?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = csv_rows(response.get_data(as_text=True))
    target = rows[0].index("target")
    targets = [row[target] for row in rows[1:]]
    assert "'" + LINK in targets and LINK not in targets


@pytest.fixture
def typed_formulas(world: Stores) -> Stores:
    """Notes typed on an acknowledged and on a false smoke alarm, and a floating tenant imported
    into the registry, each beginning like a formula."""
    now = now_ms()
    detectors = devices_of(world, "smoke_detector", 2)
    feed_and_sweep(
        world,
        [
            {"type": "smoke.alarm", "device": d, "ts": now - 5_000 + i, "data": {"level": "alarm"}}
            for i, d in enumerate(detectors)
        ],
    )
    loop = Loop(world)
    first, second = open_alert(world, "smoke", 0), open_alert(world, "smoke", 1)
    loop.act(POLICE, "wanhu", first["id"], "acknowledge", expected="new", note="@SUM(1+1)")
    loop.act(POLICE, "wanhu", second["id"], "false_alarm", expected="new", note="=1+1")
    with world.sessions.begin() as session:
        household = session.scalars(select(Household.id).where(Household.community_id == "wanhu")).first()
        today = dt.date.today().isoformat()
        tenant = {
            "id": "wanhu-FORMULA",
            "name": "=2+3",
            "tags": "floating",
            "household": household,
            "role": "tenant",
            "floating_registered_on": today,
            "floating_expires_on": today,
        }
        report = import_records(session, "people", [tenant], "wanhu", id_hash_key=world.id_hash_key)
        assert report.ok, report
    return world


def test_report_csv_writes_typed_notes_and_names_as_text(typed_formulas: Stores, tmp_path: Path) -> None:
    zipped = tmp_path / "report.zip"
    make_report(typed_formulas, request_for(typed_formulas), "csv", zipped)
    with zipfile.ZipFile(zipped) as archive:
        steps = csv_rows(archive.read("alert_steps.csv").decode("utf-8"))
        floating = csv_rows(archive.read("floating.csv").decode("utf-8"))
    notes = [row[steps[0].index(t("report.col.note", "zh"))] for row in steps[1:]]
    assert "'=1+1" in notes and "'@SUM(1+1)" in notes
    assert "=1+1" not in notes and "@SUM(1+1)" not in notes
    names = [row[floating[0].index(t("report.col.person", "zh"))] for row in floating[1:]]
    assert "'=2+3" in names and "=2+3" not in names


def test_report_xlsx_stores_typed_notes_and_names_as_text_cells(typed_formulas: Stores, tmp_path: Path) -> None:
    xlsx = tmp_path / "report.xlsx"
    make_report(typed_formulas, request_for(typed_formulas), "xlsx", xlsx)
    book = load_workbook(xlsx)
    for sheet, typed in (("report.table.alert_steps", ("=1+1", "@SUM(1+1)")), ("report.table.floating", ("=2+3",))):
        cells = [c for row in book[t(sheet, "zh")].iter_rows(min_row=2) for c in row]
        for value in typed:
            found = [c for c in cells if isinstance(c.value, str) and c.value.endswith(value)]
            assert found, (sheet, value)
            assert all(c.data_type == "s" and c.value == "'" + value for c in found), [
                (c.value, c.data_type) for c in found
            ]
    # numbers stay numbers
    counts = book[t("report.table.alerts_by_type", "zh")]
    assert any(c.data_type == "n" and isinstance(c.value, int) for row in counts.iter_rows(min_row=2) for c in row)
