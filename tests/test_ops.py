"""``manage.py upgrade --check`` and doctor's operating checks: clock skew against Redis, free disk,
certificate expiry."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from cli.doctor import cert_expiry, clock_skew, disk_line
from core.errors import SandtableError
from core.settings import Settings, load_settings
from store.sql import alembic_config, has_real_downgrade, make_engine, schema_revision
from tests.conftest import run_manage
from tests.test_deploy import self_signed


@pytest.mark.parametrize(
    ("body", "reversible"),
    [
        ('    op.drop_table("x")', True),
        ("    pass", False),
        ('    """Nothing to undo."""\n    pass', False),
        ('    raise NotImplementedError("the archive cannot be rebuilt")', False),
        ("    ...", False),
    ],
)
def test_a_downgrade_is_reversible_only_when_it_does_something(body: str, reversible: bool) -> None:
    source = f"def upgrade() -> None:\n    op.create_table('x')\n\n\ndef downgrade() -> None:\n{body}\n"
    assert has_real_downgrade(source) is reversible
    assert has_real_downgrade("def upgrade() -> None:\n    pass\n") is False  # no downgrade at all


def database_at(tmp_path: Path, redis_url: str, revision: str) -> Settings:
    """Settings of a new SQLite database migrated up to revision only."""
    settings = load_settings(
        var_dir=tmp_path / "var", redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'old.db'}"
    )
    engine = make_engine(settings)
    command.upgrade(alembic_config(engine), revision)
    engine.dispose()
    return settings


def test_upgrade_check_lists_the_pending_migrations_and_changes_nothing(tmp_path: Path, redis_url: str) -> None:
    settings = database_at(tmp_path, redis_url, "0012")
    checked = run_manage(settings, "upgrade", "--check", "--json")
    assert checked.returncode == 0, checked.stderr
    doc = json.loads(checked.stdout)
    assert doc["current"] == "0012" and doc["applied"] is False and doc["reversible"] is True
    assert [(m["revision"], m["reversible"]) for m in doc["pending"]] == [
        ("0013a", True),
        ("0013c", True),
        ("0013e", True),
    ]
    assert "wanted list" in doc["pending"][0]["message"]
    engine = make_engine(settings)
    try:
        assert schema_revision(engine) == "0012"  # a check migrates nothing
    finally:
        engine.dispose()
    human = run_manage(settings, "upgrade", "--check")
    assert "0013a" in human.stdout and "reversible" in human.stdout

    applied = run_manage(settings, "upgrade", "--json")
    assert json.loads(applied.stdout)["applied"] is True
    assert json.loads(run_manage(settings, "upgrade", "--check", "--json").stdout)["pending"] == []


def test_upgrade_check_refuses_a_schema_this_code_does_not_know(tmp_path: Path, redis_url: str) -> None:
    settings = database_at(tmp_path, redis_url, "head")
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_later'"))
    engine.dispose()
    refused = run_manage(settings, "upgrade", "--check", "--json")
    assert refused.returncode == 1
    assert "0099_later" in json.loads(refused.stdout)["error"] and "newer code" in json.loads(refused.stdout)["error"]


def test_clock_skew_is_the_offset_from_the_middle_of_the_round_trip() -> None:
    skew, error = clock_skew(1000.0, (996, 500_000), 1000.2)
    assert skew == pytest.approx(3.6) and error == pytest.approx(0.1)


def test_disk_line_warns_under_the_threshold(tmp_path: Path) -> None:
    assert "GiB free" in disk_line("evidence", tmp_path / "not" / "made" / "yet", 0.0)
    with pytest.raises(SandtableError, match="SANDTABLE_DISK_FREE_WARN_PERCENT=100"):
        disk_line("evidence", tmp_path, 100.0)
    with pytest.raises(SandtableError, match="AOF rewrite"):
        disk_line("Redis AOF", tmp_path, 0.0, at_least=2**62)


def test_certificates_are_checked_for_expiry(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    fine, _ = self_signed(tmp_path / "fine", days=90)
    soon, _ = self_signed(tmp_path / "soon", days=5)
    assert "days left" in cert_expiry(fine, now, 21)
    with pytest.raises(SandtableError, match="expires in 4 days"):
        cert_expiry(soon, now, 21)
    with pytest.raises(SandtableError, match="EXPIRED"):
        cert_expiry(fine, now + dt.timedelta(days=91), 21)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(SandtableError, match="not a PEM certificate"):
        cert_expiry(tmp_path / "junk.pem", now, 21)


def test_doctor_reports_clock_disk_and_certificates(settings: Settings, tmp_path: Path) -> None:
    soon, _ = self_signed(tmp_path / "tls", days=5)
    done = run_manage(settings, "doctor", "--json", "--cert", str(soon))
    lines = {row["name"]: row for row in json.loads(done.stdout)}
    assert lines["clock"]["ok"], lines["clock"]  # this host and the test's Redis share a clock
    assert "host minus Redis" in lines["clock"]["detail"]
    assert lines["disk"]["ok"] and "evidence" in lines["disk"]["detail"] and "Redis AOF" in lines["disk"]["detail"]
    assert not lines["tls"]["ok"] and not lines["tls"]["required"] and "expires in 4 days" in lines["tls"]["detail"]
