"""manage.py backup and restore: a running demo backed up, its stores wiped and restored give the
same registry, alerts and audit log, and the events still in the streams are analysed after the
restore; a damaged backup and one of a newer schema are refused."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from alerts.live import AlertStore
from alerts.models import AlertRecord as Alert
from analytics.worker import Worker
from auth.models import AuditEntry
from auth.principal import Principal
from auth.service import Auditor
from ingest.service import IngestService
from registry.models import Device, Household, Person
from store.evidence import EvidenceStore
from store.stores import Stores, open_stores
from tests.conftest import flush_namespace, run_manage
from tests.test_pipeline import devices_of, drain

pytestmark = pytest.mark.also_on_pg  # pg_dump and pg_restore on PostgreSQL, the SQLite backup API otherwise

OPERATOR = Principal(kind="user", id="admin", role="admin", name="admin")


def smoke(device: str, ts: int, eid: str) -> dict[str, Any]:
    return {"id": eid, "type": "smoke.alarm", "device": device, "ts": ts, "data": {"level": "alarm"}}


def snapshot(stores: Stores) -> dict[str, Any]:
    """What a user would compare: the registry, the live and recorded alerts, the audit log, the evidence."""
    with stores.sessions() as s:
        registry = {
            "devices": s.execute(select(Device.id, Device.type, Device.community_id).order_by(Device.id)).all(),
            "people": s.execute(select(Person.id, Person.name).order_by(Person.id)).all(),
            "households": s.execute(select(Household.id, Household.category).order_by(Household.id)).all(),
        }
        history = s.execute(select(Alert.id, Alert.type, Alert.status, Alert.count).order_by(Alert.id)).all()
        audit = s.execute(
            select(AuditEntry.id, AuditEntry.at, AuditEntry.action, AuditEntry.target, AuditEntry.ip).order_by(
                AuditEntry.id
            )
        ).all()
    live = sorted((a["id"], a["type"], a["count"]) for a in AlertStore(stores.redis, stores.keys).open_alerts("wanhu"))
    evidence = sorted(p.name for p in (stores.settings.var_dir / "evidence").rglob("*.jpg"))
    return {"registry": registry, "history": history, "audit": audit, "live": live, "evidence": evidence}


def wipe(stores: Stores) -> None:
    """Lose every store: the database's tables, the Redis namespace, the evidence folder."""
    if stores.engine.dialect.name == "postgresql":
        with stores.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        stores.engine.dispose()
    else:
        stores.engine.dispose()
        database = Path(stores.settings.effective_database_url.removeprefix("sqlite:///"))
        for path in database.parent.glob(database.name + "*"):  # the file, its -wal and -shm
            path.unlink()
    flush_namespace(stores.redis, stores.settings.key_prefix)
    shutil.rmtree(stores.settings.var_dir / "evidence")


def test_a_running_demo_is_backed_up_wiped_and_restored(world: Stores, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    detectors = devices_of(world, "smoke_detector", 3)
    ingest = IngestService(world)
    assert ingest.ingest("wanhu", [smoke(detectors[0], now, "a1"), smoke(detectors[1], now, "a2")]).accepted == 2
    worker = Worker(world)
    worker.start_community("wanhu")
    drain(worker)  # two alerts raised: live in Redis, recorded in SQL
    Auditor(world.sessions).record(OPERATOR, "unmask", target="wanhu-P0001", reason="case 12", ip="10.1.2.3")
    EvidenceStore.of_settings(world.settings).community("wanhu").put(b"\xff\xd8\xff\xe0 a thrown bottle \xff\xd9")
    # an event accepted and not analysed yet: it waits in the stream, and must still be there after
    assert ingest.ingest("wanhu", [smoke(detectors[2], now, "a3")]).accepted == 1
    before = snapshot(world)
    assert len(before["live"]) == 2 and len(before["history"]) == 2 and before["evidence"]

    out = tmp_path / "backup"
    made = run_manage(world.settings, "backup", "--out", str(out), "--json")
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["redis_keys"] > 10 and summary["files"] >= 3 and not summary["holds_secret"]
    assert "SANDTABLE_SECRET_KEY" in made.stderr  # the key is not in the backup: the operator is told
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema_revision"] and manifest["code_version"].startswith("0.")
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())

    wipe(world)
    restored = run_manage(world.settings, "restore", str(out), "--json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert json.loads(restored.stdout)["redis_keys"] == summary["redis_keys"]

    again = open_stores(world.settings, run_migrations=False)
    try:
        assert snapshot(again) == before
        worker = Worker(again)  # the stream and its consumer group came back: the waiting event is analysed
        worker.start_community("wanhu")
        drain(worker)
        types = sorted(a["subject"]["device"] for a in AlertStore(again.redis, again.keys).open_alerts("wanhu"))
        assert types == sorted(detectors)
    finally:
        again.engine.dispose()

    # the stores hold data now: a second restore is refused unless forced
    refused = run_manage(world.settings, "restore", str(out), "--json")
    assert refused.returncode != 0 and "not empty" in json.loads(refused.stdout)["error"]


def test_a_damaged_backup_and_a_newer_schema_are_refused(world: Stores, tmp_path: Path) -> None:
    out = tmp_path / "backup"
    assert run_manage(world.settings, "backup", "--out", str(out), "--json").returncode == 0

    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    database = damaged / json.loads((out / "manifest.json").read_text())["database"]["file"]
    data = bytearray(database.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed
    database.write_bytes(bytes(data))
    refused = run_manage(world.settings, "restore", str(damaged), "--force")
    assert refused.returncode != 0
    assert "SHA-256 does not match" in refused.stderr and database.name in refused.stderr
    assert "Traceback" not in refused.stderr

    newer = tmp_path / "newer"
    shutil.copytree(out, newer)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["schema_revision"] = "0099_from_the_future"
    (newer / "manifest.json").write_text(json.dumps(manifest))
    refused = run_manage(world.settings, "restore", str(newer), "--force", "--json")
    assert refused.returncode != 0
    assert "0099_from_the_future" in json.loads(refused.stdout)["error"]
    assert "newer than this code" in json.loads(refused.stdout)["error"]
    with world.sessions() as s:  # nothing was touched by either refusal
        assert s.scalar(select(Device.id).limit(1)) is not None
