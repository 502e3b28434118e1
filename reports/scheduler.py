"""The daily report: once the configured local time has passed, yesterday's PDF of every community is
written to ``<var_dir>/reports/daily/<community>/<date>.pdf`` — exactly once, however many workers
call this at the same time (the file is checked, then a Redis ``SET NX`` lock is taken; the file
appears atomically, by rename, only when complete)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from auth.principal import Principal
from core.settings import Settings
from core.timefmt import SHANGHAI, ms_to_utc
from registry import queries
from reports.model import ReportRequest
from reports.service import make_report
from store.stores import Stores

log = logging.getLogger(__name__)

# the daily reports are read by police and admins of each community: masked for the police
DAILY = Principal(kind="system", id="daily-report", role="police", name="daily report")
LOCK_MS = 30 * 60_000  # a render takes seconds; a failed one is retried when its lock expires
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.pdf$")
COMMUNITY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True)
class DailyReport:
    """A daily PDF on disk."""

    community: str
    day: dt.date
    path: Path
    size: int


def due_day(settings: Settings, now_ms: int) -> dt.date | None:
    """Yesterday (local) once today's report time has passed, else None."""
    local = ms_to_utc(now_ms).astimezone(SHANGHAI)
    hour, minute = (int(x) for x in settings.report_daily_at.split(":"))
    if (local.hour, local.minute) < (hour, minute):
        return None
    return local.date() - dt.timedelta(days=1)


def daily_dir(settings: Settings) -> Path:
    """Where the daily PDFs live."""
    return settings.var_dir / "reports" / "daily"


def daily_path(settings: Settings, community: str, day: dt.date) -> Path:
    """The PDF of one community and day."""
    if not COMMUNITY_ID.match(community):
        raise ValueError(f"not a community id: {community!r}")
    return daily_dir(settings) / community / f"{day.isoformat()}.pdf"


def run_due_reports(stores: Stores, now_ms: int) -> list[Path]:
    """Render the due daily PDFs not written yet (at most ``report_daily_batch`` per call, so that a
    worker's sweep is never held up for long); returns the files written by this call."""
    settings = stores.settings
    if not settings.report_daily_enabled:
        return []
    day = due_day(settings, now_ms)
    if day is None:
        return []
    with stores.sessions() as session:
        communities = [c.id for c in queries.communities(session, queries.EVERYTHING)]
    owner = f"{socket.gethostname()}-{os.getpid()}"
    written: list[Path] = []
    attempts = 0
    for community in communities:
        if attempts >= settings.report_daily_batch:
            break
        path = daily_path(settings, community, day)
        if path.exists():
            continue
        lock = stores.keys.report_lock(f"daily:{community}:{day.isoformat()}")
        if not stores.redis.set(lock, owner, nx=True, px=LOCK_MS):
            continue  # another worker is on it (or failed on it recently)
        attempts += 1
        if path.exists():  # finished by another worker between our check and our lock
            continue
        request = ReportRequest((community,), day, day, settings.default_lang, DAILY)
        try:
            make_report(stores, request, "pdf", path, now_ms=now_ms)
        except Exception:  # one community's failure must not stop the others, nor the worker
            log.exception("daily report of %s for %s failed; retried in %d min", community, day, LOCK_MS // 60_000)
            continue
        log.info("daily report of %s for %s written to %s", community, day, path)
        written.append(path)
    return written


def list_daily(settings: Settings, communities: list[str], limit: int = 31) -> list[DailyReport]:
    """The daily PDFs of these communities, newest first (at most limit per community)."""
    out: list[DailyReport] = []
    for community in communities:
        if not COMMUNITY_ID.match(community):
            continue
        folder = daily_dir(settings) / community
        if not folder.is_dir():
            continue
        found = []
        for entry in folder.iterdir():
            match = DAY_FILE.match(entry.name)  # partial files (.name.partial.pdf) never match
            if match and entry.is_file():
                found.append(DailyReport(community, dt.date.fromisoformat(match.group(1)), entry, entry.stat().st_size))
        out += sorted(found, key=lambda r: r.day, reverse=True)[:limit]
    return sorted(out, key=lambda r: (-r.day.toordinal(), r.community))
