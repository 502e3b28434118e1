"""The wanted list (issue #20): managed from the command line (add with a last day, remove, list,
all-or-nothing import) and checked wherever an identity enters the system — a face or a registered
person at a gate, a grid worker's registration, a people import, a visitor's application. The
person entering sees nothing different; the police get the critical alert."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from alerts.access import alert_for
from alerts.live import AlertStore
from core.secrets import keyed_hash
from gates.service import PassRequest, Visitors
from registry import watchlist
from registry.models import Device, Household, Person, WatchlistEntry
from store.stores import Stores
from tests.conftest import run_manage
from tests.test_closed_loop import new_id_number, register, task_now, tenant_tasks
from tests.test_wall import feed, now_ms

pytestmark = pytest.mark.also_on_pg

# valid ID numbers (GB 11643 checksums) nobody in the demo registry has
FIRST = "11010519491231002X"
SECOND = "110105198001010016"


def wanted_alerts(world: Stores) -> list[dict[str, Any]]:
    return [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "watchlist.match"]


def put_on_list(world: Stores, id_hash: str, note: str, expires_on: dt.date | None = None) -> None:
    """As `watchlist add` does: SQL, then the live copy."""
    with world.sessions.begin() as session:
        watchlist.add(session, id_hash, note, expires_on, "test")
    with world.sessions() as session:
        watchlist.project(world.redis, world.keys, session, [id_hash])


def test_the_wanted_list_is_kept_from_the_command_line_without_a_number_shown(stores: Stores) -> None:
    added = run_manage(
        stores.settings, "watchlist", "add", FIRST, "--note", "网上追逃", "--expires", "2099-12-31", "--json"
    )
    assert added.returncode == 0, added.stderr
    digest = json.loads(added.stdout)["id_hash"]
    assert json.loads(stores.redis.hget(stores.keys.watchlist, digest) or "{}")["note"] == "网上追逃"
    listed = run_manage(stores.settings, "watchlist", "list", "--json")
    assert FIRST not in listed.stdout and FIRST[:10] not in listed.stdout
    (entry,) = json.loads(listed.stdout)
    assert entry["hash_prefix"] == digest[:12] and entry["expires"] == "2099-12-31" and not entry["expired"]
    # a last day already past is refused, naming it; nothing changes
    past = run_manage(stores.settings, "watchlist", "add", SECOND, "--expires", "2020-01-01")
    assert past.returncode == 1 and "expires 2020-01-01 is already past" in past.stderr
    removed = run_manage(stores.settings, "watchlist", "remove", FIRST, "--reason", "到案", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["removed"] is True
    assert stores.redis.hget(stores.keys.watchlist, digest) is None
    assert json.loads(run_manage(stores.settings, "watchlist", "list", "--json").stdout) == []
    again = run_manage(stores.settings, "watchlist", "remove", FIRST)
    assert again.returncode == 1 and "not on the wanted list" in again.stderr


def test_a_wanted_list_file_with_bad_rows_imports_nothing_and_names_each(stores: Stores, tmp_path: Path) -> None:
    bad = tmp_path / "wanted.csv"
    bad.write_text(
        "id_number,note,expires\n"
        f"{FIRST},逃犯甲,2099-01-31\n"
        "110105194912310021,校验位错,\n"  # a wrong check digit
        f"{SECOND},过期,2020-05-01\n"  # a last day already past
        f"{FIRST},重复,\n",  # the same number twice
        encoding="utf-8",
    )
    refused = run_manage(stores.settings, "watchlist", "import", str(bad), "--json")
    assert refused.returncode == 1
    errors = {(e["row"], e["column"]): e["reason"] for e in json.loads(refused.stdout)["errors"]}
    assert errors == {
        (2, "id_number"): "ID number check digit is wrong",
        (3, "expires"): "expires 2020-05-01 is already past",
        (4, "id_number"): "the same number as row 1",
    }
    with stores.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WatchlistEntry)) == 0
    good = tmp_path / "wanted-ok.csv"
    good.write_text(f"id_number,note,expires\n{FIRST},逃犯甲,2099-01-31\n{SECOND},逃犯乙,\n", encoding="utf-8")
    done = run_manage(stores.settings, "watchlist", "import", str(good), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == 2
    live = stores.redis.hgetall(stores.keys.watchlist)
    assert {keyed_hash(stores.id_hash_key, n) for n in (FIRST, SECOND)} == {
        k.decode() if isinstance(k, bytes) else k for k in live
    }


def test_a_wanted_resident_is_matched_by_face_and_by_person_until_the_entry_expires(world: Stores) -> None:
    with world.sessions() as session:
        a, b = session.scalars(
            select(Person)
            .where(Person.community_id == "wanhu", Person.face_id.is_not(None), Person.id_hash.is_not(None))
            .order_by(Person.id)
            .limit(2)
        ).all()
        gate = session.scalars(
            select(Device.id).where(Device.type == "face_gate", Device.community_id == "wanhu").order_by(Device.id)
        ).first()
        lock_of_b = session.scalars(
            select(Device.id)
            .join(Household, Household.id == Device.household_id)
            .where(Device.type == "smart_lock", Device.community_id == "wanhu")
            .order_by(Device.id)
        ).first()
        face_a, person_b, hash_a, hash_b = a.face_id, b.id, a.id_hash, b.id_hash
    assert gate and lock_of_b and face_a and hash_a and hash_b
    put_on_list(world, hash_a, "网上追逃 甲")
    put_on_list(world, hash_b, "已撤销 乙", expires_on=dt.date.today() - dt.timedelta(days=2))
    ts = now_ms() - 5_000
    feed(
        world,
        [
            {"type": "gate.face", "device": gate, "ts": ts, "data": {"direction": "in", "face_id": face_a}},
            {"type": "lock.open", "device": lock_of_b, "ts": ts, "data": {"method": "face", "person": person_b}},
        ],
    )
    (alert,) = wanted_alerts(world)
    assert alert["severity"] == "critical"
    assert alert["evidence"]["opener"] == hash_a[:16] and alert["evidence"]["watchlist_note"] == "网上追逃 甲"
    assert alert["subject"]["device"] == gate


def test_a_wanted_tenant_registered_by_a_grid_worker_alerts_the_police_only(world: Stores) -> None:
    (tenant,) = tenant_tasks(world, 1)
    accepted = tenant.loop.task_action(tenant.worker, tenant.task.id, "accept", version=tenant.task.version)
    number = new_id_number(world)
    put_on_list(world, keyed_hash(world.id_hash_key, number), "盗窃在逃")
    closed = register(tenant, number, accepted.version)
    # the grid worker's registration goes through as any other
    assert (closed.status, closed.outcome) == ("closed", "registered")
    assert task_now(tenant.loop, tenant.alert["id"]).status == "closed"
    (alert,) = wanted_alerts(world)
    assert alert["evidence"]["source"] == "registration"
    assert alert["subject"]["household"] == tenant.alert["subject"]["household"]
    # the registering worker is not told: the alert is not theirs to see
    assert alert_for(tenant.worker, alert, world.settings) is None


def test_a_visitors_application_with_a_wanted_id_number_raises_the_alert_and_the_pass_waits(world: Stores) -> None:
    with world.sessions() as session:
        household = session.scalars(
            select(Household.id).where(Household.community_id == "wanhu").order_by(Household.id)
        ).first()
    assert household
    put_on_list(world, keyed_hash(world.id_hash_key, FIRST), "诈骗在逃")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    visitor = Visitors(world).request(
        PassRequest(
            household=household,
            visitor_name="访客甲",
            id_number=FIRST,
            phone="13912345678",
            plate="",
            valid_from=start,
            valid_to=start + dt.timedelta(hours=2),
            reason="探亲",
        ),
        requested_by="resident",
    )
    assert visitor.status == "pending"  # the resident's page shows a pass waiting, as for anyone
    (alert,) = wanted_alerts(world)
    assert alert["evidence"]["source"] == "visitor_pass" and alert["evidence"]["pass"] == visitor.id
    assert alert["subject"]["household"] == household


def test_a_people_import_with_a_wanted_person_alerts_the_police(world: Stores, tmp_path: Path) -> None:
    with world.sessions() as session:
        household = session.scalars(
            select(Household.id).where(Household.community_id == "wanhu").order_by(Household.id)
        ).first()
    put_on_list(world, keyed_hash(world.id_hash_key, SECOND), "抢劫在逃")
    people = tmp_path / "people.csv"
    people.write_text(
        f"id,name,id_number,household,role\nwanhu-NEW1,新住户,{SECOND},{household},tenant\n", encoding="utf-8"
    )
    done = run_manage(world.settings, "import", "people", str(people), "--community", "wanhu", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == 1  # the importer sees the usual report
    (alert,) = wanted_alerts(world)
    assert alert["evidence"]["source"] == "people_import" and alert["evidence"]["person"] == "wanhu-NEW1"
    assert alert["subject"]["household"] == household


def test_doctor_says_when_the_live_copy_of_the_wanted_list_is_out_of_date(stores: Stores) -> None:
    assert run_manage(stores.settings, "watchlist", "add", FIRST, "--note", "甲").returncode == 0

    def watchlist_line() -> str:
        out = run_manage(stores.settings, "doctor").stdout
        return next(line for line in out.splitlines() if "watchlist" in line)

    line = watchlist_line()
    assert line.startswith("ok") and "1 entries (0 past their last day), 1 in the live copy" in line
    stores.redis.delete(stores.keys.watchlist)  # a flushed Redis, before any worker started
    line = watchlist_line()
    assert line.startswith("warn") and "the live copy is out of date" in line
