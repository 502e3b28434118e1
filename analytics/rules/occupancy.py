"""Rentals and floating population: who opens a rental's smart lock.

- ``lock.unregistered`` — anyone who is not a registered occupant opens a rental's or group
  rental's smart lock: an unrecognised face, an identity (person, ID number resolved by the
  gateway) not registered as living there, or an opening with no identity at all (a mechanical
  key): the system prompts, police and the grid worker visit to register and check.
- ``tenant.unregistered`` — the same unregistered identity keeps coming back (on
  ``tenant_days`` different days within ``tenant_window_days``): someone has moved in and never
  reported as floating population.
- ``watchlist.match`` — an identity on the wanted list opens a lock or passes a face gate: its ID
  number (resolved by the gateway, hashed at ingest), or a registered ``person`` or ``face_id`` whose
  person's ID number is on the list. The list is read from its live copy in Redis
  (registry/watchlist.py), rebuilt from SQL by every worker process as it starts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from alerts.constants import WANTED_LIST_ALERTS
from analytics.context import RuleContext
from analytics.rules.base import Rule, location_of
from core.settings import Settings
from core.timefmt import SHANGHAI, iso_utc, ms_to_utc
from ingest.directory import CommunityFacts
from ingest.schema import DeviceInfo, Event
from registry.watchlist import listed, wanted_at

RENTAL_CATEGORIES = ("rental", "group_rental")


def opener(data: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, value) of the identity in a lock or gate event, or None when it carries none."""
    for kind in ("person", "id_hash", "face_id"):
        if data.get(kind):
            return kind, str(data[kind])
    return None


def person_of(facts: CommunityFacts, who: tuple[str, str] | None) -> str | None:
    """The registered person of this community an identity resolves to, or None."""
    if who is None:
        return None
    kind, value = who
    if kind == "person":
        return value if value in facts.people else None
    return (facts.face_ids if kind == "face_id" else facts.id_hashes).get(value)


def registered_here(facts: CommunityFacts, household: str, who: tuple[str, str]) -> bool:
    """True when the identity belongs to a person registered as living in the household."""
    person = person_of(facts, who)
    return person is not None and person in facts.occupants.get(household, set())


def local_day(ms: int) -> str:
    """The Asia/Shanghai calendar day of a time."""
    return ms_to_utc(ms).astimezone(SHANGHAI).strftime("%Y-%m-%d")


def days_in_window(days: list[str], today: str, window: int) -> list[str]:
    """The distinct days within the window ending today."""
    end = dt.date.fromisoformat(today)
    return sorted({d for d in days if 0 <= (end - dt.date.fromisoformat(d)).days < window})


def identity_label(who: tuple[str, str]) -> dict[str, str]:
    """How an opener is named in an alert (a hash is shortened: it is a pseudonym, not a number)."""
    kind, value = who
    return {"opener_kind": kind, "opener": value[:16] if kind == "id_hash" else value}


class LockUnregistered(Rule):
    """An unregistered person opens a rental's smart lock."""

    name = "lock.unregistered"
    events = frozenset({"lock.open"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        household = device.household
        if household is None:
            return
        info = ctx.facts.households.get(household, {})
        who = opener(event.data)
        if info.get("category") not in RENTAL_CATEGORIES:
            return
        if who is not None and registered_here(ctx.facts, household, who):
            return  # a registered occupant; an opening with no identity at all counts as unregistered
        ctx.alert(
            self.name,
            severity="medium",
            subject={"household": household, "building": device.building, "device": device.id},
            identity={"household": household},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "method": event.data.get("method"),
                "opened_at": iso_utc(event.ts),
                **(identity_label(who) if who is not None else {"opener_kind": "none", "opener": ""}),
                "category": info.get("category"),
            },
        )


class TenantUnregistered(Rule):
    """Someone has moved into a rental and never registered."""

    name = "tenant.unregistered"
    events = frozenset({"lock.open"})

    @staticmethod
    def watched(facts: CommunityFacts, event: Event, device: DeviceInfo) -> tuple[str, tuple[str, str]] | None:
        """(state key, opener) when the event is an unregistered opener at a rental's lock, else None."""
        household = device.household
        who = opener(event.data)
        if household is None or who is None:
            return None
        if facts.households.get(household, {}).get("category") not in RENTAL_CATEGORIES:
            return None
        if registered_here(facts, household, who):
            return None
        return f"{household}|{who[0]}:{who[1]}", who

    def before_batch(self, ctx: RuleContext, events: list[Event]) -> None:
        keys: set[str] = set()
        for event in events:
            device = ctx.facts.devices.get(event.device) if event.type in self.events else None
            found = self.watched(ctx.facts, event, device) if device is not None else None
            if found is not None:
                keys.add(found[0])
        ctx.prefetch(self.name, keys)

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        found = self.watched(ctx.facts, event, device)
        if found is None:
            return
        key, who = found
        household = str(device.household)
        subject = {"household": household, "building": device.building, "device": device.id}
        seen = (ctx.state_get(self.name, key) or []) + [local_day(event.ts)]
        # the window ends at the newest day seen: a late event for an older day adds that day and
        # never pushes newer days out
        days = days_in_window(seen, max(seen), self.settings.tenant_window_days)
        ctx.state_set(self.name, key, days)
        if len(days) >= self.settings.tenant_days:
            ctx.alert(
                self.name,
                severity="high",
                subject=subject,
                identity={"household": household, **identity_label(who)},
                location=location_of(device),
                grid=device.grid,
                evidence={
                    "reason": "not_registered",
                    "days_seen": days,
                    "last_seen_at": iso_utc(event.ts),
                    **identity_label(who),
                },
            )


def id_hashes_of(facts: CommunityFacts, data: dict[str, Any]) -> list[str]:
    """Every ID-number hash an event's identity stands for: its own, and its registered person's."""
    hashes = [str(data["id_hash"])] if data.get("id_hash") else []
    for kind in ("person", "face_id"):
        if data.get(kind):
            person = person_of(facts, (kind, str(data[kind])))
            if person is not None and facts.people[person].get("id_hash"):
                hashes.append(str(facts.people[person]["id_hash"]))
    return hashes


class WatchlistMatch(Rule):
    """A wanted identity opens a lock or passes a face gate."""

    name = "watchlist.match"
    events = frozenset({"lock.open", "gate.face"})

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._listed: dict[str, str] = {}  # the batch's identities on the list (one HMGET per batch)

    def before_batch(self, ctx: RuleContext, events: list[Event]) -> None:
        hashes = [h for e in events if e.type in self.events for h in id_hashes_of(ctx.facts, e.data)]
        self._listed = listed(ctx.redis, ctx.keys, hashes)

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        hashes = id_hashes_of(ctx.facts, event.data)
        if not hashes:
            return
        for id_hash, note in wanted_at(self._listed, hashes, event.ts).items():
            self._raise(ctx, event, device, id_hash, note)

    def _raise(self, ctx: RuleContext, event: Event, device: DeviceInfo, id_hash: str, note: str) -> None:
        ctx.alert(
            self.name,
            severity=WANTED_LIST_ALERTS[self.name],
            subject={"household": device.household, "building": device.building, "device": device.id},
            identity={"opener": str(id_hash)[:16]},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "watchlist_note": note,
                "seen_at": iso_utc(event.ts),
                "event_type": event.type,
                "source": "event",
                "opener": str(id_hash)[:16],
            },
        )
