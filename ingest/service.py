"""Ingestion: judge each event alone, hash ID numbers, deduplicate, append to the stream, keep
every reject in the dead-letter stream with its reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.clock import Clock, WallClock
from core.metrics import metrics
from ingest.directory import Directory
from ingest.schema import (
    DAY_MS,
    EVENT_DEVICE_TYPES,
    DeviceInfo,
    Event,
    RawEvent,
    Rejected,
    check_event,
    encoder,
    redact,
)
from store.events import EventLog
from store.evidence import EvidenceStore
from store.stores import Stores


@dataclass
class IngestResult:
    """The answer of interfaces §2: accepted, duplicates, and each rejected event's reason."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The JSON body of the 202 response."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def plain_event(raw: Any) -> Any:
    """A raw event as plain JSON values (a typed RawEvent's fields; its data is plain already, however
    deeply nested, so nothing here recurses)."""
    if not isinstance(raw, RawEvent):
        return raw
    return {"id": raw.id, "type": raw.type, "device": raw.device, "ts": raw.ts, "data": raw.data}


def type_label(raw: Any) -> str:
    """A raw event's type as a metrics label: one of the catalogue's, or ``invalid`` (a label never
    takes a producer's free text: the series would grow without bound)."""
    found = raw.type if isinstance(raw, RawEvent) else raw.get("type") if isinstance(raw, dict) else None
    return found if isinstance(found, str) and found in EVENT_DEVICE_TYPES else "invalid"


def count_batch(good: list[Event], duplicates: list[int], rejected: list[str]) -> None:
    """The batch's accepted, duplicate and rejected events by type: one increment per type and
    outcome, whatever the batch's size."""
    series = metrics()
    duplicate_types = Counter(good[i].type for i in duplicates)
    for event_type, n in Counter(e.type for e in good).items():
        if n > duplicate_types[event_type]:
            series.events_accepted.labels(event_type).inc(n - duplicate_types[event_type])
    for event_type, n in duplicate_types.items():
        series.events_duplicates.labels(event_type).inc(n)
    for event_type, n in Counter(rejected).items():
        series.events_rejected.labels(event_type).inc(n)


class IngestService:
    """Validates and stores events for one process (the web app, a replay, a benchmark)."""

    def __init__(
        self,
        stores: Stores,
        directory: Directory | None = None,
        clock: Clock | None = None,
        *,
        horizon: bool = True,
    ) -> None:
        """horizon=False lets events of any age in (replay re-runs recorded files); the future
        tolerance and the range of times that convert (1970–5138) still apply."""
        self.stores = stores
        self.settings = stores.settings
        self.directory = directory or Directory(stores.sessions)
        self.clock = clock or WallClock()
        self.evidence = EvidenceStore.of_settings(self.settings)
        self.max_age_ms = round(self.settings.ingest_max_age_days * DAY_MS) if horizon else None
        self.log = EventLog(
            stores.redis,
            stores.keys,
            dedup_hours=self.settings.dedup_hours,
            backlog_limit=self.settings.stream_backlog_limit,
            dead_letter_max_bytes=self.settings.dead_letter_max_bytes,
            dead_letter_budget_mb=self.settings.dead_letter_budget_mb,
        )
        series = metrics()
        for event_type in (*EVENT_DEVICE_TYPES, "invalid"):  # every type shown from the start, at 0
            series.events_accepted.labels(event_type)
            series.events_duplicates.labels(event_type)
            series.events_rejected.labels(event_type)

    def ingest(self, community: str, items: list[Any]) -> IngestResult:
        """Judge and store a batch of raw events for a community."""
        now = self.clock.now_ms()
        result = IngestResult()
        good: list[Event] = []
        dead: list[dict[str, Any]] = []
        rejected_types: list[str] = []
        key = self.stores.id_hash_key
        tolerance = self.settings.future_tolerance_s * 1000
        directory = self.directory

        known = directory.facts(community).devices  # read once per batch; a miss asks the directory again

        def devices(device: str) -> DeviceInfo | None:
            return known.get(device) or directory.device(community, device)

        def guard_known(guard: str) -> bool:
            return directory.guard_known(community, guard)

        # an image reference stands for an evidence image of this community only
        evidence = self.evidence.community(community).reference

        for index, raw in enumerate(items):
            try:
                good.append(
                    check_event(
                        raw,
                        devices=devices,
                        community=community,
                        hash_key=key,
                        now_ms=now,
                        future_tolerance_ms=tolerance,
                        max_age_ms=self.max_age_ms,
                        guard_known=guard_known,
                        evidence=evidence,
                    )
                )
            except Rejected as err:
                reason = str(err)
                result.rejected.append({"index": index, "error": reason})
                rejected_types.append(type_label(raw))
                dead.append({"reason": reason, "index": index, "raw": redact(plain_event(raw), key), "at": now})
        duplicates = self.log.append(community, [(e.id, encoder.encode(e)) for e in good])
        result.duplicates = len(duplicates)
        result.accepted = len(good) - len(duplicates)
        self.log.dead_letter(community, dead)
        count_batch(good, duplicates, rejected_types)
        return result
