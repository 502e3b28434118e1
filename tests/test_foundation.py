"""Foundation: settings, stores, the command line and its errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.errors import ConfigError, StoreUnavailable
from core.settings import Settings, load_settings
from store.redis_server import client_for_url, start_embedded
from store.sql import head_revision, make_engine, schema_revision
from store.stores import open_stores
from tests.conftest import env_for, free_port, run_manage


def test_bad_redis_url_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="SANDTABLE_REDIS_URL"):
        load_settings(redis_url="http://localhost:6379")


def test_bad_setting_value_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="SANDTABLE_PORT"):
        load_settings(port=0)


def test_unknown_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="SANDTABLE_REFRESH_SECOND"):
        load_settings(refresh_second=5)
    # a misspelt environment variable too (it would otherwise be silently ignored)
    monkeypatch.setenv("SANDTABLE_REDIS_URLL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match="SANDTABLE_REDIS_URLL: no such setting"):
        load_settings()


def test_unreachable_redis_names_the_setting() -> None:
    with pytest.raises(StoreUnavailable, match="SANDTABLE_REDIS_URL: cannot reach Redis"):
        client_for_url(f"redis://127.0.0.1:{free_port()}/0")


def test_bad_database_url_names_the_setting(tmp_path: Path) -> None:
    settings = load_settings(var_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable, match="SANDTABLE_DATABASE_URL"):
        open_stores(settings)


def test_migrations_bring_a_fresh_database_to_head(settings: Settings, tmp_path: Path) -> None:
    fresh = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'fresh.db'}"})
    stores = open_stores(fresh)
    assert schema_revision(stores.engine) == head_revision()


def test_embedded_port_taken_by_another_program_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StoreUnavailable, match="SANDTABLE_EMBEDDED_REDIS_PORT"):
            start_embedded(tmp_path, port)


def test_embedded_redis_keeps_data_across_a_restart(tmp_path: Path) -> None:
    port = free_port()
    server = start_embedded(tmp_path, port)
    client = client_for_url(server.url)
    assert client.config_get("appendonly")["appendonly"] == "yes"
    assert client.config_get("appendfsync")["appendfsync"] == "everysec"
    client.set("kept", "yes")
    server.stop()
    again = start_embedded(tmp_path, port)
    try:
        assert client_for_url(again.url).get("kept") == "yes"
    finally:
        again.stop()


def test_doctor_prints_one_line_per_check(settings: Settings) -> None:
    open_stores(settings).engine.dispose()
    result = run_manage(settings, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    names = [line.split()[1] for line in lines]
    assert names[:6] == ["settings", "python", "packages", "var", "database", "redis"]
    assert all(line.startswith(("ok", "warn")) for line in lines)


def test_doctor_fails_with_a_named_reason_when_redis_is_down(settings: Settings) -> None:
    env = env_for(settings) | {"SANDTABLE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = run_manage(settings, "doctor", env=env)
    assert result.returncode != 0
    redis_line = next(line for line in result.stdout.splitlines() if " redis " in line)
    assert redis_line.startswith("FAIL") and "SANDTABLE_REDIS_URL" in redis_line
    assert "Traceback" not in result.stdout + result.stderr


def test_serve_on_a_port_in_use_says_so_in_one_line(settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_manage(settings, "serve", "--port", str(port))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: --port/SANDTABLE_PORT: port {port} on 127.0.0.1 is already in use"
    ]


def test_a_wrong_setting_in_the_environment_is_one_line(settings: Settings) -> None:
    env = env_for(settings) | {"SANDTABLE_REDIS_URL": "mysql://x"}
    result = run_manage(settings, "serve", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: SANDTABLE_REDIS_URL")


def test_database_file_lives_under_var_by_default(tmp_path: Path) -> None:
    settings = load_settings(var_dir=tmp_path / "v")
    engine = make_engine(settings)
    assert str(engine.url).endswith(str(tmp_path / "v" / "sandtable.db"))
