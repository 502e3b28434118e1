"""Case files (案件, issue #19): a case's life through the domain API, its export, and the /cases page."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from auth.models import AuditEntry
from auth.principal import Principal
from core.errors import Forbidden, InvalidInput, NotFound
from memory import cases
from registry.models import Device, Grid
from store.stores import Stores

pytestmark = pytest.mark.also_on_pg

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
WALL = Principal(kind="user", id="wall.wanhu", role="wall", community="wanhu")


def grid_workers(stores: Stores) -> tuple[Principal, Principal]:
    with stores.sessions() as session:
        first, second = list(session.scalars(select(Grid.id).where(Grid.community_id == "wanhu").order_by(Grid.id)))[:2]
    return (
        Principal(kind="user", id="grid.one", role="grid_worker", community="wanhu", grid=first, name="网格员一"),
        Principal(kind="user", id="grid.two", role="grid_worker", community="wanhu", grid=second, name="网格员二"),
    )


def lock_item(stores: Stores, ts: int, image: str | None = None) -> dict[str, Any]:
    """An archived lock.open as memory.search.item_of gives it."""
    with stores.sessions() as session:
        wanted = select(Device).where(Device.type == "smart_lock", Device.community_id == "wanhu")
        lock = session.scalars(wanted).first()
        assert lock is not None
        data: dict[str, Any] = {"method": "card"}
        if image:
            data["image"] = image
        return {
            "id": f"ev-{ts}",
            "type": "lock.open",
            "device": lock.id,
            "ts": ts,
            "data": data,
            "community": "wanhu",
            "building": lock.building_id,
            "household": lock.household_id,
            "guard": None,
            "person": None,
            "plate": None,
            "location": {"lat": lock.lat, "lon": lock.lon},
            "entry": f"{ts}-0",
        }


def audit_actions(stores: Stores) -> list[tuple[str, str, str]]:
    with stores.sessions() as session:
        return [
            (a.action, a.actor, a.outcome)
            for a in session.scalars(select(AuditEntry).where(AuditEntry.action.like("case.%")).order_by(AuditEntry.id))
        ]


def test_a_case_is_created_pinned_noted_opened_and_closed(world: Stores) -> None:
    now = int(time.time() * 1000)
    query = {"from": "2026-12-05T14:00:00Z", "to": "2026-12-05T22:00:00Z", "types": ["lock.open"]}
    with world.sessions.begin() as session:
        case_id = cases.create_case(session, POLICE, community="wanhu", name="东门车辆被盗", query=query)
        pin_id = cases.pin(session, POLICE, case_id, lock_item(world, now - 60_000))
        assert cases.pin(session, POLICE, case_id, lock_item(world, now - 60_000)) == pin_id  # once
        second = cases.pin(session, POLICE, case_id, lock_item(world, now - 30_000))
        cases.unpin(session, POLICE, case_id, second)
        cases.add_note(session, POLICE, case_id, "嫌疑人 01:12 经东门离开")
    with world.sessions.begin() as session:
        doc = cases.get_case(session, POLICE, case_id)
        assert doc["name"] == "东门车辆被盗" and doc["status"] == "open"
        assert doc["query"]["types"] == ["lock.open"] and doc["query"]["community"] == "wanhu"
        assert [p["id"] for p in doc["pins"]] == [pin_id] and doc["pins"][0]["item"]["ts"] == now - 60_000
        assert [n["text"] for n in doc["notes"]] == ["嫌疑人 01:12 经东门离开"]
        listed = cases.list_cases(session, POLICE, "wanhu")
        assert [(c["id"], c["pins"], c["notes"]) for c in listed] == [(case_id, 1, 1)]
        cases.close_case(session, POLICE, case_id)
    with world.sessions.begin() as session:
        with pytest.raises(InvalidInput) as closed:
            cases.add_note(session, POLICE, case_id, "too late")
        assert "closed" in str(closed.value)
        assert cases.get_case(session, POLICE, case_id)["closed_at"] is not None
    assert [a for a in audit_actions(world) if a[0] in ("case.open", "case.close")] == [
        ("case.open", "police.wanhu", "ok"),
        ("case.close", "police.wanhu", "ok"),
        ("case.open", "police.wanhu", "ok"),
    ]


def test_a_grid_worker_sees_only_their_own_cases_and_the_wall_none(world: Stores) -> None:
    one, two = grid_workers(world)
    with world.sessions.begin() as session:
        mine = cases.create_case(session, one, community="wanhu", name="楼道电动车", query={})
        theirs = cases.create_case(session, POLICE, community="wanhu", name="民警的案件", query={})
    with world.sessions.begin() as session:
        assert [c["id"] for c in cases.list_cases(session, one)] == [mine]
        assert cases.list_cases(session, two) == []
        assert {c["id"] for c in cases.list_cases(session, POLICE)} == {mine, theirs}
        for who, case_id in ((two, mine), (one, theirs)):
            with pytest.raises(NotFound):
                cases.get_case(session, who, case_id)
    with world.sessions.begin() as session, pytest.raises(Forbidden):
        cases.list_cases(session, WALL)
    with world.sessions.begin() as session, pytest.raises(Forbidden):
        cases.create_case(session, POLICE, community="other", name="x", query={})
    with world.sessions.begin() as session:
        with pytest.raises(InvalidInput) as empty:
            cases.create_case(session, POLICE, community="wanhu", name="  ", query={})
        assert "name" in str(empty.value)
    assert ("case.list", "wall.wanhu", "denied") in audit_actions(world)
    assert ("case.create", "police.wanhu", "denied") in audit_actions(world)
