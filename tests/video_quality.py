"""Quality evaluation of the thrown-object detector on the synthetic set (runs in worker processes)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import cv2

from analytics.video.calibration import Facade, parse_calibration
from analytics.video.throw import ThrowDetector
from tests.video_synth import FacadeClip, FacadeScene, distractor_clip, throw_clip

# The synthetic set: thrown objects at the camera's full 25 fps; distractors at a reduced frame
# rate so that a quarter of an hour of them fits in the test run.
RECALL_CLIPS = [{"seed": 11, "count": 24}, {"seed": 12, "count": 24}]
DISTRACTOR_SECONDS = 150.0
DISTRACTOR_FPS = 12.5
WIDTH, HEIGHT = 480, 270


@dataclass(frozen=True)
class ClipResult:
    """What one clip gave: ground truth, detections and the detector's counters."""

    name: str
    seconds: float
    truths: list[tuple[float, float, int, int]]  # (release s, landing s, floor, column)
    detections: list[tuple[float, int, int]]  # (first point s, floor, column)
    stats: dict[str, Any]


def run_clip(clip: FacadeClip, name: str) -> ClipResult:
    """Feed a synthetic clip through a fresh detector."""
    scene = clip.scene
    detector = ThrowDetector(Facade(parse_calibration(scene.calibration())), (scene.width, scene.height), scene.fps)
    found = []
    for t_ms, frame in clip.frames():
        found += detector.process(frame, t_ms)
    found += detector.flush()
    stats = {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(detector.stats).items()}
    return ClipResult(
        name=name,
        seconds=clip.duration_s,
        truths=[(t.start_s, t.start_s + t.landing_s, t.floor, t.column) for t in clip.throws],
        detections=[(d.t_ms / 1000, d.floor, d.column) for d in found],
        stats=stats,
    )


def job(spec: dict[str, Any]) -> ClipResult:
    """One clip of the set, built from its spec (picklable, for worker processes)."""
    cv2.setNumThreads(1)
    if spec["kind"] == "throws":
        scene = FacadeScene(width=WIDTH, height=HEIGHT, fps=25.0, seed=spec["seed"])
        return run_clip(throw_clip(scene, spec["count"], seed=spec["seed"]), f"throws-{spec['seed']}")
    scene = FacadeScene(width=WIDTH, height=HEIGHT, fps=DISTRACTOR_FPS, seed=spec["seed"])
    clip = distractor_clip(scene, spec["kind"], DISTRACTOR_SECONDS, seed=spec["seed"])
    return run_clip(clip, spec["kind"])


def run_set(specs: list[dict[str, Any]], workers: int = 2) -> list[ClipResult]:
    """Run every clip, spread over worker processes (spawned: no inherited OpenCV threads)."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(job, specs))


@dataclass(frozen=True)
class Score:
    """Recall, origin-floor accuracy and false alarms of a set of clips."""

    throws: int
    detected: int
    floor_exact: int
    false_alarms: int
    distractor_hours: float
    distractor_false_alarms: int

    @property
    def recall(self) -> float:
        """Share of thrown objects detected."""
        return self.detected / self.throws

    @property
    def floor_accuracy(self) -> float:
        """Share of thrown objects traced to exactly the right floor."""
        return self.floor_exact / self.throws

    @property
    def false_alarms_per_hour(self) -> float:
        """False alarms per hour of distractor video."""
        return self.distractor_false_alarms / self.distractor_hours


def match(result: ClipResult) -> tuple[int, int, int]:
    """(detected, floor exact, false alarms) of one clip: a detection matches a throw seen falling at that time."""
    used: set[int] = set()
    detected = exact = false = 0
    for t, floor, _ in result.detections:
        hit = next(
            (i for i, (t0, t1, _, _) in enumerate(result.truths) if i not in used and t0 - 0.5 <= t <= t1),
            None,
        )
        if hit is None:
            false += 1
            continue
        used.add(hit)
        detected += 1
        exact += floor == result.truths[hit][2]
    return detected, exact, false


def score(results: list[ClipResult]) -> Score:
    """Score a set of clip results."""
    throws = detected = exact = false = distractor_false = 0
    distractor_s = 0.0
    for result in results:
        d, e, f = match(result)
        throws += len(result.truths)
        detected += d
        exact += e
        false += f
        if not result.truths:
            distractor_s += result.seconds
            distractor_false += f
    return Score(throws, detected, exact, false, distractor_s / 3600, distractor_false)
