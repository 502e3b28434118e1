"""``python manage.py …``: the command line of interfaces §1."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import signal
import sys
import threading
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
# a long-running command's --json: its log lines as JSON lines on stderr
JsonLogFlag = Annotated[bool, typer.Option("--json", help="log lines as JSON lines on stderr")]


# the attributes every LogRecord has: anything else on a record is a field passed with ``extra=``
RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonLineFormatter(logging.Formatter):
    """A log record as one JSON object on one line: ts, level, logger, message, and its fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line of the record."""
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line |= {k: v for k, v in record.__dict__.items() if k not in RECORD_ATTRIBUTES and k not in line}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(verbose: bool = False, *, json_lines: bool = False) -> None:
    """Log lines to stderr (JSON lines with ``json_lines``: a long-running command's ``--json``);
    library chatter kept quiet."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if json_lines:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLineFormatter())
    for noisy in ("werkzeug", "alembic", "urllib3", "matplotlib", "fontTools", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 1, *, as_json: bool = False) -> typer.Exit:
    """Print one line of reason and return the exit to raise: ``error: …`` on stderr, or with
    ``--json`` the JSON object ``{"error": …}`` on stdout, where the command's document would be."""
    if as_json:
        typer.echo(json.dumps({"error": message}, ensure_ascii=False))
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn a SandtableError into one line of reason and a non-zero exit (no traceback); a JSON
    object when the command was given ``--json`` (its ``as_json`` parameter)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except SandtableError as err:
            raise fail(str(err), as_json=as_json) from None
        except DataError as err:
            # a value the database's column refuses (PostgreSQL enforces VARCHAR lengths and types)
            reason = str(err.orig or err).strip().splitlines()[0]
            raise fail(f"the database refused a value ({reason})", as_json=as_json) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def say(message: str, as_json: bool) -> None:
    """A long-running command's word to its operator on stderr: a plain line, or with ``--json``
    a JSON log line like every other."""
    if as_json:
        log.info("%s", message)
    else:
        typer.echo(message, err=True)


def json_logs(as_json: bool) -> None:
    """A long-running command's ``--json``: its log lines become JSON lines on stderr."""
    if as_json:
        setup_logging(json_lines=True)


def settings() -> Settings:
    """The settings, or one line naming the bad setting."""
    return get_settings()


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print data as JSON or for a human."""
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: a long-running command's loop stops cleanly on it."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def register_commands() -> None:
    """Import the command modules (each adds its commands to ``app``)."""
    from cli import (  # noqa: F401, PLC0415 — cycle: the command modules import cli.main's app
        access,
        doctor,
        gates,
        memory,
        modes,
        notify,
        ops,
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
