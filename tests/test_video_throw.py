"""Thrown-object detection: calibration, the pure decisions, and the quality targets on the synthetic set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.video.calibration import Facade, load_calibration, parse_calibration
from analytics.video.throw import (
    FallPath,
    G,
    ShakeMonitor,
    ThrowConfig,
    associate,
    even_dft_size,
    fit_parabola,
    is_global_change,
    is_rainy,
    is_shaken,
    judge_trajectory,
    origin_time,
    same_fall,
    streak_mask,
    trim_rest,
)
from core.errors import InvalidInput
from tests.conftest import ARTIFACTS
from tests.video_quality import DISTRACTOR_FPS, RECALL_CLIPS, WIDTH, ClipResult, run_set, score
from tests.video_synth import DISTRACTOR_KINDS, FacadeScene

CFG = ThrowConfig()
RECT = {
    "camera": "TC-1",
    "building": "B-1",
    "floors": 6,
    "columns": 4,
    "facade": [[0, 0], [400, 0], [400, 600], [0, 600]],
}


# --- calibration --------------------------------------------------------------------------------------------


def test_a_valid_calibration_is_accepted() -> None:
    calibration = parse_calibration(RECT)
    assert (calibration.floors, calibration.columns, calibration.storey_height_m) == (6, 4, 3.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"floors": 0}, "floors: Input should be greater than or equal to 1"),
        ({"columns": 0}, "columns: Input should be greater than or equal to 1"),
        ({"facade": [[0, 0], [400, 0], [400, 600]]}, "facade: List should have at least 4 items"),
        ({"facade": [[0, 0], [400, 0], [400, 600], [0, 600], [0, 300]]}, "facade: List should have at most 4"),
        ({"facade": [[0, 0], [400, 0], [0, 600], [400, 600]]}, "facade: the corners do not form a convex"),
        ({"facade": [[0, 0], [400, 0], [100, 100], [0, 600]]}, "facade: the corners do not form a convex"),
        ({"facade": [[0, 0], [200, 0], [400, 0], [0, 600]]}, "facade: three corners are on one line"),
        ({"facade": [[0, 0], [1, 0], [1, 1], [0, 1]]}, "facade: the four corners enclose no area"),
        ({"facade": [[0, 0], [0, 600], [400, 600], [400, 0]]}, "facade: the corners must be in the order top-left"),
        ({"facade": [[400, 600], [0, 600], [0, 0], [400, 0]]}, "facade: the top corners must be above"),
        ({"facade": [[0, 0], [400, 0], [400, "x"], [0, 600]]}, "facade.2.1: Input should be a valid number"),
        ({"lens": "wide"}, "lens: Extra inputs are not permitted"),
    ],
)
def test_a_bad_calibration_names_the_field_in_one_line(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_calibration({**RECT, **change})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_missing_field_is_named() -> None:
    data = {k: v for k, v in RECT.items() if k != "building"}
    with pytest.raises(InvalidInput, match="building: Field required"):
        parse_calibration(data)


def test_calibration_files_that_are_missing_or_not_json_say_so(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="calibration file not found"):
        load_calibration(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{floors: 6", encoding="utf-8")
    with pytest.raises(InvalidInput, match="is not JSON"):
        load_calibration(bad)


@pytest.mark.parametrize(
    ("x", "y", "cell"),
    [
        (10, 590, (1, 1)),
        (390, 590, (1, 4)),
        (10, 10, (6, 1)),
        (390, 10, (6, 4)),
        (150, 250, (4, 2)),
        (250, 350, (3, 3)),
    ],
)
def test_floors_count_from_the_bottom_and_columns_from_the_left(x: float, y: float, cell: tuple[int, int]) -> None:
    facade = Facade(parse_calibration(RECT))
    u, v = facade.to_unit(np.array([[x, y]]))[0]
    assert facade.cell(u, v) == cell


def test_every_window_of_a_perspective_facade_maps_to_its_own_floor_and_column() -> None:
    scene = FacadeScene()
    facade = Facade(parse_calibration(scene.calibration()))
    for floor in range(1, scene.floors + 1):
        for column in range(1, scene.columns + 1):
            centre = scene.window_polygon(floor, column).mean(axis=0)
            u, v = facade.to_unit(centre[None, :])[0]
            assert facade.cell(u, v) == (floor, column)


def test_a_point_far_outside_the_facade_has_no_cell() -> None:
    facade = Facade(parse_calibration(RECT))
    assert facade.cell(1.5, 0.5) is None
    assert facade.cell(0.5, -0.5) is None
    assert facade.cell(0.5, 1.2) is None


# --- pure decisions -----------------------------------------------------------------------------------------


def test_global_decisions() -> None:
    assert is_shaken((0.6, 0.5), 0.7) and not is_shaken((0.3, 0.2), 0.7)
    assert is_global_change(0.3, 0.15) and not is_global_change(0.01, 0.15)
    assert is_rainy(8, 8) and not is_rainy(3, 8)


def test_rain_streaks_are_thin_and_long_and_objects_are_not() -> None:
    w = np.array([2, 1, 5, 4, 6])
    h = np.array([12, 9, 5, 7, 30])
    area = np.array([20, 9, 20, 22, 170])
    assert streak_mask(w, h, area, CFG.streak_max_width_px, CFG.streak_min_elongation).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_a_parabola_is_fitted_exactly() -> None:
    t = np.linspace(0, 1, 20)
    (a, b, c), rms = fit_parabola(t, 0.5 * G * t * t + 2 * t + 1)
    assert (a, b, c) == pytest.approx((G / 2, 2, 1), abs=1e-9)
    assert rms < 1e-9


def _track(x: np.ndarray, y: np.ndarray, fps: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(len(x)) / fps
    return t, np.stack([x, y], axis=1)


def _falling(seconds: float = 1.0, vy: float = 0.0, vx: float = 0.5, g: float = G) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0, seconds, 1 / 25)
    return _track(5 + vx * t, 3 + vy * t + 0.5 * g * t * t)


def test_an_object_falling_with_gravity_is_a_thrown_object() -> None:
    t, xy = _falling()
    verdict = judge_trajectory(t, xy, np.full(len(t), 0.3), CFG)
    assert verdict.ok
    assert verdict.accel == pytest.approx(G, rel=0.01)


def test_a_light_object_slowed_by_drag_still_counts() -> None:
    t, xy = _falling(g=0.6 * G)
    assert judge_trajectory(t, xy, np.full(len(t), 0.2), CFG).ok


rng = np.random.default_rng(3)
N = 40
T = np.arange(N) / 25


@pytest.mark.parametrize(
    ("name", "x", "y", "size", "reason"),
    [
        ("bird crossing", 2 + 9 * T, 5 + 0.2 * np.sin(12 * T), 0.4, "sideways (bird)"),
        ("bird climbing", 6 + 0.5 * T, 9 - 4 * T, 0.4, "upward (bird)"),
        ("bird gliding down", 6 + 1.2 * T, 4 + 3 * T, 0.4, "no gravity acceleration"),
        ("leaf drifting", 6 + 0.8 * np.sin(4 * T), 4 + 1.0 * T, 0.1, "leaf"),
        ("rain streak", 6 + 0.5 * T, 2 + 9 * T, 0.05, "no gravity acceleration (leaf, rain"),
        ("window light", 6 + 0.02 * rng.normal(size=N), 7 + 0.02 * rng.normal(size=N), 1.2, "stationary"),
        ("insect on the lens", 6 + np.cumsum(rng.normal(0, 0.3, N)), 7 + 3 * T, 4.0, "insect"),
        ("erratic blob", 6 + 0.3 * T, 4 + 3 * T * T + 0.6 * rng.normal(size=N), 0.3, "erratic"),
        ("faster than gravity", 6 + 0.1 * T, 4 + 15 * T * T, 0.3, "faster than gravity"),
    ],
)
def test_distractor_trajectories_are_rejected_with_a_reason(
    name: str, x: np.ndarray, y: np.ndarray, size: float, reason: str
) -> None:
    t, xy = _track(x, y)
    verdict = judge_trajectory(t, xy, np.full(len(t), size), CFG)
    assert not verdict.ok, name
    assert reason in verdict.reason, (name, verdict.reason)


def test_a_track_through_clutter_or_with_gaps_is_rejected() -> None:
    t, xy = _falling()
    assert "clutter" in judge_trajectory(t, xy, np.full(len(t), 0.3), CFG, clutter=0.5).reason
    sparse = np.arange(0, len(t), 3)  # seen in one frame out of three
    assert "too few frames" in judge_trajectory(t[sparse], xy[sparse], np.full(len(sparse), 0.3), CFG, fps=25).reason


def test_a_short_accelerating_drop_that_stops_in_mid_air_is_a_leaf() -> None:
    t, xy = _falling(seconds=0.45)  # about a metre of drop, then the track just ends
    size = np.full(len(t), 0.1)
    assert judge_trajectory(t, xy, size, CFG).ok  # had it landed or left the view, it would count
    assert "mid-air" in judge_trajectory(t, xy, size, CFG, midair=True).reason


def test_a_too_short_track_is_not_judged() -> None:
    t, xy = _falling(seconds=0.12)
    assert judge_trajectory(t, xy, np.full(len(t), 0.3), CFG).reason == "too short"


def test_the_origin_is_traced_back_to_where_the_fall_started() -> None:
    # dropped from rest at y = 3 m, first seen 0.3 s later
    t = np.arange(0.3, 1.2, 1 / 25)
    y = 3 + 0.5 * G * t * t
    verdict = judge_trajectory(t - t[0], np.stack([np.full(len(t), 5.0), y], axis=1), np.full(len(t), 0.3), CFG)
    start = origin_time(verdict, CFG.max_backtrack_s)
    a, b, c = verdict.coef_y
    assert start == pytest.approx(-0.3, abs=0.01)
    assert a * start * start + b * start + c == pytest.approx(3.0, abs=0.02)


def test_an_object_thrown_upward_starts_at_its_first_sighting() -> None:
    t, xy = _falling(vy=-2.0)
    verdict = judge_trajectory(t, xy, np.full(len(t), 0.3), CFG)
    assert origin_time(verdict, CFG.max_backtrack_s) == 0.0


def test_the_rest_after_landing_is_trimmed() -> None:
    _, xy = _falling(seconds=0.8)
    landed = np.vstack([xy, np.repeat(xy[-1:], 10, axis=0) + 0.01])
    assert trim_rest(landed) == len(xy)  # the landing point itself is kept


def test_a_second_track_on_the_same_fall_is_the_same_fall() -> None:
    path = FallPath(10.0, 11.0, (0.5, 5.0), (G / 2, 0.0, 3.0))
    x, y = path.at(10.6)
    assert same_fall(path, 10.6, x + 0.2, y - 0.3, within_s=0.6)
    assert not same_fall(path, 10.6, x + 4.0, y, within_s=0.6)
    assert not same_fall(path, 14.0, *path.at(11.0), within_s=0.6)


def test_association_prefers_established_tracks_and_flags_rivals() -> None:
    preds = np.array([[100.0, 100.0], [105.0, 100.0]])  # the new track is closer, the old one wins
    radii = np.array([10.0, 10.0])
    blobs = np.array([[103.0, 100.0, 6.0], [100.0, 108.0, 6.0]])
    pairs = associate(preds, radii, blobs, fragment_px=3.0, priority=np.array([0.5, 1.0]))
    assert pairs[0][:2] == (0, 0)
    assert pairs[0][2] is True  # the other blob, as big and not a fragment, was in the gate too


def test_phase_correlation_sizes_are_even_and_dft_friendly() -> None:
    for n in (135, 121, 180, 270, 97):
        m = even_dft_size(n)
        assert m % 2 == 0 and m <= n and cv2.getOptimalDFTSize(m) == m


def test_camera_shake_suppresses_frames_and_a_still_camera_does_not() -> None:
    scene = FacadeScene(width=480, height=270)
    gray = cv2.cvtColor(scene.base({}), cv2.COLOR_BGR2GRAY)
    monitor = ShakeMonitor(limit_px=0.7, settle_frames=2, reset_frames=50, refresh_frames=250)
    assert monitor.check(gray) == (False, False)
    assert monitor.check(gray.copy()) == (False, False)
    shifted = cv2.warpAffine(gray, np.array([[1, 0, 2.5], [0, 1, -1.5]], dtype=np.float32), (480, 270))
    assert monitor.check(shifted) == (True, False)
    assert math.hypot(*monitor.last_shift) == pytest.approx(math.hypot(2.5, 1.5), abs=0.3)


# --- quality on the synthetic set --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quality() -> list[ClipResult]:
    """Every clip of the synthetic set, analysed (about 20 s on two cores)."""
    specs = [{"kind": "throws", **c} for c in RECALL_CLIPS]
    specs += [{"kind": kind, "seed": 100 + i} for i, kind in enumerate(DISTRACTOR_KINDS)]
    results = run_set(specs)
    figures = score(results)
    ARTIFACTS.mkdir(exist_ok=True)
    report = {
        "throws": figures.throws,
        "recall": round(figures.recall, 3),
        "floor_exact": round(figures.floor_accuracy, 3),
        "false_alarms_in_throw_clips": figures.false_alarms - figures.distractor_false_alarms,
        "distractor_minutes": round(figures.distractor_hours * 60, 1),
        "distractor_fps": DISTRACTOR_FPS,
        "width": WIDTH,
        "false_alarms_per_hour": round(figures.false_alarms_per_hour, 2),
        "clips": {r.name: {"detections": len(r.detections), "stats": r.stats} for r in results},
    }
    (ARTIFACTS / "video-throw-quality.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return results


@pytest.mark.slow
def test_thrown_objects_are_detected(quality: list[ClipResult]) -> None:
    figures = score(quality)
    assert figures.throws == 48
    assert figures.recall >= 0.95


@pytest.mark.slow
def test_the_origin_floor_is_exactly_right(quality: list[ClipResult]) -> None:
    assert score(quality).floor_accuracy >= 0.90


@pytest.mark.slow
def test_distractors_raise_at_most_one_false_alarm_per_hour(quality: list[ClipResult]) -> None:
    figures = score(quality)
    assert figures.distractor_hours >= 15 / 60
    assert figures.false_alarms_per_hour <= 1.0


@pytest.mark.slow
def test_the_distractors_really_happened_and_were_set_aside(quality: list[ClipResult]) -> None:
    by_name = {r.name: r.stats for r in quality}
    assert by_name["shake"]["shaken_frames"] > 100
    assert by_name["rain"]["rainy_frames"] > 500
    assert by_name["insects"]["global_changes"] + by_name["insects"]["large_blobs"] > 50
    assert by_name["lights"]["large_blobs"] > 100
    assert sum(by_name["birds"]["rejected"].values()) > 20
    assert any("leaf" in reason for reason in by_name["leaves"]["rejected"])
