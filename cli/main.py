"""``python manage.py …``: the command line of interfaces §1."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import DataError

from core.errors import SandtableError
from core.settings import Settings, get_settings

log = logging.getLogger("sandtable")

app = typer.Typer(
    name="manage.py",
    help="Sandtable: the digital sand-table of smart-security communities.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def setup_logging(verbose: bool = False) -> None:
    """Log lines to stderr; library chatter kept quiet."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("werkzeug", "alembic", "urllib3", "matplotlib", "fontTools", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line of reason on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn a SandtableError into one line on stderr and a non-zero exit (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SandtableError as err:
            raise fail(str(err)) from None
        except DataError as err:
            # a value the database's column refuses (PostgreSQL enforces VARCHAR lengths and types)
            reason = str(err.orig or err).strip().splitlines()[0]
            raise fail(f"the database refused a value ({reason})") from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    """The settings, or one line naming the bad setting."""
    return get_settings()


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print data as JSON or for a human."""
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


def register_commands() -> None:
    """Import the command modules (each adds its commands to ``app``)."""
    from cli import (  # noqa: F401, PLC0415 — cycle: the command modules import cli.main's app
        access,
        doctor,
        gates,
        memory,
        modes,
        notify,
        pipeline,
        registry,
        reports,
        roster,
        serve,
        supervisor,
        video,
    )


def main() -> None:
    """Entry point of manage.py."""
    setup_logging()
    register_commands()
    try:
        app()
    except SandtableError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(1)
