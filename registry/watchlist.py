"""The wanted list (布控名单): ID numbers held only as keyed hashes, each with a note and an optional
last day.

SQL (table ``watchlist``) is the source. Redis holds the live copy that every check reads (the
worker's rule, a gate's decision, a registration, a visitor's application): the global hash
``Keys.watchlist``, field the ID-number hash, value ``{"note", "expires"}`` (epoch ms of the end of
the last day in Asia/Shanghai, or null). Each change rewrites its field at once; a worker starting
rebuilds the whole hash from SQL, so a flushed Redis forgets no one. An expired entry is no longer
matched, and stays listed (marked expired) until it is removed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.secrets import keyed_hash
from core.timefmt import SHANGHAI
from registry import validate
from registry.models import WatchlistEntry
from store.keys import Keys
from store.redis_server import RedisClient

if TYPE_CHECKING:
    from registry.importers import ImportReport

NOTE_MAX = 200
IMPORT_COLUMNS = ("id_number", "note", "expires")


def today_local() -> dt.date:
    """Today's date in Asia/Shanghai."""
    return dt.datetime.now(SHANGHAI).date()


def expires_ms(day: dt.date | None) -> int | None:
    """The end of the entry's last day (Asia/Shanghai) as epoch ms, or None for no end."""
    if day is None:
        return None
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=SHANGHAI)
    return int(end.timestamp() * 1000)


def parse_expiry(value: str | dt.date | None, today: dt.date) -> dt.date | None:
    """A last day given as YYYY-MM-DD: refused when it is not a date or is already past."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(key="watchlist.err.expires_format", value=str(value)[:40]) from None
    if day < today:
        raise InvalidInput(key="watchlist.err.expires_past", day=day.isoformat())
    return day


def _doc(entry: WatchlistEntry) -> str:
    return json.dumps({"note": entry.note, "expires": expires_ms(entry.expires_on)}, ensure_ascii=False)


def project_all(redis: RedisClient, keys: Keys, session: Session) -> int:
    """Rewrite the live copy whole from SQL (a worker starting); the number of entries."""
    mapping = {e.id_hash: _doc(e) for e in session.scalars(select(WatchlistEntry))}
    pipe = redis.pipeline(transaction=True)
    pipe.delete(keys.watchlist)
    if mapping:
        pipe.hset(keys.watchlist, mapping=mapping)
    pipe.execute()
    return len(mapping)


def project(redis: RedisClient, keys: Keys, session: Session, id_hashes: list[str]) -> None:
    """Rewrite these entries' fields from SQL (removed ones are deleted)."""
    if not id_hashes:
        return
    found = {e.id_hash: e for e in session.scalars(select(WatchlistEntry).where(WatchlistEntry.id_hash.in_(id_hashes)))}
    pipe = redis.pipeline(transaction=True)
    gone = [h for h in id_hashes if h not in found]
    if gone:
        pipe.hdel(keys.watchlist, *gone)
    if found:
        pipe.hset(keys.watchlist, mapping={h: _doc(e) for h, e in found.items()})
    pipe.execute()


def listed(redis: RedisClient, keys: Keys, id_hashes: Iterable[str]) -> dict[str, str]:
    """id hash → its stored list entry (JSON) of the given identities that are on the list, expired
    or not: one HMGET for all of them (``wanted_at`` judges them at a moment)."""
    hashes = [h for h in dict.fromkeys(id_hashes) if h]
    if not hashes:
        return {}
    return {h: raw for h, raw in zip(hashes, redis.hmget(keys.watchlist, hashes), strict=True) if raw is not None}


def wanted_at(entries: dict[str, str], id_hashes: Iterable[str], at_ms: int) -> dict[str, str]:
    """id hash → note of the given identities whose entry (from ``listed``) holds at at_ms."""
    out: dict[str, str] = {}
    for id_hash in dict.fromkeys(id_hashes):
        raw = entries.get(id_hash)
        if raw is None:
            continue
        doc = json.loads(raw)
        if doc.get("expires") is None or at_ms < int(doc["expires"]):
            out[id_hash] = str(doc.get("note") or "")
    return out


def wanted(redis: RedisClient, keys: Keys, id_hashes: list[str], at_ms: int) -> dict[str, str]:
    """id hash → note of the given identities that are on the list (and not expired) at at_ms."""
    return wanted_at(listed(redis, keys, id_hashes), id_hashes, at_ms)


def add(session: Session, id_hash: str, note: str, expires_on: dt.date | None, by: str) -> bool:
    """Put an identity on the list, or update its note and last day; True when it was new."""
    entry = session.get(WatchlistEntry, id_hash)
    if entry is None:
        session.add(WatchlistEntry(id_hash=id_hash, note=note[:NOTE_MAX], added_by=by[:64], expires_on=expires_on))
        return True
    if note:
        entry.note = note[:NOTE_MAX]
    entry.expires_on = expires_on
    return False


def remove(session: Session, id_hash: str) -> bool:
    """Take an identity off the list; False when it was not on it."""
    entry = session.get(WatchlistEntry, id_hash)
    if entry is None:
        return False
    session.delete(entry)
    return True


def listing(session: Session, today: dt.date) -> list[dict[str, Any]]:
    """Every entry as shown to an operator: the hash's first 12 characters, never a number."""
    rows = session.scalars(select(WatchlistEntry).order_by(WatchlistEntry.added_at, WatchlistEntry.id_hash))
    return [
        {
            "hash_prefix": e.id_hash[:12],
            "note": e.note,
            "expires": e.expires_on.isoformat() if e.expires_on else None,
            "expired": e.expires_on is not None and e.expires_on < today,
            "added_by": e.added_by,
            "added_at": e.added_at.isoformat() if e.added_at else None,
        }
        for e in rows
    ]


@dataclass
class WantedRow:
    """One valid row of a wanted-list file."""

    id_hash: str
    note: str
    expires_on: dt.date | None


def read_import(path: Path, key: bytes, today: dt.date) -> tuple[list[WantedRow], ImportReport]:
    """The rows of a wanted-list CSV/XLSX (columns id_number, note, expires): every row valid, or
    ImportRejected with each bad row and its reason (a bad checksum, a date that is past, a number
    twice in the file)."""
    # the importers load geopandas: only this command needs them, not the worker that matches the list
    from registry.importers import ImportRejected, ImportReport, RowError, read_table  # noqa: PLC0415

    frame = read_table(path)
    report = ImportReport(kind="watchlist", rows=len(frame))
    if "id_number" not in frame.columns:
        raise InvalidInput(key="watchlist.err.columns", columns=", ".join(IMPORT_COLUMNS))
    rows: list[WantedRow] = []
    seen: dict[str, int] = {}
    for n, record in enumerate(frame.to_dict("records"), start=1):
        try:
            number = validate.id_number(record.get("id_number"))
        except InvalidInput as err:
            report.errors.append(RowError(n, "id_number", str(err)))
            continue
        try:
            expires_on = parse_expiry(str(record.get("expires") or ""), today)
        except InvalidInput as err:
            report.errors.append(RowError(n, "expires", str(err)))
            continue
        if number in seen:
            report.errors.append(RowError(n, "id_number", f"the same number as row {seen[number]}"))
            continue
        seen[number] = n
        note = validate.normalise_text(str(record.get("note") or ""))
        rows.append(WantedRow(keyed_hash(key, number), note, expires_on))
    if report.errors:
        raise ImportRejected(report)
    report.written = len(rows)
    return rows, report
