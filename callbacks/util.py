"""Defensive reading of callback inputs: a callback endpoint can be called by hand with anything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import AlertRecord
from auth.labels import labels, subject_place
from auth.principal import Principal
from closedloop.models import Task


def as_list(value: Any) -> list[Any]:
    """The value when it is a list (the inputs of an ALL pattern), else an empty list."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is a dict (a Store's data), else an empty dict."""
    return value if isinstance(value, dict) else {}


def time_ms(state: dict[str, Any], key: str) -> int:
    """A time (epoch ms) the browser's Store holds for us; 0, as if it had none, for anything that
    is not a plausible one (text, a list, an infinite or negative number), so a full refresh follows."""
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if not 0 <= value < 1e14:  # NaN fails both comparisons
        return 0
    return int(value)


def prop(component: Any, name: str, value: Any) -> dict[str, Any]:
    """One input or State value of a callback request: component id, property, value."""
    return {"id": component, "property": name, "value": value}


def dash_request(
    outputs: list[tuple[str, str]] | tuple[tuple[str, str], ...],
    inputs: list[Any],
    states: list[Any],
    changed: str,
) -> dict[str, Any]:
    """The body of ``POST /_dash-update-component`` as the browser sends it: the callback's
    outputs, its inputs and states (``prop``; a list of them for an ALL pattern), and the
    ``id.property`` that fired."""
    named = [{"id": i, "property": p} for i, p in outputs]
    keys = [f"{i}.{p}" for i, p in outputs]
    many = len(outputs) > 1
    return {
        "output": ".." + "...".join(keys) + ".." if many else keys[0],
        "outputs": named if many else named[0],
        "inputs": inputs,
        "state": states,
        "changedPropIds": [changed],
    }


def task_places(session: Session, reader: Principal, tasks: list[Task], lang: str) -> dict[str, str]:
    """task id → where it is, as people read it (52幢2单元402室, 东门人脸门禁1): the household of its
    form, else the place of its alert's subject; one query for the alerts, one labelling."""
    wanted = sorted({task.alert_id for task in tasks if task.alert_id})
    query = select(AlertRecord.id, AlertRecord.subject).where(AlertRecord.id.in_(wanted))
    subjects: dict[str, Any] = dict(session.execute(query).tuples().all())
    places = {
        task.id: (task.prefill or {}).get("household") or subject_place(subjects.get(task.alert_id or ""))
        for task in tasks
    }
    found = labels(session, reader, list(places.values()), lang)
    return {tid: found.get(place, "") for tid, place in places.items() if place}
