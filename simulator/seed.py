"""Seeds the demo world: the demo registry (or the synthetic city) with its accounts, and the reset
that deletes the registry, users, tokens, alerts and live state before a rebuild.

The registry itself is generated in ``registry/demo.py`` and ``registry/city.py``; the accounts
are in ``simulator/demo_users.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from sqlalchemy import delete, select

from alerts.models import AlertRecord
from auth.models import ApiToken, User
from closedloop.duty_models import DutyCheck, DutyShift
from registry import importers
from registry.city import CITY_SIZE, CityReport, build_synthetic_communities, city_report
from registry.demo import build_demo_registry, registry_is_empty
from registry.models import Community, WatchlistEntry
from simulator.demo_roster import extend_demo_roster
from simulator.demo_users import create_city_users, create_demo_users
from store.sql import utcnow
from store.stores import Stores

log = logging.getLogger(__name__)
# the demo roster is stored for this long around the build (the simulator extends it as it runs)
ROSTER_BEHIND = dt.timedelta(days=2)
ROSTER_AHEAD = dt.timedelta(days=14)


def build_demo_if_empty(stores: Stores) -> bool:
    """Build the demo registry when the registry is empty; True when it was built."""
    with stores.sessions() as session:
        if not registry_is_empty(session):
            return False
    build_demo(stores, reset=False)
    return True


def reset_registry(stores: Stores) -> None:
    """Delete every community (cascading to its registry) and the live state in Redis."""
    with stores.sessions.begin() as session:
        session.execute(delete(AlertRecord))
        session.execute(delete(WatchlistEntry))
        session.execute(delete(ApiToken))
        session.execute(delete(User))
        session.execute(delete(DutyCheck))
        session.execute(delete(DutyShift))
        for community in session.scalars(select(Community)):
            session.delete(community)
    for key in stores.redis.scan_iter(match=f"{stores.keys.prefix}:*", count=1000):
        stores.redis.delete(key)


def build_demo(stores: Stores, *, reset: bool) -> None:
    """Build both demo communities (after deleting everything when reset)."""
    if reset:
        reset_registry(stores)
    with stores.sessions.begin() as session:
        if not registry_is_empty(session):
            raise importers.InvalidInput("the registry is not empty; use demo --reset to rebuild it")
        build_demo_registry(session, stores.id_hash_key)
        create_demo_users(session)
        now = utcnow()
        for community in session.scalars(select(Community.id)):
            extend_demo_roster(session, community, now - ROSTER_BEHIND, now + ROSTER_AHEAD)
    log.info("demo registry built")


def build_city(
    stores: Stores,
    *,
    reset: bool,
    size: int = CITY_SIZE,
    seed: int = 2026,
    progress: Callable[[int, int], None] | None = None,
) -> CityReport:
    """The two demo communities, then `size - 2` synthetic ones (``registry/city.py``), then the city's accounts."""
    started = time.monotonic()
    build_demo(stores, reset=reset)
    build_synthetic_communities(stores, size=size, seed=seed, progress=progress)
    with stores.sessions.begin() as session:
        create_city_users(session)
    return city_report(stores, started)
