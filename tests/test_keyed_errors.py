"""Errors a user sees on a page are keyed: raised with a translation key, so the page shows them in
the user's language (``err.text(lang)``), never the service's English sentence."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.errors import Conflict, InvalidInput
from core.i18n import TABLE
from core.settings import ROOT

# the modules whose errors reach the console, tasks, visitors and resident pages
USER_FACING = ["closedloop", "gates", "callbacks", "alerts", "upkeep", "api/resident.py", "api/visit.py"]
ERRORS = {"SandtableError", "InvalidInput", "NotFound", "Forbidden", "Conflict"}


def sources() -> list[Path]:
    out: list[Path] = []
    for name in USER_FACING:
        path = ROOT / name
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def test_every_error_a_page_shows_is_raised_with_a_key() -> None:
    unkeyed: list[str] = []
    keys: list[str] = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            if not (isinstance(func, ast.Name) and func.id in ERRORS):
                continue
            if node.exc.args:
                unkeyed.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            keys += [
                str(k.value.value) for k in node.exc.keywords if k.arg == "key" and isinstance(k.value, ast.Constant)
            ]
    assert unkeyed == []
    missing = [k for k in keys if k not in TABLE]
    assert keys and missing == []


@pytest.mark.parametrize(
    ("error", "zh", "en"),
    [
        (Conflict(), "该记录已被他人更新，请刷新后重试", "Someone else changed this meanwhile; reload and try again"),
        (
            InvalidInput(key="validate.id.length", n=3),
            "身份证号应为18位，当前为3位",
            "ID number must have 18 characters, not 3",
        ),
        (InvalidInput("SANDTABLE_PORT: not a number"), "SANDTABLE_PORT: not a number", "SANDTABLE_PORT: not a number"),
    ],
)
def test_an_error_is_english_in_logs_and_in_the_users_language_on_a_page(error: InvalidInput, zh: str, en: str) -> None:
    assert str(error) == en
    assert error.text("zh") == zh and error.text("en") == en
