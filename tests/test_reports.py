"""Situation reports: figures from alerts raised through the real pipeline and handled through the
closed loop, patrol rounds, visitor passes and gate traffic; PDF text and pages, CSV and XLSX that
agree with it; bad input; masking; the daily schedule; the /reports page in a browser."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import delete, select

from alerts.live import AlertStore
from alerts.models import AlertRecord
from analytics.worker import Worker
from auth.principal import Principal
from closedloop.service import Loop
from core.i18n import t
from core.timefmt import SHANGHAI
from gates.models import GateHourly, PatrolRound, VisitorPass
from ingest.directory import Directory
from ingest.service import IngestService
from registry.demo import WANTED_ID
from registry.models import PatrolRoute, Person
from reports import calc
from reports.model import Coverage
from reports.request import build_request
from reports.scheduler import Sidecar, daily_path, list_daily, run_due_reports, sidecar_path
from reports.service import make_report
from reports.typeset import tokens, wrap
from store.stores import Stores
from store.stores import Stores as StoresType
from tests.browser import browser_login, click_text, text_of, until, wait_for
from tests.conftest import ARTIFACTS, LiveServer, env_for, http_login, run_manage, save_screenshot
from tests.test_closed_loop import on_duty
from tests.test_pipeline import devices_of, drain

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

HOUR = 3_600_000
POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
OPERATOR = Principal(kind="system", id="manage.py", role="police")
ID_RE = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")
PHONE_RE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def now_ms() -> int:
    return int(time.time() * 1000)


def today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def feed_and_sweep(world: Stores, events: list[dict[str, Any]]) -> None:
    """Ingest events, let a worker process them, then fire the timers that are due (as the sweep does)."""
    IngestService(world).ingest("wanhu", events)
    worker = Worker(world)
    worker.start_community("wanhu", seed_timers=False)
    drain(worker)
    worker.sweep("wanhu")


def open_alert(world: Stores, alert_type: str, n: int = 0) -> dict[str, Any]:
    found = sorted(
        (a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == alert_type),
        key=lambda a: a["id"],
    )
    return found[n]


def raise_and_handle(world: Stores) -> dict[str, Any]:
    """A day of the demo community: alerts raised by the real pipeline, handled through the loop."""
    now = now_ms()
    sensors = list(Directory(world.sessions).facts("wanhu").elder_sensors.items())
    (quiet_sensor, (quiet_elder, _)), (silent_sensor, _) = sensors[0], sensors[1]
    camera = devices_of(world, "camera", 1)[0]
    detectors = devices_of(world, "smoke_detector", 2)
    lock = devices_of(world, "smart_lock", 3)[2]
    wearable = devices_of(world, "wearable", 1)[0]
    events: list[dict[str, Any]] = [
        # an elder's bedroom door shut for 13 hours, the sensor alive: elder.inactive
        {"type": "door.contact", "device": quiet_sensor, "ts": now - 13 * HOUR, "data": {"state": "closed"}},
        {"type": "device.heartbeat", "device": quiet_sensor, "ts": now - 60_000, "data": {}},
        # another elder's sensor silent for 3 hours: sensor.silent
        {"type": "door.contact", "device": silent_sensor, "ts": now - 3 * HOUR, "data": {"state": "open"}},
        # a camera that stopped heartbeating two hours ago: device.offline
        {"type": "device.heartbeat", "device": camera, "ts": now - 2 * HOUR, "data": {"battery": 80}},
        {"type": "smoke.alarm", "device": detectors[0], "ts": now - 5_000, "data": {"level": "alarm"}},
        {"type": "smoke.alarm", "device": detectors[1], "ts": now - 4_000, "data": {"level": "alarm"}},
        {"type": "lock.open", "device": lock, "ts": now - 3_000, "data": {"method": "face", "id_number": WANTED_ID}},
    ]
    feed_and_sweep(world, events)
    loop = Loop(world)
    smoke, false_smoke = open_alert(world, "smoke", 0), open_alert(world, "smoke", 1)
    # smoke 1: acknowledged, a guard dispatched, accepts, arrives, closes
    loop.act(POLICE, "wanhu", smoke["id"], "acknowledge", expected="new")
    feed_and_sweep(
        world,
        [
            {
                "type": "guard.position",
                "device": wearable,
                "ts": now_ms(),
                "data": {"lat": smoke["location"]["lat"], "lon": smoke["location"]["lon"] + 0.0006},
            }
        ],
    )
    on_duty(world, "wanhu-GD01")
    task = loop.dispatch(POLICE, "wanhu", smoke["id"], "wanhu-GD01", expected="acknowledged")
    guard = Principal(kind="user", id="guard.gd01", role="grid_worker", community="wanhu", guard="wanhu-GD01")

    def version() -> int:
        return loop.tasks_of_alert(smoke["id"])[-1].version

    loop.task_action(guard, task.id, "accept", version=version())
    loop.task_action(guard, task.id, "arrive", version=version())
    loop.task_action(guard, task.id, "close", version=version(), outcome="handled", notes="厨房油烟，已处置")
    # smoke 2: a false alarm; the note carries a phone number that the report must mask
    loop.act(POLICE, "wanhu", false_smoke["id"], "false_alarm", expected="new", note="住户13812345678测试烟感")
    # the elder: acknowledged and resolved after a phone call
    elder = open_alert(world, "elder.inactive")
    loop.act(POLICE, "wanhu", elder["id"], "acknowledge", expected="new", note="电话联系")
    loop.act(POLICE, "wanhu", elder["id"], "resolve", expected="acknowledged", note="老人在家，身体无恙")
    # the wanted person: acknowledged, still open
    loop.act(POLICE, "wanhu", open_alert(world, "watchlist.match")["id"], "acknowledge", expected="new")
    with world.sessions() as session:
        elder_name = session.scalars(select(Person.name).where(Person.id == quiet_elder)).one()
    return {"elder": quiet_elder, "elder_name": elder_name}


def insert_outer_ring(world: Stores) -> dict[str, Any]:
    """Patrol rounds, visitor passes and gate counts of the period (and some outside it)."""
    day = today()
    start = dt.datetime.combine(day, dt.time(0, 30), tzinfo=SHANGHAI).astimezone(dt.UTC)
    with world.sessions.begin() as session:
        # the worker's sweeps of the lived day may have judged a check of tonight's real round (the
        # demo route runs 20:00–06:00): only the rounds below belong to the scenario
        session.execute(delete(PatrolRound).where(PatrolRound.community_id == "wanhu"))
        route = session.scalars(select(PatrolRoute).where(PatrolRoute.community_id == "wanhu")).first()
        assert route is not None and len(route.checkpoints) == 12
        cps = {cp.seq: cp.device_id for cp in route.checkpoints}
        rounds = [
            (0, 12, [], []),
            (1, 10, [3], [cps[5]]),  # a sequence number and a checkpoint device id
            (2, 9, [], [{"seq": 7}, 8, cps[5]]),  # an object, a number, a device id
        ]
        for i, on_time, late, missed in rounds:
            session.add(
                PatrolRound(
                    community_id="wanhu",
                    route_id=route.id,
                    round_start=start + dt.timedelta(hours=2 * i),
                    expected=12,
                    on_time=on_time,
                    late=late,
                    missed=missed,
                    guard_id="wanhu-GD02",
                )
            )
        session.add(  # ten days earlier: outside the period
            PatrolRound(
                community_id="wanhu",
                route_id=route.id,
                round_start=start - dt.timedelta(days=10),
                expected=12,
                on_time=0,
                late=[],
                missed=list(range(1, 13)),
            )
        )
        for i, (status, came) in enumerate(
            [("approved", True), ("approved", True), ("approved", False), ("rejected", False), ("pending", False)]
        ):
            session.add(
                VisitorPass(
                    id=f"VP{i}",
                    community_id="wanhu",
                    household_id="wanhu-B001-1-101",
                    visitor_name="访客甲",
                    id_hash="h" * 64,
                    id_masked="110105********002X",
                    phone="13900001111",
                    valid_from=start,
                    valid_to=start + dt.timedelta(hours=8),
                    status=status,
                    entered_at=start + dt.timedelta(hours=1) if came else None,
                    created_at=start + dt.timedelta(minutes=i),
                )
            )
        session.add(
            VisitorPass(
                id="VP-old",
                community_id="wanhu",
                household_id="wanhu-B001-1-101",
                visitor_name="访客乙",
                id_hash="h" * 64,
                id_masked="110105********002X",
                phone="13900001111",
                valid_from=start - dt.timedelta(days=30),
                valid_to=start - dt.timedelta(days=30),
                status="approved",
                created_at=start - dt.timedelta(days=30),
            )
        )
        for hour, kind, direction, category, n in [
            (8, "face", "in", "resident", 120),
            (8, "face", "in", "visitor", 5),
            (9, "vehicle", "in", "resident", 40),
            (18, "face", "out", "resident", 110),
            (19, "vehicle", "out", "unknown", 3),
        ]:
            session.add(
                GateHourly(
                    community_id="wanhu", day=day, hour=hour, kind=kind, direction=direction, category=category, count=n
                )
            )
        session.add(
            GateHourly(
                community_id="wanhu",
                day=day - dt.timedelta(days=10),
                hour=8,
                kind="face",
                direction="in",
                category="resident",
                count=999,
            )
        )
    return {"route": route.name, "checkpoint5": cps[5]}


@pytest.fixture
def lived_day(world: Stores) -> tuple[Stores, dict[str, Any]]:
    facts = raise_and_handle(world)
    facts.update(insert_outer_ring(world))
    return world, facts


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def pdf_pages(path: Path, name: str) -> list[Path]:
    """The PDF's pages as PNG files under test-artifacts/ (for a person to look at)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "110", "-png", str(path), str(ARTIFACTS / name)], check=True)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


def numbers(line: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"(?<![\w.])\d[\d,]*(?:\.\d+)?", line)]


def request_for(world: Stores, lang: str = "zh", principal: Principal = OPERATOR, **kw: Any):
    with world.sessions() as session:
        return build_request(
            session,
            principal,
            world.settings,
            communities=kw.pop("communities", "wanhu"),
            start=kw.pop("start", (today() - dt.timedelta(days=1)).isoformat()),
            end=kw.pop("end", today().isoformat()),
            lang=lang,
            **kw,
        )


def test_report_of_a_lived_day_pdf_csv_xlsx_agree(lived_day: tuple[Stores, dict[str, Any]], tmp_path: Path) -> None:
    world, facts = lived_day
    request = request_for(world)
    pdf = tmp_path / "report.pdf"
    data = make_report(world, request, "pdf", pdf)
    pages = pdf_pages(pdf, "report_wanhu_zh")
    assert len(pages) >= 5
    text = pdf_text(pdf)
    # the community in Chinese, the fonts embedded, no missing glyph
    assert "万户新村" in text and "态势报告" in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "NotoSansCJKSC" in fonts and "Type 3" not in fonts
    # the figures the pipeline and the loop produced
    with world.sessions() as session:
        by_type: dict[str, int] = {}
        for kind in session.scalars(select(AlertRecord.type)):
            by_type[kind] = by_type.get(kind, 0) + 1
    assert by_type["smoke"] == 2 and by_type["elder.inactive"] == 1 and by_type["device.offline"] == 1
    total = sum(by_type.values())
    assert data.figures["alerts"] == total
    assert f"本期共发生警情 {total} 起" in text
    lines = text.splitlines()
    for kind, n in by_type.items():
        label = t(f"alert.type.{kind}", "zh")
        row = next(line for line in lines if kind in line and label in line)
        assert numbers(row)[0] == n, row
    # the elder's name is shown to the police; the phone typed in a note is not
    assert facts["elder_name"] in text
    # patrol: 36 checkpoint visits expected, 31 on time, 1 late, 4 missed (the round ten days ago is out)
    route_row = next(line for line in lines if facts["route"] in line and "%" in line)
    assert numbers(route_row)[:5] == [3, 36, 31, 1, 4] and "86.1%" in route_row
    # visitors and gates of the period only
    assert "访客申请 5 件，批准 3 件" in text and "出入口通行进 165 人次、出 113 人次" in text

    # CSV (a zip) and XLSX hold the same tables and the same numbers
    zipped = tmp_path / "report.zip"
    make_report(world, request, "csv", zipped)
    xlsx = tmp_path / "report.xlsx"
    make_report(world, request, "xlsx", xlsx)
    with zipfile.ZipFile(zipped) as archive:
        names = set(archive.namelist())
        assert {f"{k}.csv" for k in data.tables} <= names
        csv_type = pd.read_csv(io.BytesIO(archive.read("alerts_by_type.csv")), encoding="utf-8-sig")
        csv_patrol = pd.read_csv(io.BytesIO(archive.read("patrol_routes.csv")), encoding="utf-8-sig")
        csv_steps = pd.read_csv(io.BytesIO(archive.read("alert_steps.csv")), encoding="utf-8-sig")
        every_csv = "".join(archive.read(n).decode("utf-8-sig") for n in names)
    sheets = pd.read_excel(xlsx, sheet_name=None)
    xlsx_type = sheets[t("report.table.alerts_by_type", "zh")]
    for frame in (csv_type, xlsx_type):
        counted = dict(zip(frame[t("report.col.type_code", "zh")], frame[t("report.col.alerts", "zh")], strict=True))
        assert counted == by_type
    assert csv_patrol[t("report.col.on_time_pct", "zh")].tolist() == [86.1]
    assert sheets[t("report.table.patrol_routes", "zh")][t("report.col.missed_points", "zh")].tolist() == [4]
    assert len(sheets[t("report.table.alerts", "zh")]) == total
    # every step of the handled smoke alert, and the phone in the false alarm's note masked
    notes = " ".join(str(n) for n in csv_steps[t("report.col.note", "zh")].dropna())
    assert "138****5678" in notes and "13812345678" not in every_csv
    assert not ID_RE.search(every_csv) and not PHONE_RE.search(every_csv)
    assert not ID_RE.search(text) and not PHONE_RE.search(text)


def test_english_report_and_wall_masking(lived_day: tuple[Stores, dict[str, Any]], tmp_path: Path) -> None:
    world, facts = lived_day
    wall = Principal(kind="system", id="manage.py", role="wall")
    pdf = tmp_path / "report-en.pdf"
    make_report(world, request_for(world, "en", wall), "pdf", pdf)
    pdf_pages(pdf, "report_wanhu_en_wall")
    text = pdf_text(pdf)
    assert "Situation report" in text and "Wanhu" in text and "Smoke alarm" in text
    assert "Masking: wall display" in text
    assert facts["elder_name"] not in text
    out = tmp_path / "csv"
    make_report(world, request_for(world, "en", wall), "csv", out)
    elders = pd.read_csv(out / "elders.csv", encoding="utf-8-sig")
    assert set(elders["Person"]) == {"—"}
    assert "电话联系" not in (out / "alert_steps.csv").read_text(encoding="utf-8-sig")  # notes are for police


# --- pure parts -----------------------------------------------------------------------------------
def test_line_breaking_keeps_punctuation_off_line_starts() -> None:
    width = {"中": 2.0}

    def measure(text: str) -> float:
        return sum(width.get(ch, 2.0 if ord(ch) > 255 else 1.0) for ch in text)

    lines = wrap("本期共发生警情十二起，其中独居老人门磁超时三起。", 10, measure)
    assert all(line and line[0] not in "，。" for line in lines)
    assert "".join(lines) == "本期共发生警情十二起，其中独居老人门磁超时三起。"
    assert tokens("“独居”（门磁）4.2分钟") == ["“独", "居”", "（门", "磁）", "4.2", "分", "钟"]
    assert wrap("English words stay whole", 12, measure) == ["English", "words stay", "whole"]


def at(minutes: float) -> dt.datetime:
    return dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], {}),
        (
            [
                calc.Step(at(0), "raised", "new", "system"),
                calc.Step(at(3), "acknowledged", "acknowledged", "police.wanhu"),
                calc.Step(at(8), "dispatched", "dispatched", "police.wanhu"),
                calc.Step(at(20), "on_scene", "on_scene", "system", "geofence"),
                calc.Step(at(50), "resolved", "resolved", "guard"),
            ],
            {"acknowledged": 3, "dispatched": 5, "on_scene": 12, "resolved": 30},
        ),
        # escalations and the system clearing the condition are not responses
        (
            [
                calc.Step(at(6), "escalated", "new", "system", "acknowledge: SLA missed"),
                calc.Step(at(40), "resolved", "resolved", "system", "door open"),
            ],
            {},
        ),
        # a direct dispatch answers the alert: it is the first response
        (
            [calc.Step(at(4), "dispatched", "dispatched", "police.wanhu")],
            {"acknowledged": 4, "dispatched": 0},
        ),
        ([calc.Step(at(2), "false_alarm", "false_alarm", "police.wanhu")], {"acknowledged": 2, "resolved": 0}),
    ],
)
def test_stage_minutes(steps: list[calc.Step], expected: dict[str, float]) -> None:
    assert calc.stage_minutes(at(0), steps) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("entry", "device"),
    [("CP-3", "CP-3"), (3, "CP-3"), ("3", "CP-3"), ({"seq": 3}, "CP-3"), ({"device": "CP-3"}, "CP-3"), (True, None)],
)
def test_patrol_entries_name_their_checkpoint(entry: Any, device: str | None) -> None:
    assert calc.checkpoint_of(entry, {3: "CP-3"}, {"CP-3"}) == device


def test_availability_and_registration_status() -> None:
    assert calc.availability(3_600_000, 10, 10 * 3_600_000) == 99.0
    assert calc.availability(0, 0, 1000) is None
    ref = dt.date(2026, 11, 7)
    assert calc.floating_status(None, None, ref) == "unregistered"
    assert calc.floating_status(dt.date(2025, 11, 1), dt.date(2026, 11, 6), ref) == "expired"
    assert calc.floating_status(dt.date(2025, 11, 1), dt.date(2026, 11, 20), ref) == "expiring"
    assert calc.floating_status(dt.date(2026, 1, 1), dt.date(2027, 1, 1), ref) == "valid"


# --- bad input, empty periods, the command line ------------------------------------------------------
def test_an_empty_period_says_there_was_nothing(world: Stores, tmp_path: Path) -> None:
    pdf = tmp_path / "empty.pdf"
    data = make_report(world, request_for(world, start="2020-01-01", end="2020-01-07"), "pdf", pdf)
    text = pdf_text(pdf)
    assert data.figures["alerts"] == 0
    assert t("report.say.empty", "zh") in text and "本期未发生警情" in text
    assert "13,0" in text  # the registry's figures are still there


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--community", "nowhere"], "unknown community: nowhere"),
        (["--community", "wanhu", "--from", "2026-11-08", "--to", "2026-11-01"], "the period is reversed"),
        (["--community", "wanhu", "--from", "2024-01-01", "--to", "2025-06-30"], "at most 366 are allowed"),
        (["--community", "wanhu", "--from", "2026-11-31"], "--from must be a date written YYYY-MM-DD"),
        (["--community", "wanhu", "--format", "docx"], "--format must be pdf, csv or xlsx"),
    ],
)
def test_bad_input_is_one_line_and_a_failure(world: Stores, tmp_path: Path, args: list[str], reason: str) -> None:
    base = {"--from": "2026-11-01", "--to": "2026-11-07", "--out": str(tmp_path / "r.pdf")}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    done = run_manage(world.settings, "report", *(x for pair in base.items() for x in pair))
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and reason in done.stderr, done.stderr
    assert not (tmp_path / "r.pdf").exists()


def test_a_missing_font_names_the_package(world: Stores, tmp_path: Path) -> None:
    env = env_for(world.settings)
    env["SANDTABLE_REPORT_FONT_REGULAR"] = str(tmp_path / "NotoSansCJK-Regular.ttc")
    args = ("report", "--community", "wanhu", "--from", "2026-11-01", "--to", "2026-11-01", "--out", "x.pdf")
    done = run_manage(world.settings, *args, env=env)
    assert done.returncode != 0 and "fonts-noto-cjk" in done.stderr and done.stderr.count("\n") == 1
    doctor = run_manage(world.settings, "doctor", env=env)
    assert "fonts-noto-cjk" in next(line for line in doctor.stdout.splitlines() if "cjk-font" in line)


def test_cli_csv_of_two_communities_into_a_folder(world: Stores, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    day = today().isoformat()
    done = run_manage(
        world.settings,
        *("report", "--community", "wanhu,xingbang", "--from", day, "--to", day),
        *("--format", "csv", "--lang", "en", "--role", "property", "--out", str(out), "--json"),
    )
    assert done.returncode == 0, done.stderr
    assert '"communities": [\n    "wanhu",\n    "xingbang"\n  ]' in done.stdout
    figures = pd.read_csv(out / "key_figures.csv", encoding="utf-8-sig")
    assert figures["Community"].tolist() == ["Wanhu Xincun", "Xingbang Central Park", "Total"]
    assert figures["Residents"].iloc[2] == figures["Residents"].iloc[0] + figures["Residents"].iloc[1]
    floating = pd.read_csv(out / "floating.csv", encoding="utf-8-sig")
    assert floating["Person"].str.contains(r"\*", regex=True).all()  # property staff: names partly masked
    assert (out / "summary.txt").read_text(encoding="utf-8").startswith("Situation report")


# --- the daily schedule ---------------------------------------------------------------------------
def local_ms(day: dt.date, hour: int, minute: int) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI).timestamp() * 1000)


def test_daily_reports_are_written_once_after_their_time(world: Stores) -> None:
    settings = world.settings.model_copy(update={"report_daily_enabled": True, "report_daily_at": "07:00"})
    stores = StoresType(settings=settings, engine=world.engine, keys=world.keys)
    day = dt.date(2026, 3, 2)
    assert run_due_reports(stores, local_ms(day, 6, 59)) == []  # not yet
    # no event of either community (tests/test_daily_reports.py has the worker's side): due at 07:01, their
    # reports wait report_daily_wait_minutes (60) for events that might still come
    assert run_due_reports(stores, local_ms(day, 7, 1)) == []
    written: list[Path] = []
    workers = [
        threading.Thread(target=lambda: written.extend(run_due_reports(stores, local_ms(day, 8, 1)))) for _ in range(3)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    yesterday = day - dt.timedelta(days=1)
    expected = {daily_path(settings, c, yesterday) for c in ("wanhu", "xingbang")}
    assert sorted(written) == sorted(expected)  # each exactly once, whoever wrote it
    assert all(p.read_bytes().startswith(b"%PDF") for p in expected)
    assert run_due_reports(stores, local_ms(day, 9, 0)) == []  # already there, and nothing changed since
    assert [r.community for r in list_daily(settings, ["wanhu"])] == ["wanhu"]
    assert not list(daily_path(settings, "wanhu", yesterday).parent.glob(".*"))  # no partial file left


# --- the /reports page ------------------------------------------------------------------------------
def job_request(start: str, end: str) -> dict[str, Any]:
    """The Dash callback request of the Generate button, as a browser would send it."""
    outputs = [
        ("report-job", "data"),
        ("report-status", "children"),
        ("report-poll", "disabled"),
        ("report-link", "className"),
        ("report-link", "href"),
        ("report-progress", "style"),
    ]
    states = [
        ("report-community", "value", ["wanhu"]),
        ("report-dates", "start_date", start),
        ("report-dates", "end_date", end),
        ("report-format", "value", "pdf"),
        ("report-lang", "value", "zh"),
        ("report-job", "data", None),
        ("report-page", "data", {"lang": "zh"}),
    ]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [
            {"id": "report-generate", "property": "n_clicks", "value": 1},
            {"id": "report-poll", "property": "n_intervals", "value": None},
        ],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in states],
        "changedPropIds": ["report-generate.n_clicks"],
    }


@pytest.mark.browser
def test_reports_page_generates_downloads_and_keeps_it_private(world: Stores, browser) -> None:
    yesterday = today() - dt.timedelta(days=1)
    for community in ("wanhu", "xingbang"):  # daily PDFs already made by the workers
        path = daily_path(world.settings, community, yesterday)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%PDF-1.4 daily " + community.encode())
    # wanhu's was made again when late data came in (the sidecar the scheduler keeps beside it)
    end = local_ms(today(), 0, 0)
    again = Sidecar(Coverage(end - 1, complete=True), {"gate_passages": 3}, end + 3_600_000, end, 2)
    sidecar_path(daily_path(world.settings, "wanhu", yesterday)).write_text(json.dumps(again.to_json()))
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/reports")
        wait_for(browser, "#report-generate")
        page = browser.find_element(By.CSS_SELECTOR, ".st-reports").text
        assert "万户新村" in page and "兴邦中央公园" not in page  # the police see their own community only
        daily_links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, ".st-daily-link")]
        assert daily_links == [f"{server.url}/api/v1/reports/daily/wanhu/{yesterday.isoformat()}"]
        day_text = f"{yesterday.month}月{yesterday.day}日"
        assert text_of(browser, ".st-daily-until") == f"数据截至 {day_text} 23:59"
        assert "01:00 补入迟到数据后重新生成（第 2 版）" in text_of(browser, ".st-daily-again")
        save_screenshot(browser, "reports_daily_list")
        click_text(browser, "#report-generate", "")
        wait_for(browser, "#report-link:not(.st-hidden)")
        assert "已生成" in text_of(browser, "#report-status")
        save_screenshot(browser, "reports_page_ready")
        href = until(lambda: browser.find_element(By.ID, "report-link").get_attribute("href"), "the report's link")
        assert href.startswith(f"{server.url}/api/v1/reports/")
        cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
        mine = requests.get(href, cookies=cookies, timeout=30)
        assert mine.status_code == 200 and mine.content.startswith(b"%PDF")
        assert "attachment" in mine.headers["Content-Disposition"] and ".pdf" in mine.headers["Content-Disposition"]
        assert requests.get(daily_links[0], cookies=cookies, timeout=30).content.endswith(b"wanhu")
        # nobody else gets it: not another police officer, not even an administrator
        for user in ("police.xingbang", "admin"):
            other = http_login(server.url, user)
            assert other.get(href, timeout=30).status_code == 404
        outsider = http_login(server.url, "police.xingbang")
        assert outsider.get(daily_links[0], timeout=30).status_code == 404  # another community's daily PDF
        assert requests.get(href, timeout=30).status_code == 401  # not signed in
        # a period over the maximum is refused on the page with a sentence
        start = browser.find_element(By.ID, "report-dates")
        start.send_keys(Keys.CONTROL, "a")
        start.send_keys("2020-01-01", Keys.TAB)
        browser.find_element(By.ID, "report-generate").click()
        refused = wait_for(browser, "#report-status .st-msg-error")[0]
        assert "超过上限 366 天" in refused.text
        # a reversed range sent to the callback by hand (no picker in the way) is refused too
        police = http_login(server.url, "police.wanhu")
        police.get(server.url + "/_dash-layout", timeout=30)
        reply = police.post(server.url + "/_dash-update-component", json=job_request("2026-11-08", "2026-11-01"))
        assert reply.status_code == 200
        assert "起止日期颠倒" in reply.json()["response"]["report-status"]["children"]["props"]["children"]
    finally:
        server.stop()
