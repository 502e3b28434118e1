"""``GET /metrics``: Prometheus text of this host's processes and of the stores (docs/metrics.md).

Two sources. The series the processes count (ingest, worker batches, SLA misses, notification
attempts, video frames, report jobs) are merged from the host's metrics folder
(``core/metrics.py``). The series that describe the stores — stream length and consumer-group lag
per community, dead letters, lost events, open alerts by severity, the notification outbox — are
read from Redis and SQL at each scrape (``StoreCollector``): any web worker answers them alike, and
a worker that stopped cannot freeze them. Who may read the page is decided before it is served, in
``api/access.py`` (``metrics_refusal``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from flask import Blueprint, Response, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from alerts.constants import SEVERITIES
from alerts.live import AlertStore
from api.context import stores
from core.metrics import host_series
from notify.targets import outbox_states
from registry.models import Community
from store.events import ARCHIVE_GROUP, GROUP, EventLog, StreamFigures
from store.redis_server import STORE_ERRORS
from store.stores import Stores

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)
METRICS_PATH = "/metrics"


class HostCollector(Collector):
    """The figures of every running service of this host (its metrics folder)."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def collect(self) -> Iterator[Metric]:
        """The merged series of the folder."""
        yield from host_series(self.base)


class StoreCollector(Collector):
    """The stores' figures, read at scrape time."""

    def __init__(self, opened: Stores) -> None:
        self.stores = opened

    def collect(self) -> Iterator[Metric]:
        """Stream, lag, dead-letter, alert and outbox series, and whether each store answered."""
        started = time.perf_counter()
        up = GaugeMetricFamily(
            "sandtable_store_up", "Whether this scrape could read the store (1) or not (0)", labels=["store"]
        )
        registered: list[str] = []
        try:
            with self.stores.sessions() as session:
                registered = list(session.scalars(select(Community.id)))
                outbox = outbox_states(session)
            yield _outbox(outbox)
            up.add_metric(["sql"], 1)
        except SQLAlchemyError as err:
            log.warning("metrics: the database did not answer: %s", err)
            up.add_metric(["sql"], 0)
        try:
            yield from self._redis_series(registered)
            up.add_metric(["redis"], 1)
        except STORE_ERRORS as err:
            log.warning("metrics: Redis did not answer: %s", err)
            up.add_metric(["redis"], 0)
        yield up
        took = GaugeMetricFamily("sandtable_scrape_seconds", "Time this scrape took to read the stores")
        took.add_metric([], round(time.perf_counter() - started, 6))
        yield took

    def _redis_series(self, registered: list[str]) -> Iterator[Metric]:
        s = self.stores
        events = EventLog(s.redis, s.keys)
        communities = sorted(set(events.communities()) | set(registered))
        figures = events.figures(communities)
        alerts = AlertStore(s.redis, s.keys).open_counts(communities)
        yield from _stream_series(figures, time.time())
        opened = GaugeMetricFamily(
            "sandtable_alerts_open",
            "Open alerts (new to on_scene) per community and severity",
            labels=["community", "severity"],
        )
        for community in communities:
            counts = alerts.get(community, {})
            for severity in SEVERITIES:
                opened.add_metric([community, severity], counts.get(f"sev:{severity}", 0))
        yield opened


def _stream_series(figures: dict[str, StreamFigures], now_s: float) -> Iterator[Metric]:
    length = GaugeMetricFamily(
        "sandtable_stream_length", "Entries in the community's event stream (kept until trimmed)", labels=["community"]
    )
    lag = GaugeMetricFamily(
        "sandtable_consumer_lag_entries",
        "Entries of the community's stream the consumer group has not acknowledged yet (pending and not "
        "delivered; group workers: the analytics, archive: the event archive; on Redis 6.2 undelivered entries "
        "are counted up to 10,000)",
        labels=["community", "group"],
    )
    age = GaugeMetricFamily(
        "sandtable_consumer_lag_seconds",
        "Age of the oldest entry the consumer group has not acknowledged (0 when it has worked off the stream)",
        labels=["community", "group"],
    )
    dead = GaugeMetricFamily(
        "sandtable_dead_letters",
        "Rejected and poison events kept in the community's dead-letter stream",
        labels=["community"],
    )
    written = CounterMetricFamily(
        "sandtable_dead_letters_written",
        "Dead letters ever written for the community (beyond those kept: pushed out by the stream's cap)",
        labels=["community"],
    )
    lost = CounterMetricFamily(
        "sandtable_events_lost",
        "Acknowledged events lost because Redis restarted without them (AOF fsync window, failover)",
        labels=["community"],
    )
    for community, f in sorted(figures.items()):
        length.add_metric([community], f.length)
        for group in (GROUP, ARCHIVE_GROUP):
            behind = f.groups[group]
            lag.add_metric([community, group], behind.entries)
            oldest = behind.oldest_ms
            age.add_metric([community, group], round(max(0.0, now_s - oldest / 1000), 3) if oldest is not None else 0.0)
        dead.add_metric([community], f.dead_letters)
        written.add_metric([community], f.dead_letters_written)
        lost.add_metric([community], f.lost)
    yield from (length, lag, age, dead, written, lost)


def _outbox(counts: dict[str, int]) -> Metric:
    family = GaugeMetricFamily(
        "sandtable_notify_outbox",
        "Notification deliveries not delivered: pending (first try due), retrying (after a failure), dead",
        labels=["state"],
    )
    for state in ("pending", "retrying", "dead"):
        family.add_metric([state], counts[state])
    return family


@bp.get(METRICS_PATH)
def scrape() -> Response:
    """The Prometheus text (or OpenMetrics, when the scraper asks for it)."""
    s = stores()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(s.settings.metrics_directory))
    registry.register(StoreCollector(s))
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encoder(registry), status=200)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    return response
