"""``GET /metrics`` (issue #25, docs/metrics.md): the series change as events flow and when the worker
stops, every process of the host is counted, the text parses, and only the allowed networks or the
token may read it."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from alerts.constants import SEVERITIES
from analytics.video.maintainer import CameraWorker, EventPoster, WatchCamera, WatchConfig
from analytics.video.pipeline import Kind
from analytics.worker import Worker
from app import create_app
from auth.principal import Principal
from closedloop.service import Loop
from core.clock import ManualClock, WallClock
from core.metrics import Metrics, start_service, stop_using_folder
from core.settings import ROOT
from ingest.service import IngestService
from notify.sender import Sender
from notify.targets import NewTarget, add_target
from reports.jobs import JobStore
from reports.request import build_request
from store.stores import Stores
from tests.conftest import LiveServer, env_for, free_port, ingest_token, run_manage
from tests.test_pipeline import devices_of, drain

METRICS_TOKEN = "scraper-token-0123456789"
T = TypeVar("T")

# every series of docs/metrics.md: the processes' (once they started) and the stores'
PROCESS_SERIES = {
    "sandtable_events_accepted",
    "sandtable_events_duplicates",
    "sandtable_events_rejected",
    "sandtable_ingest_requests",
    "sandtable_ingest_seconds",
    "sandtable_worker_batch_seconds",
    "sandtable_worker_events",
    "sandtable_worker_rule_errors",
    "sandtable_worker_poison",
    "sandtable_sla_misses",
    "sandtable_report_jobs",
    "sandtable_report_jobs_running",
}
STORE_SERIES = {
    "sandtable_stream_length",
    "sandtable_consumer_lag_entries",
    "sandtable_consumer_lag_seconds",
    "sandtable_dead_letters",
    "sandtable_dead_letters_written",
    "sandtable_events_lost",
    "sandtable_alerts_open",
    "sandtable_notify_outbox",
    "sandtable_store_up",
    "sandtable_scrape_seconds",
}


class Scrape:
    """One scrape, parsed with prometheus_client's own parser (a text it cannot parse fails here)."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of that name whose labels include these."""
        found = [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        assert found, f"no sample {name} {labels}"
        return sum(found)

    def lag(self, community: str = "wanhu", group: str = "workers") -> float:
        return self.value("sandtable_consumer_lag_entries", community=community, group=group)


def scrape_http(base_url: str, **headers: str) -> Scrape:
    answer = requests.get(base_url + "/metrics", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(answer.text)


def until(find: Callable[[], T | None], timeout: float = 180) -> T:
    """Poll for a condition (a slow, loaded machine may take long; the test never waits for a time)."""
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found is not None:
            return found
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.2)


def door(device: str, state: str = "open") -> dict[str, Any]:
    return {"type": "door.contact", "device": device, "ts": int(time.time() * 1000), "data": {"state": state}}


def smoke(device: str, event_id: str) -> dict[str, Any]:
    return {"id": event_id, "type": "smoke.alarm", "device": device, "ts": int(time.time() * 1000), "data": {}}


def post(base_url: str, token: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    answer = requests.post(
        base_url + "/api/v1/events", json=events, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


def start_worker(settings: Any, log: Path) -> subprocess.Popen[bytes]:
    """``manage.py worker`` as systemd or make run would start it: a process of its own."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker"], env=env_for(settings), cwd=ROOT, stdout=out, stderr=out
        )


def test_series_follow_the_events_and_the_worker(world: Stores) -> None:
    """Through the served app (gunicorn) and a real worker process: accepted and rejected events by type,
    the ingest time, the lag falling while the worker works and growing once it stopped, the worker's
    batch times, the dead letters and the open alerts."""
    settings = world.settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    server = LiveServer(settings)
    worker: subprocess.Popen[bytes] | None = None
    try:
        token = ingest_token(world)
        doors = devices_of(world, "door_sensor", 3)
        (detector,) = devices_of(world, "smoke_detector", 1)
        first = scrape_http(server.url)  # from loopback, without the token
        assert set(first.families) >= STORE_SERIES
        assert first.value("sandtable_store_up", store="redis") == 1
        assert first.value("sandtable_store_up", store="sql") == 1

        answer = post(
            server.url,
            token,
            [
                *(door(d) for d in doors),
                smoke(detector, "smoke-1"),
                smoke(detector, "smoke-1"),  # the same id: a duplicate
                door("DS-no-such-sensor"),  # a door.contact refused: unknown device
                {"type": "teleport", "device": doors[0], "ts": 1, "data": {}},  # no such type
            ],
        )
        assert (answer["accepted"], answer["duplicates"], len(answer["rejected"])) == (4, 1, 2)
        flowing = scrape_http(server.url)
        assert flowing.value("sandtable_events_accepted_total", type="door.contact") == 3
        assert flowing.value("sandtable_events_accepted_total", type="smoke.alarm") == 1
        assert flowing.value("sandtable_events_accepted_total", type="gate.face") == 0
        assert flowing.value("sandtable_events_duplicates_total", type="smoke.alarm") == 1
        assert flowing.value("sandtable_events_rejected_total", type="door.contact") == 1
        assert flowing.value("sandtable_events_rejected_total", type="invalid") == 1
        assert flowing.value("sandtable_ingest_requests_total", status="202") == 1
        assert flowing.value("sandtable_ingest_seconds_count") == 1
        assert flowing.value("sandtable_ingest_seconds_sum") > 0
        assert flowing.value("sandtable_dead_letters", community="wanhu") == 2
        assert flowing.value("sandtable_stream_length", community="wanhu") == 4
        assert flowing.lag() == 4  # no worker yet: all four wait
        assert flowing.value("sandtable_consumer_lag_seconds", community="wanhu", group="workers") > 0

        worker = start_worker(settings, settings.var_dir / "worker.log")
        worked = until(lambda: s if (s := scrape_http(server.url)).lag() == 0 else None)
        assert worked.value("sandtable_worker_batch_seconds_count") >= 1
        assert worked.value("sandtable_worker_events_total") == 4
        assert worked.value("sandtable_consumer_lag_seconds", community="wanhu", group="workers") == 0
        assert worked.value("sandtable_alerts_open", community="wanhu") == 1  # the smoke alarm's
        assert worked.value("sandtable_sla_misses_total") == 0  # shown from the start
        assert PROCESS_SERIES - {"sandtable_report_jobs", "sandtable_report_jobs_running"} <= set(worked.families)
        for name, family in worked.families.items():
            assert name.startswith("sandtable_") and family.documentation, name  # every series has its HELP text

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        worker = None
        post(server.url, token, [door(doors[0], "closed"), door(doors[1], "closed"), door(doors[2], "closed")])
        stalled = scrape_http(server.url)
        assert stalled.lag() == 3  # nobody works them off
        assert stalled.value("sandtable_consumer_lag_seconds", community="wanhu", group="workers") > 0
        assert stalled.value("sandtable_events_accepted_total", type="door.contact") == 6
        batches = "sandtable_worker_batch_seconds_count"
        assert stalled.value(batches) == worked.value(batches)  # the stopped worker's figures stay until it restarts
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
        server.stop()


def test_only_the_allowed_networks_or_the_token_may_read_the_metrics(world: Stores) -> None:
    settings = world.settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    client = create_app(Stores(settings=settings, engine=world.engine, keys=world.keys)).server.test_client()

    def get(address: str, token: str | None = None, **headers: str) -> tuple[int, dict[str, Any] | None]:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        answer = client.get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers)
        return answer.status_code, answer.get_json(silent=True)

    assert get("127.0.0.1")[0] == 200  # loopback by default
    assert get("::1")[0] == 200
    status, body = get("10.1.2.3")
    assert status == 403 and body is not None
    assert body["reason"] == "10.1.2.3 is not in SANDTABLE_METRICS_ALLOW"
    assert get("10.1.2.3", METRICS_TOKEN)[0] == 200
    status, body = get("127.0.0.1", "wrong-token-0123456789")
    assert status == 403 and body is not None and body["reason"] == "wrong metrics token"
    # a proxy on loopback that is not trusted: the client behind it is unknown, the token still opens it
    status, body = get("127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"})
    assert status == 403 and body is not None and "SANDTABLE_TRUSTED_PROXIES" in body["reason"]
    assert get("127.0.0.1", METRICS_TOKEN, **{"X-Forwarded-For": "203.0.113.9"})[0] == 200
    # a trusted proxy: the client's own address decides
    proxied = settings.model_copy(update={"trusted_proxies": "127.0.0.1", "metrics_allow": "10.0.0.0/8"})
    client = create_app(Stores(settings=proxied, engine=world.engine, keys=world.keys)).server.test_client()
    assert get("127.0.0.1", **{"X-Forwarded-For": "10.9.9.9"})[0] == 200
    assert get("127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"})[0] == 403
    assert get("127.0.0.1")[0] == 403  # loopback is no longer on the list
    # no token configured: a bearer header opens nothing
    plain = world.settings.model_copy(update={"metrics_allow": ""})
    client = create_app(Stores(settings=plain, engine=world.engine, keys=world.keys)).server.test_client()
    status, body = get("127.0.0.1", METRICS_TOKEN)
    assert status == 403 and body is not None and "SANDTABLE_METRICS_TOKEN" in body["reason"]


@pytest.fixture
def counted(world: Stores) -> Iterator[Stores]:
    """The demo world with this test process counting into the host's metrics folder, as a service would
    (loopback allowed as a notification target)."""
    notified = world.settings.model_copy(update={"notify_allowed_networks": "127.0.0.0/8"})
    start_service(notified.metrics_directory, "test")
    yield Stores(settings=notified, engine=world.engine, keys=world.keys)
    stop_using_folder()


def scrape_app(opened: Stores) -> Scrape:
    answer = create_app(opened).server.test_client().get("/metrics")
    assert answer.status_code == 200
    return Scrape(answer.get_data(as_text=True))


@pytest.mark.also_on_cluster  # the stores' series on a Redis Cluster too (cluster pipelines, EVAL)
def test_sla_misses_and_the_notification_outbox(counted: Stores) -> None:
    with counted.sessions.begin() as session:  # a webhook on a port nothing listens on: every try fails
        add_target(
            session,
            counted.settings,
            NewTarget(channel="webhook", url=f"http://127.0.0.1:{free_port()}/hook", community="wanhu", secret="s"),
        )
    clock = ManualClock(int(time.time() * 1000))
    (detector,) = devices_of(counted, "smoke_detector", 1)
    assert IngestService(counted, clock=clock).ingest("wanhu", [smoke(detector, "s-1")]).accepted == 1
    worker = Worker(counted, clock=clock)
    worker.start_community("wanhu")
    drain(worker)
    raised = scrape_app(counted)
    opened = {s: raised.value("sandtable_alerts_open", community="wanhu", severity=s) for s in SEVERITIES}
    (severity,) = (s for s, n in opened.items() if n == 1)
    assert raised.value("sandtable_notify_outbox", state="pending") >= 1
    assert raised.value("sandtable_notify_outbox", state="retrying") == 0
    assert raised.value("sandtable_sla_misses_total", stage="acknowledge", severity=severity) == 0

    clock.advance(int(counted.settings.sla_ack_minutes[severity] * 60_000) + 1000)  # nobody acknowledged it
    assert Loop(counted, clock).maintain("wanhu")["escalated"] == 1
    sender = Sender(counted, clock=clock)
    sender.drain()
    sender.close()
    later = scrape_app(counted)
    assert later.value("sandtable_sla_misses_total", stage="acknowledge", severity=severity) == 1
    assert later.value("sandtable_sla_misses_total") == 1
    assert later.value("sandtable_notify_attempts_total", outcome="failed") >= 1
    assert later.value("sandtable_notify_outbox", state="retrying") >= 1
    assert later.value("sandtable_notify_outbox", state="dead") == 0


def test_video_frames_dropped_per_camera(counted: Stores) -> None:
    """The watcher's reader hands frames to the analysis through a queue that drops the oldest when the
    analysis falls behind: each drop is counted for its camera."""
    config = WatchConfig(
        cameras=[WatchCamera(id="CAM-east", url="rtsp://127.0.0.1:1/east", kind=Kind.fall)], frame_queue=2
    )
    stop = threading.Event()
    poster = EventPoster("http://127.0.0.1:8050/api/v1/events", "t", config, stop)
    camera = CameraWorker(config.cameras[0], None, config, poster, None, stop, WallClock())
    for n in range(5):
        camera.queue.put((None, float(n), None))  # type: ignore[arg-type]
    found = scrape_app(counted)
    assert found.value("sandtable_video_frames_dropped_total", camera="CAM-east") == 3
    assert found.value("sandtable_video_frames_analysed_total", camera="CAM-east") == 0


def test_the_text_is_prometheus_and_openmetrics(counted: Stores) -> None:
    client = create_app(counted).server.test_client()
    open_metrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert open_metrics.get_data(as_text=True).rstrip().endswith("# EOF")
    plain = Scrape(client.get("/metrics").get_data(as_text=True))
    assert json.dumps(sorted(STORE_SERIES - set(plain.families))) == "[]"


def base_name(sample: str) -> str:
    return re.sub(r"_(total|bucket|count|sum|created)$", "", sample)


def test_the_docs_and_the_dashboard_name_the_series_the_code_makes(counted: Stores) -> None:
    """Every series the processes count or the scrape reads is documented in docs/metrics.md, and the
    Grafana dashboard asks only for those."""
    made = {family.name for metric in vars(Metrics()).values() for family in metric.describe()}
    made |= set(scrape_app(counted).families)
    docs = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    documented = {base_name(name) for name in re.findall(r"`(sandtable_[a-z_]+)`", docs)}
    assert made == documented
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "sandtable.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    asked = {base_name(name) for expr in exprs for name in re.findall(r"sandtable_[a-z_]+", expr)}
    assert asked <= made and len(asked) >= 20


def test_a_metrics_folder_that_cannot_be_made_names_the_setting(stores: Stores) -> None:
    blocker = stores.settings.var_dir / "not-a-folder"
    blocker.write_text("a file where the folder should go")
    cfg = stores.settings.model_copy(update={"metrics_dir": blocker / "metrics"})
    done = run_manage(cfg, "worker")
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "SANDTABLE_METRICS_DIR" in said and "Traceback" not in said


def test_report_jobs_running_and_done(counted: Stores) -> None:
    police = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="民警")
    day = dt.date.today().isoformat()
    with counted.sessions() as session:
        request = build_request(session, police, counted.settings, communities="wanhu", start=day, end=day)
    jobs = JobStore(counted)
    job_id = jobs.start(police, request, "csv")
    client = create_app(counted).server.test_client()

    def ended() -> Scrape | None:  # the job's thread counts it as it ends
        found = Scrape(client.get("/metrics").get_data(as_text=True))
        return found if sum(found.value("sandtable_report_jobs_total", status=s) for s in ("done", "failed")) else None

    made = until(ended)
    job = jobs.get(job_id)
    assert job is not None and job.status == "done"
    assert made.value("sandtable_report_jobs_total", status="done") == 1
    assert made.value("sandtable_report_jobs_total", status="failed") == 0
    assert made.value("sandtable_report_jobs_running") == 0
