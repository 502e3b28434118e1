"""Sandtable's Prometheus series counted inside the processes (docs/metrics.md), and the folder
through which every process of a host shows them in ``GET /metrics``.

The services that serve or work — ``serve`` (each gunicorn worker), ``worker`` (each analytics
process), ``notify send``, ``video watch`` — call ``start_service`` as they start: their figures go
to memory-mapped files (prometheus_client's multiprocess mode) in a folder of their own,
``SANDTABLE_METRICS_DIR/<service>-<pid>``, and ``GET /metrics`` merges every folder of the host.
A service's folder goes when the service does (the next service to start removes the folders of
services no longer running), so a restart starts its counters again from zero, as Prometheus
expects of a restarted process. Every other process (a command, a replay, a test) counts in memory,
seen by nobody. The figures read from Redis and SQL at scrape time are in ``api/metrics.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from core.errors import ConfigError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where prometheus_client's values open their files
# seconds: a 500-event POST takes about 10 ms on the development machine (P1)
INGEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# seconds: a worker batch is 500 to 4,000 entries (docs/architecture.md, "Batches grow in a backlog")
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The series one process counts (names and labels: docs/metrics.md)."""

    def __init__(self) -> None:
        # ingest (the web app), counted once per batch and type, never per event
        self.events_accepted = Counter(
            "sandtable_events_accepted",
            "Events accepted by POST /api/v1/events and appended to their community's stream, by event type",
            ["type"],
            registry=None,
        )
        self.events_duplicates = Counter(
            "sandtable_events_duplicates",
            "Events not appended because their id was seen in the last 24 h, by event type",
            ["type"],
            registry=None,
        )
        self.events_rejected = Counter(
            "sandtable_events_rejected",
            "Events refused by validation and kept in the dead-letter stream, by event type "
            "(invalid: the type itself was missing or unknown)",
            ["type"],
            registry=None,
        )
        self.ingest_requests = Counter(
            "sandtable_ingest_requests",
            "Requests to POST /api/v1/events by answer status (202, 400, 403, 413, 429, 503)",
            ["status"],
            registry=None,
        )
        self.ingest_seconds = Histogram(
            "sandtable_ingest_seconds",
            "Time to judge and store one POST /api/v1/events body, from reading it to the answer",
            buckets=INGEST_BUCKETS,
            registry=None,
        )
        # analytics workers
        self.worker_batch_seconds = Histogram(
            "sandtable_worker_batch_seconds",
            "Time an analytics worker took for one batch read from the streams (projections, rules, SQL, ack)",
            buckets=BATCH_BUCKETS,
            registry=None,
        )
        self.worker_events = Counter(
            "sandtable_worker_events", "Stream entries the analytics workers processed and acknowledged", registry=None
        )
        self.worker_rule_errors = Counter(
            "sandtable_worker_rule_errors",
            "Rule failures on an event or timer (logged and skipped; the batch goes on)",
            registry=None,
        )
        self.worker_poison = Counter(
            "sandtable_worker_poison",
            "Stream entries the workers moved to the dead-letter stream (undecodable, or delivered too often)",
            registry=None,
        )
        # the closed loop (runs in the workers' sweep)
        self.sla_misses = Counter(
            "sandtable_sla_misses",
            "Alerts escalated because a stage missed its SLA, by stage and severity",
            ["stage", "severity"],
            registry=None,
        )
        # notifications (notify send)
        self.notify_attempts = Counter(
            "sandtable_notify_attempts",
            "Webhook and SMS delivery attempts by outcome (delivered; failed: retried later; dead: given up)",
            ["outcome"],
            registry=None,
        )
        # video (video watch)
        self.video_frames = Counter(
            "sandtable_video_frames_analysed",
            "Frames the video watcher analysed, per camera",
            ["camera"],
            registry=None,
        )
        self.video_frames_dropped = Counter(
            "sandtable_video_frames_dropped",
            "Frames the video watcher dropped because its analysis fell behind the camera, per camera",
            ["camera"],
            registry=None,
        )
        self.video_events_dropped = Counter(
            "sandtable_video_events_dropped",
            "Detections the video watcher could not post to the ingest API (queue full, or refused)",
            registry=None,
        )
        # report jobs of the /reports page (the web app)
        self.report_jobs = Counter(
            "sandtable_report_jobs",
            "Reports made on the /reports page, by how they ended (done, failed)",
            ["status"],
            registry=None,
        )
        self.report_jobs_running = Gauge(
            "sandtable_report_jobs_running",
            "Reports being made now",
            registry=None,
            multiprocess_mode="livesum",
        )


class _Process:
    """This process's series and the folder they are written to (None: in memory)."""

    def __init__(self) -> None:
        values.ValueClass = values.MutexValue  # in memory until a service starts, whatever the environment says
        self.metrics = Metrics()
        self.folder: Path | None = None


_process = _Process()  # per process by nature: each process writes its own file


def metrics() -> Metrics:
    """The series of this process."""
    return _process.metrics


def folder() -> Path | None:
    """The folder this process writes its figures to (None: it counts in memory)."""
    return _process.folder


def start_service(base: Path, service: str) -> Path:
    """Called by a service as it starts: remove the folders of services no longer running, make this
    one's (``base/<service>-<pid>``) and write this process's figures there. Its child processes
    inherit it (a fork) or are handed it (``use_folder``)."""
    path = base / f"{service}-{os.getpid()}"
    try:
        base.mkdir(parents=True, exist_ok=True)
        remove_stale(base)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)  # a folder of an earlier process with this pid
        path.mkdir()
    except OSError as err:
        raise ConfigError(f"SANDTABLE_METRICS_DIR: cannot write the metrics folder {path} ({err.strerror})") from None
    use_folder(path)
    return path


def use_folder(path: Path) -> None:
    """Write this process's figures to path (a service's folder, made by ``start_service``)."""
    os.environ[MULTIPROC_ENV] = str(path)  # read by prometheus_client as each value opens its file
    values.ValueClass = values.MultiProcessValue()
    _process.metrics = Metrics()
    _process.folder = path


def stop_using_folder() -> None:
    """Count in memory again (the tests: a folder they remove must not be written any more)."""
    values.close_all_multiprocess_files()
    os.environ.pop(MULTIPROC_ENV, None)
    values.ValueClass = values.MutexValue
    _process.metrics = Metrics()
    _process.folder = None


def process_exited(pid: int) -> None:
    """A child process of this service ended: its gauges of live values (reports being made) no
    longer count; its counters and histograms do, until the service itself restarts."""
    if _process.folder is not None:
        mark_process_dead(pid, str(_process.folder))


def remove_stale(base: Path) -> list[Path]:
    """Remove the folders of services whose process is gone; returns them."""
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for child in base.iterdir():
        _, _, pid = child.name.rpartition("-")
        if child.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def host_series(base: Path) -> Iterable[Metric]:
    """Every running service's figures on this host, merged (counters and histograms summed over
    processes, live gauges summed over live processes)."""
    for _ in range(3):  # a folder may go while it is read (a service restarting): read again
        files = sorted(str(p) for p in base.glob("*/*.db"))
        try:
            return list(MultiProcessCollector.merge(files, accumulate=True))
        except FileNotFoundError:
            continue
    return []
