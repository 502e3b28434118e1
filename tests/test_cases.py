"""Case files (案件, issue #19): a case's life through the domain API, its export, and the /cases page."""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from analytics.worker import Worker
from auth.models import AuditEntry
from auth.principal import Principal
from core.errors import Forbidden, InvalidInput, NotFound
from core.timefmt import iso_utc
from ingest.service import IngestService
from memory import cases
from memory.case_export import verify
from memory.search import SearchQuery, search
from registry.models import Device, Grid
from store.stores import Stores
from tests.browser import browser_login, until, wait_text
from tests.conftest import LiveServer, run_manage, save_screenshot

pytestmark = pytest.mark.also_on_pg

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
WALL = Principal(kind="user", id="wall.wanhu", role="wall", community="wanhu")


def grid_workers(stores: Stores) -> tuple[Principal, Principal]:
    with stores.sessions() as session:
        first, second = list(session.scalars(select(Grid.id).where(Grid.community_id == "wanhu").order_by(Grid.id)))[:2]
    return (
        Principal(kind="user", id="grid.one", role="grid_worker", community="wanhu", grid=first, name="网格员一"),
        Principal(kind="user", id="grid.two", role="grid_worker", community="wanhu", grid=second, name="网格员二"),
    )


def lock_item(stores: Stores, ts: int, image: str | None = None) -> dict[str, Any]:
    """An archived lock.open as memory.search.item_of gives it."""
    with stores.sessions() as session:
        wanted = select(Device).where(Device.type == "smart_lock", Device.community_id == "wanhu")
        lock = session.scalars(wanted).first()
        assert lock is not None
        data: dict[str, Any] = {"method": "card"}
        if image:
            data["image"] = image
        return {
            "id": f"ev-{ts}",
            "type": "lock.open",
            "device": lock.id,
            "ts": ts,
            "data": data,
            "community": "wanhu",
            "building": lock.building_id,
            "household": lock.household_id,
            "guard": None,
            "person": None,
            "plate": None,
            "location": {"lat": lock.lat, "lon": lock.lon},
            "entry": f"{ts}-0",
        }


def audit_actions(stores: Stores) -> list[tuple[str, str, str]]:
    with stores.sessions() as session:
        return [
            (a.action, a.actor, a.outcome)
            for a in session.scalars(select(AuditEntry).where(AuditEntry.action.like("case.%")).order_by(AuditEntry.id))
        ]


def test_a_case_is_created_pinned_noted_opened_and_closed(world: Stores) -> None:
    now = int(time.time() * 1000)
    query = {"from": "2026-12-05T14:00:00Z", "to": "2026-12-05T22:00:00Z", "types": ["lock.open"]}
    with world.sessions.begin() as session:
        case_id = cases.create_case(session, POLICE, community="wanhu", name="东门车辆被盗", query=query)
        pin_id = cases.pin(session, POLICE, case_id, lock_item(world, now - 60_000))
        assert cases.pin(session, POLICE, case_id, lock_item(world, now - 60_000)) == pin_id  # once
        second = cases.pin(session, POLICE, case_id, lock_item(world, now - 30_000))
        cases.unpin(session, POLICE, case_id, second)
        cases.add_note(session, POLICE, case_id, "嫌疑人 01:12 经东门离开")
    with world.sessions.begin() as session:
        doc = cases.get_case(session, POLICE, case_id)
        assert doc["name"] == "东门车辆被盗" and doc["status"] == "open"
        assert doc["query"]["types"] == ["lock.open"] and doc["query"]["community"] == "wanhu"
        assert [p["id"] for p in doc["pins"]] == [pin_id] and doc["pins"][0]["item"]["ts"] == now - 60_000
        assert [n["text"] for n in doc["notes"]] == ["嫌疑人 01:12 经东门离开"]
        listed = cases.list_cases(session, POLICE, "wanhu")
        assert [(c["id"], c["pins"], c["notes"]) for c in listed] == [(case_id, 1, 1)]
        cases.close_case(session, POLICE, case_id)
    with world.sessions.begin() as session:
        with pytest.raises(InvalidInput) as closed:
            cases.add_note(session, POLICE, case_id, "too late")
        assert "closed" in str(closed.value)
        assert cases.get_case(session, POLICE, case_id)["closed_at"] is not None
    assert [a for a in audit_actions(world) if a[0] in ("case.open", "case.close")] == [
        ("case.open", "police.wanhu", "ok"),
        ("case.close", "police.wanhu", "ok"),
        ("case.open", "police.wanhu", "ok"),
    ]


def test_a_grid_worker_sees_only_their_own_cases_and_the_wall_none(world: Stores) -> None:
    one, two = grid_workers(world)
    with world.sessions.begin() as session:
        mine = cases.create_case(session, one, community="wanhu", name="楼道电动车", query={})
        theirs = cases.create_case(session, POLICE, community="wanhu", name="民警的案件", query={})
    with world.sessions.begin() as session:
        assert [c["id"] for c in cases.list_cases(session, one)] == [mine]
        assert cases.list_cases(session, two) == []
        assert {c["id"] for c in cases.list_cases(session, POLICE)} == {mine, theirs}
        for who, case_id in ((two, mine), (one, theirs)):
            with pytest.raises(NotFound):
                cases.get_case(session, who, case_id)
    with world.sessions.begin() as session, pytest.raises(Forbidden):
        cases.list_cases(session, WALL)
    with world.sessions.begin() as session, pytest.raises(Forbidden):
        cases.create_case(session, POLICE, community="other", name="x", query={})
    with world.sessions.begin() as session:
        with pytest.raises(InvalidInput) as empty:
            cases.create_case(session, POLICE, community="wanhu", name="  ", query={})
        assert "name" in str(empty.value)
    assert ("case.list", "wall.wanhu", "denied") in audit_actions(world)
    assert ("case.create", "police.wanhu", "denied") in audit_actions(world)


def archive(stores: Stores, events: list[dict[str, Any]]) -> None:
    assert IngestService(stores).ingest("wanhu", events).accepted == len(events)
    worker = Worker(stores)
    worker.start_community("wanhu")
    assert worker.archiver is not None
    worker.archiver.run_once(["wanhu"])


def test_a_case_export_is_its_query_and_pins_with_hashes_that_show_a_change(world: Stores, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    with world.sessions() as session:
        gate = session.scalars(
            select(Device).where(Device.type == "vehicle_gate", Device.community_id == "wanhu")
        ).first()
        assert gate is not None
        gate_id = gate.id
    archive(
        world,
        [
            {
                "id": f"v{i}",
                "type": "gate.vehicle",
                "device": gate_id,
                "ts": now - 50_000 + i * 1000,
                "data": {"direction": "in", "plate": f"苏J0000{i}"},
            }
            for i in range(3)
        ],
    )
    query = {"from": iso_utc(now - 3_600_000), "to": iso_utc(now + 1000), "types": ["gate.vehicle"]}
    with world.sessions.begin() as session:
        found = search(session, SearchQuery("wanhu", now - 3_600_000, now + 1000, types=("gate.vehicle",)))
        case_id = cases.create_case(session, POLICE, community="wanhu", name="夜间车辆盗窃", query=query)
        cases.pin(session, POLICE, case_id, found.items[1])
        old = lock_item(world, now - 86_400_000 * 400)  # pinned long ago: the archive no longer has it
        cases.pin(session, POLICE, case_id, old)
        cases.add_note(session, POLICE, case_id, "苏J00001 本周仅出现一次")
        alert = {
            "id": "A-smoke-1",
            "type": "smoke",
            "severity": "high",
            "status": "resolved",
            "community": "wanhu",
            "subject": {"household": old["household"], "device": old["device"]},
            "location": old["location"],
            "opened_at": iso_utc(now - 20_000),
            "detected_at": iso_utc(now - 20_000),
            "count": 1,
            "evidence": {},
        }
        cases.pin(session, POLICE, case_id, alert, kind="alert")
        with pytest.raises(InvalidInput):
            cases.pin(session, POLICE, case_id, {"id": "x"}, kind="alert")  # no time
    out = tmp_path / "export"
    done = run_manage(world.settings, "case", "export", case_id, "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["counts"]["timeline"] == 5 and summary["counts"]["pins"] == 3
    assert summary["counts"]["alerts"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["case.pdf", "manifest.json", "timeline.csv", "timeline.json"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["case"] == case_id and manifest["query"]["types"] == ["gate.vehicle"]
    assert manifest["exported_by"].startswith("manage.py") and manifest["exported_at"].endswith("Z")
    assert set(manifest["files"]) == {"case.pdf", "timeline.csv", "timeline.json"}
    assert verify(out) == []
    timeline = json.loads((out / "timeline.json").read_text(encoding="utf-8"))["timeline"]
    assert [(r["id"], r["pinned"]) for r in timeline] == [
        (old["id"], True),
        ("v0", False),
        ("v1", True),
        ("v2", False),
        ("A-smoke-1", True),
    ]
    assert timeline[4]["type"] == "烟感报警" and "单元" in timeline[4]["place"]
    assert "苏J00001" in timeline[2]["plate"] and timeline[1]["device"] and gate_id not in timeline[1]["device"]
    csv_text = (out / "timeline.csv").read_text(encoding="utf-8-sig")
    assert csv_text.splitlines()[0].startswith("时间,标记") and "★ 已标记" in csv_text
    assert (out / "case.pdf").read_bytes().startswith(b"%PDF")
    (out / "timeline.csv").write_text(csv_text.replace("苏J00001", "苏J99999"), encoding="utf-8-sig")
    assert verify(out) == ["timeline.csv"]
    assert ("case.export", manifest["exported_by"], "ok") in audit_actions(world)
    refused = run_manage(world.settings, "case", "export", "C-nope", "--out", str(tmp_path / "x"))
    assert refused.returncode == 1 and refused.stderr.strip() == "error: No case C-nope"


@pytest.mark.browser
def test_the_cases_page_opens_a_case_and_adds_a_note(world: Stores, browser: Any, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    with world.sessions.begin() as session:
        case_id = cases.create_case(
            session,
            POLICE,
            community="wanhu",
            name="东门走失犬只",
            query={"from": iso_utc(now - 3_600_000), "to": iso_utc(now)},
        )
        cases.pin(session, POLICE, case_id, lock_item(world, now - 60_000))
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/cases")
        wait_text(browser, ".st-case-list", "东门走失犬只")
        assert "案件" in browser.find_element(By.CSS_SELECTOR, ".st-header").text  # the nav link
        browser.find_element(By.LINK_TEXT, "东门走失犬只").click()
        wait_text(browser, ".st-case-pins", "门锁开锁")
        pinned = browser.find_element(By.CSS_SELECTOR, ".st-case-pin").text
        assert "单元" in pinned  # the household's address, not its id
        browser.find_element(By.ID, "case-note-text").send_keys("19:40 随住户从东门离开")
        browser.find_element(By.ID, "case-add-note").click()
        wait_text(browser, ".st-case-notes", "19:40 随住户从东门离开")
        wait_text(browser, "#case-message", "已保存")
        wait_text(browser, "#case-list", "备注 1")
        save_screenshot(browser, "cases_page")
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        browser.find_element(By.ID, "case-export-zip").click()
        wait_text(browser, "#case-export-message", "已导出")
        zipped = downloads / f"{case_id}.zip"
        until(zipped.is_file, "the browser to write the download")  # it writes it after the reply
        with zipfile.ZipFile(zipped) as archive:
            names = sorted(archive.namelist())
            manifest = json.loads(archive.read("manifest.json"))
            pdf = archive.read("case.pdf")
        assert names == ["case.pdf", "manifest.json", "timeline.csv", "timeline.json"]
        assert (
            manifest["exported_by"] == "police.wanhu"
            and hashlib.sha256(pdf).hexdigest() == manifest["files"]["case.pdf"]
        )
    finally:
        browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "default"})
        server.stop()
    with world.sessions() as session:
        doc = cases.get_case(session, POLICE, case_id)
    assert [n["text"] for n in doc["notes"]] == ["19:40 随住户从东门离开"]
    actions = audit_actions(world)
    assert ("case.open", "police.wanhu", "ok") in actions and ("case.export", "police.wanhu", "ok") in actions
