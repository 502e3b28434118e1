"""P7: the thrown-object video pipeline on a 720p clip, side by side with a bare MOG2 loop, on one core.

Run from the repository root: ``python benchmarks/p7_video.py``. The clip is synthetic (the test
suite's façade generator): 1280×720 at 25 fps with thrown objects, a bird and window lights.
Each frame is drawn once and handed to both contenders, in alternating order so neither gets
the warmer cache; only the ``apply``/``process`` calls are timed, not the drawing. The last
line printed is the JSON of interfaces §7.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from analytics.video.calibration import Facade, parse_calibration  # noqa: E402
from analytics.video.throw import ThrowDetector  # noqa: E402
from tests.video_synth import FacadeScene, throw_clip  # noqa: E402

CLIP_FPS = 25.0


def main() -> None:
    """Measure and print the figures; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=24.0, help="clip length (default 24 s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    cv2.setNumThreads(1)
    scene = FacadeScene(width=1280, height=720, fps=CLIP_FPS, seed=args.seed)
    clip = throw_clip(scene, count=max(1, int(args.seconds / 4)), seed=args.seed, gap_s=2.5)
    clip.duration_s = min(clip.duration_s, args.seconds)
    truths = [t for t in clip.throws if t.start_s + t.landing_s < clip.duration_s]

    baseline = cv2.createBackgroundSubtractorMOG2()
    detector = ThrowDetector(Facade(parse_calibration(scene.calibration())), (scene.width, scene.height), CLIP_FPS)
    base_s = pipe_s = 0.0
    frames = 0
    detections = []
    for i, (t_ms, frame) in enumerate(clip.frames()):
        if i % 2 == 0:
            a = time.perf_counter()
            baseline.apply(frame)
            b = time.perf_counter()
            detections += detector.process(frame, t_ms)
            c = time.perf_counter()
            base_s += b - a
            pipe_s += c - b
        else:
            a = time.perf_counter()
            detections += detector.process(frame, t_ms)
            b = time.perf_counter()
            baseline.apply(frame)
            c = time.perf_counter()
            pipe_s += b - a
            base_s += c - b
        frames += 1
    a = time.perf_counter()
    detections += detector.flush()
    pipe_s += time.perf_counter() - a

    baseline_fps = frames / base_s
    pipeline_fps = frames / pipe_s
    floors_right = sum(
        any(abs(d.t_ms / 1000 - t.start_s) < t.landing_s and d.floor == t.floor for d in detections) for t in truths
    )
    print(f"clip: {frames} frames of {scene.width}x{scene.height} at {CLIP_FPS:g} fps, {len(truths)} thrown objects")
    width, height = detector.analysis_size
    print(f"analysis: 1/{detector.factor} scale of the region {detector.roi}: {width}x{height}")
    print(f"bare MOG2 apply loop: {baseline_fps:7.1f} fps ({1000 * base_s / frames:.2f} ms/frame)")
    print(f"full pipeline:        {pipeline_fps:7.1f} fps ({1000 * pipe_s / frames:.2f} ms/frame)")
    print(f"detections: {len(detections)} (thrown objects traced to the right floor: {floors_right}/{len(truths)})")
    print(
        json.dumps(
            {
                "bench": "P7",
                "pipeline_fps": round(pipeline_fps, 1),
                "baseline_fps": round(baseline_fps, 1),
                "clip_fps": int(CLIP_FPS),
                "ratio": round(pipeline_fps / baseline_fps, 3),
                "realtime": round(pipeline_fps / CLIP_FPS, 2),
                "detections": len(detections),
                "frames": frames,
                "width": scene.width,
                "height": scene.height,
            }
        )
    )


if __name__ == "__main__":
    main()
