"""Notifications (issue #18, interfaces §8): the routing policy, the durable outbox, the webhook
and SMS channels against a real local HTTP receiver, retries and dead deliveries on a hand-moved
clock, the SSRF guard, the CLI and doctor."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from alerts.history import AlertHistory
from alerts.live import AlertChange, AlertStore
from alerts.models import AlertStep
from auth.principal import Principal
from closedloop.service import Loop
from core.clock import ManualClock
from core.errors import Forbidden, InvalidInput
from core.settings import Settings
from core.timefmt import iso_utc, ms_to_utc
from notify.inbox import notices_for
from notify.models import NotifyDelivery, NotifyNotice
from notify.policy import audiences, audiences_of, backoff_seconds
from notify.sender import Sender
from notify.targets import NewTarget, add_target
from registry.models import Building, Household
from registry.queries import household_labels
from reports.calc import Step, is_human
from store.stores import Stores
from tests.browser import browser_login, text_of, until, wait_for, wait_text
from tests.conftest import LiveServer, free_port, new_browser, run_manage, save_screenshot
from tests.test_closed_loop import on_duty
from tests.test_pipeline import devices_of
from tests.test_wall import feed, now_ms

pytestmark = pytest.mark.also_on_pg  # the outbox's claims and leases run on PostgreSQL too

SECRET = "receiver-secret"
LOOPBACK = "127.0.0.0/8"
LOOP_POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
T0 = 1_790_000_000_000  # 2026-09-21, the tests' clock start


class ReceiverServer(ThreadingHTTPServer):
    """A receiver's HTTP server that keeps up with a sender's concurrent connections (the
    standard library's listen backlog of 5 would refuse some of them)."""

    request_queue_size = 256
    daemon_threads = True


class Receiver:
    """A real HTTP server on a loopback port that records every POST; it can be stopped and
    started again on the same port (an outage), or answer with a given status."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.location = ""
        self._server: ReceiverServer | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.received.append({"headers": dict(self.headers), "raw": raw, "path": self.path})
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ReceiverServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(r["raw"]) for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def open_world_with(world: Stores, **settings: Any) -> Stores:
    """The same world with other settings (the allowed networks, a short retry window …)."""
    return Stores(settings=world.settings.model_copy(update=settings), engine=world.engine, keys=world.keys)


@pytest.fixture
def notified(world: Stores) -> Stores:
    """The demo world, with the loopback network allowed for notification targets."""
    return open_world_with(world, notify_allowed_networks=LOOPBACK)


def households(world: Stores, n: int) -> list[str]:
    with world.sessions() as session:
        return list(
            session.scalars(select(Household.id).where(Household.id.like("wanhu-%")).order_by(Household.id).limit(n))
        )


def alert_doc(
    n: int, household: str, *, alert_type: str = "elder.inactive", severity: str = "high", **more: Any
) -> dict[str, Any]:
    at = iso_utc(T0 + n)
    return {
        "id": f"a{n:05d}",
        "type": alert_type,
        "severity": severity,
        "status": "new",
        "community": "wanhu",
        "subject": {"household": household, "person": "wanhu-P1"},
        "location": {"lat": 33.38, "lon": 120.16},
        "opened_at": at,
        "detected_at": at,
        "updated_at": at,
        "count": 1,
        "evidence": {"opener": "secret-hash"},
        **more,
    }


def raise_alerts(world: Stores, docs: list[dict[str, Any]]) -> None:
    AlertHistory(world.sessions).write([AlertChange(doc, "raised") for doc in docs])


def move(world: Stores, doc: dict[str, Any], status: str, at_ms: int) -> None:
    AlertHistory(world.sessions).write([AlertChange(doc | {"status": status, "updated_at": iso_utc(at_ms)}, status)])


def add_webhook(world: Stores, url: str, **more: Any) -> str:
    with world.sessions.begin() as session:
        return add_target(
            session, world.settings, NewTarget(channel="webhook", url=url, community="wanhu", secret=SECRET, **more)
        ).id


def valid_signature(record: dict[str, Any]) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), record["raw"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(record["headers"]["X-Sandtable-Signature"], expected)


def timeline(world: Stores, alert_id: str) -> list[AlertStep]:
    with world.sessions() as session:
        return list(session.scalars(select(AlertStep).where(AlertStep.alert_id == alert_id).order_by(AlertStep.id)))


def test_webhook_outage_every_notification_arrives_in_order_signed(notified: Stores, receiver: Receiver) -> None:
    """The receiver is down for 60 s while 100 alerts are raised (half of them then dispatched and
    closed); when it comes back every notification arrives, in order per alert, signed, and the
    distinct alert.raised deliveries number exactly 100."""
    add_webhook(notified, receiver.url, name="110平台")
    clock = ManualClock(T0)
    sender = Sender(notified, clock=clock)
    receiver.stop()
    docs = [alert_doc(i, h) for i, h in enumerate(households(notified, 100))]
    for start in range(0, 100, 10):  # raised over the outage, sent (and failing) as they come
        raise_alerts(notified, docs[start : start + 10])
        for doc in docs[start : start + 10][::2]:
            move(notified, doc, "dispatched", T0 + 1000)
            move(notified, doc | {"status": "dispatched"}, "resolved", T0 + 2000)
        clock.advance(6_000)
        sender.drain()
    assert receiver.received == []
    receiver.start()  # 60 s after the outage began
    for _ in range(12):  # the backoff brings every delivery round within its cap
        clock.advance(30_000)
        sender.drain()
    sender.close()

    bodies = receiver.bodies()
    assert all(valid_signature(r) for r in receiver.received)
    assert all(
        r["headers"]["X-Sandtable-Delivery"] == b["delivery"] for r, b in zip(receiver.received, bodies, strict=True)
    )
    distinct = {b["delivery"]: b for b in bodies}
    raised = [b for b in distinct.values() if b["event"] == "alert.raised"]
    assert len(raised) == 100
    assert {b["alert"]["id"] for b in raised} == {d["id"] for d in docs}
    per_alert: dict[str, list[str]] = {}
    for body in bodies:
        events = per_alert.setdefault(body["alert"]["id"], [])
        if not events or events[-1] != body["event"]:
            events.append(body["event"])
    for doc in docs[::2]:
        assert per_alert[doc["id"]] == ["alert.raised", "alert.dispatched", "alert.closed"]
    assert raised[0]["alert"]["subject"].get("person") is None  # no person data leaves the app
    assert "opener" not in raised[0]["alert"]["evidence"]
    steps = [s.action for s in timeline(notified, docs[0]["id"])]
    assert "notify_failed" in steps and steps.count("notify_delivered") == 3
    notify_steps = [s for s in timeline(notified, docs[0]["id"]) if s.action.startswith("notify_")]
    # a delivery is not a person acting: the reports' response times and "handled" ignore it
    assert not any(is_human(Step(s.at, s.action, s.status, s.actor, s.note)) for s in notify_steps)
    failed = next(s for s in notify_steps if s.action == "notify_failed")
    assert failed.note.startswith("110平台") and "connection refused" in failed.note


def test_failing_webhook_backs_off_then_dies_after_24_hours(notified: Stores, receiver: Receiver) -> None:
    receiver.status = 500
    add_webhook(notified, receiver.url)
    (household,) = households(notified, 1)
    raise_alerts(notified, [alert_doc(1, household)])
    clock = ManualClock(T0 + 1)
    sender = Sender(notified, clock=clock)
    waits = []
    for _ in range(6):
        assert sender.drain() == 1
        with notified.sessions() as session:
            delivery = session.scalars(select(NotifyDelivery)).one()
        waits.append(round((delivery.next_at.timestamp() * 1000 - clock.now_ms()) / 1000))
        clock.set(int(delivery.next_at.timestamp() * 1000))
    assert waits == [2, 4, 8, 16, 32, 64]
    assert backoff_seconds(30, 2, 300) == 300  # capped
    clock.set(T0 + 24 * 3_600_000 + 1)
    sender.drain()
    with notified.sessions() as session:
        delivery = session.scalars(select(NotifyDelivery)).one()
    assert delivery.state == "dead" and delivery.last_error == "HTTP 500"
    assert [s.action for s in timeline(notified, "a00001")][-1] == "notify_dead"
    receiver.status = 200
    clock.advance(3_600_000)
    assert sender.drain() == 0  # dead stays dead
    sender.close()
    doctor = run_manage(notified.settings, "doctor")
    line = next(x for x in doctor.stdout.splitlines() if "notify" in x)
    assert line.startswith("warn") and "1 dead" in line
    assert "万户新村" in line and "独居老人门磁超时未开关" in line and "a00001" not in line and household not in line


def test_a_redirect_is_not_followed(notified: Stores, receiver: Receiver) -> None:
    receiver.status, receiver.location = 302, "http://127.0.0.1:9/elsewhere"
    add_webhook(notified, receiver.url)
    (household,) = households(notified, 1)
    raise_alerts(notified, [alert_doc(1, household)])
    sender = Sender(notified, clock=ManualClock(T0 + 1))
    sender.drain()
    sender.close()
    assert len(receiver.received) == 1
    with notified.sessions() as session:
        assert session.scalars(select(NotifyDelivery.last_error)).one() == "HTTP 302"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest",
    ],
)
def test_targets_on_non_public_networks_are_refused(world: Stores, url: str) -> None:
    with pytest.raises(Forbidden) as refused:
        add_webhook(world, url)
    assert "SANDTABLE_NOTIFY_ALLOWED_NETWORKS" in str(refused.value)


def test_a_target_allowed_then_disallowed_is_refused_at_send_time(notified: Stores, receiver: Receiver) -> None:
    add_webhook(notified, receiver.url)
    (household,) = households(notified, 1)
    raise_alerts(notified, [alert_doc(1, household)])
    strict = open_world_with(notified, notify_allowed_networks="")
    sender = Sender(strict, clock=ManualClock(T0 + 1))
    sender.drain()
    sender.close()
    assert receiver.received == []
    with strict.sessions() as session:
        assert "not a public address" in session.scalars(select(NotifyDelivery.last_error)).one()


def test_bad_target_input_names_the_field(notified: Stores) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"channel": "fax"}, "channel"),
        ({"url": "ftp://example.org/x"}, "url"),
        ({"types": ("smoke", "fire")}, "types"),
        ({"min_severity": "urgent"}, "min-severity"),
        ({"community": "nowhere"}, "community"),
    ]
    for more, field in cases:
        new: dict[str, Any] = {"channel": "webhook", "url": "http://127.0.0.1:9/h", "community": "wanhu"} | more
        with notified.sessions() as session, pytest.raises(InvalidInput) as refused:
            add_target(session, notified.settings, NewTarget(**new))
        assert str(refused.value).startswith(field + ":")


def test_sms_gateway_gets_a_short_people_readable_chinese_text(notified: Stores, receiver: Receiver) -> None:
    with notified.sessions.begin() as session:
        add_target(
            session,
            notified.settings,
            NewTarget(channel="sms", url=receiver.url, community="wanhu", secret=SECRET, recipients=("13800000000",)),
        )
    (household,) = households(notified, 1)
    doc = alert_doc(1, household)
    raise_alerts(notified, [doc])
    move(notified, doc, "dispatched", T0 + 1000)  # not sent by SMS (noise)
    sender = Sender(notified, clock=ManualClock(T0 + 2000))
    sender.drain()
    sender.close()
    (body,) = receiver.bodies()
    assert body["to"] == ["13800000000"]
    assert body["text"].startswith("【数字沙盘】万户新村 ")
    assert "单元" in body["text"] and "室" in body["text"] and body["text"].endswith("独居老人门磁超时未开关 (高)")
    assert household not in body["text"]


def test_routing_defaults() -> None:
    assert audiences("alert.raised", "elder.inactive", None) == ["police"]
    assert audiences("alert.raised", "smoke", "wanhu-G1") == ["police", "property", "grid:wanhu-G1"]
    assert set(audiences("alert.raised", "fall", None)) == {"police", "property"}
    assert set(audiences("alert.raised", "throw", None)) == {"police", "property"}
    assert audiences("alert.escalated", "smoke", "wanhu-G1") == ["supervisor"]
    assert audiences("alert.closed", "smoke", "wanhu-G1") == []
    assert audiences("task.offered", "fall", "wanhu-G1", "wanhu-GD07") == ["guard:wanhu-GD07"]  # the one asked
    assert audiences("task.offered", "smoke", "wanhu-G1", "property") == ["property"]
    supervisors = frozenset({"chief.wanhu"})
    police = Principal(kind="user", id="police.wanhu", role="police", community="wanhu")
    chief = Principal(kind="user", id="chief.wanhu", role="police", community="wanhu")
    grid = Principal(kind="user", id="grid.one", role="grid_worker", community="wanhu", grid="wanhu-G1")
    staff = Principal(kind="user", id="pm", role="property", community="wanhu")
    assert audiences_of(police, supervisors) == ["police"]
    assert audiences_of(chief, supervisors) == ["police", "supervisor"]
    assert audiences_of(grid, supervisors) == ["grid:wanhu-G1"]
    assert audiences_of(staff, supervisors) == ["property"]
    volunteer = Principal(kind="user", id="guard.wanhu-GD07", role="guard", community="wanhu", guard="wanhu-GD07")
    assert audiences_of(volunteer, supervisors) == ["guard:wanhu-GD07"]


def test_a_step_and_its_notifications_commit_together(notified: Stores, receiver: Receiver) -> None:
    """The outbox rows are written in the alert's transaction: a failed write leaves neither."""
    add_webhook(notified, receiver.url)
    (household,) = households(notified, 1)
    bad = alert_doc(1, household) | {"opened_at": "not a time"}
    with pytest.raises(ValueError):
        raise_alerts(notified, [alert_doc(2, household), bad])
    with notified.sessions() as session:
        assert session.scalars(select(NotifyDelivery)).all() == []
        assert session.scalars(select(NotifyNotice)).all() == []
    raise_alerts(notified, [alert_doc(3, household, alert_type="smoke", grid="wanhu-G1")])
    with notified.sessions() as session:
        assert sorted(session.scalars(select(NotifyNotice.audience))) == ["grid:wanhu-G1", "police", "property"]
        assert session.scalars(select(NotifyDelivery.event)).all() == ["alert.raised"]


def test_the_wanted_list_never_leaves_the_app(notified: Stores, receiver: Receiver) -> None:
    add_webhook(notified, receiver.url)
    (household,) = households(notified, 1)
    raise_alerts(notified, [alert_doc(1, household, alert_type="watchlist.match", severity="critical")])
    with notified.sessions() as session:
        assert session.scalars(select(NotifyDelivery)).all() == []


def test_cli_add_list_test_remove(notified: Stores, receiver: Receiver) -> None:
    settings: Settings = notified.settings
    refused = run_manage(
        settings.model_copy(update={"notify_allowed_networks": ""}),
        "notify",
        "add",
        "--channel",
        "webhook",
        "--url",
        receiver.url,
        "--community",
        "wanhu",
    )
    assert refused.returncode != 0 and "not a public address" in refused.stderr and "Traceback" not in refused.stderr
    added = run_manage(
        settings,
        "notify",
        "add",
        "--channel",
        "webhook",
        "--url",
        receiver.url,
        "--community",
        "wanhu",
        "--types",
        "smoke,fall",
        "--min-severity",
        "high",
        "--name",
        "110平台",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    created = json.loads(added.stdout)
    target = created["id"]
    listed = json.loads(run_manage(settings, "notify", "list", "--json").stdout)
    assert [(t["id"], t["types"], t["min_severity"], t["name"]) for t in listed] == [
        (target, ["smoke", "fall"], "high", "110平台")
    ]
    tested = run_manage(settings, "notify", "test", target)
    assert tested.returncode == 0 and "delivered" in tested.stdout
    (record,) = receiver.received
    assert (
        record["headers"]["X-Sandtable-Signature"]
        == "sha256=" + hmac.new(created["secret"].encode(), record["raw"], hashlib.sha256).hexdigest()
    )
    receiver.stop()
    failed = run_manage(settings, "notify", "test", target)
    assert failed.returncode != 0 and "connection refused" in failed.stdout
    assert run_manage(settings, "notify", "remove", target).returncode == 0
    assert json.loads(run_manage(settings, "notify", "list", "--json").stdout) == []
    missing = run_manage(settings, "notify", "remove", target)
    assert missing.returncode != 0 and target in missing.stderr


def households_in_two_grids(world: Stores) -> tuple[tuple[str, str], tuple[str, str]]:
    """(household, grid) in one grid and (household, grid) in another."""
    with world.sessions() as session:
        rows = session.execute(
            select(Household.id, Building.grid_id)
            .join(Building, Building.id == Household.building_id)
            .where(Building.community_id == "wanhu", Building.grid_id.is_not(None))
            .order_by(Household.id)
        ).all()
    first = rows[0]
    second = next(r for r in rows if r[1] != first[1])
    return (first[0], str(first[1])), (second[0], str(second[1]))


def notice_texts(driver: Any) -> str:
    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#notify-list .st-notice"))


def wait_for_notice(driver: Any, text: str) -> str:
    """The notices shown, once they hold text."""
    return text_of(driver, "#notify-list .st-notice", text=text)


@pytest.mark.browser
def test_in_app_notification_reaches_the_right_people_only(world: Stores, notified: Stores) -> None:
    """A critical smoke alarm in grid A reaches the property office (with the alarm) and grid A's
    worker; grid B's worker gets only the alert of their own grid, and the property office no elder
    alert. The police console lists the deliveries to a webhook that never answered, once dead."""
    (house_a, grid_a), (house_b, grid_b) = households_in_two_grids(world)
    add_webhook(notified, f"http://127.0.0.1:{free_port()}/hook", name="110平台")
    with world.sessions() as session:
        label_a = household_labels(session, [house_a], "zh")[house_a]
        label_b = household_labels(session, [house_b], "zh")[house_b]
    server = LiveServer(world.settings)
    driver = new_browser()
    try:
        now = int(time.time() * 1000)
        browser_login(driver, server.url, "property.wanhu")
        driver.get(server.url + "/tasks")
        wait_for(driver, "#notify-panel")
        raise_alerts(
            world,
            [
                alert_doc(1, house_a, alert_type="smoke", severity="critical", grid=grid_a) | at_ms(now),
                alert_doc(2, house_b, grid=grid_b) | at_ms(now),
            ],
        )
        shown = wait_for_notice(driver, f"{label_a} 烟感报警 (紧急)")
        assert label_b not in shown  # an elder alert is not the property office's
        until(
            lambda: driver.find_element(By.TAG_NAME, "html").get_attribute("data-notify-rang") is not None,
            "the alarm of a critical notification",
        )

        browser_login(driver, server.url, f"grid.{grid_b}")
        driver.get(server.url + "/tasks")
        shown = wait_for_notice(driver, f"{label_b} 独居老人门磁超时未开关 (高)")
        assert label_a not in shown  # another grid's alarm

        browser_login(driver, server.url, f"grid.{grid_a}")
        driver.get(server.url + "/tasks")
        wait_for_notice(driver, f"{label_a} 烟感报警 (紧急)")

        dead = Sender(notified, clock=ManualClock(now + 25 * 3_600_000))  # the webhook never answered
        dead.drain()
        dead.close()
        browser_login(driver, server.url, "police.wanhu")
        driver.get(server.url + "/console")
        wait_text(driver, "#notify-list", "投递失败的通知 2 条")
        wait_text(driver, "#notify-list", f"110平台：万户新村 {label_a} 烟感报警 (紧急)")
        save_screenshot(driver, "notify-console")
    finally:
        driver.quit()
        server.stop()


def at_ms(ms: int) -> dict[str, str]:
    at = iso_utc(ms)
    return {"opened_at": at, "detected_at": at, "updated_at": at}


def test_the_closed_loop_notifies_dispatch_offer_and_escalation_to_supervisors(
    notified: Stores, receiver: Receiver
) -> None:
    """A smoke alarm through the real pipeline, dispatched in the console, then a missed SLA: the
    webhook gets every event in the order of the timeline, and only the station's supervisor is
    told of the escalation."""
    stores = open_world_with(notified, notify_supervisors="chief.wanhu")
    add_webhook(stores, receiver.url)
    detector = devices_of(stores, "smoke_detector", 1)[0]
    feed(stores, [{"type": "smoke.alarm", "device": detector, "ts": now_ms(), "data": {"level": "alarm"}}])
    (alert,) = [a for a in AlertStore(stores.redis, stores.keys).open_alerts("wanhu") if a["type"] == "smoke"]
    on_duty(stores, "wanhu-GD01")  # whatever the hour (the demo roster's teams take turns); before the clock
    clock = ManualClock(now_ms())
    loop = Loop(stores, clock)
    loop.dispatch(LOOP_POLICE, "wanhu", alert["id"], "wanhu-GD01", expected="new")
    clock.advance(int(stores.settings.sla_arrive_minutes * 60_000) + 5_000)
    assert loop.maintain("wanhu")["escalated"] >= 1
    sender = Sender(stores, clock=clock)
    sender.drain()
    sender.close()

    events = [b["event"] for b in receiver.bodies() if b["alert"]["id"] == alert["id"]]
    assert events[0] == "alert.raised"
    assert set(events[1:]) == {"task.offered", "alert.dispatched", "alert.escalated"}
    steps = [s.action for s in timeline(stores, alert["id"]) if s.action in ("task_offered", "dispatched", "escalated")]
    assert events[1:] == [
        {"task_offered": "task.offered", "dispatched": "alert.dispatched"}.get(s, "alert.escalated") for s in steps
    ]

    chief = Principal(kind="user", id="chief.wanhu", role="police", community="wanhu")
    since = ms_to_utc(clock.now_ms() - 3_600_000)
    with stores.sessions() as session:
        told = notices_for(session, stores.settings, chief, "zh", after=None, since=since)
        others = notices_for(session, stores.settings, LOOP_POLICE, "zh", after=None, since=since)
    assert [n.event for n in told] == ["alert.escalated", "alert.raised"]
    assert told[0].text.startswith("超时升级 万户新村 ") and "烟感报警" in told[0].text
    assert [n.event for n in others] == ["alert.raised"]


def test_a_target_that_keeps_failing_is_only_probed_and_the_others_go_on(notified: Stores, receiver: Receiver) -> None:
    """A webhook that is down does not take the sender's capacity: after a few failures in a row it
    gets one probe a second, while a healthy target gets everything; the first success reopens it."""
    down = Receiver()  # never started: connection refused
    add_webhook(notified, receiver.url)
    add_webhook(notified, down.url)
    docs = [alert_doc(i, h) for i, h in enumerate(households(notified, 50))]
    raise_alerts(notified, docs)
    clock = ManualClock(T0 + 100)
    sender = Sender(notified, clock=clock)

    def attempts_on_down() -> int:
        with notified.sessions() as session:
            rows = session.execute(select(NotifyDelivery.attempts, NotifyDelivery.target_id)).all()
        return sum(a for a, target in rows if target != healthy)

    sender.drain()
    with notified.sessions() as session:
        healthy = session.scalars(select(NotifyDelivery.target_id).where(NotifyDelivery.state == "delivered")).first()
    assert len(receiver.received) == 50
    first_round = attempts_on_down()
    for _ in range(20):  # 40 s: without the breaker each delivery would be retried 4 times more
        clock.advance(2_000)
        sender.drain()
    assert attempts_on_down() - first_round <= 20  # one probe per round
    down.start()
    clock.advance(2_000)
    sender.drain()
    clock.advance(120_000)  # past every delivery's backoff
    sender.drain()
    sender.close()
    down.stop()
    assert len({json.loads(r["raw"])["delivery"] for r in down.received}) == 50


def test_two_senders_share_the_outbox_and_a_dead_senders_claims_are_taken_up(notified: Stores) -> None:
    """Leases: two senders at once claim disjoint deliveries; what a sender claimed and never
    recorded (it died) is claimed again once its lease has run out."""
    add_webhook(notified, "http://127.0.0.1:9/hook")
    raise_alerts(notified, [alert_doc(i, h) for i, h in enumerate(households(notified, 20))])
    clock = ManualClock(T0 + 100)
    first, second = Sender(notified, clock=clock), Sender(notified, clock=clock)
    mine = first.claim(12)
    theirs = second.claim(500)
    assert len(mine) == 12 and len(theirs) == 8
    assert not {c.id for c in mine} & {c.id for c in theirs}
    assert second.claim(500) == []  # everything is leased
    clock.advance(int(notified.settings.notify_lease_seconds * 1000) + 1)  # the first sender died
    again = second.claim(500)
    assert {c.id for c in again} == {c.id for c in mine} | {c.id for c in theirs}
    first.close()
    second.close()
