"""Pipeline commands: worker, replay, simulate."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from cli.main import JsonLogFlag, app, json_logs, settings, setup_logging, user_errors
from core.errors import InvalidInput
from core.metrics import process_exited, start_service, use_folder
from store.stores import open_stores


def _worker_main(as_json: bool = False, metrics_folder: str | None = None) -> None:
    setup_logging(json_lines=as_json)
    from analytics.worker import Worker  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if metrics_folder is not None:  # a spawned process: the service's folder, made by the parent
        use_folder(Path(metrics_folder))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    Worker(open_stores(settings(), run_migrations=False)).run(stop, tune_gc=True)


@app.command()
@user_errors
def worker(
    processes: Annotated[int, typer.Option(help="worker processes in the consumer group")] = 1,
    as_json: JsonLogFlag = False,
) -> None:
    """Run analytics workers (a consumer group); stops cleanly on Ctrl-C or SIGTERM."""
    json_logs(as_json)
    if processes < 1:
        raise InvalidInput("--processes must be at least 1")
    open_stores(settings()).engine.dispose()  # fail fast on a bad store; migrate once
    folder = start_service(settings().metrics_directory, "worker")  # every process's batches in GET /metrics
    if processes == 1:
        _worker_main(as_json)
        return
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_worker_main, args=(as_json, str(folder)), name=f"worker-{i}") for i in range(processes)
    ]
    for child in children:
        child.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    while not stopping.is_set() and any(c.is_alive() for c in children):
        stopping.wait(0.5)
    for child in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(timeout=20)
        if child.pid is not None:
            process_exited(child.pid)


@app.command()
@user_errors
def replay(
    file: Annotated[Path, typer.Argument(help="events, one JSON object per line (interfaces §2)")],
    clock: Annotated[str, typer.Option(help="'event': time is the events' time")] = "event",
    until: Annotated[str | None, typer.Option(help="advance the clock to this RFC 3339 time at the end")] = None,
    out: Annotated[Path | None, typer.Option(help="alerts as JSON lines (default: standard output)")] = None,
    community: Annotated[str | None, typer.Option(help="community of the events (default: from the devices)")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="log lines as JSON lines too (the alerts and the summary are JSON already)")
    ] = False,
) -> None:
    """Run recorded events through the production pipeline in an isolated namespace (interfaces §4):
    the alerts as JSON lines (stdout or --out), then the summary as one JSON line on stderr."""
    json_logs(as_json)
    from analytics.replay import run_replay  # noqa: PLC0415 — CLI start-up: loaded only by this command
    from ingest.schema import Rejected, parse_ts  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if clock != "event":
        raise InvalidInput("--clock must be 'event'")
    if not file.exists():
        raise InvalidInput(f"{file}: no such file")
    until_ms = None
    if until:
        try:
            until_ms = parse_ts(until)  # the events' own rule: an offset, and a time that converts
        except Rejected:
            raise InvalidInput("--until must be RFC 3339 with an offset, between 1970 and 5138") from None
    stores = open_stores(settings())
    summary = run_replay(stores, file, until_ms=until_ms, out=out, community=community)
    typer.echo(json.dumps(summary, ensure_ascii=False), err=True)


@app.command()
@user_errors
def simulate(
    backfill: Annotated[str, typer.Option(help="simulated history first, e.g. 24h or 90m (0 = none)")] = "0",
    speed: Annotated[float, typer.Option(help="live speed, 1 = real time")] = 1.0,
    url: Annotated[str | None, typer.Option(help="ingest API base URL [default: the configured web app]")] = None,
    communities: Annotated[str | None, typer.Option(help="comma-separated community ids (default: all)")] = None,
    fraction: Annotated[
        float, typer.Option(help="drive this share of the communities (a seeded sample; e.g. 0.05 of the city)")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
    once: Annotated[bool, typer.Option("--once", help="stop after the backfill")] = False,
    people: Annotated[
        bool | None,
        typer.Option(
            "--people/--no-people",
            help="also play the people who handle alerts [default: SANDTABLE_SIMULATE_PEOPLE]",
        ),
    ] = None,
    as_json: JsonLogFlag = False,
) -> None:
    """The demo world's device events: a backfilled lived-in day, then live events (and the people
    who acknowledge, dispatch, walk to the place and close)."""
    json_logs(as_json)
    from simulator.run import run_simulator  # noqa: PLC0415 — CLI start-up: loaded only by this command

    hours = parse_duration_hours(backfill)
    if speed <= 0:
        raise InvalidInput("--speed must be positive")
    if not 0 < fraction <= 1:
        raise InvalidInput("--fraction must be more than 0 and at most 1")
    cfg = settings()
    if hours > cfg.ingest_max_age_days * 24:
        raise InvalidInput(
            f"--backfill {backfill} reaches further back than SANDTABLE_INGEST_MAX_AGE_DAYS "
            f"({cfg.ingest_max_age_days:g} days): ingest would refuse the older events"
        )
    base = url or f"http://{cfg.host}:{cfg.port}"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    wanted = [c.strip() for c in communities.split(",")] if communities else None
    plays_people = cfg.simulate_people if people is None else people
    run_simulator(
        open_stores(cfg, connect_redis=plays_people),  # the people act through the closed loop (Redis)
        base_url=base,
        backfill_hours=hours,
        speed=speed,
        communities=wanted,
        seed=seed,
        stop=stop,
        once=once,
        fraction=fraction,
        people=plays_people,
    )


def parse_duration_hours(text: str) -> float:
    """'24h', '90m', '2d' or '0' as hours."""
    text = text.strip().lower()
    try:
        if text.endswith("h"):
            return float(text[:-1])
        if text.endswith("m"):
            return float(text[:-1]) / 60
        if text.endswith("d"):
            return float(text[:-1]) * 24
        return float(text)
    except ValueError:
        raise InvalidInput(f"--backfill must look like 24h, 90m or 2d, not {text!r}") from None
