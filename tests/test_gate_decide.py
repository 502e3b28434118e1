"""Gates that decide (``POST /api/v1/gates/D/decide``): residents, passes (revoked, expired, not yet
valid), plates, the wanted list without a tip-off, bad requests, and registry changes reaching the
gates — over the real app with the real Redis and SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from sqlalchemy import select

from alerts.live import AlertStore
from analytics.worker import Worker
from api.resident import resident_link
from app import create_app
from auth.models import AuditEntry
from auth.principal import Principal
from auth.service import create_token
from core.clock import ManualClock
from core.errors import Conflict, Forbidden, InvalidInput
from core.secrets import keyed_hash
from gates.identities import project_identities, write_identities
from gates.models import VisitorPass
from gates.service import Visitors
from ingest.directory import Directory
from registry import watchlist
from registry.demo import WANTED_ID
from registry.models import Device, Person, Vehicle
from store.stores import Stores
from tests.browser import browser_login, type_into, wait_text
from tests.conftest import LiveServer, ingest_token, run_manage, save_screenshot
from tests.test_closed_loop import TenantTask, new_id_number, register, tenant_tasks
from tests.test_gates import HOUSEHOLD, PROPERTY, VISITOR_ID, face, gate, now_at, request
from tests.test_rules import T0, M, Scenario

pytestmark = pytest.mark.also_on_pg  # the tests using world run on PostgreSQL too

H = 3_600_000
STRANGER_ID = "320902194001019913"


@dataclass
class Gates:
    """The app on the test's world, a hand-moved clock, an ingest token, the first gate of each kind."""

    world: Stores
    clock: ManualClock
    client: Any
    token: str
    face_gate: str
    barrier: str

    def ask(self, device: str, token: str | None = None, **body: Any) -> Any:
        return self.client.post(
            f"/api/v1/gates/{device}/decide",
            json=body,
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    def face(self, **body: Any) -> dict[str, Any]:
        response = self.ask(self.face_gate, **{"direction": "in", **body})
        assert response.status_code == 200, response.get_json()
        answer: dict[str, Any] = response.get_json()
        return answer

    def car(self, plate: str) -> dict[str, Any]:
        response = self.ask(self.barrier, direction="in", plate=plate)
        assert response.status_code == 200, response.get_json()
        answer: dict[str, Any] = response.get_json()
        return answer


@pytest.fixture
def gates(world: Stores) -> Gates:
    project_identities(world, "wanhu")  # as a worker starting on the community does
    with world.sessions() as session:
        watchlist.project_all(world.redis, world.keys, session)  # as every worker process does
    clock = ManualClock(T0)
    app = create_app(world, clock=clock)
    return Gates(
        world,
        clock,
        app.server.test_client(),
        ingest_token(world),
        gate(world, "face_gate"),
        gate(world, "vehicle_gate"),
    )


def a_resident(world: Stores) -> Person:
    with world.sessions() as session:
        person = session.scalars(
            select(Person)
            .where(Person.community_id == "wanhu", Person.face_id.is_not(None), Person.id_number.is_not(None))
            .order_by(Person.id)
        ).first()
    assert person is not None
    return person


def approved_pass(world: Stores, **overrides: Any) -> str:
    visitors = Visitors(world)
    created = visitors.request(request(**overrides), requested_by="resident", now=now_at(T0))
    visitors.decide(PROPERTY, created.id, approve=True)
    return created.id


def test_residents_pass_and_strangers_do_not(gates: Gates) -> None:
    resident = a_resident(gates.world)
    for identity in ({"person": resident.id}, {"face_id": resident.face_id}, {"id_number": resident.id_number}):
        assert gates.face(**identity) == {"allow": True, "reason": "resident", "pass": None}
    assert gates.face(id_number=STRANGER_ID) == {"allow": False, "reason": "unknown", "pass": None}
    assert gates.face(face_id="FACE-NEVER-SEEN") == {"allow": False, "reason": "unknown", "pass": None}
    assert gates.face(person="wanhu-P-nobody")["reason"] == "unknown"
    assert gates.face() == {"allow": False, "reason": "no_identity", "pass": None}
    # every decision is counted per gate and local day
    counts = gates.world.redis.hgetall(gates.world.keys.gate_decisions("wanhu", now_at(T0 + 8 * H).date().isoformat()))
    assert counts[f"{gates.face_gate}|resident"] == "3" and counts[f"{gates.face_gate}|unknown"] == "3"


def test_a_pass_opens_the_gate_until_it_is_revoked(gates: Gates) -> None:
    pass_id = approved_pass(gates.world)
    assert gates.face(id_number=VISITOR_ID) == {"allow": True, "reason": "pass", "pass": pass_id}
    assert gates.car("苏A12345") == {"allow": True, "reason": "pass", "pass": pass_id}

    revoked = Visitors(gates.world).revoke(PROPERTY, pass_id, reason="住户取消来访", now=now_at(T0))
    assert revoked.status == "revoked"
    # the very next decision refuses it, at the face gate and at the barrier
    assert gates.face(id_number=VISITOR_ID) == {"allow": False, "reason": "revoked", "pass": None}
    assert gates.car("苏A12345") == {"allow": False, "reason": "revoked", "pass": None}
    with gates.world.sessions() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "visitor.revoke")).all()
    assert [(a.target, a.reason) for a in audit] == [(f"visitor:{pass_id}", "住户取消来访")]
    # the resident's list shows it revoked, with the reason
    (shown,) = [p for p in Visitors(gates.world).of_household(HOUSEHOLD) if p.id == pass_id]
    assert shown.status == "revoked" and shown.decision_note == "住户取消来访"
    # and the worker judging the passage afterwards treats it as no pass
    s = Scenario(gates.world).at(M, face(gates.world, T0 + M, id_number=VISITOR_ID))
    (alert,) = s.open("visitor.unapproved")
    assert alert["evidence"]["reason"] == "revoked"


def test_a_pass_outside_its_window_is_refused(gates: Gates) -> None:
    start = now_at(T0) + dt.timedelta(hours=2)
    pass_id = approved_pass(gates.world, valid_from=start, valid_to=start + dt.timedelta(hours=3))
    assert gates.face(id_number=VISITOR_ID) == {"allow": False, "reason": "not_yet_valid", "pass": None}
    gates.clock.set(T0 + 3 * H)
    assert gates.face(id_number=VISITOR_ID) == {"allow": True, "reason": "pass", "pass": pass_id}
    gates.clock.set(T0 + 6 * H)
    assert gates.face(id_number=VISITOR_ID) == {"allow": False, "reason": "expired", "pass": None}


def test_barriers_let_residents_cars_in_and_keep_blacklisted_ones_out(gates: Gates) -> None:
    with gates.world.sessions() as session:
        plates = dict(
            session.execute(
                select(Vehicle.blacklisted, Vehicle.plate)
                .where(Vehicle.community_id == "wanhu")
                .order_by(Vehicle.plate)
            ).all()
        )
    assert gates.car(plates[False]) == {"allow": True, "reason": "resident", "pass": None}
    assert gates.car(plates[True]) == {"allow": False, "reason": "blacklist", "pass": None}
    assert gates.car("苏J12345") == {"allow": False, "reason": "unknown", "pass": None}
    # plates are normalised as ingest does (case, separators)
    assert gates.car(plates[False].lower().replace(plates[False][1], plates[False][1] + "·", 1))["reason"] == "resident"


def test_a_wanted_resident_is_let_through_while_the_alert_is_raised(gates: Gates) -> None:
    resident = a_resident(gates.world)
    with gates.world.sessions.begin() as session:
        assert resident.id_hash
        watchlist.add(session, resident.id_hash, "网上追逃 · test", None, "test")
        watchlist.project(gates.world.redis, gates.world.keys, session, [resident.id_hash])
    alerts = AlertStore(gates.world.redis, gates.world.keys)

    assert gates.face(person=resident.id) == {"allow": True, "reason": "resident", "pass": None}  # no tip-off
    (alert,) = [a for a in alerts.open_alerts("wanhu") if a["type"] == "watchlist.match"]
    assert alert["severity"] == "critical" and alert["count"] == 1
    assert alert["evidence"]["source"] == "gate_decision"
    assert alert["subject"]["device"] == gates.face_gate and alert["location"] is not None

    # the passage the gate reports a moment later is a repeat of the same alert, not a second one
    Scenario(gates.world).at(M, face(gates.world, T0 + M, person=resident.id))
    (again,) = [a for a in alerts.open_alerts("wanhu") if a["type"] == "watchlist.match"]
    assert again["id"] == alert["id"] and again["count"] == 2


def test_a_wanted_stranger_is_refused_as_anyone_unknown_would_be(gates: Gates) -> None:
    assert gates.face(id_number=WANTED_ID) == {"allow": False, "reason": "unknown", "pass": None}
    (alert,) = [
        a
        for a in AlertStore(gates.world.redis, gates.world.keys).open_alerts("wanhu")
        if a["type"] == "watchlist.match"
    ]
    assert alert["evidence"]["opener"] == keyed_hash(gates.world.id_hash_key, WANTED_ID)[:16]


def test_bad_requests_are_refused_with_the_reason(gates: Gates) -> None:
    with gates.world.sessions() as session:
        camera = session.scalars(
            select(Device.id).where(Device.type == "camera", Device.community_id == "wanhu")
        ).first()
        elsewhere = session.scalars(
            select(Device.id).where(Device.type == "face_gate", Device.community_id != "wanhu")
        ).first()
    assert camera and elsewhere
    missing = gates.ask("NO-SUCH-GATE", direction="in")
    assert missing.status_code == 404 and missing.get_json()["field"] == "device"
    assert gates.ask(camera, direction="in").status_code == 409
    foreign = gates.ask(elsewhere, direction="in")
    assert foreign.status_code == 403 and "wanhu" in foreign.get_json()["error"]
    with gates.world.sessions.begin() as session:
        _, police = create_token(session, scope="role", role="police", community="wanhu", name="t")
    assert gates.ask(gates.face_gate, token=police, direction="in").status_code == 403
    for body, field in (
        ({"direction": "sideways"}, "direction"),
        ({"direction": "in", "id_number": "110105194912310021"}, "id_number"),  # bad checksum
        ({"direction": "in", "plate": "苏A12345"}, "plate"),  # a face gate decides no plates
        ({"direction": "in", "person": "x", "face_id": "y"}, "face_id"),
        ({"direction": "in", "person": 12}, "person"),
    ):
        response = gates.ask(gates.face_gate, **body)
        assert response.status_code == 400 and response.get_json()["field"] == field, (body, response.get_json())
        assert "Traceback" not in response.get_data(as_text=True)
    assert gates.ask(gates.barrier, direction="in", plate="not a plate").get_json()["field"] == "plate"
    assert gates.ask(gates.barrier, direction="in", face_id="F1").get_json()["field"] == "face_id"
    raw = gates.client.post(
        f"/api/v1/gates/{gates.face_gate}/decide",
        data="{not json",
        headers={"Authorization": f"Bearer {gates.token}", "Content-Type": "application/json"},
    )
    assert raw.status_code == 400 and raw.get_json()["field"] == "body"


def test_a_resident_imported_is_let_in_at_once(gates: Gates, tmp_path: Path) -> None:
    newcomer = "110101199003070011"
    assert gates.face(id_number=newcomer)["reason"] == "unknown"
    people = tmp_path / "people.csv"
    people.write_text(f"id,name,id_number,household,role\nwanhu-NEW1,新住户,{newcomer},{HOUSEHOLD},tenant\n")
    done = run_manage(gates.world.settings, "import", "people", str(people), "--community", "wanhu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert gates.face(id_number=newcomer) == {"allow": True, "reason": "resident", "pass": None}
    assert gates.face(person="wanhu-NEW1")["reason"] == "resident"


@pytest.fixture
def tenant_task(world: Stores) -> TenantTask:
    """A grid worker's task to register a tenant (tests/test_closed_loop.py)."""
    (tenant,) = tenant_tasks(world, 1)
    return tenant


def test_a_tenant_registered_by_a_grid_worker_passes_at_once(gates: Gates, tenant_task: TenantTask) -> None:
    loop = tenant_task.loop
    accepted = loop.task_action(tenant_task.worker, tenant_task.task.id, "accept", version=tenant_task.task.version)
    number = new_id_number(gates.world)
    assert gates.face(id_number=number)["reason"] == "unknown"
    register(tenant_task, number, accepted.version)
    assert gates.face(id_number=number) == {"allow": True, "reason": "resident", "pass": None}


def test_a_registry_change_without_a_hook_reaches_the_gates_at_the_next_sweep(gates: Gates) -> None:
    newcomer = "110101199003070011"
    with gates.world.sessions.begin() as session:
        session.add(
            Person(
                id="wanhu-NEW2",
                community_id="wanhu",
                name="新住户",
                id_hash=keyed_hash(gates.world.id_hash_key, newcomer),
                face_id="FACE-NEW2",
            )
        )
    assert gates.face(face_id="FACE-NEW2")["reason"] == "unknown"
    worker = Worker(gates.world, clock=ManualClock(T0), directory=Directory(gates.world.sessions))
    worker.sweep("wanhu")
    assert gates.face(face_id="FACE-NEW2") == {"allow": True, "reason": "resident", "pass": None}
    assert gates.world.redis.ttl(gates.world.keys.gate_identities("wanhu")) == -1  # kept, not the staging TTL
    # facts read before the change never overwrite the newer projection
    stale = Directory(gates.world.sessions).facts("wanhu")
    stale.loaded_ms -= 3_600_000
    stale.people.pop("wanhu-NEW2")
    stale.face_ids.pop("FACE-NEW2")
    assert not write_identities(gates.world.redis, gates.world.keys, "wanhu", stale)
    assert gates.face(face_id="FACE-NEW2")["reason"] == "resident"


def test_a_pass_is_revoked_from_the_command_line(gates: Gates) -> None:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # the command revokes at the real time
    pass_id = approved_pass(gates.world, valid_from=start, valid_to=start + dt.timedelta(hours=2))
    gates.clock.set(int((start + dt.timedelta(minutes=5)).timestamp() * 1000))
    assert gates.face(id_number=VISITOR_ID)["reason"] == "pass"
    done = run_manage(gates.world.settings, "pass", "revoke", pass_id, "--reason", "访客取消", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"revoked"' in done.stdout
    assert gates.face(id_number=VISITOR_ID)["reason"] == "revoked"
    with pytest.raises(Conflict, match="revoked"):  # the command prints this sentence and exits 1
        Visitors(gates.world).revoke(PROPERTY, pass_id, reason="again")


def test_only_approvers_revoke(gates: Gates) -> None:
    pass_id = approved_pass(gates.world)
    grid = Principal(kind="user", id="grid.wanhu-G1", role="grid_worker", community="wanhu", grid="wanhu-G1")
    with pytest.raises(Forbidden):
        Visitors(gates.world).revoke(grid, pass_id, reason="不想让他来")
    with pytest.raises(InvalidInput):
        Visitors(gates.world).revoke(PROPERTY, pass_id, reason=" ")
    assert gates.face(id_number=VISITOR_ID)["reason"] == "pass"


@pytest.mark.browser
def test_the_property_office_revokes_a_pass_on_the_tasks_page(world: Stores, browser: Any) -> None:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    pass_id = approved_pass(world, valid_from=start, valid_to=start + dt.timedelta(hours=2))
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "property.wanhu")
        browser.get(server.url + "/tasks")
        wait_text(browser, ".st-revocable", "访客甲")
        button = "//div[contains(@class,'st-revocable')]//button[normalize-space()='撤销']"
        browser.find_element(By.XPATH, button).click()
        wait_text(browser, ".st-msg-error", "撤销须填写原因")  # no reason: refused, nothing changed
        type_into(browser, ".st-revocable input", "住户取消来访")  # typed again if a refresh redrew it
        browser.find_element(By.XPATH, button).click()
        wait_text(browser, ".st-msg-ok", "已撤销")
        wait_text(browser, ".st-approvals", "暂无有效通行证")
        save_screenshot(browser, "property_visitor_revoked")
        answer = requests.post(
            f"{server.url}/api/v1/gates/{gate(world, 'face_gate')}/decide",
            json={"direction": "in", "id_number": VISITOR_ID},
            headers={"Authorization": f"Bearer {ingest_token(world)}"},
            timeout=30,
        ).json()
        assert answer == {"allow": False, "reason": "revoked", "pass": None}
        page = requests.get(resident_link(world, HOUSEHOLD, server.url), timeout=30).text
        assert "已撤销" in page and "住户取消来访" in page
    finally:
        server.stop()
    with world.sessions() as session:
        revoked = session.get(VisitorPass, pass_id)
    assert revoked is not None and revoked.status == "revoked" and revoked.decided_by == "property.wanhu"
