"""Retention (PIPL, issue #19): ``manage.py purge`` removes each data class past its period and keeps
the rest, what cases pinned, and the heartbeats' changes; a dry run removes nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from typing import Any

import pytest
from sqlalchemy import func, select, text

from alerts.models import AlertRecord, AlertStep
from auth.models import AuditEntry
from auth.principal import Principal
from closedloop.models import ResidentReport, Task
from core.timefmt import SHANGHAI
from gates.models import GateCapture, VisitorPass
from memory import cases
from memory.archive import Archiver, partition_name, week_start
from memory.case_models import Case
from memory.keyframes import Keyframe
from memory.models import ArchivedEvent, cell_of
from memory.retention import run_nightly_purge
from notify.models import NotifyDelivery, NotifyNotice, NotifyTarget
from registry.models import Device
from store.evidence import EvidenceStore
from store.stores import Stores
from tests.conftest import run_manage

pytestmark = pytest.mark.also_on_pg

DAY = 86_400_000
HOUR = 3_600_000
POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")


def ago(now: int, days: float) -> dt.datetime:
    return dt.datetime.fromtimestamp((now - days * DAY) / 1000, dt.UTC)


def row(entry: str, ts: int, kind: str, device: Device, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "community_id": "wanhu",
        "entry": entry,
        "ts": ts,
        "received": ts,
        "event_id": entry,
        "type": kind,
        "device_id": device.id,
        "building_id": device.building_id,
        "household_id": device.household_id,
        "grid_id": None,
        "lat": device.lat,
        "lon": device.lon,
        "cell": cell_of(device.lat, device.lon),
        "guard_id": None,
        "plate": None,
        "person": None,
        "data": data or {},
    }


def age_world(world: Stores, now: int) -> dict[str, Any]:
    """Rows of every class, some past their period and some not; returns the names to check."""
    with world.sessions() as session:
        lock = session.scalars(
            select(Device).where(Device.type == "smart_lock", Device.community_id == "wanhu")
        ).first()
        sensor = session.scalars(select(Device).where(Device.type == "door_sensor")).first()
        assert lock is not None and sensor is not None
        session.expunge_all()
    # heartbeats 10 days old: one hour of six (battery 90, 90, 90, 80, 80, 90), the next hour two the same
    hour = (now - 10 * DAY) // HOUR * HOUR
    batteries = [90, 90, 90, 80, 80, 90]
    beats = [
        row(f"hb{i}", hour + i * 60_000, "device.heartbeat", sensor, {"battery": b}) for i, b in enumerate(batteries)
    ]
    beats += [row(f"hc{i}", hour + HOUR + i * 60_000, "device.heartbeat", sensor, {"battery": 90}) for i in range(2)]
    beats += [row(f"hd{i}", now - DAY + i * 60_000, "device.heartbeat", sensor, {"battery": 90}) for i in range(3)]
    Archiver(world, consumer="test").insert(
        [
            row("old-door", now - 200 * DAY, "door.contact", sensor, {"state": "open"}),
            row("old-lock", now - 100 * DAY, "lock.open", lock, {"method": "card"}),
            row("kept-door", now - 100 * DAY, "door.contact", sensor, {"state": "open"}),
            row("new-lock", now - 10 * DAY, "lock.open", lock, {"method": "card"}),
            *beats,
        ]
    )
    evidence = EvidenceStore.of_settings(world.settings).community("wanhu")
    images = {name: evidence.put(name.encode() * 50) for name in ("old", "pinned", "new", "closed_pinned")}
    for name in ("old", "pinned", "closed_pinned"):
        path = evidence.folder / f"{images[name]}.jpg"
        stamp = (now - 100 * DAY) / 1000
        os.utime(path, (stamp, stamp))
    with world.sessions.begin() as session:
        item = {"id": "cam-1", "type": "camera.throw", "device": lock.id, "ts": now - 100 * DAY, "data": {}}
        kept_case = cases.create_case(session, POLICE, community="wanhu", name="高空抛物", query={})
        cases.pin(session, POLICE, kept_case, {**item, "data": {"image": images["pinned"]}})
        old_case = cases.create_case(session, POLICE, community="wanhu", name="旧案", query={})
        cases.pin(session, POLICE, old_case, {**item, "id": "cam-2", "data": {"image": images["closed_pinned"]}})
        cases.close_case(session, POLICE, old_case)
        recent_closed = cases.create_case(session, POLICE, community="wanhu", name="近期结案", query={})
        cases.close_case(session, POLICE, recent_closed)
        session.flush()
        session.get_one(Case, old_case).closed_at = ago(now, 2000)
        session.get_one(Case, recent_closed).closed_at = ago(now, 10)
        for pid, valid_to in (("VP-old", ago(now, 40)), ("VP-new", ago(now, 10))):
            session.add(
                VisitorPass(
                    id=pid, community_id="wanhu", household_id=lock.household_id or "", visitor_name="访客",
                    id_hash="h" * 64, id_masked="1101**********1234", phone="138****0000",
                    valid_from=valid_to - dt.timedelta(days=1), valid_to=valid_to,
                )
            )  # fmt: skip
        for cid, at in (("old", ago(now, 100)), ("new", ago(now, 10))):
            session.add(
                GateCapture(
                    community_id="wanhu",
                    device_id=lock.id,
                    at=at,
                    plate=f"苏J{cid}",
                    direction="in",
                    category="unknown",
                )
            )
        session.add(NotifyTarget(id="T1", community_id="wanhu", channel="webhook", url="http://127.0.0.1:9/x"))
        session.flush()
        for aid, closed, opened in (
            ("A-old", ago(now, 400), ago(now, 401)),
            ("A-new", ago(now, 10), ago(now, 11)),
            ("A-open", None, ago(now, 400)),
        ):
            session.add(
                AlertRecord(
                    id=aid, community_id="wanhu", type="smoke", severity="high",
                    status="resolved" if closed else "new", dedup_key=aid, subject={}, opened_at=opened,
                    detected_at=opened, updated_at=closed or opened, closed_at=closed,
                )
            )  # fmt: skip
            session.add(AlertStep(alert_id=aid, at=opened, action="raised", status="new"))
            session.add(
                Task(id=f"T-{aid}", community_id="wanhu", alert_id=aid, kind="alert", assignee="property",
                     status="closed" if closed else "assigned", created_at=opened, closed_at=closed)
            )  # fmt: skip
            session.add(
                ResidentReport(id=f"R-{aid}", community_id="wanhu", household_id=lock.household_id or "",
                               to="police", text="有烟", alert_id=aid, created_at=opened)
            )  # fmt: skip
            session.add(
                NotifyDelivery(id=f"D-{aid}", target_id="T1", alert_id=aid, community_id="wanhu", event="raised",
                               body="{}", state="delivered", created_at=opened, next_at=opened)
            )  # fmt: skip
            session.add(
                NotifyNotice(community_id="wanhu", audience="police", alert_id=aid, event="raised",
                             alert_type="smoke", severity="high", at=opened)
            )  # fmt: skip
        for days in (200, 10):  # state keyframes of a moment no longer searchable, and of a recent one
            boundary = (now - days * DAY) // HOUR * HOUR
            session.add(Keyframe(community_id="wanhu", at=boundary, built=now, data=b""))
        session.add(AuditEntry(actor="x", role="admin", action="login", at=ago(now, 1200)))
        session.add(AuditEntry(actor="x", role="admin", action="login", at=ago(now, 10)))
    return {"images": images, "evidence": evidence, "kept_case": kept_case, "old_case": old_case, "hour": hour}


def count(world: Stores, model: Any, *where: Any) -> int:
    with world.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def entries(world: Stores) -> set[str]:
    with world.sessions() as session:
        return set(session.scalars(select(ArchivedEvent.entry)))


EXPECTED = {
    "events": 1,  # old-door (200 days)
    "gate_captures": 2,  # old-lock (100 days, an identity) and the 100-day plate capture
    "heartbeats": 4,  # of 8 ten-day-old heartbeats, the first of each hour and the two changes stay
    "evidence": 2,  # the old unpinned image, and the one pinned by the case closed 2000 days ago
    "visitor_passes": 1,
    "alerts": 1,
    "cases": 1,
    "audit": 1,
}


def test_purge_dry_run_then_real_removes_each_class_past_its_period_and_keeps_the_rest(world: Stores) -> None:
    now = int(time.time() * 1000)
    made = age_world(world, now)
    before = entries(world)
    dry = run_manage(world.settings, "purge", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout.strip().splitlines()[-1])
    assert report["dry_run"] is True and report["classes"] == EXPECTED
    assert entries(world) == before and count(world, AlertRecord) == 3  # nothing removed
    assert all((made["evidence"].folder / f"{i}.jpg").exists() for i in made["images"].values())

    real = run_manage(world.settings, "purge", "--json")
    assert real.returncode == 0, real.stderr
    done = json.loads(real.stdout.strip().splitlines()[-1])
    assert done["dry_run"] is False and done["classes"] == EXPECTED
    assert done["tables"]["alert_step"] == 1 and done["tables"]["notify_delivery"] == 1
    assert done["tables"]["notify_notice"] == 1 and done["tables"]["task"] == 1
    assert done["tables"]["resident_report"] == 1 and done["tables"]["gate_capture"] == 1
    assert done["tables"]["state_keyframe"] == 1 and count(world, Keyframe) == 1  # the 200-day-old one

    left = entries(world)
    assert {"old-door", "old-lock"}.isdisjoint(left) and {"kept-door", "new-lock"} <= left
    assert sorted(e for e in left if e.startswith("h")) == ["hb0", "hb3", "hb5", "hc0", "hd0", "hd1", "hd2"]
    images = made["images"]
    exists = {name: (made["evidence"].folder / f"{eid}.jpg").exists() for name, eid in images.items()}
    assert exists == {"old": False, "pinned": True, "new": True, "closed_pinned": False}
    with world.sessions() as session:
        assert set(session.scalars(select(VisitorPass.id))) == {"VP-new"}
        assert set(session.scalars(select(AlertRecord.id))) == {"A-new", "A-open"}
        assert set(session.scalars(select(Task.id))) == {"T-A-new", "T-A-open"}
        assert set(session.scalars(select(ResidentReport.alert_id))) == {"A-new", "A-open"}
        assert set(session.scalars(select(NotifyNotice.alert_id))) == {"A-new", "A-open"}
        assert set(session.scalars(select(GateCapture.plate))) == {"苏Jnew"}
        assert session.get(Case, made["old_case"]) is None and session.get(Case, made["kept_case"]) is not None
        assert len(list(session.scalars(select(Case.id)))) == 2
    # the test's own two logins (the world copies the shared demo store, where other tests signed in)
    assert count(world, AuditEntry, AuditEntry.action == "login", AuditEntry.actor == "x") == 1
    with world.sessions() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "purge")).one()
    assert json.loads(audited.reason)["classes"] == EXPECTED

    again = run_manage(world.settings, "purge", "--json")  # nothing left to purge; compaction is stable
    assert json.loads(again.stdout.strip().splitlines()[-1])["classes"] == dict.fromkeys(EXPECTED, 0)


def test_the_audit_log_stays_append_only_outside_the_purge(world: Stores) -> None:
    with world.sessions.begin() as session:
        session.add(AuditEntry(actor="x", role="admin", action="login", at=ago(int(time.time() * 1000), 5000)))
    with pytest.raises(Exception, match="append-only"), world.sessions.begin() as session:
        session.execute(text("DELETE FROM audit_log"))


def test_on_postgresql_old_week_partitions_are_dropped_whole(world: Stores, db_mode: str) -> None:
    if db_mode != "pg":
        pytest.skip("partitions are PostgreSQL's")
    now = int(time.time() * 1000)
    age_world(world, now)
    old = partition_name(week_start(now - 200 * DAY))
    done = run_manage(world.settings, "purge", "--json")
    assert done.returncode == 0, done.stderr
    assert old in json.loads(done.stdout.strip().splitlines()[-1])["partitions"]
    with world.sessions() as session:
        assert session.scalar(text("SELECT to_regclass(:name)"), {"name": old}) is None
        assert session.scalar(text("SELECT to_regclass(:name)"), {"name": partition_name(week_start(now - DAY))})


def test_the_worker_purges_once_a_night_across_workers(world: Stores) -> None:
    today = dt.datetime.now(SHANGHAI).date()
    night = int(dt.datetime.combine(today, dt.time(1, 0), SHANGHAI).timestamp() * 1000)
    assert run_nightly_purge(world, night) is None  # before SANDTABLE_PURGE_DAILY_AT (03:30)
    after = night + 3 * HOUR
    first = run_nightly_purge(world, after)
    assert first is not None and first.dry_run is False
    assert run_nightly_purge(world, after + HOUR) is None  # done for today, whichever worker asks
    with world.sessions() as session:
        assert session.scalar(select(func.count()).where(AuditEntry.action == "purge")) == 1
