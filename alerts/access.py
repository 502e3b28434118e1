"""Which alerts a principal may see, and which of their fields: the one rule every reader applies.

Everything that hands alerts to a person calls this module — the alerts API, the wall (feed, key
figures, charts), the city view's counts, the console, the tasks page and reports — so that a rule
about alerts is written once, here:

- **scope**: a grid worker sees their grid's alerts only; property staff their matters only
  (``PROPERTY_ALERT_TYPES``);
- **the wanted list** is a tip-off risk: ``watchlist.match`` alerts (``WANTED_LIST_ALERTS``) reach
  admins and the roles of ``SANDTABLE_WATCHLIST_VISIBLE_TO`` (default: police) only. Everyone else
  gets no such alert, and no wanted-list detail on the alerts they do see: no wanted-list note, no
  blacklist note on a plate alert, no ID-number hash of an opener (the wanted list is keyed by
  those hashes, so a hash links a person to an entry);
- **evidence images**: only roles with ``read.evidence`` (not the wall) get an alert's image id,
  and only when it is an evidence id (``store/evidence.py``): a server path stored by an older
  version is never handed out;
- **the wall** (a display others may see) gets no person ids, openers or plates; property staff
  get no person ids;
- **a caller** (an incident's or a resident's call, ``evidence.caller``): the phone is masked for
  every role, like any other phone (``auth/masking.py``); the name as ``name_for`` shows names; the
  wall gets no caller at all, and no incident summary (a caller's own words may name people).

The SQL readers narrow their queries with ``alert_filter`` (so that limits count visible alerts
only) and still pass every row through ``alert_for``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select

from alerts.constants import WANTED_LIST_ALERTS
from alerts.models import AlertRecord
from auth.masking import mask_phone, name_for
from auth.policy import PROPERTY_ALERT_TYPES, can
from auth.principal import Principal
from core.settings import Settings
from store.evidence import is_evidence_id

Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])

WANTED_LIST_TYPES = frozenset(WANTED_LIST_ALERTS)
WANTED_LIST_EVIDENCE = ("watchlist_note",)  # fields of any alert that quote the wanted list
PLATE_ALERT_NOTE = {"gate.blacklist": "note"}  # the blacklist's note on a plate alert


def role_sees_wanted_list(role: str | None, settings: Settings) -> bool:
    """True for admins and the roles of SANDTABLE_WATCHLIST_VISIBLE_TO."""
    return role == "admin" or (role is not None and role in settings.watchlist_roles)


def sees_wanted_list(principal: Principal, settings: Settings) -> bool:
    """True when the principal may see wanted-list hits and notes (by role: the system principal is
    an admin, a report made on the command line for the wall is not)."""
    return role_sees_wanted_list(principal.role, settings)


@dataclass(frozen=True)
class AlertFilter:
    """What a principal's alert queries are narrowed to."""

    grid: str | None  # only this grid's alerts
    only: frozenset[str] | None  # only these types (property staff)
    hidden: frozenset[str]  # never these types

    def allows(self, alert_type: str, grid: str | None) -> bool:
        """True when an alert of this type and grid passes the filter."""
        if self.grid is not None and grid != self.grid:
            return False
        if self.only is not None and alert_type not in self.only:
            return False
        return alert_type not in self.hidden

    def narrow(self, query: Query) -> Query:
        """A query of the alert history (``AlertRecord``) narrowed to the alerts that pass."""
        if self.grid is not None:
            query = query.where(AlertRecord.grid_id == self.grid)
        if self.only is not None:
            query = query.where(AlertRecord.type.in_(sorted(self.only)))
        if self.hidden:
            query = query.where(AlertRecord.type.not_in(sorted(self.hidden)))
        return query


def alert_filter(principal: Principal, settings: Settings) -> AlertFilter:
    """The principal's alert filter (the community is checked by the caller, from the scope)."""
    return AlertFilter(
        grid=principal.scope.grid,
        only=PROPERTY_ALERT_TYPES if principal.role == "property" else None,
        hidden=frozenset() if sees_wanted_list(principal, settings) else WANTED_LIST_TYPES,
    )


def alert_for(principal: Principal, doc: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """The alert as this principal may see it (a copy with the fields they may not see removed), or
    None when they may not see it at all. The caller has checked the community against the scope."""
    if not alert_filter(principal, settings).allows(str(doc.get("type")), doc.get("grid")):
        return None
    out = copy.deepcopy(doc)
    subject = out.get("subject")
    evidence = out.get("evidence")
    subject = subject if isinstance(subject, dict) else {}
    evidence = evidence if isinstance(evidence, dict) else {}
    if not sees_wanted_list(principal, settings):
        for field in WANTED_LIST_EVIDENCE:
            evidence.pop(field, None)
        note = PLATE_ALERT_NOTE.get(str(out.get("type")))
        if note is not None:
            evidence.pop(note, None)
        if evidence.get("opener_kind") == "id_hash":
            evidence.pop("opener", None)
    if "image" in evidence and not (can(principal, "read.evidence") and is_evidence_id(evidence["image"])):
        del evidence["image"]
    if principal.role in ("wall", "property"):
        subject.pop("person", None)
    if principal.role == "wall":
        subject.pop("plate", None)
        evidence.pop("opener", None)
        evidence.pop("opener_kind", None)
        evidence.pop("caller", None)
        evidence.pop("summary", None)  # a caller's own words may name people
    caller = evidence.get("caller")
    if isinstance(caller, dict):
        evidence["caller"] = {
            k: v
            for k, v in (("name", name_for(principal, caller.get("name"))), ("phone", mask_phone(caller.get("phone"))))
            if v
        }
    return out


def visible_to(principal: Principal, docs: Iterable[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """The alerts the principal may see, each as they may see it, in the given order."""
    return [seen for doc in docs if (seen := alert_for(principal, doc, settings)) is not None]


def counts_for(principal: Principal, counts: dict[str, int], settings: Settings) -> dict[str, int]:
    """A community's open-alert counts (``sev:S``, ``type:T``) without the types hidden from the principal."""
    out = dict(counts)
    for alert_type in alert_filter(principal, settings).hidden:
        hidden = out.pop(f"type:{alert_type}", 0)
        severity = f"sev:{WANTED_LIST_ALERTS.get(alert_type, '')}"
        if hidden and severity in out:
            out[severity] -= hidden
            if out[severity] <= 0:
                del out[severity]
    return out
