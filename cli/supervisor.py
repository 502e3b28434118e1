"""``manage.py run`` (what ``make run`` calls): the whole system as supervised child processes.

Starts the embedded Redis (unless SANDTABLE_REDIS_URL is set), migrates the database, builds
the demo registry when it is empty, then runs workers, the event archive, the notification
sender, the simulator and the web app as child processes, restarting any that dies. Ctrl-C (or
SIGTERM) stops the children, then Redis.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Annotated

import typer

from cli.main import app, json_logs, say, settings, user_errors
from cli.serve import port_free
from core.errors import StoreUnavailable
from core.metrics import remove_stale
from core.settings import ROOT, Settings
from store.redis_server import embedded_url
from store.stores import Stores, open_stores

log = logging.getLogger("sandtable.run")


@dataclass
class Child:
    """A supervised child process."""

    name: str
    args: list[str]
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        """Start (or restart) the process."""
        self.process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *self.args], env=env, cwd=ROOT)
        self.started_at = time.monotonic()
        log.info("started %s (pid %s)", self.name, self.process.pid)


def child_plan(
    cfg: Settings, *, backfill: str, speed: float, workers: int, people: bool | None = None, as_json: bool = False
) -> list[Child]:
    """The processes of a full system (people: --people/--no-people for the simulator; None leaves
    it to SANDTABLE_SIMULATE_PEOPLE; as_json: each logs JSON lines)."""
    simulate = ["simulate", "--backfill", backfill, "--speed", str(speed)]
    if people is not None:
        simulate.append("--people" if people else "--no-people")
    json_flag = ["--json"] if as_json else []
    children = [
        Child("web", ["serve", "--host", cfg.host, "--port", str(cfg.port), *json_flag]),
        Child("worker", ["worker", "--processes", str(workers), *json_flag]),
        Child("simulator", [*simulate, *json_flag]),
        Child("notify", ["notify", "send", *json_flag]),  # the outbox's sender (notify/sender.py)
    ]
    if not cfg.archive_in_workers:  # the event archive's copy, out of the analytics workers' way
        children.append(Child("archive", ["archive", *json_flag]))
    return children


@app.command()
@user_errors
def run(
    backfill: Annotated[str, typer.Option(help="simulated history before live events")] = "24h",
    speed: Annotated[float, typer.Option(help="simulator speed (1 = real time)")] = 1.0,
    workers: Annotated[int, typer.Option(help="analytics worker processes")] = 1,
    people: Annotated[
        bool | None,
        typer.Option(
            "--people/--no-people",
            help="the simulator also plays the people who handle alerts [default: SANDTABLE_SIMULATE_PEOPLE]",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="log lines as JSON lines on stderr, the children's too")
    ] = False,
) -> None:
    """Run everything: stores, demo data when empty, workers, simulator (and the people who handle
    alerts), web app."""
    json_logs(as_json)
    cfg = settings()
    if not port_free(cfg.host, cfg.port):
        raise StoreUnavailable(f"SANDTABLE_PORT: port {cfg.port} on {cfg.host} is already in use")
    env = dict(os.environ)
    if not cfg.redis_url:
        env["SANDTABLE_REDIS_URL"] = embedded_url(cfg)  # started here, stopped when we stop
    remove_stale(cfg.metrics_directory)  # figures of a run that ended; each service makes its own folder
    stores = open_stores(cfg)
    _ensure_demo(stores)
    stores.engine.dispose()

    children = child_plan(cfg, backfill=backfill, speed=speed, workers=workers, people=people, as_json=as_json)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for child in children:
        child.start(env)
    say(f"Sandtable is running at http://{cfg.host}:{cfg.port}/  (Ctrl-C stops everything)", as_json)
    while not stopping:
        time.sleep(0.5)
        now = time.monotonic()
        for child in children:
            if child.process is None or child.process.poll() is None:
                if child.process is None and now >= child.next_start:
                    child.start(env)
                continue
            code = child.process.returncode
            if not child.restart or code == 0:
                continue
            backoff = min(30.0, 2.0 ** min(child.restarts, 5))
            if now - child.started_at > 60:
                child.restarts = 0
            child.restarts += 1
            log.warning("%s exited with %s; restarting in %.0f s", child.name, code, backoff)
            child.process = None
            child.next_start = now + backoff
    _stop_children(children)
    say("Sandtable stopped.", as_json)


def _stop_children(children: list[Child]) -> None:
    """SIGTERM every child, wait, then SIGKILL the stragglers."""
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in running:
        assert child.process is not None
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", child.name)
            child.process.kill()
            child.process.wait()


def _ensure_demo(stores: Stores) -> None:
    """Build the demo registry when the registry is empty (a second run reuses the data)."""
    from simulator.seed import build_demo_if_empty  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if build_demo_if_empty(stores):
        log.info("the registry was empty: built the demo communities")
