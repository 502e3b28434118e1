"""Falls in a courtyard camera: a person-like figure that goes from upright to lying fast and stays down.

Per frame: downscale, MOG2 background subtraction (shadows dropped), a morphological close that
joins head, body and legs into one blob, and nearest-centroid tracking of person-sized blobs.
Each track keeps a short history of bounding boxes; ``find_fall`` judges it: upright (tall box),
then lying (wide box) within ``fall_window_s`` with the centroid dropping by a good share of the
standing height, then lying still for ``still_s`` seconds → one detection. Walking keeps the
box tall; sitting leaves it roughly square and drops the centroid less; lying down slowly takes
longer than the fall window.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from analytics.video.frames import Image

log = logging.getLogger(__name__)

Posture = Literal["upright", "lying", "other"]


@dataclass(frozen=True)
class FallConfig:
    """Tunables of the fall detector; times in seconds, shares of the frame or of the standing height."""

    max_width: int = 320  # analysis width; frames are downscaled to at most this
    learn_s: float = 120.0  # MOG2 memory: a still figure is absorbed after roughly a tenth of it
    warmup_s: float = 1.0  # MOG2 learns at its fast start-up rate this long, then at the slow fixed rate
    var_threshold: float = 25.0
    min_area: float = 0.002  # blobs smaller than this share of the frame are not people
    max_area: float = 0.4
    upright_ratio: float = 1.3  # box height / width at or above: upright
    lying_ratio: float = 0.8  # at or below: lying
    fall_window_s: float = 1.5  # standing to lying within this is a fall, slower is lying down
    standing_share: float = 0.85  # standing: an upright box at least this share of the figure's usual height
    drop_share: float = 0.25  # the centroid drops at least this share of the standing height
    still_s: float = 5.0  # lying still this long confirms the fall
    still_share: float = 0.15  # lying "still": the centroid stays within this share of the standing height
    settle_s: float = 0.5  # after the first lying box, the body comes to rest within this
    lying_glitches: int = 2  # samples of another posture tolerated inside the lying run (segmentation noise)
    max_gap_s: float = 1.0  # a track unseen this long is dropped
    rearm_s: float = 1.0  # after a report, upright this long before the same track may report again


@dataclass(frozen=True)
class Sample:
    """One sighting of a figure: time (ms) and bounding box (full-frame pixels)."""

    t_ms: float
    x: float
    y: float
    w: float
    h: float

    @property
    def cy(self) -> float:
        """Vertical centre of the box."""
        return self.y + self.h / 2

    @property
    def cx(self) -> float:
        """Horizontal centre of the box."""
        return self.x + self.w / 2


@dataclass
class FallDetection:
    """One fall: when it happened, when it was confirmed, and where the person lies."""

    t_ms: float  # the moment the figure was first seen lying (stream time)
    confirmed_ms: float
    bbox: tuple[int, int, int, int]  # x, y, w, h in full-frame pixels
    frame: Image | None = field(default=None, repr=False)


@dataclass
class FallStats:
    """Counters of what the detector saw."""

    frames: int = 0
    tracks: int = 0
    dropped_blobs: int = 0
    detections: int = 0


# --- pure decisions -------------------------------------------------------------------------------------------


def posture(w: float, h: float, cfg: FallConfig) -> Posture:
    """Upright (tall box), lying (wide box) or something in between (sitting, bending, crouching)."""
    ratio = h / max(w, 1e-6)
    if ratio >= cfg.upright_ratio:
        return "upright"
    if ratio <= cfg.lying_ratio:
        return "lying"
    return "other"


def lying_run_start(samples: list[Sample], cfg: FallConfig) -> int | None:
    """Index of the first sample of the current lying run (a few glitches tolerated), or None if not lying now."""
    if not samples or posture(samples[-1].w, samples[-1].h, cfg) != "lying":
        return None
    start = len(samples) - 1
    glitches = 0
    for i in range(len(samples) - 2, -1, -1):
        if posture(samples[i].w, samples[i].h, cfg) == "lying":
            start = i
            glitches = 0
        else:
            glitches += 1
            if glitches > cfg.lying_glitches:
                break
    return start


def find_fall(samples: list[Sample], cfg: FallConfig) -> FallDetection | None:
    """Judge a track's history (oldest first): a confirmed fall, or None."""
    start = lying_run_start(samples, cfg)
    if start is None:
        return None
    down, now = samples[start], samples[-1]
    if now.t_ms - down.t_ms < cfg.still_s * 1000:
        return None
    upright = [s for s in samples[:start] if posture(s.w, s.h, cfg) == "upright"]
    if not upright:
        return None  # never seen upright: came into view lying
    height = float(np.percentile([s.h for s in upright], 90))
    standing = [s for s in upright if s.h >= cfg.standing_share * height]
    if not standing or down.t_ms - standing[-1].t_ms > cfg.fall_window_s * 1000:
        return None  # went down slowly (sat, knelt, lay down): not a fall
    standing_cy = standing[-1].cy
    # the first lying boxes may catch the body mid-tilt: judge position and stillness once it has settled
    settled = [s for s in samples[start:] if s.t_ms >= down.t_ms + cfg.settle_s * 1000]
    if not settled:
        return None
    cx = float(np.median([s.cx for s in settled]))
    cy = float(np.median([s.cy for s in settled]))
    if cy - standing_cy < cfg.drop_share * height:
        return None  # the body did not come down: bending over, or a wide object
    if any(math.hypot(s.cx - cx, s.cy - cy) > cfg.still_share * height for s in settled):
        return None  # moving about on the ground: not lying still
    bbox = (round(now.x), round(now.y), round(now.w), round(now.h))
    return FallDetection(t_ms=down.t_ms, confirmed_ms=now.t_ms, bbox=bbox)


def upright_for(samples: list[Sample], cfg: FallConfig) -> float:
    """How long (ms) the figure has been upright up to its last sample."""
    if not samples or posture(samples[-1].w, samples[-1].h, cfg) != "upright":
        return 0.0
    first = samples[-1].t_ms
    for s in reversed(samples):
        if posture(s.w, s.h, cfg) != "upright":
            break
        first = s.t_ms
    return samples[-1].t_ms - first


# --- tracking -------------------------------------------------------------------------------------------------


class FigureTrack:
    """A person-sized blob followed across frames."""

    def __init__(self, track_id: int, sample: Sample, maxlen: int) -> None:
        self.id = track_id
        self.samples: deque[Sample] = deque([sample], maxlen=maxlen)
        self.reported = False

    @property
    def last(self) -> Sample:
        """The latest sighting."""
        return self.samples[-1]


class FallDetector:
    """Feed frames in order with their stream time; get fall detections back."""

    def __init__(self, frame_size: tuple[int, int], fps: float, config: FallConfig | None = None) -> None:
        self.cfg = config or FallConfig()
        self.fps = fps if fps > 0 else 25.0
        width, height = frame_size
        self.scale = max(1.0, width / self.cfg.max_width)
        self.analysis_size = (max(1, round(width / self.scale)), max(1, round(height / self.scale)))
        self.mog = cv2.createBackgroundSubtractorMOG2(
            history=max(50, int(self.cfg.learn_s * self.fps)),
            varThreshold=self.cfg.var_threshold,
            detectShadows=True,
        )
        self.learning_rate = 1.0 / (self.cfg.learn_s * self.fps)
        self.warmup_frames = max(1, round(self.cfg.warmup_s * self.fps))
        area = self.analysis_size[0] * self.analysis_size[1]
        self.min_area = self.cfg.min_area * area
        self.max_area = self.cfg.max_area * area
        k = max(3, round(self.analysis_size[0] / 64) | 1)
        self.close_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k * 2 - 1))
        self.open_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
        span = self.cfg.still_s + self.cfg.fall_window_s + 2 * self.cfg.max_gap_s + 1.0
        self.history_len = max(16, int(span * self.fps))
        self.tracks: list[FigureTrack] = []
        self._next_id = 1
        self.stats = FallStats()

    def process(self, frame: Image, t_ms: float) -> list[FallDetection]:
        """Analyse one frame taken at stream time t_ms (milliseconds); returns falls confirmed on this frame."""
        self.stats.frames += 1
        small = frame if self.scale == 1.0 else cv2.resize(frame, self.analysis_size, interpolation=cv2.INTER_AREA)
        # After the warm-up a fixed slow rate: MOG2's own rate is fast in its first minutes and would absorb a
        # person lying still within seconds.
        rate = -1.0 if self.stats.frames <= self.warmup_frames else self.learning_rate
        mask = self.mog.apply(small, learningRate=rate)
        _, mask = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)  # shadows (127) out
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open_kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_kernel)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = [
            Sample(t_ms, *(float(v) * self.scale for v in stats[i, :4]))
            for i in range(1, count)
            if self.min_area <= stats[i, cv2.CC_STAT_AREA] <= self.max_area
        ]
        self._track(t_ms, boxes)
        found: list[FallDetection] = []
        for track in self.tracks:
            if track.reported:
                if upright_for(list(track.samples), self.cfg) >= self.cfg.rearm_s * 1000:
                    track.reported = False
                continue
            if track.last.t_ms != t_ms or posture(track.last.w, track.last.h, self.cfg) != "lying":
                continue
            detection = find_fall(list(track.samples), self.cfg)
            if detection is not None:
                track.reported = True
                detection.frame = frame
                self.stats.detections += 1
                found.append(detection)
        return found

    def flush(self, frame: Image | None = None) -> list[FallDetection]:
        """End of the stream: a fall is only reported once confirmed, so nothing is pending."""
        del frame
        self.tracks = []
        return []

    def _track(self, t_ms: float, boxes: list[Sample]) -> None:
        gap_ms = self.cfg.max_gap_s * 1000
        self.tracks = [tr for tr in self.tracks if t_ms - tr.last.t_ms <= gap_ms]
        pairs = []
        for ti, track in enumerate(self.tracks):
            last = track.last
            gate = 0.75 * max(last.w, last.h)
            for bi, box in enumerate(boxes):
                # the box centre may jump by half a body length when the figure tips over
                d = math.hypot(box.cx - last.cx, box.cy - last.cy)
                if d <= gate:
                    pairs.append((d, ti, bi))
        pairs.sort()
        used_t: set[int] = set()
        used_b: set[int] = set()
        for _, ti, bi in pairs:
            if ti in used_t or bi in used_b:
                continue
            used_t.add(ti)
            used_b.add(bi)
            self.tracks[ti].samples.append(boxes[bi])
        for bi, box in enumerate(boxes):
            if bi in used_b:
                continue
            if len(self.tracks) >= 32:
                self.stats.dropped_blobs += 1
                continue
            self.tracks.append(FigureTrack(self._next_id, box, self.history_len))
            self._next_id += 1
            self.stats.tracks += 1
