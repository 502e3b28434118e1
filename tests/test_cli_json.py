"""``--json`` on every command of interfaces §1: a one-shot command prints one JSON document, a
long-running one logs JSON lines, and an error is a JSON object with a non-zero exit."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from sqlalchemy import select
from typer.testing import CliRunner

from auth.models import ApiToken, AuditEntry
from cli.main import JsonLineFormatter, app, register_commands
from core.settings import ROOT, get_settings
from registry.models import Household
from store.stores import Stores
from tests.conftest import env_for, free_port, run_manage

register_commands()


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every command of the typer app, by its full name."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def test_every_command_has_json() -> None:
    every = dict(commands(typer.main.get_command(app)))
    assert {"serve", "token create", "audit export", "resident-link", "video watch"} <= set(every)
    lacking = [name for name, command in every.items() if "--json" not in {o for p in command.params for o in p.opts}]
    assert lacking == []


@pytest.fixture
def manage(world: Stores, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run a command in this process on the world's stores; its stdout, stderr and exit code."""
    for name, value in env_for(world.settings).items():
        if name.startswith("SANDTABLE_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=stdin, catch_exceptions=False)

    yield invoke
    get_settings.cache_clear()


def test_user_add_prints_the_account(manage: Any) -> None:
    add = ("user", "add", "ops.zhang", "--role", "police", "--community", "wanhu", "--json")
    added = manage(*add, stdin="Sandtable-2026-pw\n")
    assert added.exit_code == 0, added.output
    account = json.loads(added.stdout)
    assert account | {"guard_label": ""} == {
        "username": "ops.zhang",
        "role": "police",
        "community": "wanhu",
        "grid": None,
        "active": True,
        "guard": None,
        "guard_label": "",
    }
    again = manage(*add, stdin="Sandtable-2026-pw\n")
    assert again.exit_code == 1 and set(json.loads(again.stdout)) == {"error"}


def test_token_create_and_revoke_in_json_and_the_token_still_last_for_humans(manage: Any, world: Stores) -> None:
    made = manage("token", "create", "--scope", "ingest", "--community", "wanhu", "--json")
    assert made.exit_code == 0, made.output
    token = json.loads(made.stdout)
    assert re.fullmatch(r"st_[0-9a-f]{12}_[A-Za-z0-9_-]{32,64}", token["token"])
    assert token["token"].startswith(f"st_{token['id']}_")
    assert {k: token[k] for k in ("scope", "role", "community", "grid")} == {
        "scope": "ingest",
        "role": None,
        "community": "wanhu",
        "grid": None,
    }
    human = manage("token", "create", "--role", "wall", "--community", "wanhu")
    assert re.fullmatch(r"st_[0-9a-f]{12}_[A-Za-z0-9_-]{32,64}", human.stdout.strip().splitlines()[-1])
    revoked = manage("token", "revoke", token["id"], "--json")
    assert json.loads(revoked.stdout) == {"id": token["id"], "revoked": True}
    with world.sessions() as session:
        assert session.scalars(select(ApiToken.revoked_at).where(ApiToken.id == token["id"])).one() is not None
    twice = manage("token", "revoke", token["id"], "--json")
    assert twice.exit_code == 1 and json.loads(twice.stdout) == {"error": f"no live token {token['id']}"}


def test_export_audit_export_and_resident_link_print_json(manage: Any, world: Stores, tmp_path: Path) -> None:
    out = tmp_path / "grids.geojson"
    exported = manage("export", "grids", "--out", str(out), "--community", "wanhu", "--json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["written"] == len(json.loads(out.read_text())["features"]) > 0
    with world.sessions.begin() as session:
        session.add_all(AuditEntry(actor="test", action="probe", target=f"t{i}") for i in range(3))
    csv_file = tmp_path / "audit.csv"
    audit = manage("audit", "export", "--out", str(csv_file), "--json")
    assert audit.exit_code == 0, audit.output
    summary = json.loads(audit.stdout)
    assert summary == {"out": str(csv_file), "rows": len(csv_file.read_text().splitlines()) - 1}
    assert summary["rows"] >= 3
    refused = manage("audit", "export", "--out", "-", "--json")
    assert refused.exit_code == 1 and "--out FILE" in json.loads(refused.stdout)["error"]
    with world.sessions() as session:
        household = session.scalars(select(Household.id).order_by(Household.id)).first()
    link = json.loads(manage("resident-link", str(household), "--json").stdout)
    assert link["household"] == household and link["url"].startswith("http://127.0.0.1:8050/")
    unknown = manage("resident-link", "nowhere", "--json")
    assert unknown.exit_code == 1 and json.loads(unknown.stdout) == {"error": "unknown household 'nowhere'"}


def test_a_long_running_commands_log_lines_are_json_lines() -> None:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger("sandtable.test_cli_json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("backlog of %d events", 12, extra={"community": "wanhu"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(sink.getvalue())
    assert line["level"] == "WARNING" and line["logger"] == "sandtable.test_cli_json"
    assert line["message"] == "backlog of 12 events" and line["community"] == "wanhu"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])


def test_a_long_running_commands_error_with_json_is_a_json_object(world: Stores) -> None:
    refused = run_manage(world.settings, "worker", "--processes", "0", "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {"error": "--processes must be at least 1"}


def test_serve_with_json_logs_json_lines_on_stderr(stores: Stores) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port), "--json"],
        env=env_for(stores.settings),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, Any]] = []
    try:
        assert process.stderr is not None
        while not lines or not lines[-1]["message"].startswith("Sandtable on"):
            text = process.stderr.readline()
            assert text, f"serve exited: {lines}"
            lines.append(json.loads(text))  # every line is a JSON object
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert lines[-1]["message"] == f"Sandtable on http://127.0.0.1:{port}/" and lines[-1]["level"] == "INFO"
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
