"""The archiver: a second consumer group (``archive``) on every community stream copies each
accepted event, with its place, into the SQL archive (``event_archive``), and keeps the state
keyframes up to now (memory/state.py).

It runs as a process of its own (``manage.py archive``, ``Archiver.run``; several may run at once,
the group shares the entries out), off the ingest path and out of the analytics workers' way: the
copy costs about as much CPU per event as the analytics (docs/performance.md, "Third round"). With
``SANDTABLE_ARCHIVE_IN_WORKERS=true`` the analytics workers do it instead, after each batch (one
process for everything). The workers create the archive group either way, so that no entry is
trimmed from a stream before the archive has read it. An entry is
acknowledged in the archive group only after its row is committed, and the row's primary key
(community, stream entry, ts) makes a redelivered entry a no-op: a crash between the commit and
the acknowledgement never writes an event twice, and an entry never acknowledged is delivered
again (to this process, or claimed by another after ``worker_claim_idle_ms``), so none is skipped.
Poison entries (undecodable: the analytics group dead-letters them) are acknowledged and not archived.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import os
import socket
import threading
import time
from collections import defaultdict
from typing import Any

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingest.directory import CommunityFacts, Directory
from ingest.schema import Event
from memory.models import ArchivedEvent, cell_of
from memory.state import fold_to, invalidate
from store.events import ARCHIVE_GROUP, EventLog, StreamEntry
from store.redis_server import TRANSIENT_ERRORS
from store.stores import Stores

log = logging.getLogger(__name__)
WEEK_MS = 7 * 86_400_000
# Monday 1970-01-05 00:00 UTC: partitions are whole ISO weeks in UTC
_WEEK_ZERO_MS = 4 * 86_400_000
# the archive's columns in table order: a row is bound as a plain tuple of these (``insert``)
COLUMNS: tuple[str, ...] = tuple(column.name for column in ArchivedEvent.__table__.columns)
_values_of = operator.itemgetter(*COLUMNS)
_DATA = COLUMNS.index("data")
_encode = msgspec.json.Encoder().encode
# SQLite's page cache on the archiver's connection (KiB; SQLite's default is 2 MiB): the inserts land
# all over the seven indexes, and a page read again from the OS costs CPU (docs/performance.md)
SQLITE_CACHE_KIB = 32_000


def identity_of(data: dict[str, Any], facts: CommunityFacts) -> str | None:
    """Who an event names: a registry person id (sent, or resolved from a registered face or an ID
    hash), else ``face:<face id>`` for an unregistered face, ``id:<hash>`` for an unknown ID number."""
    person = data.get("person")
    if isinstance(person, str) and person:
        return person
    face = data.get("face_id")
    if isinstance(face, str) and face:
        return facts.face_ids.get(face) or f"face:{face}"
    id_hash = data.get("id_hash")
    if isinstance(id_hash, str) and id_hash:
        return facts.id_hashes.get(id_hash) or f"id:{id_hash}"
    return None


def archive_row(community: str, entry_id: str, event: Event, facts: CommunityFacts) -> dict[str, Any]:
    """The archive row of one accepted event: the event and where it happened (a guard's position
    is where the guard was; any other event is at its device)."""
    device = facts.devices.get(event.device)
    lat = lon = None
    guard = None
    if event.type == "guard.position":
        lat, lon = float(event.data["lat"]), float(event.data["lon"])
        guard = facts.wearables.get(event.device)
    elif device is not None:
        lat, lon = device.lat, device.lon
    if event.type == "patrol.checkin":
        guard = str(event.data.get("guard") or "") or None
    plate = event.data.get("plate") if event.type == "gate.vehicle" else None
    return {
        "community_id": community,
        "entry": entry_id,
        "ts": event.ts,
        "received": event.received,
        "event_id": event.id,
        "type": event.type,
        "device_id": event.device,
        "building_id": device.building if device else None,
        "household_id": device.household if device else None,
        "grid_id": device.grid if device else None,
        "lat": lat,
        "lon": lon,
        "cell": cell_of(lat, lon) if lat is not None and lon is not None else None,
        "guard_id": guard,
        "plate": str(plate) if plate else None,
        "person": identity_of(event.data, facts),
        "data": event.data,
    }


def week_start(ts_ms: int) -> int:
    """The start (epoch ms) of the UTC ISO week holding ts_ms: the bounds of a partition."""
    return ts_ms - (ts_ms - _WEEK_ZERO_MS) % WEEK_MS


def partition_name(start_ms: int) -> str:
    """The name of the partition of the week starting at start_ms (event_archive_w20261130)."""
    day = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC)
    return f"event_archive_w{day:%Y%m%d}"


class Partitions:
    """PostgreSQL only: creates the week partitions that rows need (once per process per week).
    Two processes creating the same partition race harmlessly: the loser finds it there."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.known: set[int] = set()
        self._lock = threading.Lock()

    def ensure(self, ts_values: list[int]) -> None:
        """Create the partitions of these event times that may not exist yet."""
        for start in sorted({week_start(ts) for ts in ts_values} - self.known):
            with self._lock:
                self._create(start)
                self.known.add(start)

    def _create(self, start: int) -> None:
        name = partition_name(start)
        statement = text(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF event_archive "  # name from digits only
            f"FOR VALUES FROM ({start}) TO ({start + WEEK_MS})"
        )
        for _attempt in range(3):
            try:
                with self.sessions.begin() as session:
                    session.execute(statement)
                return
            except DBAPIError as err:  # another process created it meanwhile (a duplicate relation)
                if "already exists" not in str(err) and "duplicate" not in str(err).lower():
                    raise


class Archiver:
    """Reads the ``archive`` group of the community streams and writes the archive."""

    def __init__(self, stores: Stores, *, consumer: str | None = None, directory: Directory | None = None) -> None:
        self.stores = stores
        self.consumer = consumer or f"archive-{socket.gethostname()}-{os.getpid()}"
        self.directory = directory or Directory(stores.sessions)
        self.events = EventLog(
            stores.redis,
            stores.keys,
            cluster_block_ms=stores.settings.worker_cluster_block_ms,
            group=ARCHIVE_GROUP,
        )
        self.partitions = Partitions(stores.sessions) if stores.engine.dialect.name == "postgresql" else None
        self.archived = 0  # rows offered to the archive by this process (a redelivery counts again)
        self._started: set[str] = set()
        self._insert_sql: str | None = None
        self._keyframed: dict[str, float] = {}  # community → when this process last built its keyframes

    def start(self, community: str) -> None:
        """Create the archive group of the community's stream (once per process)."""
        if community not in self._started:
            self.events.ensure_group(community)
            self._started.add(community)

    def run_once(self, communities: list[str], *, count: int = 2000) -> int:
        """Archive what is new in the communities' streams (one non-blocking read); returns how many."""
        for community in communities:
            self.start(community)
        entries = self.events.read(communities, self.consumer, count=count, block_ms=None)
        return self.write(entries)

    def reclaim(self, community: str, min_idle_ms: int) -> int:
        """Take over and archive the entries another archiver left unacknowledged (it crashed)."""
        claimed = self.events.claim_stale(community, self.consumer, min_idle_ms)
        return self.write([entry for entry, _deliveries in claimed])

    def keep_keyframes(self, community: str, now_ms: int) -> bool:
        """Fold the sand-table's state forward to now (memory/state.py), saving the keyframes crossed,
        so that nobody's first look at a past moment pays for folding the day; only once the archive
        has caught up (a keyframe built ahead of a backlog would be thrown away by its late rows)."""
        if not self.events.caught_up(community):
            return False
        fold_to(self.stores, community, now_ms, now_ms=now_ms)
        return True

    def keyframes_due(self, community: str, now_ms: int | None = None) -> bool:
        """Build the community's keyframes up to now, once per keyframe interval (``keep_keyframes``);
        with several archivers (or workers archiving) one of them does it (a Redis lock per community)."""
        every = self.stores.settings.keyframe_minutes * 60.0
        if time.monotonic() - self._keyframed.get(community, -every) < every:
            return False
        lock = self.stores.keys.rule_state(community, "keyframe-lock")
        if not self.stores.redis.set(lock, self.consumer, nx=True, px=int(every * 1000)):
            self._keyframed[community] = time.monotonic()  # another process has them this interval
            return False
        if self.keep_keyframes(community, int(time.time() * 1000) if now_ms is None else now_ms):
            self._keyframed[community] = time.monotonic()
            return True
        self.stores.redis.delete(lock)  # not caught up yet: whoever catches up first builds them
        return False

    def run(self, stop: threading.Event) -> None:
        """The archive process (``manage.py archive``): copy every community's new entries as they
        come, take over what a crashed archiver left, keep the keyframes; until stop is set."""
        s = self.stores.settings
        communities: list[str] = []
        last = {"communities": 0.0, "claim": 0.0, "keyframes": 0.0}
        log.info("archiver %s started", self.consumer)
        while not stop.is_set():
            now = time.monotonic()
            try:
                if now - last["communities"] > 5 or not communities:
                    communities = self.events.communities()
                    for community in communities:
                        self.start(community)
                    last["communities"] = now
                if not communities:
                    stop.wait(0.5)
                    continue
                self.write(
                    self.events.read(communities, self.consumer, count=s.archive_batch, block_ms=s.worker_block_ms)
                )
                if now - last["claim"] > max(1.0, s.worker_claim_idle_ms / 3000):
                    for community in communities:
                        self.reclaim(community, s.worker_claim_idle_ms)
                    last["claim"] = now
                if now - last["keyframes"] > s.sweep_seconds:
                    for community in communities:
                        self.keyframes_due(community)
                    last["keyframes"] = now
            except TRANSIENT_ERRORS as err:
                log.warning("Redis unavailable (%s); retrying", err)
                stop.wait(1.0)
            except SQLAlchemyError as err:  # what was read stays pending, and is taken over again
                log.warning("the archive's database did not answer (%s); retrying", str(err).splitlines()[0])
                stop.wait(1.0)
        log.info("archiver %s stopped: %d events archived", self.consumer, self.archived)

    def write(self, entries: list[StreamEntry]) -> int:
        """Insert the entries' rows (a row already there is left as it is), then acknowledge them."""
        by_community: dict[str, list[StreamEntry]] = defaultdict(list)
        for entry in entries:
            by_community[entry.community].append(entry)
        written = 0
        for community, batch in by_community.items():
            facts = self.directory.facts(community)
            rows: list[dict[str, Any]] = []
            for entry in batch:
                try:
                    if entry.doc is None:
                        raise ValueError("not a JSON object")
                    event = Event.from_wire(entry.doc)
                except (KeyError, TypeError, ValueError, OverflowError):
                    continue  # poison: the analytics group dead-letters it
                rows.append(archive_row(community, entry.entry_id, event, facts))
            self.insert(rows)
            self.events.ack(community, [entry.entry_id for entry in batch])
            written += len(rows)
        self.archived += written
        return written

    def insert(self, rows: list[dict[str, Any]]) -> None:
        """Insert archive rows (``archive_row``'s), skipping those already archived (a redelivery):
        one ``executemany`` of plain tuples through the driver, the event data encoded once by msgspec
        (the ORM's insert built and processed a parameter dictionary per row: half the copy's CPU)."""
        if not rows:
            return
        if self.partitions is not None:
            self.partitions.ensure([row["ts"] for row in rows])
        params = []
        for row in rows:
            values = list(_values_of(row))
            values[_DATA] = _encode(values[_DATA] or {}).decode()
            params.append(tuple(values))
        with self.stores.sessions.begin() as session:
            connection = session.connection()
            if connection.dialect.name == "sqlite":  # the seven indexes' pages stay in memory between batches
                connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            connection.exec_driver_sql(self._statement(session), params)
            invalidate(session, rows)  # keyframes the rows arrive too late for (memory/state.py)

    def _statement(self, session: Session) -> str:
        if self._insert_sql is None:
            mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
            columns, marks = ", ".join(COLUMNS), ", ".join([mark] * len(COLUMNS))
            self._insert_sql = (
                f"INSERT INTO event_archive ({columns}) VALUES ({marks}) "  # noqa: S608 — the model's column names
                "ON CONFLICT (community_id, entry, ts) DO NOTHING"
            )
        return self._insert_sql


def archive_size(session: Session) -> int:
    """How many events the archive holds (every community)."""
    return int(session.scalar(select(func.count()).select_from(ArchivedEvent)) or 0)
