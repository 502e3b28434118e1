"""Every Redis key of the system, in one place (see docs/architecture.md, "Redis keys").

A community's keys share the hash tag ``{C}`` so that they live in one Redis Cluster slot:
a community's stream, dedup keys, projections and live alerts can be touched by one script
or pipeline without CROSSSLOT errors. Only the registry of communities is global.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# What a community id is (the importer's ids: wanhu, xingbang): such an id is its own hash tag.
COMMUNITY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


@lru_cache(maxsize=4096)
def hash_tag(community: str) -> str:
    """The Redis Cluster hash tag of a community's keys: the id itself, or, for an id that is not one
    (a ``}`` in it would end the tag early and let two communities share keys), ``~`` and its UTF-8 in hex."""
    if COMMUNITY_ID.fullmatch(community):
        return community
    return "~" + community.encode("utf-8", "surrogatepass").hex()


@dataclass(frozen=True)
class Keys:
    """Key names under a namespace prefix (``st`` live; a random one for an isolated replay)."""

    prefix: str = "st"

    def _c(self, community: str, name: str) -> str:
        return f"{self.prefix}:{{{hash_tag(community)}}}:{name}"

    # --- global -------------------------------------------------------------------------
    @property
    def communities(self) -> str:
        """SET of community ids that have a stream (of events, or of dead letters only)."""
        return f"{self.prefix}:communities"

    @property
    def city_changes(self) -> str:
        """ZSET community id → time (ms) its open-alert counts last changed (the city view's deltas)."""
        return f"{self.prefix}:city:changes"

    @property
    def city_registry(self) -> str:
        """STRING (JSON, short TTL) of the city's registry figures per community, shared by web workers."""
        return f"{self.prefix}:city:registry"

    @property
    def watchlist(self) -> str:
        """HASH of the wanted list: ID-number hash → JSON ``{"note", "expires"}`` (expires: epoch ms or null),
        the live copy every check reads (registry/watchlist.py; SQL is the source)."""
        return f"{self.prefix}:watchlist"

    def anon_denials(self, address: str, window: int) -> str:
        """STRING count of anonymous requests refused from one address in one window (audited in one row)."""
        return f"{self.prefix}:audit:anon:{address}:{window}"

    @property
    def anon_denials_open(self) -> str:
        """ZSET ``address|window`` → the window's end (s) of the counts not yet written to the audit log."""
        return f"{self.prefix}:audit:anon:open"

    # --- per community ------------------------------------------------------------------
    def events(self, community: str) -> str:
        """STREAM of accepted events."""
        return self._c(community, "events")

    def dead(self, community: str) -> str:
        """STREAM of rejected and poison events with their reason (bounded per entry and in all: dead_letter)."""
        return self._c(community, "dead")

    def dead_truncated(self, community: str) -> str:
        """INTEGER: how many dead-letter entries were stored truncated (over the per-entry cap)."""
        return self._c(community, "dead:truncated")

    def dead_total(self, community: str) -> str:
        """INTEGER: how many dead letters were ever written (beyond the stream's length: pushed out by its cap)."""
        return self._c(community, "dead:total")

    def dead_once(self, community: str, token: str) -> str:
        """STRING, 24 h TTL: this poison entry or rejected event was dead-lettered (written once only)."""
        return self._c(community, f"dead:once:{token}")

    def drops(self, community: str) -> str:
        """HASH reason → how many acknowledged events the system lost for that reason (``lost_on_restart``)."""
        return self._c(community, "drops")

    def seen(self, community: str, event_id: str) -> str:
        """STRING set for 24 h when an event id was accepted (idempotency)."""
        return self._c(community, f"seen:{event_id}")

    def version(self, community: str) -> str:
        """INTEGER bumped whenever the community's live state changes (the UI polls it)."""
        return self._c(community, "ver")

    def changes(self, community: str) -> str:
        """ZSET feature key (guard:G, device:D, alert:A) → time (ms) of its last change (delta refreshes)."""
        return self._c(community, "changes")

    def device_seen(self, community: str) -> str:
        """ZSET device id → time (ms) of its newest event (ZADD GT: out-of-order events never go back)."""
        return self._c(community, "dev:seen")

    def device_state(self, community: str) -> str:
        """HASH device id → JSON of its last reported state (battery, last event type)."""
        return self._c(community, "dev:state")

    def door_last(self, community: str) -> str:
        """ZSET door-sensor id → time (ms) of its newest door.contact."""
        return self._c(community, "door:last")

    def timer(self, community: str, name: str) -> str:
        """ZSET key → due time (ms) of one rule timer (elder, silent, offline, …); swept by the workers."""
        return self._c(community, f"timer:{name}")

    def frontier(self, community: str) -> str:
        """ZSET ``events`` → the newest event time (ms) the workers have processed (timers' horizon)."""
        return self._c(community, "frontier")

    def gate_log(self, community: str) -> str:
        """LIST of recent gate passages (newest first, bounded)."""
        return self._c(community, "gate:log")

    def gate_identities(self, community: str) -> str:
        """HASH of who may pass the community's gates (gates/identities.py): ``p:<person>`` / ``f:<face id>``
        → the person's ID hash (or empty), ``h:<ID hash>`` → person id, ``v:<plate>`` → JSON
        ``{"blacklisted", "note"}``; ``_at`` (ms the registry facts were read) and ``_fp`` (their fingerprint)."""
        return self._c(community, "gate:who")

    def gate_identities_staged(self, community: str, token: str) -> str:
        """HASH of a projection being written, renamed onto ``gate:who`` in one step (TTL)."""
        return self._c(community, f"gate:who:stage:{token}")

    def gate_decisions(self, community: str, day: str) -> str:
        """HASH ``<device>|<reason>`` → decisions of the gates that ask, per local day ``YYYY-MM-DD`` (TTL)."""
        return self._c(community, f"gate:decide:{day}")

    def guards_geo(self, community: str) -> str:
        """GEO of guard positions."""
        return self._c(community, "guards:geo")

    def guard_state(self, community: str) -> str:
        """HASH guard id → JSON {lat, lon, ts, accuracy}."""
        return self._c(community, "guards:state")

    def guard_trail(self, community: str, guard: str) -> str:
        """LIST of a guard's recent positions (newest first, bounded)."""
        return self._c(community, f"guards:trail:{guard}")

    def household_log(self, community: str, household: str) -> str:
        """LIST of a household's recent lock/gate events (newest first, bounded)."""
        return self._c(community, f"hh:log:{household}")

    def alerts_open(self, community: str) -> str:
        """HASH dedup key (type|canonical subject) → JSON document of the open alert."""
        return self._c(community, "alerts:open")

    def alert_counts(self, community: str) -> str:
        """HASH ``sev:S`` / ``type:T`` → number of open alerts (kept by the alert scripts; the city view)."""
        return self._c(community, "alerts:count")

    def alert(self, community: str, name: str) -> str:
        """HASH of alerts: ``alert:index`` (id → dedup key of open ones), ``alert:closed`` (id → document)."""
        return self._c(community, f"alert:{name}")

    def alerts_feed(self, community: str) -> str:
        """ZSET alert id → last update time (ms): the live feed."""
        return self._c(community, "alerts:feed")

    def modes(self, community: str) -> str:
        """HASH ``maintenance:<device>`` / ``away:<person>`` → JSON ``{id, from, until}`` (ms) of the
        community's maintenance and away modes (registry/modes.py; rebuilt from SQL by a starting worker)."""
        return self._c(community, "modes")

    def rule_state(self, community: str, rule: str) -> str:
        """HASH of one rule's private state."""
        return self._c(community, f"rule:{rule}")

    # --- login failures (auth/lockout.py) ----------------------------------------------
    def _login(self, account: str, name: str) -> str:
        # an account's keys share a hash tag, so that one script touches them on a Redis Cluster;
        # account is a digest of the username (anything may be typed as one)
        return f"{self.prefix}:login:{{{account}}}:{name}"

    def login_address(self, account: str, address: str) -> str:
        """HASH of one account's failures from one client address: ``n`` since the last lock,
        ``locks`` so far, ``until`` (ms) the end of the current lock (TTL)."""
        return self._login(account, f"addr:{address}")

    def login_account(self, account: str, window: int) -> str:
        """STRING count of one account's failures from every address in one window (TTL)."""
        return self._login(account, f"fails:{window}")

    def login_wait(self, account: str, address: str) -> str:
        """STRING time (ms) from which an address may try a slowed-down account again (TTL)."""
        return self._login(account, f"wait:{address}")

    # --- reports ------------------------------------------------------------------------
    def report_job(self, job_id: str) -> str:
        """HASH of a report made on the /reports page: owner, status, progress, file (TTL: kept hours)."""
        return f"{self.prefix}:report:job:{job_id}"

    def report_running(self, owner: str) -> str:
        """STRING set while a user's report is being made (one at a time per user; TTL)."""
        return f"{self.prefix}:report:running:{owner}"

    def daily_due_since(self, community: str, day: str) -> str:
        """STRING: when (clock ms) the scheduler first found the community's daily report of day due
        (a community whose events stop before the day's end gets its report a while after; TTL days)."""
        return self._c(community, f"report:daily-due:{day}")

    @property
    def daily_recheck(self) -> str:
        """STRING: when (clock ms) the recent daily reports were last checked for late data."""
        return f"{self.prefix}:report:daily-recheck"

    def report_lock(self, name: str) -> str:
        """STRING lock (SET NX PX) of a scheduled report, e.g. ``daily:wanhu:2026-11-24``."""
        return f"{self.prefix}:report:lock:{name}"
