"""PostgreSQL: the migrations, the append-only audit log, the registry, the worker and the closed
loop on a real (throwaway) PostgreSQL server, and the places where SQLite and PostgreSQL must agree.

Every test here is marked ``pg`` and uses the session's PostgreSQL server whatever ``--db`` says;
without the server binaries they fail with the reason (tests/pg.py), they are never skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DatabaseError

from alerts.history import history_query
from alerts.models import AlertRecord, AlertStep
from analytics.rules.gates import write_gate_counts
from auth.models import AuditEntry
from auth.principal import Principal
from auth.service import Auditor
from closedloop.models import Task
from closedloop.service import Loop
from core.settings import ROOT, Settings
from core.timefmt import SHANGHAI
from gates.models import GateHourly
from geodata.layers import survey_dir
from registry import importers, queries
from registry.models import Household, Person
from registry.stats import community_stats
from store.sql import Base, alembic_config, head_revision, make_engine, schema_revision
from store.stores import Stores, open_stores
from tests.conftest import LiveServer, env_for, http_login, run_manage, settings_for
from tests.test_closed_loop import POLICE, on_duty, place_guard, smoke_alert
from tests.test_pipeline import devices_of

pytestmark = pytest.mark.pg

WANHU = survey_dir("wanhu")
TABLES = {
    "community",
    "grid",
    "building",
    "household",
    "person",
    "person_tag",
    "residency",
    "device",
    "vehicle",
    "guard",
    "path_segment",
    "patrol_route",
    "patrol_checkpoint",
    "watchlist",
    "app_user",
    "web_session",
    "api_token",
    "audit_log",
    "alert",
    "alert_step",
    "task",
    "notice",
    "resident_report",
    "visitor_pass",
    "gate_hourly",
    "gate_capture",
    "patrol_round",
    "applied_token",
}


@pytest.fixture
def pg_empty(tmp_path: Path, redis_url: str, pg_server: Any) -> Any:
    """Settings on an empty PostgreSQL database (no migration applied)."""
    database = pg_server.create_database()
    yield settings_for(tmp_path, redis_url, pg_server.url(database))
    pg_server.drop_database(database)


@pytest.fixture
def pg_stores(pg_settings: Settings) -> Any:
    """Stores on a migrated PostgreSQL database of the test's own."""
    opened = open_stores(pg_settings)
    yield opened
    opened.engine.dispose()


@pytest.fixture(params=["sqlite", "pg"])
def either(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Any:
    """Migrated stores on SQLite, then on PostgreSQL: a test using it must pass on both."""
    if request.param == "pg":
        settings = request.getfixturevalue("pg_settings")
    else:
        settings = settings_for(tmp_path, redis_url, f"sqlite:///{tmp_path / 'either.db'}")
    opened = open_stores(settings)
    yield opened
    opened.engine.dispose()


# --- migrations -------------------------------------------------------------------------------


def test_migrations_bring_an_empty_database_to_head_and_match_the_models(pg_empty: Settings) -> None:
    stores = open_stores(pg_empty)
    try:
        assert schema_revision(stores.engine) == head_revision()
        assert set(inspect(stores.engine).get_table_names()) >= TABLES
        with stores.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
            triggers = set(conn.scalars(text(query)))
        assert differences == []  # the models and migrations 0001..head describe the same schema on PostgreSQL
        assert triggers == {"audit_log_append_only", "audit_log_no_truncate"}
    finally:
        stores.engine.dispose()


def test_migrations_go_down_to_nothing_and_up_again(pg_stores: Stores) -> None:
    config = alembic_config(pg_stores.engine)
    command.downgrade(config, "base")
    assert set(inspect(pg_stores.engine).get_table_names()) == {"alembic_version"}
    with pg_stores.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM pg_proc WHERE proname = 'audit_log_append_only'")) == 0
    command.upgrade(config, "head")
    assert schema_revision(pg_stores.engine) == head_revision()


def test_three_processes_migrating_at_once_all_succeed(pg_empty: Settings) -> None:
    """Web workers and the worker may start together on an empty database: the advisory lock serialises them."""
    command_line = [sys.executable, str(ROOT / "manage.py"), "migrate"]
    runs = [
        subprocess.Popen(command_line, env=env_for(pg_empty), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outcomes = [(run.wait(120), run.stderr.read().decode() if run.stderr else "") for run in runs]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    engine = make_engine(pg_empty)
    try:
        assert schema_revision(engine) == head_revision()
    finally:
        engine.dispose()


# --- the audit log ------------------------------------------------------------------------------


def test_the_audit_log_refuses_update_delete_and_truncate(pg_stores: Stores) -> None:
    Auditor(pg_stores.sessions).record(
        Principal(kind="user", id="police.wanhu", role="police", community="wanhu"), "person.unmask", reason="核查"
    )
    for statement in ("UPDATE audit_log SET reason = 'edited'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pg_stores.engine.connect() as conn, pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text(statement))
    with pg_stores.sessions() as session:
        (entry,) = session.scalars(select(AuditEntry))
    assert (entry.actor, entry.action, entry.reason) == ("police.wanhu", "person.unmask", "核查")


# --- the same answers on both databases ---------------------------------------------------------------


def test_times_are_stored_in_utc_and_read_back_aware(either: Stores) -> None:
    """A Shanghai time is stored as the same instant on both, read back as aware UTC, and filters alike."""
    local = dt.datetime(2026, 3, 2, 8, 30, tzinfo=SHANGHAI)  # 00:30 UTC
    with either.sessions.begin() as session:
        session.add(AuditEntry(at=local, actor="a", action="x"))
        session.add(AuditEntry(at=local + dt.timedelta(hours=1), actor="b", action="x"))
    with either.sessions() as session:
        first = session.scalars(select(AuditEntry).order_by(AuditEntry.at)).first()
        cutoff = dt.datetime(2026, 3, 2, 0, 45)
        later = list(session.scalars(select(AuditEntry.actor).where(AuditEntry.at > cutoff.replace(tzinfo=dt.UTC))))
        naive_filter = list(session.scalars(select(AuditEntry.actor).where(AuditEntry.at > cutoff)))
    assert first is not None and first.at.tzinfo is not None and first.at.utcoffset() == dt.timedelta(0)
    assert first.at == local and first.at.hour == 0
    assert later == ["b"] and naive_filter == ["b"]  # a naive value is taken as UTC on both


def test_registry_import_and_reads_give_the_same_answers(either: Stores, tmp_path: Path) -> None:
    with either.sessions.begin() as session:
        for kind in ("boundary", "grids", "buildings", "paths"):
            importers.import_geo(session, kind, WANHU / f"{kind}.geojson", "wanhu", community_name="万户新村")
    households = [
        {"id": f"wanhu-B001-1-{f}0{r}", "building": "wanhu-B001", "unit": 1, "floor": f, "room": f"{f}0{r}"}
        | {"category": ("rental", "owner", "group_rental")[(f + r) % 3]}
        for f in range(1, 6)
        for r in range(1, 3)
    ]
    people = [
        {"id": f"p{i}", "name": f"居民{i}", "household": h["id"], "role": "owner"}
        | {"tags": "elderly_alone" if i < 2 else ""}
        for i, h in enumerate(households)
    ]
    pd.DataFrame(households).to_csv(tmp_path / "hh.csv", index=False)
    pd.DataFrame(people).to_csv(tmp_path / "people.csv", index=False)
    with either.sessions.begin() as session:
        importers.import_table(session, "households", tmp_path / "hh.csv", "wanhu", id_hash_key=either.id_hash_key)
        importers.import_table(session, "people", tmp_path / "people.csv", "wanhu", id_hash_key=either.id_hash_key)
    # the same file again: an update, not a duplicate
    with either.sessions.begin() as session:
        importers.import_table(session, "people", tmp_path / "people.csv", "wanhu", id_hash_key=either.id_hash_key)
    scope = queries.EVERYTHING
    with either.sessions() as session:
        stats = community_stats(session)["communities"][0]
        buildings = queries.building_layer(session, scope, "wanhu")["features"]
        grids = [f["properties"]["id"] for f in queries.grid_layer(session, scope, "wanhu")["features"]]
        people_count = session.scalar(select(func.count()).select_from(Person))
        categories = sorted(session.scalars(select(Household.category).distinct()))
    assert (stats["buildings"], stats["households"], stats["residents"], stats["elderly_alone"]) == (127, 10, 10, 2)
    b001 = next(b["properties"] for b in buildings if b["properties"]["id"] == "wanhu-B001")
    assert (b001["households"], b001["elder"], b001["category"]) == (10, 2, "group_rental")
    assert grids == sorted(grids) and people_count == 10 and categories == ["group_rental", "owner", "rental"]


def test_a_value_too_long_for_its_column_is_a_row_error_on_both(either: Stores, tmp_path: Path) -> None:
    """PostgreSQL enforces VARCHAR(n) where SQLite does not: the importer names the cell on both."""
    with either.sessions.begin() as session:
        for kind in ("boundary", "grids", "buildings"):
            importers.import_geo(session, kind, WANHU / f"{kind}.geojson", "wanhu", community_name="万户新村")
    rows = [{"id": "h1", "building": "wanhu-B001", "unit": 1, "floor": 1, "room": "1" * 17, "category": "owner"}]
    pd.DataFrame(rows).to_csv(tmp_path / "hh.csv", index=False)
    with either.sessions() as session, pytest.raises(importers.ImportRejected) as caught:
        importers.import_table(session, "households", tmp_path / "hh.csv", "wanhu", id_hash_key=either.id_hash_key)
    assert [(e.row, e.column, e.reason) for e in caught.value.report.errors] == [
        (1, "room", "is longer than 16 characters")
    ]


def test_gate_counts_of_two_workers_at_once_add_up(pg_stores: Stores) -> None:
    """Two workers count the same hour in overlapping transactions: the upsert neither collides nor loses."""
    key = ("gate_hourly", dt.date(2026, 3, 2), 8, "face", "in", "resident")
    first = pg_stores.sessions()
    first.begin()
    write_gate_counts(first, "wanhu", {key: 3})  # holds the row's lock until it commits
    done = threading.Event()

    def second() -> None:
        with pg_stores.sessions.begin() as session:
            write_gate_counts(session, "wanhu", {key: 4})
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not done.wait(0.5)  # waiting for the first transaction's row
    first.commit()
    first.close()
    thread.join(10)
    with pg_stores.sessions() as session:
        assert [(h.hour, h.count) for h in session.scalars(select(GateHourly))] == [(8, 7)]


# --- the pipeline and the closed loop on PostgreSQL ---------------------------------------------------


def test_an_alert_raised_by_the_worker_becomes_a_task_and_closes(pg_world: Stores) -> None:
    assert pg_world.engine.dialect.name == "postgresql"
    alert = smoke_alert(pg_world)  # ingest → stream → worker → Redis and the SQL history
    wearable = devices_of(pg_world, "wearable", 1)[0]
    place_guard(pg_world, wearable, alert["location"]["lat"], alert["location"]["lon"] + 0.0004)
    on_duty(pg_world, "wanhu-GD01")
    loop = Loop(pg_world)
    (nearest, *_) = loop.suggestions(POLICE, "wanhu", alert["id"])
    task = loop.dispatch(POLICE, "wanhu", alert["id"], nearest.guard, expected="new")
    guard = Principal(kind="user", id="guard", role="grid_worker", community="wanhu", guard=nearest.guard)
    task = loop.task_action(guard, task.id, "accept", version=task.version)
    task = loop.task_action(guard, task.id, "close", version=task.version, outcome="handled", notes="灭火器处置")
    with pg_world.sessions() as session:
        record = session.get(AlertRecord, alert["id"])
        stored = session.get(Task, task.id)
        steps = [s.action for s in session.scalars(select(AlertStep).where(AlertStep.alert_id == alert["id"]))]
        listed = [r.id for r in history_query(session, communities=["wanhu"], status="all", alert_type="smoke")]
    assert record is not None and record.status == "resolved" and record.closed_at is not None
    assert record.closed_at.tzinfo is not None and record.subject == alert["subject"]
    assert stored is not None and (stored.status, stored.outcome, stored.version) == ("closed", "handled", 3)
    assert steps[0] == "raised" and {"dispatched", "task_accept", "task_close", "resolved"} <= set(steps)
    assert listed == [alert["id"]]
    with pg_world.sessions() as session:
        actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.target.like("%" + task.id))))
    assert actions == {"task.accept", "task.close"}


# --- the command line on PostgreSQL -------------------------------------------------------------------


def test_manage_py_migrates_builds_the_demo_and_serves(pg_empty: Settings) -> None:
    migrated = run_manage(pg_empty, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip().endswith(f"schema at {head_revision()} (was empty)")
    built = run_manage(pg_empty, "demo", "--json", timeout=300)
    assert built.returncode == 0, built.stderr
    wanhu = next(c for c in json.loads(built.stdout)["communities"] if c["id"] == "wanhu")
    assert (wanhu["id"], wanhu["buildings"], wanhu["elderly_alone"]) == ("wanhu", 127, 200)
    doctor = run_manage(pg_empty, "doctor")
    database_line = next(line for line in doctor.stdout.splitlines() if " database " in line)
    assert database_line.startswith("ok") and "PostgreSQL" in database_line and "collation" not in database_line
    server = LiveServer(pg_empty)
    try:
        police = http_login(server.url, "police.wanhu")
        people = police.get(server.url + "/api/v1/people?tag=elderly_alone&community=wanhu", timeout=30).json()
        assert len(people) == 200 and all("*" in p["id_number"] for p in people if p["id_number"])
    finally:
        server.stop()
