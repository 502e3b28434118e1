"""Reports made from the /reports page: a background thread renders the file while the page polls the
job's state, kept in Redis (any gunicorn worker can answer the poll) with the file on disk under
``<var_dir>/reports/jobs/<job id>/``. A job belongs to the user who started it: every read checks
the caller's principal against the owner recorded with the job."""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from auth.principal import Principal
from core.clock import Clock, WallClock
from core.errors import SandtableError
from core.metrics import metrics
from reports.model import ReportRequest
from reports.request import ReportInputError
from reports.service import default_filename, make_report
from store.stores import Stores

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
STALE_MS = 10 * 60_000  # a job not heard from for this long died with its process
RUNNING_MS = 15 * 60_000


def owner_of(principal: Principal) -> str:
    """Who a job belongs to: the signed-in user (kind and id, never anything the browser sent)."""
    return f"{principal.kind}:{principal.id}"


@dataclass(frozen=True)
class Job:
    """A job's state as the page shows it."""

    id: str
    owner: str
    status: str  # running / done / failed
    progress: int
    step: str  # i18n key of what it is doing, or of why it failed
    message: str  # the failure's sentence (English, logs) when there is no key
    filename: str
    fmt: str
    lang: str
    updated_ms: int


class JobStore:
    """Report jobs of one set of stores."""

    def __init__(self, stores: Stores, clock: Clock | None = None) -> None:
        self.stores = stores
        self.clock = clock or WallClock()
        self.redis = stores.redis
        self.keys = stores.keys
        self.root = stores.settings.var_dir / "reports" / "jobs"
        self.ttl_ms = int(stores.settings.report_keep_hours * 3_600_000)
        for status in ("done", "failed"):  # shown from the start, at 0
            metrics().report_jobs.labels(status)

    # --- reading ----------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """A job by id (no ownership check: use ``owned``)."""
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            return None
        raw = self.redis.hgetall(self.keys.report_job(job_id))
        if not raw:
            return None
        job = Job(
            id=job_id,
            owner=raw.get("owner", ""),
            status=raw.get("status", "failed"),
            progress=int(raw.get("progress", 0) or 0),
            step=raw.get("step", ""),
            message=raw.get("message", ""),
            filename=raw.get("filename", ""),
            fmt=raw.get("fmt", ""),
            lang=raw.get("lang", "zh"),
            updated_ms=int(raw.get("updated", 0) or 0),
        )
        if job.status == "running" and self.clock.now_ms() - job.updated_ms > STALE_MS:
            return Job(**{**job.__dict__, "status": "failed", "step": "report.job.interrupted"})
        return job

    def owned(self, job_id: str, principal: Principal) -> Job | None:
        """The job when it belongs to this principal; None otherwise (another's looks like none)."""
        job = self.get(job_id)
        if job is None or not principal.authenticated or job.owner != owner_of(principal):
            return None
        return job

    def file_of(self, job: Job) -> Path | None:
        """The finished file of a job, or None."""
        if job.status != "done" or not job.filename:
            return None
        path = self.root / job.id / job.filename
        return path if path.is_file() else None

    # --- writing ----------------------------------------------------------------------------------
    def _update(self, job_id: str, **fields: object) -> None:
        key = self.keys.report_job(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping={**{k: str(v) for k, v in fields.items()}, "updated": str(self.clock.now_ms())})
        pipe.pexpire(key, self.ttl_ms)
        pipe.execute()

    def start(self, principal: Principal, request: ReportRequest, fmt: str) -> str:
        """Start rendering in a background thread; returns the job id. One job at a time per user."""
        owner = owner_of(principal)
        running = self.keys.report_running(owner)
        job_id = secrets.token_urlsafe(18)
        if not self.redis.set(running, job_id, nx=True, px=RUNNING_MS):
            current = self.get(str(self.redis.get(running) or ""))
            if current is not None and current.status == "running":
                raise ReportInputError("report.job.busy", "a report of yours is still being made; wait for it")
            self.redis.set(running, job_id, px=RUNNING_MS)
        self.sweep_files()
        filename = default_filename(request, fmt)
        self._update(
            job_id,
            owner=owner,
            status="running",
            progress=0,
            step="report.progress.registry",
            filename=filename,
            fmt=fmt,
            lang=request.lang,
        )
        thread = threading.Thread(
            target=self._run, args=(job_id, owner, request, fmt, filename), name=f"report-{job_id[:6]}", daemon=True
        )
        thread.start()
        return job_id

    def _run(self, job_id: str, owner: str, request: ReportRequest, fmt: str, filename: str) -> None:
        folder = self.root / job_id
        series = metrics()
        series.report_jobs_running.inc()
        status = "failed"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            make_report(
                self.stores,
                request,
                fmt,
                folder / filename,
                progress=lambda pct, step: self._update(job_id, progress=pct, step=step),
            )
            self._update(job_id, status="done", progress=100, step="report.progress.done")
            status = "done"
        except ReportInputError as err:
            self._update(job_id, status="failed", step=err.key, message=str(err))
        except SandtableError as err:
            log.warning("report job %s failed: %s", job_id, err)
            self._update(job_id, status="failed", step="report.job.failed", message=str(err))
        except Exception:  # a bug in one report must not go unseen, nor take the web worker down
            log.exception("report job %s failed", job_id)
            self._update(job_id, status="failed", step="report.job.failed", message="internal error")
        finally:
            series.report_jobs_running.dec()
            series.report_jobs.labels(status).inc()
            if self.redis.get(self.keys.report_running(owner)) == job_id:
                self.redis.delete(self.keys.report_running(owner))

    def sweep_files(self) -> None:
        """Delete the folders of jobs older than the keeping time."""
        if not self.root.is_dir():
            return
        cutoff = (self.clock.now_ms() - self.ttl_ms) / 1000
        for folder in self.root.iterdir():
            try:
                if folder.is_dir() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError as err:
                log.info("could not sweep %s: %s", folder, err)
