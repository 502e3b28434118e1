"""What people read where the data holds ids: one labelling function for the console, the tasks
page, the reports and the exports (ids stay in the API).

Registry ids (households, buildings, devices, guards, people, grids, routes) are labelled by
``registry.queries.entity_labels``; this adds the accounts (a timeline's actor is a username) and
the masking of names for the reader's role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.masking import name_for
from auth.models import User
from auth.principal import Principal
from registry.queries import entity_labels

TOKEN = re.compile(r"[\w.-]+")
SUBJECT_PLACES = ("household", "device", "building", "checkpoint")  # the most precise place first


def subject_place(subject: Mapping[str, Any] | None) -> str:
    """The id of the most precise place of an alert's subject ("" when it has none)."""
    found = subject or {}
    return next((str(found[k]) for k in SUBJECT_PLACES if found.get(k)), "")


def ids_in(values: Iterable[Any]) -> set[str]:
    """Every id-like word in these values (strings, and strings inside dicts and lists)."""
    found: set[str] = set()
    for value in values:
        if isinstance(value, str):
            found.update(TOKEN.findall(value))
        elif isinstance(value, Mapping):
            found |= ids_in(value.values())
        elif isinstance(value, list | tuple):
            found |= ids_in(value)
    return found


def labels(session: Session, reader: Principal, values: Iterable[Any], lang: str) -> dict[str, str]:
    """id → label for every id found in ``values``, names as ``reader`` may see them; batch
    queries, one per kind of id."""
    wanted = sorted(ids_in(values))
    accounts = [
        row
        for start in range(0, len(wanted), 500)
        for row in session.execute(
            select(User.username, User.display_name, User.guard_id).where(
                User.username.in_(wanted[start : start + 500])
            )
        )
    ]
    linked = [guard for _, _, guard in accounts if guard]
    out = entity_labels(session, wanted + linked, lang, person_name=lambda name: name_for(reader, name))
    for username, display, guard in accounts:
        if username not in out:
            out[username] = out.get(guard or "") or display or username
    return out


def relabel(text: str, found: Mapping[str, str]) -> str:
    """The text with every id word in it replaced by its label."""
    return TOKEN.sub(lambda m: found.get(m.group(0), m.group(0)), text) if text else text
