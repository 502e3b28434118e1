"""The daily reports and the nightly purge when the workers run them (``SANDTABLE_SCHEDULED_JOBS=
workers``, what ``make run`` uses): on a thread of the worker process, never in its loop.

A daily PDF takes seconds to render (its 3D still most of all), and the purge of a large archive
longer. Run in the loop, they held the worker's events up for that long: an elder's alert or a smoke
alarm arriving then waited for a report. The loop now only pokes the thread at each sweep; a poke
while the previous run is still going does nothing (the reports' and the purge's own Redis locks
keep the workers of other processes apart). With ``timers`` systemd runs them instead (deploy/).
"""

from __future__ import annotations

import logging
import threading

from core.errors import SandtableError
from memory.retention import run_nightly_purge
from reports.scheduler import run_due_reports
from store.stores import Stores

log = logging.getLogger(__name__)

THREAD_NAME = "sandtable-scheduled-jobs"


class ScheduledJobs:
    """One background run at a time of the due daily reports and the nightly purge."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poke(self, now_ms: int) -> bool:
        """Start a run for the moment ``now_ms`` unless one is still going; True when started."""
        if self.running:
            return False
        self._thread = threading.Thread(target=self._run, args=(now_ms,), name=THREAD_NAME, daemon=True)
        self._thread.start()
        return True

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the run under way (a worker stopping lets a render finish: its
        lock would otherwise hold the file for half an hour)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, now_ms: int) -> None:
        try:
            run_due_reports(self.stores, now_ms)
        except SandtableError as err:
            log.warning("daily reports: %s", err)
        except Exception:  # the thread must not die silently; the next sweep tries again
            log.exception("daily reports failed")
        try:
            run_nightly_purge(self.stores, now_ms)  # once a night across workers
        except Exception:
            log.exception("nightly purge failed")
