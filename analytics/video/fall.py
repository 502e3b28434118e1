"""Falls in a courtyard camera: a person-like figure whose top drops fast to the ground, and who stays down.

Per frame: downscale to ≤ 640 px wide, blur, MOG2 background subtraction (shadows dropped by
day, kept in a dark scene), a morphological close that joins head, body and legs into one blob,
fragments a few pixels apart merged, and nearest-centroid tracking of person-sized blobs.
Each track keeps a short history of sightings (box, blob orientation from image moments, and
whether the box touches the frame edge); ``find_fall`` judges it with small pure decisions, all
relative to the figure's own standing height ``H`` so a far figure is judged like a near one:

- the figure was seen **standing** for at least 1 s (an upright box, at least 85 % of its usual
  height, not cut by the frame edge);
- its **top dropped fast**: to the first sighting *down* (the top at least 0.6 H below the
  standing top, the box at most 0.8 H tall or lying) within 1.5 s, at ≥ 0.8 H per second;
- the **centroid came down** by at least 0.25 H;
- it then **stays down and still** for 5 s → one detection.

A sideways fall turns the box wide; a fall toward the camera (foreshortened) leaves the box narrow
but short and low: both are *down* by the top's drop. Sitting, bending and crouching lower the top
by about half the height, not 0.6 H; lying down slowly is too slow; a dog or a cyclist is never an
upright figure; a box cut by the frame edge is not judged.
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
    """Tunables of the fall detector; times in seconds, shares of the frame or of the standing height ``H``."""

    max_width: int = 640  # analysis width; frames are downscaled to at most this
    learn_s: float = 120.0  # MOG2 memory: a still figure is absorbed after roughly a tenth of it
    warmup_s: float = 1.0  # MOG2 learns at its fast start-up rate this long, then at the slow fixed rate
    var_threshold: float = 25.0
    dark_scene: float = 80.0  # mean grey below this (dusk, night): MOG2's "shadow" pixels count as foreground
    blur_px: int = 5  # Gaussian blur before MOG2 (analysis pixels, odd; 0: none): sensor noise at dusk
    min_area: float = 0.0004  # blobs smaller than this share of the frame are not people
    max_area: float = 0.4
    upright_ratio: float = 1.3  # box height / width at or above: upright
    lying_ratio: float = 0.8  # at or below: lying
    lying_axis_deg: float = 60.0  # or a blob whose principal axis is this far from vertical (a body lying diagonally)
    standing_share: float = 0.85  # standing: an upright box at least this share of the figure's usual height
    drop_began_share: float = 0.1  # the drop begins at the last sighting with the top within this share of H
    ref_window_s: float = 0.6  # the standing top: the highest among standing sightings this long before the last
    min_standing_s: float = 1.0  # seen standing over at least this span before the fall (not a fragment's track)
    top_drop_share: float = 0.6  # down: the box top at least this share of H below its standing top …
    low_share: float = 0.8  # … and the box at most this share of H tall (or lying)
    fall_window_s: float = 1.5  # standing to down within this is a fall, slower is lying down
    min_drop_speed: float = 0.8  # the top falls at least this many H per second between the two
    drop_share: float = 0.25  # the centroid drops at least this share of H
    still_s: float = 5.0  # down and still this long confirms the fall
    still_share: float = 0.15  # "still": the centroid stays within this share of H …
    still_outliers: float = 0.1  # … in all but this share of the settled sightings (a blob split by noise)
    merge_gap: float = 0.01  # blobs closer than this share of the frame width are one figure (a split body)
    settle_s: float = 0.5  # after the first down sighting, the body comes to rest within this
    lying_glitches: int = 2  # sightings of another posture tolerated inside the down run (segmentation noise)
    edge_px: int = 1  # a box within this many analysis pixels of the frame edge is cut off: not judged
    max_gap_s: float = 1.0  # a track unseen this long is dropped
    rearm_s: float = 1.0  # after a report, standing this long before the same track may report again


@dataclass(frozen=True)
class Sample:
    """One sighting of a figure: time (ms), bounding box (full-frame pixels), blob axis, and whether it is cut off."""

    t_ms: float
    x: float
    y: float
    w: float
    h: float
    clipped: bool = False  # the box touches the frame edge: part of the figure may be outside
    axis_deg: float = 0.0  # the blob's principal axis from vertical (0 upright, 90 lying), from image moments

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

    t_ms: float  # the moment the figure was first seen down (stream time)
    confirmed_ms: float
    bbox: tuple[int, int, int, int]  # x, y, w, h in full-frame pixels
    frame: Image | None = field(default=None, repr=False)
    foreshortened: bool = False  # down with a narrow box: a fall toward (or away from) the camera


@dataclass
class FallStats:
    """Counters of what the detector saw."""

    frames: int = 0
    tracks: int = 0
    dropped_blobs: int = 0
    detections: int = 0


# --- pure decisions -------------------------------------------------------------------------------------------


def principal_axis_deg(m: dict[str, float]) -> float:
    """Angle of a blob's principal axis from vertical (degrees, 0–90), from its ``cv2.moments``."""
    mu20, mu02, mu11 = m["mu20"], m["mu02"], m["mu11"]
    theta = 0.5 * math.atan2(2 * mu11, mu20 - mu02)  # from the x axis
    return abs(90.0 - abs(math.degrees(theta)))


def posture(w: float, h: float, cfg: FallConfig, axis_deg: float = 0.0) -> Posture:
    """Upright (tall box), lying (wide box, or a diagonal blob lying along its axis) or in between."""
    ratio = h / max(w, 1e-6)
    if ratio >= cfg.upright_ratio:
        return "upright"
    if ratio <= cfg.lying_ratio or (ratio <= 1.0 and axis_deg >= cfg.lying_axis_deg):
        return "lying"
    return "other"


def standing_height(samples: list[Sample], cfg: FallConfig) -> float | None:
    """The figure's usual upright height (90th percentile of its upright, uncut boxes), or None if never upright."""
    heights = [s.h for s in samples if not s.clipped and posture(s.w, s.h, cfg, s.axis_deg) == "upright"]
    return float(np.percentile(heights, 90)) if heights else None


def is_standing(s: Sample, height: float, cfg: FallConfig) -> bool:
    """An upright, uncut box at (nearly) full standing height."""
    return not s.clipped and posture(s.w, s.h, cfg, s.axis_deg) == "upright" and s.h >= cfg.standing_share * height


def is_down(s: Sample, standing: Sample, height: float, cfg: FallConfig) -> bool:
    """On the ground: an uncut box whose top is well below the standing top, and which is short or lying.

    Works for a sideways fall (the box turns wide) and for a fall toward the camera (the box stays
    narrow but gets short and low).
    """
    if s.clipped or s.y - standing.y < cfg.top_drop_share * height:
        return False
    return s.h <= cfg.low_share * height or posture(s.w, s.h, cfg, s.axis_deg) == "lying"


def fast_drop(standing: Sample, down: Sample, height: float, cfg: FallConfig) -> bool:
    """The top went from standing to down within the fall window, at ≥ ``min_drop_speed`` H per second."""
    dt = (down.t_ms - standing.t_ms) / 1000
    if dt <= 0 or dt > cfg.fall_window_s:
        return False
    return (down.y - standing.y) / dt >= cfg.min_drop_speed * height


def standing_reference(samples: list[Sample], height: float, cfg: FallConfig) -> int | None:
    """Index of the sighting the fall is measured from: the highest top among the last standing sightings.

    A figure tipping toward the camera keeps a tall, narrow box while its top already drops (the body
    reaches below the feet in the image), so the last "standing" box may be mid-fall; the highest top
    within ``ref_window_s`` before it is the figure still upright.
    """
    last = next((i for i in range(len(samples) - 1, -1, -1) if is_standing(samples[i], height, cfg)), None)
    if last is None:
        return None
    best = last
    for i in range(last - 1, -1, -1):
        if samples[last].t_ms - samples[i].t_ms > cfg.ref_window_s * 1000:
            break
        if is_standing(samples[i], height, cfg) and samples[i].y < samples[best].y:
            best = i
    return best


def drop_began(samples: list[Sample], ref: int, down: int, height: float, cfg: FallConfig) -> int:
    """Index of the last sighting between ``ref`` and ``down`` whose top was still near the standing top.

    The drop's speed is measured from there: a person who stood or walked for a moment after the
    reference sighting is not counted as slow.
    """
    top = samples[ref].y + cfg.drop_began_share * height
    return max(i for i in range(ref, down) if samples[i].y <= top)


def down_run_start(samples: list[Sample], standing_at: int, height: float, cfg: FallConfig) -> int | None:
    """Index of the first sighting of the current down run after ``standing_at`` (a few glitches tolerated)."""
    standing = samples[standing_at]
    if not is_down(samples[-1], standing, height, cfg):
        return None
    start = len(samples) - 1
    glitches = 0
    for i in range(len(samples) - 2, standing_at, -1):
        if is_down(samples[i], standing, height, cfg):
            start = i
            glitches = 0
        else:
            glitches += 1
            if glitches > cfg.lying_glitches:
                break
    return start


def lying_still(settled: list[Sample], cx: float, cy: float, height: float, cfg: FallConfig) -> bool:
    """The settled sightings stay near (cx, cy): all but a ``still_outliers`` share within ``still_share`` H."""
    far = sum(1 for s in settled if math.hypot(s.cx - cx, s.cy - cy) > cfg.still_share * height)
    return far <= cfg.still_outliers * len(settled)


def merge_fragments(boxes: list[tuple[int, ...]], gap: float) -> list[tuple[int, ...]]:
    """Union boxes (x, y, w, h, area) that overlap or lie within ``gap`` pixels of each other: one body split in two.

    Repeats until nothing merges; the few blobs of a courtyard frame keep this cheap.
    """
    out = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                ax, ay, aw, ah, aa = out[i]
                bx, by, bw, bh, ba = out[j]
                if bx > ax + aw + gap or ax > bx + bw + gap or by > ay + ah + gap or ay > by + bh + gap:
                    continue
                x, y = min(ax, bx), min(ay, by)
                out[i] = (x, y, max(ax + aw, bx + bw) - x, max(ay + ah, by + bh) - y, aa + ba)
                del out[j]
                merged = True
                break
            if merged:
                break
    return out


def find_fall(samples: list[Sample], cfg: FallConfig) -> FallDetection | None:
    """Judge a track's history (oldest first): a confirmed fall, or None."""
    if not samples or samples[-1].clipped:
        return None
    height = standing_height(samples, cfg)
    if height is None:
        return None  # never seen upright: came into view lying, or not a person (a dog, a cyclist)
    standing_at = standing_reference(samples, height, cfg)
    if standing_at is None:
        return None
    start = down_run_start(samples, standing_at, height, cfg)
    if start is None:
        return None
    standing, down, now = samples[standing_at], samples[start], samples[-1]
    first_standing = next(s for s in samples if is_standing(s, height, cfg))
    if standing.t_ms - first_standing.t_ms < cfg.min_standing_s * 1000:
        return None  # not seen standing long enough to know its height (a new track, or a fragment)
    if now.t_ms - down.t_ms < cfg.still_s * 1000:
        return None
    if not fast_drop(samples[drop_began(samples, standing_at, start, height, cfg)], down, height, cfg):
        return None  # went down slowly (sat, knelt, lay down): not a fall
    # the first down boxes may catch the body mid-fall: judge position and stillness once it has settled
    settled = [s for s in samples[start:] if s.t_ms >= down.t_ms + cfg.settle_s * 1000]
    if not settled:
        return None
    cx = float(np.median([s.cx for s in settled]))
    cy = float(np.median([s.cy for s in settled]))
    if cy - standing.cy < cfg.drop_share * height:
        return None  # the body did not come down
    if not lying_still(settled, cx, cy, height, cfg):
        return None  # moving about on the ground: not lying still
    bbox = (round(now.x), round(now.y), round(now.w), round(now.h))
    lying = posture(now.w, now.h, cfg, now.axis_deg) == "lying"
    return FallDetection(t_ms=down.t_ms, confirmed_ms=now.t_ms, bbox=bbox, foreshortened=not lying)


def standing_for(samples: list[Sample], height: float, cfg: FallConfig) -> float:
    """How long (ms) the figure has been standing (upright at ≥ ``standing_share`` of ``height``) up to its last sample.

    Upright alone is not enough: a body lying toward the camera has a narrow, upright-shaped box.
    """
    if not samples or not is_standing(samples[-1], height, cfg):
        return 0.0
    first = samples[-1].t_ms
    for s in reversed(samples):
        if not is_standing(s, height, cfg):
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
        self.height = 0.0  # the standing height it was judged by when it last reported

    @property
    def last(self) -> Sample:
        """The latest sighting."""
        return self.samples[-1]

    @property
    def size(self) -> float:
        """The figure's size: the largest box side over its last few sightings (a falling body moves by about it)."""
        recent = list(self.samples)[-8:]
        return max(max(s.w, s.h) for s in recent)


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
        self.merge_gap = self.cfg.merge_gap * self.analysis_size[0]
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
        if self.cfg.blur_px > 1:
            small = cv2.GaussianBlur(small, (self.cfg.blur_px, self.cfg.blur_px), 0)
        mask = self.mog.apply(small, learningRate=rate)
        # Shadows (127) out by day. In a dark scene dark clothes on dark paving read as shadow (darker, same
        # colour), and there are no sunlit shadows to drop: keep them.
        dark = cv2.mean(small)[:3]
        cut = 100 if sum(dark) / 3 < self.cfg.dark_scene else 200
        _, mask = cv2.threshold(mask, cut, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open_kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_kernel)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        parts = [tuple(int(v) for v in stats[i, :5]) for i in range(1, count) if stats[i, 4] >= self.min_area / 4]
        # merging is quadratic: a frame full of noise blobs (a camera glitch, heavy rain) is taken as it is
        blobs = merge_fragments(parts, self.merge_gap) if 1 < len(parts) <= 48 else parts
        boxes = [self._sample(t_ms, mask, b) for b in blobs if self.min_area <= b[4] <= self.max_area]
        self._track(t_ms, boxes)
        found: list[FallDetection] = []
        for track in self.tracks:
            if track.reported:
                if standing_for(list(track.samples), track.height, self.cfg) >= self.cfg.rearm_s * 1000:
                    track.reported = False
                continue
            if track.last.t_ms != t_ms or track.last.clipped or track.last.h < 2:
                continue
            detection = find_fall(list(track.samples), self.cfg)
            if detection is not None:
                track.reported = True
                track.height = standing_height(list(track.samples), self.cfg) or 0.0
                detection.frame = frame
                self.stats.detections += 1
                found.append(detection)
        return found

    def _sample(self, t_ms: float, mask: Image, blob: tuple[int, ...]) -> Sample:
        """The sighting of a blob (x, y, w, h, area): its box in full-frame pixels, principal axis, cut off or not."""
        x, y, w, h = blob[:4]
        width, height = self.analysis_size
        e = self.cfg.edge_px
        clipped = x < e or y < e or x + w > width - e or y + h > height - e
        m = cv2.moments(mask[y : y + h, x : x + w], binaryImage=True)
        s = self.scale
        return Sample(t_ms, x * s, y * s, w * s, h * s, clipped=clipped, axis_deg=principal_axis_deg(m))

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
            gate = 0.75 * track.size
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
