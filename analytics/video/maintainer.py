"""``video watch``: analyse camera streams continuously and post the detections to the ingest API.

Per camera, a reader thread keeps the stream open (reconnecting with back-off when it drops or
ends) and hands frames to an analysis thread through a small queue that drops the oldest frame
when the analysis falls behind (counted, never blocking the reader). One poster thread sends the
events to ``POST /api/v1/events``, retrying with back-off; when the API is away for long its
queue drops the oldest events (counted, logged).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import cv2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analytics.video.calibration import FacadeCalibration, load_calibration
from analytics.video.frames import DropQueue, Image, is_stream_url, usable_fps
from analytics.video.pipeline import CameraAnalysis, Kind
from core.clock import Clock, WallClock
from core.errors import InvalidInput
from core.metrics import metrics
from store.evidence import CommunityEvidence

log = logging.getLogger(__name__)


class WatchCamera(BaseModel):
    """One camera of the watch configuration."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1)
    kind: Kind
    calibration: FacadeCalibration | str | None = None  # inline, or the path of a calibration JSON file

    @model_validator(mode="after")
    def _throw_needs_calibration(self) -> WatchCamera:
        if self.kind is Kind.throw and self.calibration is None:
            raise ValueError("a throw camera needs a calibration")
        return self


class WatchConfig(BaseModel):
    """The watch configuration file."""

    model_config = ConfigDict(extra="forbid")

    cameras: Annotated[list[WatchCamera], Field(min_length=1)]
    reconnect_initial_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)
    frame_queue: int = Field(default=25, ge=1, le=1000)
    post_queue: int = Field(default=1000, ge=1)
    post_batch: int = Field(default=100, ge=1, le=1000)
    post_timeout_s: float = Field(default=10.0, gt=0)
    post_attempts: int = Field(default=5, ge=1)
    post_retry_s: float = Field(default=1.0, gt=0, le=60, description="first retry delay, doubling up to 30 s")

    @model_validator(mode="after")
    def _unique_ids(self) -> WatchConfig:
        ids = [c.id for c in self.cameras]
        if len(set(ids)) != len(ids):
            raise ValueError("camera ids must be unique")
        return self


def load_watch_config(path: Path) -> tuple[WatchConfig, dict[str, FacadeCalibration]]:
    """Read the watch configuration and every camera's calibration; InvalidInput names what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"--config: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"--config: cannot read {path}: {err}") from None
    except json.JSONDecodeError as err:
        raise InvalidInput(f"--config {path} is not JSON: {err.msg} at line {err.lineno}") from None
    try:
        config = WatchConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InvalidInput(f"--config {path}: {field}: {str(first['msg']).removeprefix('Value error, ')}") from None
    calibrations: dict[str, FacadeCalibration] = {}
    for camera in config.cameras:
        if isinstance(camera.calibration, FacadeCalibration):
            calibrations[camera.id] = camera.calibration
        elif isinstance(camera.calibration, str):
            file = Path(camera.calibration)
            calibrations[camera.id] = load_calibration(file if file.is_absolute() else path.parent / file)
    return config, calibrations


def check_api_url(url: str) -> str:
    """The ingest URL, which must be http(s)."""
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidInput(f"--api: must be an http:// or https:// URL, not {url!r}")
    return url


def backoff_delays(initial: float, maximum: float) -> Any:
    """Endless reconnect delays: initial, doubling, capped at maximum."""
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * 2)


# --- posting --------------------------------------------------------------------------------------------------


class PostRejected(Exception):
    """The API refused the body for good (4xx other than 429): retrying will not help."""


class EventPoster:
    """Posts events to the ingest API from a bounded queue (drop-oldest and count when the API is away)."""

    def __init__(self, url: str, token: str, config: WatchConfig, stop: threading.Event) -> None:
        self.url = check_api_url(url)
        self.token = token
        self.config = config
        self.stop = stop
        self._queue: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self.posted = 0
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name="video-poster", daemon=True)

    def submit(self, event: dict[str, Any]) -> None:
        """Queue an event without blocking."""
        with self._cond:
            if len(self._queue) >= self.config.post_queue:
                self._queue.popleft()
                self.dropped += 1
                metrics().video_events_dropped.inc()
                log.warning("event queue full: oldest event dropped (%d dropped so far)", self.dropped)
            self._queue.append(event)
            self._cond.notify()

    def _take(self) -> list[dict[str, Any]]:
        with self._cond:
            if not self._queue:
                self._cond.wait(0.5)
            batch: list[dict[str, Any]] = []
            while self._queue and len(batch) < self.config.post_batch:
                batch.append(self._queue.popleft())
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._deliver(batch)
            elif self.stop.is_set():
                return

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        delays = backoff_delays(self.config.post_retry_s, 30.0)
        for attempt in range(1, self.config.post_attempts + 1):
            try:
                self.post(batch)
                self.posted += len(batch)
                return
            except PostRejected as err:
                log.error("the API refused %d events: %s", len(batch), err)
                self.dropped += len(batch)
                metrics().video_events_dropped.inc(len(batch))
                return
            except RetryAfter as err:
                wait = err.seconds
            except OSError as err:  # urllib's URLError and HTTPError are OSErrors
                wait = next(delays)
                log.warning("posting %d events failed (attempt %d): %s", len(batch), attempt, err)
            if self.stop.is_set() and attempt >= 2:
                break
            self.stop.wait(wait)
        self.dropped += len(batch)
        metrics().video_events_dropped.inc(len(batch))
        log.error("%d events dropped after %d attempts", len(batch), self.config.post_attempts)

    def post(self, batch: list[dict[str, Any]]) -> None:
        """POST one event or an array; raises PostRejected, RetryAfter or OSError."""
        body = json.dumps(batch[0] if len(batch) == 1 else batch, ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.post_timeout_s) as response:
                reply = response.read()
        except urllib.error.HTTPError as err:
            if err.code == 429:
                raise RetryAfter(_retry_after(err.headers.get("Retry-After"))) from None
            if 400 <= err.code < 500:
                raise PostRejected(f"HTTP {err.code} {err.reason}") from None
            raise
        try:
            summary = json.loads(reply or b"{}")
        except json.JSONDecodeError:
            summary = {}
        if isinstance(summary, dict) and summary.get("rejected"):
            log.warning("the API rejected some events: %s", summary["rejected"])


class RetryAfter(Exception):
    """The API asked us to slow down."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


def _retry_after(value: str | None) -> float:
    try:
        seconds = float(value) if value is not None else 5.0
    except ValueError:
        seconds = 5.0
    return min(max(seconds, 0.5), 300.0) if math.isfinite(seconds) else 5.0


# --- cameras --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """One connection to a stream: frames carry it so the analysis knows when the stream restarted."""

    number: int
    fps: float
    size: tuple[int, int]
    start_ms: int  # wall time of the session's frame 0


class CameraWorker:
    """Reads one camera (reconnecting as needed) and analyses its frames."""

    def __init__(
        self,
        camera: WatchCamera,
        calibration: FacadeCalibration | None,
        config: WatchConfig,
        poster: EventPoster,
        evidence: CommunityEvidence | None,
        stop: threading.Event,
        clock: Clock,
    ) -> None:
        self.camera = camera
        self.calibration = calibration
        self.config = config
        self.poster = poster
        self.evidence = evidence
        self.stop = stop
        self.clock = clock
        series = metrics()
        self._analysed = series.video_frames.labels(camera.id)
        self.queue: DropQueue[tuple[Session, float, Image]] = DropQueue(
            config.frame_queue, on_drop=series.video_frames_dropped.labels(camera.id).inc
        )
        self.sessions = 0
        self.frames = 0
        self.detections = 0
        self.reader = threading.Thread(target=self._read_loop, name=f"video-read-{camera.id}", daemon=True)
        self.analyser = threading.Thread(target=self._analyse_loop, name=f"video-analyse-{camera.id}", daemon=True)

    def start(self) -> None:
        """Start the reader and the analysis."""
        self.reader.start()
        self.analyser.start()

    def join(self, timeout: float) -> None:
        """Wait for both threads (a reader stuck in a network read is left behind: it is a daemon)."""
        self.analyser.join(timeout)
        self.reader.join(max(0.1, timeout / 4))

    def _read_loop(self) -> None:
        delays = backoff_delays(self.config.reconnect_initial_s, self.config.reconnect_max_s)
        try:
            while not self.stop.is_set():
                frames = self._read_session()
                if self.stop.is_set():
                    break
                if frames > 0:
                    delays = backoff_delays(self.config.reconnect_initial_s, self.config.reconnect_max_s)
                delay = next(delays)
                log.info("camera %s: stream ended or dropped; reconnecting in %.1f s", self.camera.id, delay)
                self.stop.wait(delay)
        finally:
            self.queue.close()

    def _read_session(self) -> int:
        """Read one connection until it ends; returns how many frames it gave."""
        url = self.camera.url
        capture = cv2.VideoCapture(url)
        try:
            if not capture.isOpened():
                log.warning("camera %s: cannot open %s", self.camera.id, url)
                return 0
            self.sessions += 1
            fps = usable_fps(capture.get(cv2.CAP_PROP_FPS))
            paced = not is_stream_url(url)  # a file plays at its frame rate, like a camera
            start_ms = self.clock.now_ms()
            started = time.monotonic()
            session: Session | None = None
            index = 0
            first_pos = last_t = -1.0
            while not self.stop.is_set():
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                if session is None:
                    height, width = frame.shape[:2]
                    session = Session(self.sessions, fps, (width, height), start_ms)
                t_ms = index * 1000.0 / fps
                if not paced:
                    # a network stream may lose frames: its own timestamps keep the fall's timing right
                    pos = capture.get(cv2.CAP_PROP_POS_MSEC)
                    if math.isfinite(pos) and pos > 0:
                        first_pos = pos if first_pos < 0 else first_pos
                        t_ms = max(pos - first_pos, last_t + 1.0)
                last_t = t_ms
                if paced:
                    ahead = started + t_ms / 1000 - time.monotonic()
                    if ahead > 0 and self.stop.wait(ahead):
                        break
                self.queue.put((session, t_ms, frame))
                index += 1
            return index
        finally:
            capture.release()

    def _analyse_loop(self) -> None:
        analysis: CameraAnalysis | None = None
        current: Session | None = None
        while True:
            item = self.queue.get(timeout=0.5)
            if item is None:
                if self.queue.closed:
                    break
                continue
            session, t_ms, frame = item
            try:
                if session is not current:
                    if analysis is not None:
                        self._publish(analysis.finish())
                    analysis = CameraAnalysis(
                        self.camera.id,
                        self.camera.kind,
                        self.calibration,
                        session.size,
                        session.fps,
                        session.start_ms,
                        self.evidence,
                    )
                    current = session
                assert analysis is not None
                self.frames += 1
                self._analysed.inc()
                self._publish(analysis.feed(frame, t_ms))
            except Exception:  # one bad frame or bug must not stop the camera: log it and go on
                log.exception("camera %s: analysis failed on a frame; continuing", self.camera.id)
        if analysis is not None:
            self._publish(analysis.finish())
        if self.queue.dropped:
            log.info("camera %s: %d frames dropped under load", self.camera.id, self.queue.dropped)

    def _publish(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.detections += 1
            log.info("camera %s: %s %s", self.camera.id, event["type"], event["id"])
            self.poster.submit(event)


class VideoMaintainer:
    """Every configured camera plus the poster; ``run`` blocks until ``stop``."""

    def __init__(
        self,
        config: WatchConfig,
        calibrations: dict[str, FacadeCalibration],
        api_url: str,
        token: str,
        evidence: CommunityEvidence | None,
        clock: Clock | None = None,
    ) -> None:
        self.stop_event = threading.Event()
        self.poster = EventPoster(api_url, token, config, self.stop_event)
        self.workers = [
            CameraWorker(
                camera,
                calibrations.get(camera.id),
                config,
                self.poster,
                evidence,
                self.stop_event,
                clock or WallClock(),
            )
            for camera in config.cameras
        ]

    def stop(self) -> None:
        """Ask everything to finish (safe from a signal handler)."""
        self.stop_event.set()

    def run(self) -> None:
        """Run until stopped, then drain the analysis and the poster."""
        self.poster.thread.start()
        for worker in self.workers:
            worker.start()
        log.info("watching %d cameras", len(self.workers))
        while not self.stop_event.wait(1.0):
            pass
        for worker in self.workers:
            worker.join(timeout=5.0)
        self.poster.thread.join(timeout=10.0)
        log.info(
            "stopped: %d frames analysed, %d detections, %d events posted, %d dropped",
            sum(w.frames for w in self.workers),
            sum(w.detections for w in self.workers),
            self.poster.posted,
            self.poster.dropped,
        )
