"""One camera's analysis: frames in, interfaces §2 events out (thrown objects or falls)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from typing import Any

from analytics.video.calibration import Facade, FacadeCalibration
from analytics.video.events import fall_event, throw_event
from analytics.video.fall import FallDetector
from analytics.video.frames import Image, open_video
from analytics.video.throw import ThrowDetector
from core.errors import InvalidInput
from store.evidence import CommunityEvidence

log = logging.getLogger(__name__)


class Kind(enum.StrEnum):
    """What a camera watches for."""

    throw = "throw"
    fall = "fall"


def choose_kind(kind: Kind | None, calibration: FacadeCalibration | None) -> Kind:
    """The analysis to run: as asked, else thrown objects with a calibration and falls without."""
    if kind is None:
        return Kind.throw if calibration is not None else Kind.fall
    if kind is Kind.throw and calibration is None:
        raise InvalidInput("thrown-object detection needs the façade calibration (--calibration FILE.json)")
    return kind


class CameraAnalysis:
    """A detector for one camera session and the conversion of its detections into events."""

    def __init__(
        self,
        camera: str,
        kind: Kind,
        calibration: FacadeCalibration | None,
        frame_size: tuple[int, int],
        fps: float,
        start_ms: int,
        evidence: CommunityEvidence | None,
    ) -> None:
        self.camera = camera
        self.kind = kind
        self.start_ms = start_ms
        self.evidence = evidence
        self.facade: Facade | None = None
        self.detector: ThrowDetector | FallDetector
        if kind is Kind.throw:
            if calibration is None:
                raise InvalidInput("thrown-object detection needs the façade calibration")
            self.facade = Facade(calibration)
            self.detector = ThrowDetector(self.facade, frame_size, fps)
        else:
            self.detector = FallDetector(frame_size, fps)
        self.last_frame: Image | None = None

    def feed(self, frame: Image, t_ms: float) -> list[dict[str, Any]]:
        """Analyse one frame (t_ms: milliseconds after ``start_ms``); events of the detections it completes."""
        self.last_frame = frame
        return self._events(self.detector.process(frame, t_ms))

    def finish(self) -> list[dict[str, Any]]:
        """The end of the session: events of whatever is still pending."""
        return self._events(self.detector.flush(self.last_frame))

    def stats(self) -> dict[str, Any]:
        """The detector's counters."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(self.detector.stats).items()}

    def _events(self, detections: list[Any]) -> list[dict[str, Any]]:
        events = []
        for detection in detections:
            if self.facade is not None:
                events.append(throw_event(detection, self.camera, self.facade, self.start_ms, self.evidence))
            else:
                events.append(fall_event(detection, self.camera, self.start_ms, self.evidence))
        return events


def detect_file(
    source: str,
    camera: str,
    kind: Kind,
    calibration: FacadeCalibration | None,
    start_ms: int,
    evidence: CommunityEvidence | None,
) -> Iterator[dict[str, Any]]:
    """Analyse a whole file (or a stream until it ends): events as they are found (``evidence``: the
    camera's community's evidence folder, or None for events without an image)."""
    video = open_video(source)
    try:
        analysis = CameraAnalysis(camera, kind, calibration, video.size, video.fps, start_ms, evidence)
        frames = 0
        for t_ms, frame in video.frames():
            frames += 1
            yield from analysis.feed(frame, t_ms)
        yield from analysis.finish()
        log.info("%s: %d frames at %.1f fps analysed; %s", source, frames, video.fps, analysis.stats())
    finally:
        video.close()
