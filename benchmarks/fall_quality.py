"""Fall detector: quality on the synthetic courtyard set, and speed at 720p on one core.

Run from the repository root: ``python benchmarks/fall_quality.py``. It draws randomised clips of
every fall kind and every distractor kind (``tests/video_synth_falls.py``), feeds each through a
fresh ``FallDetector`` in worker processes, and prints recall per fall kind and false alarms per
hour per distractor kind (and per condition), then the detector's own speed on a 1280×720, 25 fps
clip with ``cv2.setNumThreads(1)`` (drawing is not timed). The last line printed is one JSON object.
The test suite (``tests/test_video_fall.py``) runs a smaller set of the same generators.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from analytics.video.fall import FallDetector  # noqa: E402
from tests.video_synth_falls import (  # noqa: E402
    CONDITIONS,
    DISTRACTOR_KINDS,
    FALL_KINDS,
    CaseResult,
    distractor_case,
    fall_case,
    run_case,
)

SEED_BASE = 1000  # the offline run's seeds do not overlap the test suite's (0–99)


def _fall(args: tuple[str, int, float]) -> CaseResult:
    cv2.setNumThreads(1)
    kind, seed, fps = args
    return run_case(fall_case(kind, seed, fps=fps))


def _distractor(args: tuple[str, str, int, float]) -> CaseResult:
    cv2.setNumThreads(1)
    kind, condition, seed, fps = args
    return run_case(distractor_case(kind, condition, seed, fps=fps))


def speed(seconds: float) -> dict[str, float]:
    """The detector's fps on a 1280×720, 25 fps far-fall clip, on one core; frames drawn beforehand."""
    cv2.setNumThreads(1)
    case = fall_case("far", SEED_BASE, fps=25.0)
    clip = case.clip
    clip.duration_s = min(clip.duration_s, seconds)
    frames = list(clip.frames())
    detector = FallDetector((clip.width, clip.height), clip.fps)
    start = time.perf_counter()
    for t_ms, frame in frames:
        detector.process(frame, t_ms)
    elapsed = time.perf_counter() - start
    fps = len(frames) / elapsed
    return {"frames": len(frames), "fps": round(fps, 1), "realtime": round(fps / 25.0, 2)}


def main() -> None:
    """Measure and print the figures; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--falls", type=int, default=40, help="clips per fall kind (default 40)")
    parser.add_argument("--distractors", type=int, default=12, help="clips per distractor kind and condition")
    parser.add_argument("--fps", type=float, default=25.0, help="clip frame rate (default 25)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    t0 = time.perf_counter()
    fall_jobs = [(k, SEED_BASE + i, args.fps) for k in FALL_KINDS for i in range(args.falls)]
    distractor_jobs = [
        (k, c, SEED_BASE + i, args.fps) for k in DISTRACTOR_KINDS for c in CONDITIONS for i in range(args.distractors)
    ]
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        falls = list(pool.map(_fall, fall_jobs, chunksize=2))
        distractors = list(pool.map(_distractor, distractor_jobs, chunksize=2))
    print(f"{len(falls)} fall clips and {len(distractors)} distractor clips at {args.fps:g} fps")

    report: dict[str, object] = {"fps": args.fps}
    recall: dict[str, dict[str, float]] = {}
    for kind in FALL_KINDS:
        rs = [r for r in falls if r.kind == kind]
        found, total = sum(r.found for r in rs), sum(r.falls for r in rs)
        fa = sum(r.false_alarms for r in rs)
        clip = {r.condition for r in rs}
        recall[kind] = {"found": found, "falls": total, "recall": round(found / total, 3), "extra": fa}
        print(
            f"fall {kind:8s} ({'/'.join(sorted(clip))}): {found}/{total} = {found / total:.3f}, extra detections {fa}"
        )
        if len(clip) > 1:
            for condition in CONDITIONS:
                part = [r for r in rs if r.condition == condition]
                f, n = sum(r.found for r in part), sum(r.falls for r in part)
                recall[f"{kind} {condition}"] = {"found": f, "falls": n, "recall": round(f / n, 3), "extra": 0}
                print(f"  staged {condition}: {f}/{n}")
    report["falls"] = recall

    per_kind: dict[str, dict[str, float]] = {}
    per_condition: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for kind in DISTRACTOR_KINDS:
        rs = [r for r in distractors if r.kind == kind]
        seconds = sum(r.seconds for r in rs)
        fa = sum(r.false_alarms for r in rs)
        per_kind[kind] = {"seconds": round(seconds), "false_alarms": fa, "per_hour": round(fa * 3600 / seconds, 2)}
        for r in rs:
            per_condition[r.condition][0] += r.seconds
            per_condition[r.condition][1] += r.false_alarms
        print(f"distractor {kind:24s}: {fa} false alarms in {seconds / 60:5.1f} min = {fa * 3600 / seconds:.2f}/h")
    total_s = sum(r.seconds for r in distractors)
    total_fa = sum(r.false_alarms for r in distractors)
    print(f"distractors in all: {total_fa} false alarms in {total_s / 60:.1f} min = {total_fa * 3600 / total_s:.2f}/h")
    for condition, (staged_s, staged_fa) in per_condition.items():
        print(f"  staged {condition}: {staged_fa:g} in {staged_s / 60:.1f} min")
    report["distractors"] = per_kind
    report["distractor_minutes"] = round(total_s / 60, 1)
    report["false_alarms"] = total_fa
    report["speed_720p_one_core"] = s = speed(24.0)
    print(f"speed: {s['fps']} fps at 1280x720 on one core = {s['realtime']}x real time at 25 fps")
    print(f"took {time.perf_counter() - t0:.0f} s")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
