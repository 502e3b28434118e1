"""The wanted list checked where an identity enters the system outside the event stream: a gate
asking whether to open, a grid worker registering a floating person, a people import, a visitor's
application. A match raises ``watchlist.match`` (critical) at once, with the same identity as the
worker's rule (``{"opener": the hash's first 16 characters}``), so the passage the gate reports a
moment later counts as a repeat of the same alert, not a second one. The applicant, the gate and
the registering worker see nothing different: only the roles that may see the wanted list
(alerts/access.py) see the alert.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from alerts.constants import WANTED_LIST_ALERTS
from alerts.live import RaiseRequest
from closedloop.incidents import Place, resolve_place
from core.errors import NotFound
from core.timefmt import iso_utc
from registry.models import Community
from registry.watchlist import wanted
from store.stores import Stores

if TYPE_CHECKING:
    from closedloop.service import Loop

WANTED_TYPE = "watchlist.match"

# where the identity was seen (the alert's evidence.source); the worker's rule says "event"
SOURCES = ("gate_decision", "registration", "people_import", "visitor_pass")


def raise_wanted(
    loop: Loop,
    community: str,
    id_hashes: Iterable[str],
    place: Place,
    *,
    source: str,
    at_ms: int | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Raise ``watchlist.match`` for each of these identities on the list at at_ms (default: now):
    the alerts raised or repeated (empty when nobody is wanted), written through the loop's alert
    store and history (so they notify like any other)."""
    assert source in SOURCES, source
    now = loop.clock.now_ms() if at_ms is None else at_ms
    found = wanted(loop.stores.redis, loop.stores.keys, list(id_hashes), now)
    if not found:
        return []
    requests = [
        RaiseRequest(
            alert_type=WANTED_TYPE,
            severity=WANTED_LIST_ALERTS[WANTED_TYPE],
            subject=place.subject,
            identity={"opener": id_hash[:16]},
            location=place.location,
            evidence={
                "watchlist_note": note,
                "seen_at": iso_utc(now),
                "source": source,
                "opener": id_hash[:16],
                **(extra or {}),
            },
            grid=place.grid,
            at_ms=now,
            tokens=[f"wanted:{source}:{id_hash[:16]}:{now}"],
        )
        for id_hash, note in found.items()
    ]
    changes = loop.alerts.raise_many(community, requests)
    loop.history.write(changes)
    return [change.doc for change in changes]


def household_place(session: Session, community: str, household: str | None) -> Place:
    """Where a person's match is placed: their household, else the community's centre."""
    found = session.get(Community, community)
    if found is None:
        raise NotFound(key="error.no_community", community=community)
    if household:
        return resolve_place(session, found, {"household": household})
    return Place(subject={}, location={"lat": found.center_lat, "lon": found.center_lon}, grid=None)


def check_people(loop: Loop, community: str, identities: list[tuple[str, str, str | None]]) -> list[dict[str, Any]]:
    """After a people import: a match for every imported person whose ID number is wanted, at
    their household (the person is named in the evidence)."""
    raised: list[dict[str, Any]] = []
    hits = wanted(loop.stores.redis, loop.stores.keys, [h for _, h, _ in identities], loop.clock.now_ms())
    if not hits:
        return raised
    with loop.stores.sessions() as session:
        places = {
            (pid, h): household_place(session, community, household) for pid, h, household in identities if h in hits
        }
    for (pid, id_hash), place in places.items():
        raised += raise_wanted(loop, community, [id_hash], place, source="people_import", extra={"person": pid})
    return raised


def check_person(
    stores: Stores,
    community: str,
    id_hash: str,
    household: str | None,
    *,
    source: str,
    extra: dict[str, Any] | None = None,
    loop: Loop | None = None,
) -> list[dict[str, Any]]:
    """One identity entering the system at a household (a registration, a visitor's application):
    a match raised when it is wanted, nothing otherwise (one HMGET when nobody is)."""
    now = int(time.time() * 1000) if loop is None else loop.clock.now_ms()
    if not wanted(stores.redis, stores.keys, [id_hash], now):
        return []
    if loop is None:
        from closedloop.service import Loop  # noqa: PLC0415 — closedloop.service uses this module

        loop = Loop(stores)
    with stores.sessions() as session:
        place = household_place(session, community, household)
    return raise_wanted(loop, community, [id_hash], place, source=source, at_ms=now, extra=extra)
