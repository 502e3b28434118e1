"""The daily report: once the configured local time has passed, yesterday's PDF of every community is
written to ``<var_dir>/reports/daily/<community>/<date>.pdf`` — once its data is in
(``reports/completeness.py``), and again when late data for that day arrived.

Beside each PDF a small JSON sidecar (``<date>.json``) keeps what it was made from: how far its data
ran, the counts of the day's gate passages, alerts, patrol rounds and visitor passes, when it was
rendered and how many times. Every ``report_daily_recheck_minutes`` one worker counts the last
``report_daily_recheck_days`` days again (a few grouped queries) and renders again the reports whose
counts grew, or whose day is complete now when it was not before; a report whose counts did not
change is never rendered again, so nothing loops. One worker renders a given file at a time (a Redis
``SET NX`` lock); the PDF appears or is replaced atomically, by rename, only when complete."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auth.principal import Principal
from core.settings import Settings
from core.timefmt import SHANGHAI, ms_to_utc
from registry import queries
from reports.completeness import coverages, day_counts
from reports.model import Coverage, ReportRequest
from reports.service import make_report
from store.stores import Stores

log = logging.getLogger(__name__)

# the daily reports are read by police and admins of each community: masked for the police
DAILY = Principal(kind="system", id="daily-report", role="police", name="daily report")
LOCK_MS = 30 * 60_000  # a render takes seconds; a failed one is retried when its lock expires
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.pdf$")
COMMUNITY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# KEYS[1] the lock; ARGV[1] its owner: released only by the worker that holds it
RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True)
class Sidecar:
    """What a daily PDF was made from (``<date>.json`` beside it)."""

    coverage: Coverage
    counts: dict[str, int]
    rendered_ms: int
    first_rendered_ms: int
    renders: int

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "data_until_ms": self.coverage.until_ms,
            "complete": self.coverage.complete,
            "counts": self.counts,
            "rendered_ms": self.rendered_ms,
            "first_rendered_ms": self.first_rendered_ms,
            "renders": self.renders,
        }

    @classmethod
    def read(cls, pdf: Path) -> Sidecar | None:
        """The sidecar of a PDF, or None (none yet, written by an older version, or unreadable)."""
        try:
            doc = json.loads(sidecar_path(pdf).read_text(encoding="utf-8"))
            until = doc["data_until_ms"]
            return cls(
                Coverage(int(until) if until is not None else None, bool(doc["complete"])),
                {str(k): int(v) for k, v in doc["counts"].items()},
                int(doc["rendered_ms"]),
                int(doc["first_rendered_ms"]),
                int(doc["renders"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class DailyReport:
    """A daily PDF on disk."""

    community: str
    day: dt.date
    path: Path
    size: int
    sidecar: Sidecar | None = None


def due_day(settings: Settings, now_ms: int) -> dt.date | None:
    """Yesterday (local) once today's report time has passed, else None."""
    local = ms_to_utc(now_ms).astimezone(SHANGHAI)
    hour, minute = (int(x) for x in settings.report_daily_at.split(":"))
    if (local.hour, local.minute) < (hour, minute):
        return None
    return local.date() - dt.timedelta(days=1)


def latest_due_day(settings: Settings, now_ms: int) -> dt.date:
    """The latest day whose report is due: yesterday after the report time, else the day before."""
    return due_day(settings, now_ms) or ms_to_utc(now_ms).astimezone(SHANGHAI).date() - dt.timedelta(days=2)


def daily_dir(settings: Settings) -> Path:
    """Where the daily PDFs live."""
    return settings.var_dir / "reports" / "daily"


def daily_path(settings: Settings, community: str, day: dt.date) -> Path:
    """The PDF of one community and day."""
    if not COMMUNITY_ID.match(community):
        raise ValueError(f"not a community id: {community!r}")
    return daily_dir(settings) / community / f"{day.isoformat()}.pdf"


def sidecar_path(pdf: Path) -> Path:
    """The JSON beside a daily PDF."""
    return pdf.with_suffix(".json")


def wanted(before: Sidecar | None, counts: dict[str, int], coverage: Coverage) -> bool:
    """Whether a daily PDF is to be (re)made: none yet, more (or other) data than it was made from,
    or its day is complete now when it was not."""
    if before is None:
        return True
    return counts != before.counts or (coverage.complete and not before.coverage.complete)


def run_due_reports(stores: Stores, now_ms: int) -> list[Path]:
    """Render the due daily PDFs whose data is in, and render again those late data changed (at most
    ``report_daily_batch`` per call, so that a worker's sweep is never held up for long); returns the
    files written by this call."""
    settings = stores.settings
    if not settings.report_daily_enabled:
        return []
    with stores.sessions() as session:
        communities = [c.id for c in queries.communities(session, queries.EVERYTHING)]
    budget = [settings.report_daily_batch]
    written: list[Path] = []
    day = due_day(settings, now_ms)
    if day is not None:
        missing = [c for c in communities if not daily_path(settings, c, day).exists()]
        wait_ms = settings.report_daily_wait_minutes * 60_000
        for community, coverage in coverages(stores, missing, day, now_ms, wait_ms=wait_ms).items():
            written += _render(stores, community, day, coverage, now_ms, budget)
    if budget[0] > 0 and _recheck_due(stores, now_ms):
        written += _recheck(stores, communities, now_ms, budget)
    return written


def _recheck_due(stores: Stores, now_ms: int) -> bool:
    """True at most once per recheck interval (of the clock), across workers."""
    every = stores.settings.report_daily_recheck_minutes * 60_000
    last = stores.redis.get(stores.keys.daily_recheck)
    if last is not None and 0 <= now_ms - int(last) < every:
        return False
    stores.redis.set(stores.keys.daily_recheck, now_ms, px=2 * every)
    return True


def _recheck(stores: Stores, communities: list[str], now_ms: int, budget: list[int]) -> list[Path]:
    """Render again the recent daily PDFs that late data changed (or completed)."""
    settings = stores.settings
    last = latest_due_day(settings, now_ms)
    days = [last - dt.timedelta(days=n) for n in range(settings.report_daily_recheck_days)]
    existing = [(c, d) for d in days for c in communities if daily_path(settings, c, d).exists()]
    if not existing:
        return []
    with stores.sessions() as session:
        counts = day_counts(session, {c for c, _ in existing}, days)
    written: list[Path] = []
    for community, day in existing:
        before = Sidecar.read(daily_path(settings, community, day))
        now_counts = counts[(community, day)]
        if before is not None and now_counts == before.counts and before.coverage.complete:
            continue  # nothing new: the common case, no Redis asked
        coverage = coverages(stores, [community], day, now_ms, wait_ms=0).get(community)
        if coverage is not None and wanted(before, now_counts, coverage):
            written += _render(stores, community, day, coverage, now_ms, budget)
    return written


def _render(
    stores: Stores, community: str, day: dt.date, coverage: Coverage, now_ms: int, budget: list[int]
) -> list[Path]:
    """Render one daily PDF under its lock when still wanted (budget: renders left in this call)."""
    if budget[0] <= 0:
        return []
    settings = stores.settings
    path = daily_path(settings, community, day)
    lock = stores.keys.report_lock(f"daily:{community}:{day.isoformat()}")
    owner = f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
    if not stores.redis.set(lock, owner, nx=True, px=LOCK_MS):
        return []  # another worker is on it (or failed on it recently)
    budget[0] -= 1
    # decided again under the lock: another worker may have made it meanwhile
    before = Sidecar.read(path) if path.exists() else None
    with stores.sessions() as session:
        counts = day_counts(session, [community], [day])[(community, day)]  # before the render: none missed
    if path.exists() and not wanted(before, counts, coverage):
        stores.redis.eval(RELEASE_LUA, 1, lock, owner)
        return []
    request = ReportRequest((community,), day, day, settings.default_lang, DAILY)
    try:
        make_report(stores, request, "pdf", path, now_ms=now_ms, coverage=coverage)
    except Exception:  # one community's failure must not stop the others, nor the worker
        log.exception("daily report of %s for %s failed; retried in %d min", community, day, LOCK_MS // 60_000)
        return []
    sidecar = Sidecar(
        coverage,
        counts,
        now_ms,
        before.first_rendered_ms if before is not None else now_ms,
        before.renders + 1 if before is not None else 1,
    )
    _write_json(sidecar_path(path), sidecar.to_json())
    stores.redis.eval(RELEASE_LUA, 1, lock, owner)
    log.info("daily report of %s for %s written to %s (render %d)", community, day, path, sidecar.renders)
    return [path]


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write a small JSON file atomically."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.partial.json")
    try:
        partial.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


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
                found.append((dt.date.fromisoformat(match.group(1)), entry))
        found.sort(key=lambda r: r[0], reverse=True)
        out += [
            DailyReport(community, day, entry, entry.stat().st_size, Sidecar.read(entry))
            for day, entry in found[:limit]
        ]
    return sorted(out, key=lambda r: (-r.day.toordinal(), r.community))
