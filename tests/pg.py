"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder, a free loopback
port and a Unix socket in that folder, torn down at the end of the session.

PostgreSQL refuses to run as root: when the tests run as root (CI containers), the folder is
given to the ``postgres`` user (created by Debian's ``postgresql`` package) and the server
binaries run through ``runuser``. ``SANDTABLE_TEST_PG_BIN`` names the folder of ``initdb`` and
``pg_ctl`` when they are neither on PATH nor in Debian's /usr/lib/postgresql/<version>/bin.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install them (Debian: apt-get install postgresql) "
    "or set SANDTABLE_TEST_PG_BIN to their folder"
)
SUPERUSER = "sandtable"


class PostgresUnavailable(RuntimeError):
    """The throwaway server cannot be started (binaries missing, initdb or start failed)."""


def find_binaries() -> Path:
    """The folder holding initdb and pg_ctl: SANDTABLE_TEST_PG_BIN, PATH, or Debian's newest version."""
    configured = os.environ.get("SANDTABLE_TEST_PG_BIN")
    candidates = [Path(configured)] if configured else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates.extend(Path(p) for p in debian)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(INSTALL_HINT)


def free_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster of our own; databases are created and dropped through its superuser."""

    def __init__(self) -> None:
        self.bin = find_binaries()
        self.port = free_port()
        # not under pytest's tmp dir: that one is private to root and the server may run as postgres
        self.root = Path(tempfile.mkdtemp(prefix="sandtable-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise PostgresUnavailable(
                    "running as root and there is no 'postgres' user to run the server as "
                    "(Debian's postgresql package creates it)"
                ) from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        try:
            self._start()
        except PostgresUnavailable:
            self.stop()
            raise

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [*self._run_as, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: {' / '.join(detail[-3:])}")

    def _start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",  # byte order, like SQLite: ORDER BY agrees on both
            "--no-sync",
        )
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.root}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=300",
                # a throwaway server: durability off, speed on
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=64MB",
            ]
        )
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")
        except PostgresUnavailable as err:
            log = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
            raise PostgresUnavailable(f"{err} {' / '.join(log[-3:])}") from None

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one of the server's databases."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True, connect_timeout=10
        )

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """A new database (a copy of the template when given); returns its name."""
        name = name or "t" + uuid.uuid4().hex[:16]
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        with self._admin() as conn:
            if template:
                statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
                if conn.info.server_version >= 150000:  # a file copy: faster than WAL-logging every page
                    statement = sql.SQL("{} STRATEGY FILE_COPY").format(statement)
            conn.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing whatever is still connected to it."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is worth keeping) and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
