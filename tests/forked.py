"""``manage.py`` commands for the tests, each in a process of its own, forked from one that has
imported the code already.

Every ``python manage.py …`` pays 2–3 s of imports (Dash, SQLAlchemy, networkx, the app) before it
does anything, and the suite runs a few hundred of them: a test server for most API and browser
tests, and the commands the CLI tests run. The standard library's forkserver (multiprocessing)
imports ``cli.main`` and ``app`` once per pytest worker; each command is then a fork of that
process. It is still a process of its own: its own environment, working directory, file
descriptors and exit code, and nothing it does reaches the test's process or the next command. The
code it runs is manage.py's: ``cli.main.main()`` with the command's arguments.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from multiprocessing.context import ForkServerContext
from pathlib import Path

# imported once, in the fork server, before any command: what every command would import anyway
# (the CLI and its commands, as cli.main.register_commands imports them; the web app; the
# migrations' machinery that opening the stores loads; the map's components). Never the pages:
# Dash registers them only once its app exists.
PRELOAD = [
    "cli.main",
    *(f"cli.{name}" for name in ("access", "doctor", "gates", "memory", "modes", "notify", "pipeline")),
    *(f"cli.{name}" for name in ("registry", "reports", "roster", "serve", "supervisor", "video")),
    "app",
    "store.sql",
    "alembic.command",
    "alembic.runtime.migration",
    "dash_leaflet",
    "dash_extensions",
    "plotly.offline",
    "tests.forked",
]

_context: ForkServerContext | None = None


def context() -> ForkServerContext:
    """This pytest worker's fork server (started at the first command)."""
    global _context  # noqa: PLW0603 — one fork server per process, started lazily
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _main(args: list[str], env: dict[str, str], cwd: str, out: str, err: str, own_group: bool) -> None:
    """In the forked process: become ``python manage.py args`` with this environment and these
    output files, then run manage.py's entry point (its SystemExit is the process's exit code)."""
    if own_group:
        os.setsid()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, out, os.O_WRONLY), (2, err, os.O_WRONLY)):
        opened = os.open(path, flags | (os.O_APPEND if fd else 0))
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 — the process's own stdin
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
    sys.argv = ["manage.py", *args]
    from cli.main import main  # noqa: PLC0415 — imported by the fork server already

    main()


class Forked:
    """A running ``manage.py`` command, with the part of ``subprocess.Popen`` the tests use."""

    def __init__(
        self, args: list[str], env: dict[str, str], cwd: Path, out: Path, err: Path, *, own_group: bool = False
    ) -> None:
        self.args = args
        for path in (out, err):
            path.touch()
        self._process = context().Process(
            target=_main, args=(args, env, str(cwd), str(out), str(err), own_group), daemon=False
        )
        self._process.start()
        self.pid: int = self._process.pid or 0

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code; subprocess.TimeoutExpired when it does not come in time."""
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def run(
    args: list[str], env: dict[str, str], cwd: Path, scratch: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end, like ``subprocess.run(capture_output=True, text=True)``."""
    scratch.mkdir(parents=True, exist_ok=True)
    stamp = f"{os.getpid()}-{time.monotonic_ns()}"
    out, err = scratch / f"manage-{stamp}.out", scratch / f"manage-{stamp}.err"
    command = Forked(args, env, cwd, out, err)
    try:
        command.wait(timeout)
    except subprocess.TimeoutExpired:
        command.kill()
        command.wait(30)
        raise
    try:
        return subprocess.CompletedProcess(
            ["manage.py", *args],
            command.returncode or 0,
            out.read_text(encoding="utf-8", errors="replace"),
            err.read_text(encoding="utf-8", errors="replace"),
        )
    finally:
        out.unlink(missing_ok=True)
        err.unlink(missing_ok=True)
