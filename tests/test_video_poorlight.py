"""Thrown objects in poor light (issue 23): the synthetic conditions, the new decisions, and the targets per condition.

The set (tests/video_quality.py ``poor_light_specs``): 8 thrown objects per condition (dusk, night,
cigarette-sized, 15 fps, rolled camera, two at once, and daylight for comparison) at 480×270, and
30 s of each distractor set at 12.5 fps (15 fps for the 15 fps condition). Figures go to
test-artifacts/video-throw-poorlight.json; ``python -m tests.video_quality --long`` gives larger ones.
"""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest

from analytics.video.throw import (
    G,
    Segment,
    ThrowConfig,
    clean_mask,
    fall_part,
    fit_line,
    fit_parabola,
    fits_one_fall,
    flight_around,
    judge_trajectory,
    lands_where_it_lies,
    noise_sigma,
    origin_time,
    smoothing_for,
    trim_rest,
    without_outliers,
)
from tests.conftest import ARTIFACTS
from tests.video_quality import (
    POOR_DISTRACTOR_SECONDS,
    POOR_THROWS,
    ClipResult,
    condition_of,
    poor_light_specs,
    poor_light_table,
    run_set,
)
from tests.video_synth import THROW_CONDITIONS, FacadeScene, condition_throw_clip

CFG = ThrowConfig()


# --- the synthetic conditions ---------------------------------------------------------------------------------


def test_higher_floors_look_shorter_as_through_a_camera_looking_up() -> None:
    scene = FacadeScene(width=480, height=270)
    heights = [scene.project(10, (k + 1) * 3.0)[1] - scene.project(10, k * 3.0)[1] for k in range(scene.floors)]
    assert all(upper < lower for upper, lower in itertools.pairwise(heights))  # top floor first
    assert heights[0] < 0.7 * heights[-1]


def test_a_rolled_camera_tilts_the_facade_and_its_calibration_follows() -> None:
    scene = FacadeScene(width=480, height=270, roll_deg=4.0)
    (x0, y0), (x1, y1) = scene.corners[0], scene.corners[1]
    assert math_degrees(y1 - y0, x1 - x0) == pytest.approx(4.0, abs=0.1)
    assert scene.calibration()["facade"][0] == [round(x0, 2), round(y0, 2)]


def math_degrees(dy: float, dx: float) -> float:
    return float(np.degrees(np.arctan2(dy, dx)))


def test_night_objects_are_within_20_grey_levels_of_the_wall_and_the_noise_is_strong() -> None:
    clip = condition_throw_clip("night", 4, seed=1)
    scene = clip.scene
    for throw in clip.throws:
        assert throw.bgr is not None
        assert 10 <= abs(float(np.mean(throw.bgr)) - float(np.mean(scene.lighting.wall))) <= 20
    frames = [
        cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for _, f in zip(range(3), (f for _, f in clip.frames()), strict=False)
    ]
    assert noise_sigma(frames[2], frames[1]) > 3.5


def test_small_objects_are_two_or_three_pixels_wide_and_two_throws_overlap() -> None:
    small = condition_throw_clip("small", 6, seed=2)
    assert {t.width_px for t in small.throws} <= {2, 3}
    pairs = condition_throw_clip("two", 3, seed=2).throws
    for a, b in zip(pairs[::2], pairs[1::2], strict=True):
        assert abs(a.start_s - b.start_s) <= 0.5 and a.floor != b.floor and a.column != b.column


# --- the decisions ---------------------------------------------------------------------------------------------


def test_noise_is_measured_and_noisy_frames_are_smoothed() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(60, 120, (200, 300)).astype(np.uint8)
    noisy = [np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8) for _ in range(2)]
    assert noise_sigma(noisy[1], noisy[0]) == pytest.approx(5, rel=0.15)
    assert noise_sigma(base, base) < 0.5  # within the first grey level
    assert smoothing_for(1.2, -1, CFG) == 0
    assert smoothing_for(3.2, -1, CFG) == 3
    assert smoothing_for(4.6, -1, CFG) == 5
    assert smoothing_for(2.6, 0, CFG) == 0  # just past the threshold: keep the setting (hysteresis)


def test_a_clean_mask_keeps_a_two_pixel_object_and_drops_single_specks() -> None:
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[5:7, 5:7] = 255  # 2×2 object
    mask[12, 12] = 255  # a speck
    cleaned = clean_mask(mask, noisy=False, kernel=np.ones((2, 2), dtype=np.uint8))
    assert cv2.countNonZero(cleaned[3:9, 3:9]) == 4  # kept whole (OpenCV's even kernel shifts it by a pixel)
    assert cv2.countNonZero(cleaned[10:, 10:]) == 0


def test_a_dive_out_of_level_flight_and_a_pull_up_are_a_bird() -> None:
    dive = Segment(10.0, 10.8, (8.0, 4.0), (8.5, 8.0))
    level = Segment(9.4, 9.95, (3.0, 4.0), (7.8, 3.9))  # 8.7 m/s sideways, ended where the dive began
    climb = Segment(11.1, 11.6, (9.5, 8.2), (12.5, 7.5))  # picked up 0.3 s after, climbing away
    landed = Segment(11.0, 11.5, (8.5, 8.1), (8.52, 8.1))  # an object lying where it fell
    assert (
        flight_around(dive, [level], ended_midair=False, cfg=CFG, start_speed=4.0) == "dives out of level flight (bird)"
    )
    # an object tossed from its window (1 m/s) just as a bird flies past it: a bird does not stop to dive
    assert flight_around(dive, [level], ended_midair=False, cfg=CFG, start_speed=1.0) is None
    assert flight_around(dive, [climb], ended_midair=True, cfg=CFG) == "pulls up in mid-air (bird)"
    assert flight_around(dive, [climb], ended_midair=False, cfg=CFG) is None  # it landed: not a pull-up
    assert flight_around(dive, [landed], ended_midair=True, cfg=CFG) is None


def _fall(t: np.ndarray, x0: float = 8.0, y0: float = 6.0, vx: float = 0.6, vy: float = 0.0) -> np.ndarray:
    return np.stack([x0 + vx * t, y0 + vy * t + 0.5 * 0.9 * G * t * t], axis=1)


def test_pieces_of_one_broken_fall_fit_one_path_and_pieces_of_two_things_do_not() -> None:
    t = np.arange(0, 1.2, 1 / 25)
    xy = _fall(t)
    pieces = np.r_[0:8, 12:14, 20:30]  # seen, lost, seen for a moment, lost again, seen to the end
    assert fits_one_fall(t[pieces], xy[pieces], CFG) == pytest.approx(0.0, abs=1e-6)
    other = _fall(t, x0=14.0, y0=2.0)  # the first piece belongs to another object, 6 m away
    joined = np.vstack([other[0:8], xy[20:30]])
    assert fits_one_fall(np.r_[t[0:8], t[20:30]], joined, CFG) is None
    rising = np.stack([xy[:, 0], 12 - xy[:, 1]], axis=1)  # going up: not a fall, however smooth
    assert fits_one_fall(t, rising, CFG) is None


def test_a_fall_seen_in_under_60_percent_of_its_frames_counts_only_when_clean_and_long() -> None:
    t = np.arange(0, 1.2, 1 / 25)
    seen = np.r_[0:3, 6:9, 13:15, 20:22, 24:30]  # 16 of 30 frames: a dim object passing windows
    size = np.full(len(seen), 0.3)
    assert judge_trajectory(t[seen], _fall(t)[seen], size, CFG, fps=25).ok
    jitter = np.random.default_rng(5).normal(0, 0.25, (len(seen), 2))  # flicker hopping between blobs
    rejected = judge_trajectory(t[seen], _fall(t)[seen] + jitter, size, CFG, fps=25)
    assert not rejected.ok
    assert rejected.reason in ("seen in too few frames (flicker)", "erratic fall (bird or insect)")
    hops = np.array([0, 4, 12, 16, 18, 26])  # six sightings hopping through rain: too few, however smooth
    assert judge_trajectory(t[hops], _fall(t)[hops], size[:6], CFG, fps=25).reason == "seen in too few frames (flicker)"
    short = seen[seen < 17]  # a 1 m drop, as sparse: not enough to tell from flicker
    assert judge_trajectory(t[short], _fall(t)[short], size[: len(short)], CFG, fps=25).reason == (
        "seen in too few frames (flicker)"
    )


def test_a_floor_one_fall_seen_briefly_counts_when_it_reached_the_ground() -> None:
    t = np.arange(0, 0.25, 1 / 25)  # 7 points over 0.24 s, the last half metre of a 1.2 m fall
    xy = _fall(t, y0=17.3, vy=1.5)
    size = np.full(len(t), 0.3)
    assert judge_trajectory(t, xy, size, CFG, fps=25).reason == "too short"
    assert judge_trajectory(t, xy, size, CFG, fps=25, grounded=True).ok
    assert judge_trajectory(t, xy, size, CFG, fps=25, rested_s=0.3).ok


# A diving bird at dusk as the detector tracked it (12.5 fps, façade metres): level flight, then the dive.
DUSK_DIVE = [
    (13.62, 7.38), (13.93, 7.52), (14.15, 7.40), (14.35, 7.47), (14.68, 7.45), (14.98, 7.39), (15.22, 7.52),
    (15.38, 7.54), (15.44, 7.88), (15.47, 8.18), (15.52, 8.74), (15.61, 9.23), (15.66, 9.80), (15.74, 10.44),
    (15.85, 11.13), (15.95, 11.88), (16.05, 12.68), (16.13, 13.59), (16.27, 14.56), (16.70, 15.36),
]  # fmt: skip


def test_a_dive_that_starts_in_level_flight_or_swerves_is_a_bird() -> None:
    t = np.arange(len(DUSK_DIVE)) / 12.5
    size = np.full(len(t), 0.4)
    verdict = judge_trajectory(t, np.array(DUSK_DIVE), size, CFG, fps=12.5)
    assert verdict.reason == "dives out of level flight (bird)"
    t = np.arange(0, 0.8, 1 / 25)
    swerve = _fall(t, vx=-0.5) - np.stack([2.5 * t**2, 0 * t], axis=1)  # speeding up sideways at 0.5 g
    assert judge_trajectory(t, swerve, size[: len(t)], CFG, fps=25).reason == "swerves sideways (bird)"
    assert judge_trajectory(t, _fall(t, vx=-0.5), size[: len(t)], CFG, fps=25).ok


def test_an_object_hidden_for_a_second_is_traced_back_past_where_it_was_first_seen() -> None:
    t = np.arange(1.0, 1.8, 1 / 25)  # dropped from rest at y = 2 m, hidden for its first second
    xy = np.stack([np.full(len(t), 5.0), 2 + 0.5 * G * t * t], axis=1)
    verdict = judge_trajectory(t - t[0], xy, np.full(len(t), 0.3), CFG)
    assert origin_time(verdict, CFG.max_backtrack_s) == pytest.approx(-1.0, abs=0.01)
    later = t + 0.5  # hidden 1.5 s: as far back as allowed (1.2 s), not the first sighting, 2.5 m lower
    xy = np.stack([np.full(len(t), 5.0), 2 + 0.5 * G * later * later], axis=1)
    verdict = judge_trajectory(t - t[0], xy, np.full(len(t), 0.3), CFG)
    assert origin_time(verdict, CFG.max_backtrack_s) == -CFG.max_backtrack_s


def test_a_noise_blob_taken_for_a_frame_or_two_is_left_out_of_the_fit() -> None:
    t = np.arange(0, 1.2, 1 / 25)
    xy = _fall(t)
    xy[[7, 19]] += (0.9, -0.8)  # two frames on noise blobs nearly a metre off
    assert judge_trajectory(t, xy, np.full(len(t), 0.3), CFG, fps=25).ok
    assert list(np.nonzero(~without_outliers(t, xy, 0.2, CFG.max_outlier_share))[0]) == [7, 19]
    assert without_outliers(t, _fall(t), 0.2, CFG.max_outlier_share).all()  # a clean track keeps every point
    scattered = _fall(t) + np.random.default_rng(2).normal(0, 0.5, xy.shape)  # not a few outliers: erratic
    assert not judge_trajectory(t, scattered, np.full(len(t), 0.3), CFG, fps=25).ok


def test_a_short_fall_tossed_sideways_is_not_a_bird() -> None:
    t = np.arange(0, 0.45, 1 / 25)  # a floor-1 object tossed at 1.5 m/s: 0.7 m sideways over a 1 m drop
    xy = _fall(t, y0=17.0, vx=1.5)
    assert judge_trajectory(t, xy, np.full(len(t), 0.3), CFG, fps=25, grounded=True).ok
    fast = _fall(t, y0=17.0, vx=3.0)  # twice as fast sideways: a bird
    assert judge_trajectory(t, fast, np.full(len(t), 0.3), CFG, fps=25, grounded=True).reason == "moves sideways (bird)"


def test_an_object_lying_split_on_the_ground_edge_is_trimmed_at_its_landing() -> None:
    t = np.arange(0, 0.8, 1 / 25)
    fall = _fall(t, y0=15.0)
    edge = fall[-1] + np.array([[0.0, 0.13], [0.0, 0.0], [0.0, -0.12], [0.0, 0.17], [0.0, 0.01], [0.0, -0.13]])
    ends = np.vstack([fall, edge])  # the resting blob jumps between its halves, up to 0.3 m apart
    assert trim_rest(ends) == len(fall)
    assert trim_rest(fall) == len(fall)  # still falling at the end: nothing to cut


# A floor-1 object at dusk as the detector tracked it (25 fps, façade metres): tossed up out of its window, seen
# falling the whole way, then lying on the ground's edge, its blob split: the track takes the whole blob (y 18.0)
# or one half (17.9, 18.15) from frame to frame.
DUSK_SPLIT_LANDING = [
    (16.15, 16.96), (16.15, 16.96), (16.20, 16.95), (16.22, 16.96), (16.22, 16.96), (16.28, 16.98), (16.28, 17.01),
    (16.35, 17.05), (16.34, 17.14), (16.41, 17.23), (16.42, 17.33), (16.45, 17.46), (16.51, 17.58), (16.50, 17.71),
    (16.56, 17.85), (16.54, 17.97), (16.55, 18.00), (16.52, 18.15), (16.52, 18.14), (16.54, 18.02), (16.54, 18.00),
    (16.54, 17.90), (16.54, 17.90), (16.52, 17.89), (16.54, 17.90), (16.56, 17.89), (16.52, 17.89),
]  # fmt: skip


def test_an_object_lying_in_a_blob_split_a_quarter_metre_apart_is_trimmed_at_its_landing() -> None:
    xy = np.array(DUSK_SPLIT_LANDING)
    t = np.arange(len(xy)) / 25
    keep = trim_rest(xy)
    assert 15 <= keep <= 16  # the fall down to the ground, not the lying halves
    verdict = judge_trajectory(t[:keep], xy[:keep], np.full(keep, 0.3), CFG, fps=25, rested_s=t[-1] - t[keep - 1])
    assert verdict.ok, verdict.reason
    assert verdict.accel == pytest.approx(0.86 * G, abs=0.1 * G)  # the toss's g (0.86 g: a light object)


# A floor-1 object at night (25 fps): dark on a dark window, seen only over its last 0.6 m, in five frames, then
# lying on the ground.
NIGHT_FLOOR_ONE = [
    (8.20, 17.26), (8.20, 17.40), (8.24, 17.55), (8.21, 17.70), (8.24, 17.88),
    (8.24, 17.96), (8.26, 17.97), (8.23, 17.94), (8.26, 17.96), (8.28, 17.96), (8.26, 17.97),
]  # fmt: skip
NIGHT_FLOOR_ONE_T = [0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24, 0.28, 0.36, 0.44, 0.56]


def test_a_floor_one_fall_seen_in_five_frames_counts_when_it_then_lay_on_the_ground() -> None:
    xy, t = np.array(NIGHT_FLOOR_ONE), np.array(NIGHT_FLOOR_ONE_T)
    keep = trim_rest(xy)
    assert keep == 5
    size = np.full(keep, 0.25)
    rested = float(t[-1] - t[keep - 1])
    assert judge_trajectory(t[:keep], xy[:keep], size, CFG, fps=25, rested_s=rested).ok
    assert judge_trajectory(t[:keep], xy[:keep], size, CFG, fps=25).reason == "too short"  # not seen landing
    four = judge_trajectory(t[1:keep], xy[1:keep], size[1:], CFG, fps=25, rested_s=rested)
    assert four.reason == "too short"  # four sightings are not enough, however well they fit


# A floor-1 object at night as the detector tracked it, joined from two pieces (t s, x m, y m): seen in front of its
# window for 0.24 s, lost over the dark wall, then found lying on the ground 0.44 s later.
NIGHT_FOUND_LYING = [
    (0.0, 22.79, 16.56), (0.04, 22.9, 16.61), (0.08, 22.92, 16.71), (0.12, 22.93, 16.8), (0.16, 23.03, 16.86),
    (0.2, 23.09, 16.99), (0.24, 23.08, 17.08), (0.68, 23.34, 18.0), (0.76, 23.34, 18.0), (0.84, 23.34, 18.0),
    (0.88, 23.35, 18.02),
]  # fmt: skip


def test_an_object_lost_on_its_way_down_and_found_lying_where_its_path_lands_is_one_fall() -> None:
    track = np.array(NIGHT_FOUND_LYING)
    t, xy = track[:, 0], track[:, 1:]
    assert fall_part(t, xy, CFG.max_gap_s) == (7, True)  # where it was found lying is not where it landed
    assert fits_one_fall(t, xy, CFG) is not None
    elsewhere = xy.copy()
    elsewhere[7:, 0] += 2.0  # something lying 2 m to the side: not where this fall lands
    assert fits_one_fall(t, elsewhere, CFG) is None
    (a, b, c), _ = fit_parabola(t[:7], xy[:7, 1])
    (p, q), _ = fit_line(t[:7], xy[:7, 0])
    assert lands_where_it_lies((p, q), (a, b, c), 0.68, xy[-1], CFG.lands_near_m)
    assert not lands_where_it_lies((p, q), (a, b, c), 0.2, xy[-1], CFG.lands_near_m)  # lying there before it fell


# --- the targets per condition ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def poor_light() -> dict[str, dict[str, float]]:
    """The poor-light set, analysed on two workers, as the per-condition table."""
    results: list[ClipResult] = run_set(poor_light_specs(POOR_THROWS, POOR_DISTRACTOR_SECONDS))
    table = poor_light_table(results)
    ARTIFACTS.mkdir(exist_ok=True)
    report = {
        "table": table,
        "clips": {r.name: {"condition": condition_of(r), "stats": r.stats} for r in results},
    }
    (ARTIFACTS / "video-throw-poorlight.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return table


# Conditions where the measured figures do not reach the targets yet (docs/video.md, "Limits"): (recall,
# floor) as measured on this set. They are asserted at the level reached, so that a regression shows.
# The dusk miss is the clip's first object, thrown from floor 1 two seconds after the clip starts: dark on
# a dim wall, seen for 0.2 s in front of its lit window (a 0.3 m drop) and then never again, neither over
# the wall (11 grey levels off it) nor lying on the ground's edge. Night reaches 8/8 since the five-frame
# floor-1 fall (the long runs: 0.94-1.0 on four seeds).
SHORT_OF_TARGET: dict[str, tuple[float, float]] = {
    "dusk": (0.875, 0.875),  # 7/8, floors 7/8 (the long runs: 0.98-1.0 on four seeds)
}


@pytest.mark.slow
@pytest.mark.parametrize("condition", THROW_CONDITIONS)
def test_thrown_objects_are_found_in_every_condition(poor_light: dict[str, dict[str, float]], condition: str) -> None:
    row = poor_light[condition]
    assert row["throws"] == POOR_THROWS
    assert row["recall"] >= SHORT_OF_TARGET.get(condition, (0.95, 0.90))[0]


@pytest.mark.slow
@pytest.mark.parametrize("condition", THROW_CONDITIONS)
def test_the_floor_is_right_in_every_condition(poor_light: dict[str, dict[str, float]], condition: str) -> None:
    row = poor_light[condition]
    figure = row["floor_within_1"] if condition == "small" else row["floor_exact"]
    assert figure >= SHORT_OF_TARGET.get(condition, (0.95, 0.90))[1]


@pytest.mark.slow
def test_no_false_alarm_on_any_distractor_set(poor_light: dict[str, dict[str, float]]) -> None:
    distractors = {name: row for name, row in poor_light.items() if "minutes" in row}
    assert len(distractors) == 8
    assert sum(row["minutes"] for row in distractors.values()) >= 4
    assert {name: row["false_alarms"] for name, row in distractors.items() if row["false_alarms"]} == {}
