"""Fall detection: the pure judgement on box histories, and the detector on synthetic courtyard clips."""

from __future__ import annotations

import pytest

from analytics.video.fall import FallConfig, FallDetection, FallDetector, Sample, find_fall, posture
from tests.video_synth import Move, courtyard

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
