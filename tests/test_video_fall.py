"""Fall detection: the pure judgement on box histories, and the detector on synthetic courtyard clips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from analytics.video.fall import (
    FallConfig,
    FallDetection,
    FallDetector,
    Sample,
    fast_drop,
    find_fall,
    is_down,
    merge_fragments,
    posture,
    principal_axis_deg,
    standing_for,
)
from tests.video_synth import Move, courtyard
from tests.video_synth_falls import DISTRACTOR_KINDS, CaseResult, distractor_case, fall_case, run_case

CFG = FallConfig()
FPS = 10.0


@pytest.mark.parametrize(
    ("w", "h", "expected"),
    [(30, 100, "upright"), (35, 90, "upright"), (60, 55, "other"), (70, 80, "other"), (100, 25, "lying")],
)
def test_posture_follows_the_box_shape(w: float, h: float, expected: str) -> None:
    assert posture(w, h, CFG) == expected


def _history(*phases: tuple[float, tuple[float, float, float, float]]) -> list[Sample]:
    """Samples at 10 fps: each phase holds a box (x, y, w, h) for some seconds."""
    samples: list[Sample] = []
    t = 0.0
    for seconds, box in phases:
        for _ in range(round(seconds * FPS)):
            samples.append(Sample(t, *box))
            t += 1000 / FPS
    return samples


STANDING = (100.0, 100.0, 30.0, 100.0)  # centre y 150
TIPPING = (100.0, 130.0, 70.0, 70.0)
LYING = (100.0, 178.0, 100.0, 22.0)  # centre y 189
SITTING = (100.0, 145.0, 55.0, 55.0)  # centre y 172


def test_standing_then_lying_still_is_a_fall_reported_at_the_moment_it_went_down() -> None:
    samples = _history((3, STANDING), (0.3, TIPPING), (5.5, LYING))
    detection = find_fall(samples, CFG)
    assert isinstance(detection, FallDetection)
    assert detection.t_ms == pytest.approx(3300)
    assert detection.bbox == (100, 178, 100, 22)


def test_a_fall_is_only_confirmed_after_lying_still_long_enough() -> None:
    assert find_fall(_history((3, STANDING), (0.3, TIPPING), (4.0, LYING)), CFG) is None


def test_getting_down_slowly_is_not_a_fall() -> None:
    samples = _history((3, STANDING), (2.5, SITTING), (6, LYING))
    assert find_fall(samples, CFG) is None


def test_sitting_is_not_a_fall() -> None:
    assert find_fall(_history((3, STANDING), (8, SITTING)), CFG) is None


def test_moving_about_on_the_ground_is_not_lying_still() -> None:
    samples = _history((3, STANDING), (0.3, TIPPING), (1, LYING), (1, (140.0, 178.0, 100.0, 22.0)), (4, LYING))
    assert find_fall(samples, CFG) is None


def test_a_figure_that_came_into_view_lying_is_not_a_fall() -> None:
    assert find_fall(_history((8, LYING)), CFG) is None


WALK_IN = Move("walk", 3.0, speed=0.5)
SCRIPTS = {
    "fall": [WALK_IN, Move("stand", 0.5), Move("fall", 0.7), Move("lie", 7.0)],
    "fall to the left": [WALK_IN, Move("walk", 1.0, speed=0.3), Move("fall", 0.9, direction=-1), Move("lie", 7.0)],
    "walking": [Move("walk", 8.0, speed=0.45), Move("stand", 1.0), Move("walk", 6.0, speed=-0.5)],
    "sitting on the ground": [WALK_IN, Move("sit", 1.5), Move("sitting", 8.0), Move("standup", 1.5), Move("walk", 3.0)],
    "sitting on a bench": [
        WALK_IN,
        Move("sit", 1.5, seat="bench"),
        Move("sitting", 8.0, seat="bench"),
        Move("standup", 1.5, seat="bench"),
        Move("walk", 3.0, speed=0.5),
    ],
    "lying down slowly": [WALK_IN, Move("liedown", 4.0), Move("lie", 8.0)],
    "falling and getting up": [WALK_IN, Move("fall", 0.7), Move("lie", 2.0), Move("getup", 1.5), Move("walk", 3.0)],
}


def _detect(name: str) -> tuple[list[FallDetection], float]:
    clip = courtyard(SCRIPTS[name], fps=FPS)
    detector = FallDetector((clip.width, clip.height), clip.fps)
    found: list[FallDetection] = []
    for t_ms, frame in clip.frames():
        found += detector.process(frame, t_ms)
    found += detector.flush()
    return found, _down_s(SCRIPTS[name])


def _down_s(script: list[Move]) -> float:
    """When the figure ends up on the ground in a script (the start of its lying), or -1."""
    t = 0.0
    for move in script:
        if move.kind == "lie":
            return t
        t += move.duration
    return -1.0


@pytest.mark.parametrize("name", ["fall", "fall to the left"])
def test_a_fall_in_the_courtyard_is_detected_once(name: str) -> None:
    found, down_s = _detect(name)
    assert len(found) == 1
    fall = found[0]
    assert abs(fall.t_ms / 1000 - down_s) <= 0.6  # reported at the moment the person went down
    _, _, w, h = fall.bbox
    assert w > 2 * h  # the box is the person lying
    assert fall.frame is not None


@pytest.mark.parametrize(
    "name", ["walking", "sitting on the ground", "sitting on a bench", "lying down slowly", "falling and getting up"]
)
def test_everyday_movement_is_not_a_fall(name: str) -> None:
    found, _ = _detect(name)
    assert found == []


# --- the decisions behind the cues ----------------------------------------------------------------------------

H = 100.0
STAND = Sample(0, 100, 100, 30, 100)


def test_the_principal_axis_of_a_blob_says_upright_or_lying() -> None:
    tall = np.zeros((60, 60), np.uint8)
    tall[5:55, 25:35] = 1
    assert principal_axis_deg(cv2.moments(tall, binaryImage=True)) == pytest.approx(0, abs=1)
    assert principal_axis_deg(cv2.moments(tall.T.copy(), binaryImage=True)) == pytest.approx(90, abs=1)
    diagonal = np.eye(60, dtype=np.uint8)
    assert principal_axis_deg(cv2.moments(diagonal, binaryImage=True)) == pytest.approx(45, abs=1)


def test_a_blob_lying_diagonally_is_lying_by_its_axis() -> None:
    assert posture(60, 55, CFG) == "other"
    assert posture(60, 55, CFG, axis_deg=70) == "lying"


def test_down_means_the_top_well_below_the_standing_top_and_a_short_or_wide_box() -> None:
    lying = Sample(0, 100, 178, 100, 22)
    foreshortened = Sample(0, 100, 185, 30, 62)  # fell toward the camera: narrow, short, low
    crouching = Sample(0, 100, 148, 40, 52)  # the top only half a height lower
    assert is_down(lying, STAND, H, CFG)
    assert is_down(foreshortened, STAND, H, CFG)
    assert not is_down(crouching, STAND, H, CFG)
    assert not is_down(Sample(0, 100, 178, 100, 22, clipped=True), STAND, H, CFG)


def test_a_fall_drops_the_top_fast_and_lying_down_does_not() -> None:
    down = Sample(700, 100, 170, 100, 30)
    assert fast_drop(STAND, down, H, CFG)  # 0.7 H in 0.7 s
    assert not fast_drop(STAND, Sample(1400, 100, 170, 100, 30), H, CFG)  # 0.5 H/s: lying down
    assert not fast_drop(STAND, Sample(2000, 100, 190, 100, 10), H, CFG)  # beyond the fall window


def test_boxes_a_few_pixels_apart_are_one_body() -> None:
    merged = merge_fragments([(10, 50, 40, 10, 300), (53, 48, 40, 14, 400), (200, 50, 10, 30, 200)], gap=4)
    assert sorted(merged) == [(10, 48, 83, 14, 700), (200, 50, 10, 30, 200)]


FORESHORTENED = (100.0, 182.0, 32.0, 60.0)  # centre y 212: below the feet, the body toward the camera


def test_a_fall_toward_the_camera_is_found_by_the_top_and_centroid_dropping() -> None:
    samples = _history((3, STANDING), (0.3, (100.0, 140.0, 32.0, 100.0)), (6, FORESHORTENED))
    detection = find_fall(samples, CFG)
    assert isinstance(detection, FallDetection)
    assert detection.foreshortened
    assert detection.t_ms == pytest.approx(3300)


def test_a_box_cut_by_the_frame_edge_is_not_judged() -> None:
    samples = _history((3, STANDING), (0.3, TIPPING), (5.5, LYING))
    cut = [Sample(s.t_ms, s.x, s.y, s.w, s.h, clipped=s.y > 150) for s in samples]
    assert find_fall(cut, CFG) is None


def test_a_figure_seen_standing_only_briefly_is_not_judged() -> None:
    assert find_fall(_history((0.5, STANDING), (0.3, TIPPING), (5.5, LYING)), CFG) is None


def test_a_figure_never_upright_is_not_judged() -> None:  # a dog, a cyclist
    assert find_fall(_history((3, (100.0, 150.0, 80.0, 60.0)), (0.3, TIPPING), (5.5, LYING)), CFG) is None


# --- the synthetic set (tests/video_synth_falls.py) -----------------------------------------------------------
# Clips at 10 fps. Falls: sideways at 320×240, far figures in real 1280×720 frames (60–100 px tall),
# dusk at 640×360, and toward the camera staged near, far and at dusk in turn. Every distractor
# kind twice: once near, once far or at dusk.

FALL_SET = {"side": 6, "toward": 6, "far": 4, "dusk": 5}
DISTRACTOR_SET = [(k, "near", 0) for k in DISTRACTOR_KINDS] + [
    (k, ("far", "dusk")[i % 2], 1) for i, k in enumerate(DISTRACTOR_KINDS)
]


@pytest.fixture(scope="module")
def fall_results() -> dict[str, list[CaseResult]]:
    return {kind: [run_case(fall_case(kind, seed)) for seed in range(n)] for kind, n in FALL_SET.items()}


@pytest.mark.parametrize("kind", list(FALL_SET))
def test_falls_of_every_kind_are_found(fall_results: dict[str, list[CaseResult]], kind: str) -> None:
    results = fall_results[kind]
    found = sum(r.found for r in results)
    assert found / len(results) >= 0.9, [r.detections for r in results]
    assert all(r.false_alarms == 0 for r in results)  # one detection per fall (no repeat), when it happened
    if kind == "toward":
        assert all(fore for r in results for _, fore in r.detections)  # judged by the top, not a wide box


def test_a_far_figure_is_really_60_to_100_px_tall_in_a_720p_frame() -> None:
    case = fall_case("far", 0)
    assert (case.clip.width, case.clip.height) == (1280, 720)
    assert 60 <= case.person_px <= 100


@pytest.mark.parametrize(("kind", "condition", "seed"), DISTRACTOR_SET)
def test_everyday_movement_in_the_courtyard_raises_no_alarm(kind: str, condition: str, seed: int) -> None:
    result = run_case(distractor_case(kind, condition, seed))
    assert result.detections == []


def test_a_body_lying_toward_the_camera_does_not_count_as_standing_again() -> None:
    samples = _history((3, STANDING), (0.3, (100.0, 140.0, 32.0, 100.0)), (6, FORESHORTENED))
    assert posture(FORESHORTENED[2], FORESHORTENED[3], CFG) == "upright"  # narrow box: upright by shape
    assert standing_for(samples, 100.0, CFG) == 0.0  # but not standing: a report is not re-armed
    assert standing_for(_history((2, STANDING)), 100.0, CFG) == pytest.approx(1900)
