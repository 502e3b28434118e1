"""Thrown-object (高空抛物) detection on a camera looking up at a façade.

Per frame: crop to the façade region and downscale to about ``target_px_per_m``; phase-correlate
with a reference to catch camera shake (shaken frames are suppressed); MOG2 background
subtraction; connected components → blobs (rain streaks, near-lens blobs and global changes
set aside); blobs tracked across frames with a gravity-aware prediction. A finished track is
judged in façade metres (the calibration's homography): it must fall with an acceleration near
g on a smooth parabola with modest sideways drift. The origin, where the fall started, is traced
to a floor and column.

Every decision is a small pure function below the detector, so tests can call it directly.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from analytics.video.calibration import Facade
from analytics.video.frames import Image

log = logging.getLogger(__name__)

G = 9.81
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ThrowConfig:
    """Tunables of the thrown-object detector; distances in metres on the façade, times in seconds."""

    target_px_per_m: float = 10.0  # analysis resolution; the frame is downscaled by an integer factor towards it
    history_s: float = 20.0  # MOG2 memory: a window that stays lit becomes background within ~2 s
    var_threshold: float = 36.0
    min_blob_px: int = 2  # at analysis scale
    max_object_m: float = 1.5  # larger blobs are near-lens insects or people, not thrown objects
    streak_max_width_px: float = 3.0  # rain: streaks at most this wide (analysis px) ...
    streak_min_elongation: float = 4.0  # ... and this many times longer than wide
    rain_streaks: int = 8  # this many streaks in a frame make it a rainy frame
    max_fg_fraction: float = 0.15  # more foreground than this is a global change (lighting, lens, shake)
    max_blobs: int = 400  # beyond this the frame is noise: dropped and counted
    max_tracks: int = 64  # beyond this new tracks are dropped and counted
    shake_px: float = 0.7  # global shift (analysis px) that makes a frame shaken
    busy_share: float = 0.25  # pixels foreground this share of the recent past are busy (flicker): ignored
    busy_memory_s: float = 2.0
    shake_settle_s: float = 0.2  # frames suppressed after the last shaken one
    shake_reset_s: float = 2.0  # a shift that lasts this long is a moved camera: relearn the background
    reference_refresh_s: float = 10.0  # the still reference frame is refreshed this often
    max_gap_s: float = 0.28  # a track coasts this long without a blob before it is judged
    max_track_s: float = 6.0  # longer tracks are judged and dropped (nothing falls that long here)
    landed_m: float = 0.2  # a track that travelled and then stayed within this ...
    landed_s: float = 0.3  # ... for this long has landed: judge it now
    gate_m: float = 0.45  # association radius around the prediction, plus a share of the step
    new_track_speed_mps: float = 5.0  # how fast a blob seen once may move to its second sighting
    min_points: int = 6
    min_duration_s: float = 0.3
    min_coverage: float = 0.6  # share of the frames a track spans in which it must have been seen
    max_clutter: float = 0.25  # share of sightings with a rival blob in the gate above which a track is clutter
    fragment_m: float = 0.3  # blobs this close to the chosen one are fragments of it, not rivals
    min_drop_m: float = 0.6
    midair_min_drop_m: float = 1.2  # a track that ends in mid-air (not landed, not left the view) must drop this far
    ground_margin_m: float = 1.0  # ending this close above the façade's bottom edge counts as landed
    stationary_m: float = 0.35
    accel_min: float = 0.45 * G  # light objects fall slower than g (drag), nothing falls much faster
    accel_max: float = 1.6 * G
    max_lateral_ratio: float = 0.8  # sideways travel / drop
    max_lateral_speed_mps: float = 4.0
    # nothing pushes a falling object sideways much; a bird diving at a slant speeds up along its path. The
    # limit grows by two standard errors of the fitted sideways acceleration; tracks under ``flight_head_s``
    # are too short to tell.
    max_lateral_accel: float = 0.2 * G
    max_residual_m: float = 0.15  # RMS distance from the fitted parabola ...
    max_residual_share: float = 0.05  # ... or this share of the drop, whichever is larger
    max_outlier_share: float = 0.1  # points (noise blobs taken for a frame) that may be left out of the fit
    toss_speed_mps: float = 2.0  # a track sideways faster than this and more than it drops is a bird
    min_end_speed_mps: float = 2.5
    max_backtrack_s: float = 1.2  # the origin may be traced back this long before the first sighting
    duplicate_s: float = 0.6  # a fall seen again within this time at the same place is the same fall
    # Poor light: the sensor noise (grey levels, from frame differences) decides how much the analysed
    # frame is smoothed before background subtraction, so that an object 10-20 grey levels off a dim
    # wall still stands out of the noise. Daylight noise (about 1.5) is left alone.
    noise_every_s: float = 2.0  # how often the noise level is measured
    denoise_sigma: float = 2.5  # from this noise level on: a 3×3 median (speckle) and a 3×3 Gaussian
    strong_noise_sigma: float = 4.0  # from this level on: a 3×3 median and a 5×5 Gaussian
    noise_hysteresis: float = 0.3  # the level must pass a threshold by this much to change the smoothing
    # A flyer's path broken into pieces: a track picked up within ``turn_gap_s`` and ``turn_near_m`` of
    # where another ended is the same thing; a fall does not begin from fast level flight nor end in a climb.
    turn_gap_s: float = 0.5
    turn_near_m: float = 1.5  # plus what a bird covers in the gap at ``turn_speed_mps``
    turn_speed_mps: float = 8.0
    flight_speed_mps: float = 2.5  # sideways speed of level flight (a toss is slower)
    flight_head_s: float = 0.5  # a track whose first this-long is level flight is a bird diving out of it
    dive_start_mps: float = 2.0  # a bird diving out of level flight is at least this fast when its dive is picked up
    # A dim object's track breaks into pieces (dusk, night): pieces set aside that ended at most ``link_gap_s``
    # before a track began (or overlap it by ``link_overlap_s``) are joined to it when all fit one ballistic path.
    link_gap_s: float = 0.8
    link_overlap_s: float = 0.1
    link_min_points: int = 3
    max_pieces: int = 64  # pieces kept for joining (the newest)
    # A dim or tiny object vanishes against windows of its own brightness: a track seen in fewer than
    # ``min_coverage`` of its frames (flicker, usually) still counts when it was seen in ``sparse_min_coverage``
    # of them and ``sparse_min_points`` times (six sightings hopping through rain fit a parabola too), dropped at
    # least ``sparse_min_drop_m`` and fits its parabola within ``sparse_residual`` of the limit.
    sparse_min_coverage: float = 0.4
    sparse_min_points: int = 9
    sparse_min_drop_m: float = 1.5
    sparse_residual: float = 0.5
    # A floor-1 object falls about a metre in 0.4 s and is often seen only over its last half metre: a track
    # that then lay still on the ground for ``short_fall_rest_s`` may be this short and drop this little.
    short_fall_rest_s: float = 0.2
    short_fall_points: int = 5
    short_fall_s: float = 0.15  # five sightings at 25 fps
    short_fall_drop_m: float = 0.4
    touchdown_m: float = 0.3  # a track ending this close to the façade's bottom edge reached the ground
    lands_near_m: float = 0.5  # a fall lost on its way down lands this close to where it is then found lying


@dataclass(frozen=True)
class Verdict:
    """The judgement of one track: ``ok`` and the reason (rejections name the distractor they look like)."""

    ok: bool
    reason: str
    accel: float = 0.0
    drop_m: float = 0.0
    coef_y: tuple[float, float, float] = (0.0, 0.0, 0.0)  # y(t) = a t² + b t + c, metres, t from the first point
    coef_x: tuple[float, float] = (0.0, 0.0)  # x(t) = p t + q


@dataclass
class ThrowDetection:
    """One thrown object: when and where it started and the trajectory in image pixels."""

    t_ms: float  # time of the first trajectory point (stream time)
    trajectory: list[tuple[float, float, float]]  # (t_ms, x, y), image pixels of the full frame
    origin_xy: tuple[float, float]  # image pixels of the traced origin
    floor: int
    column: int
    accel: float
    frame: Image | None = field(default=None, repr=False)  # the frame used for the evidence image


@dataclass
class ThrowStats:
    """Counters of what the detector saw and set aside (drop-and-count, never block)."""

    frames: int = 0
    shaken_frames: int = 0
    camera_moved: int = 0
    global_changes: int = 0
    rainy_frames: int = 0
    streaks: int = 0
    large_blobs: int = 0
    busy_blobs: int = 0
    noisy_frames: int = 0
    dropped_tracks: int = 0
    tracks: int = 0
    joined: int = 0  # pieces of broken tracks joined to a later piece of the same fall
    duplicates: int = 0
    detections: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Judged:
    """One judged track, as kept in the detector's ``journal`` (quality evaluation): what became of it."""

    t0_s: float
    t1_s: float
    points: int
    start: tuple[float, float]  # façade metres
    end: tuple[float, float]
    outcome: str  # "thrown object", or the reason it was set aside


# --- pure decisions -------------------------------------------------------------------------------------------


def analysis_factor(px_per_m: float, target_px_per_m: float) -> int:
    """Integer downscale factor that keeps at least ``target_px_per_m`` pixels per metre (1 = full size)."""
    return max(1, math.floor(px_per_m / target_px_per_m))


def is_shaken(shift: tuple[float, float], limit_px: float) -> bool:
    """A global frame shift beyond the limit means the camera moved."""
    return math.hypot(shift[0], shift[1]) > limit_px


def even_dft_size(n: int) -> int:
    """The largest even size ≤ n that OpenCV's DFT takes without padding."""
    m = n - n % 2
    while m > 2 and cv2.getOptimalDFTSize(m) != m:
        m -= 2
    return max(m, 2)


def noise_sigma(gray: Image, previous: Image) -> float:
    """Sensor noise of a grey frame (grey levels): the robust spread of its difference from the previous one.

    The median absolute difference ignores the few pixels where something moved; the still scene's
    texture cancels out. 1.4826 × MAD / √2 is the standard deviation of one frame's Gaussian noise.
    """
    counts = np.bincount(cv2.absdiff(gray, previous).ravel(), minlength=1).astype(np.float64)
    cdf = np.cumsum(counts)
    half = cdf[-1] / 2
    k = int(np.searchsorted(cdf, half))  # the bin holding the median; interpolate within it
    below = cdf[k - 1] if k > 0 else 0.0
    mad = k - 0.5 + (half - below) / max(counts[k], 1.0) if k > 0 else half / max(counts[0], 1.0) * 0.5
    return max(0.0, mad) * 1.4826 / math.sqrt(2)


def smoothing_for(sigma: float, current: int, cfg: ThrowConfig) -> int:
    """The Gaussian kernel (0 = none, 3 or 5) to smooth frames with at this noise level, with hysteresis."""
    levels = ((cfg.strong_noise_sigma, 5), (cfg.denoise_sigma, 3))
    wanted = next((kernel for limit, kernel in levels if sigma >= limit), 0)
    if wanted == current:
        return current
    # change only when the level is clearly past the threshold between the two settings
    limit = cfg.strong_noise_sigma if 5 in (wanted, current) else cfg.denoise_sigma
    return wanted if abs(sigma - limit) >= cfg.noise_hysteresis or current < 0 else current


def clean_mask(mask: Image, noisy: bool, kernel: Image) -> Image:
    """Clear the isolated specks that sensor noise and compression leave in a foreground mask.

    A clean frame gets a 2×2 opening, which keeps a cigarette-sized object 2 pixels wide; a noisy
    (smoothed) frame gets a 3×3 median, which also clears the bigger specks smoothed noise leaves.
    """
    if noisy:
        return cv2.medianBlur(mask, 3)
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)


def is_global_change(foreground_fraction: float, limit: float) -> bool:
    """Too much of the frame changed at once: lighting, exposure, something on the lens."""
    return foreground_fraction > limit


def is_rainy(streak_count: int, limit: int) -> bool:
    """Many thin streaks in one frame: it is raining."""
    return streak_count >= limit


def streak_mask(
    width: NDArray[Any], height: NDArray[Any], area: NDArray[Any], max_width: float, min_elongation: float
) -> NDArray[np.bool_]:
    """Which blobs are thin streaks (rain): long for their width and at most ``max_width`` wide."""
    length = np.hypot(width.astype(np.float64), height.astype(np.float64))
    mean_width = area.astype(np.float64) / np.maximum(length, 1.0)
    return (mean_width <= max_width) & (length >= min_elongation * np.maximum(mean_width, 1.0))


def near_boxes(points: NDArray[Any], boxes: NDArray[Any], margin: float) -> NDArray[np.bool_]:
    """Which points lie inside any box (x, y, w, h) grown by ``margin`` of its size on every side."""
    if len(boxes) == 0 or len(points) == 0:
        return np.zeros(len(points), dtype=bool)
    x, y, w, h = (boxes[:, i].astype(np.float64)[None, :] for i in range(4))
    px, py = points[:, 0:1], points[:, 1:2]
    inside_x = (px >= x - margin * w) & (px <= x + w * (1 + margin))
    inside = inside_x & (py >= y - margin * h) & (py <= y + h * (1 + margin))
    return np.asarray(inside.any(axis=1))


def halo_mask(centroids: NDArray[Any], size: NDArray[Any], share: float = 0.35) -> NDArray[np.bool_]:
    """Which blobs are specks beside a much bigger blob (compression or noise halo, not objects of their own)."""
    n = len(size)
    if n < 2:
        return np.zeros(n, dtype=bool)
    small = np.nonzero(size < 6)[0]  # only specks can be halo; this keeps the pairwise test cheap in rain
    if len(small) == 0:
        return np.zeros(n, dtype=bool)
    dx = centroids[small, 0:1] - centroids[None, :, 0]
    dy = centroids[small, 1:2] - centroids[None, :, 1]
    near = np.hypot(dx, dy) <= size[None, :] * 1.2 + 2
    bigger = size[small, None] < share * size[None, :]
    out = np.zeros(n, dtype=bool)
    out[small] = np.any(near & bigger, axis=1)
    return out


def fit_parabola(t: FloatArray, y: FloatArray) -> tuple[tuple[float, float, float], float]:
    """Least-squares ``y = a t² + b t + c``: the coefficients and the RMS residual."""
    design = np.stack([t * t, t, np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    rms = float(np.sqrt(np.mean((design @ coef - y) ** 2)))
    return (float(coef[0]), float(coef[1]), float(coef[2])), rms


def fit_line(t: FloatArray, x: FloatArray) -> tuple[tuple[float, float], float]:
    """Least-squares ``x = p t + q``: the coefficients and the RMS residual."""
    design = np.stack([t, np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(design, x, rcond=None)
    rms = float(np.sqrt(np.mean((design @ coef - x) ** 2)))
    return (float(coef[0]), float(coef[1])), rms


def trim_rest(xy: FloatArray, still_m: float = 0.1, jitter_m: float = 0.3) -> int:
    """How many points to keep once the trailing points where the object lay still (landed) are cut off.

    The rest is the trailing run within ``jitter_m`` of the median of the last five points (a blob
    split on the ground's edge jitters that much, the track taking one half or the other, the whole
    blob or a half of it). The landing, kept, is the first point of that run within ``still_m``
    of the run's median, which is under the step of an object falling at 2.5 m/s at 25 fps. A track
    still moving at its end (its last four points going down by over ``still_m`` / 2 a step, or its
    last three off the median of its last five), or that never went anywhere, is left whole; a short
    fall (a floor-1 object drops about a metre) counts as having gone somewhere.
    """
    n = len(xy)
    if n < 3 or math.dist(xy[-1], xy[0]) <= 2 * still_m:
        return n
    if n >= 4 and bool(np.all(np.diff(xy[-4:, 1]) > still_m / 2)):
        return n  # still falling (three steps down: a split blob has only two levels below its top half)
    rest = np.median(xy[-5:], axis=0)
    if np.hypot(*(xy[-3:] - rest).T).max() >= jitter_m:
        return n  # still moving
    k = n - 1
    while k > 0 and math.dist(xy[k - 1], rest) < jitter_m:
        k -= 1
    rest = np.median(xy[k:], axis=0)
    off = np.hypot(xy[:, 0] - rest[0], xy[:, 1] - rest[1])
    while k < n - 1 and off[k] >= still_m:
        k += 1
    return k + 1


def has_landed(points: list[tuple[float, float, float]], still_px: float, still_ms: float) -> bool:
    """A track that travelled and has now stayed within ``still_px`` for ``still_ms``: the object has landed."""
    t_end, x_end, y_end = points[-1]
    if len(points) < 4 or math.dist((x_end, y_end), points[0][1:]) <= 4 * still_px:
        return False
    for t, x, y in reversed(points[:-1]):
        if math.dist((x, y), (x_end, y_end)) >= still_px:
            return False
        if t_end - t >= still_ms:
            return True
    return False


def judge_trajectory(
    t_s: FloatArray,
    xy_m: FloatArray,
    size_m: FloatArray,
    cfg: ThrowConfig,
    clutter: float = 0.0,
    fps: float | None = None,
    midair: bool = False,
    rested_s: float = 0.0,
    grounded: bool = False,
) -> Verdict:
    """Judge a track in façade metres (x right, y down), t in seconds from its first point: thrown object or not.

    ``clutter`` is the share of sightings where another blob competed for the track (rain, flicker);
    with ``fps`` the track must also have been seen in most of the frames it spans; ``midair`` says
    the track ended above the ground inside the view (a falling object lands or leaves the view, a
    leaf's accelerating flutter just stops), which then needs a longer drop. ``rested_s`` is how long
    the object was then seen lying on the ground where it ended, ``grounded`` whether it ended on the
    ground: a short fall that reached the ground may be seen for less time, and one seen lying there
    may drop less.
    """
    n = len(t_s)
    duration = float(t_s[-1] - t_s[0])
    landed = rested_s >= cfg.short_fall_rest_s
    min_points, min_duration = (
        (cfg.short_fall_points, cfg.short_fall_s) if landed or grounded else (cfg.min_points, cfg.min_duration_s)
    )
    if n < min_points or duration < min_duration:
        return Verdict(False, "too short")
    if clutter > cfg.max_clutter:
        return Verdict(False, "followed through clutter (rain or flicker)")
    frames = duration * fps + 1 if fps else 0.0
    sparse = n < cfg.min_coverage * frames
    if n < cfg.sparse_min_coverage * frames or (sparse and n < cfg.sparse_min_points):
        return Verdict(False, "seen in too few frames (flicker)")
    if float(np.median(size_m)) > cfg.max_object_m:
        return Verdict(False, "too large (insect near the lens)")
    x, y = xy_m[:, 0], xy_m[:, 1]
    extent = float(np.max(np.hypot(x - x[0], y - y[0])))
    if extent < cfg.stationary_m:
        return Verdict(False, "stationary (window light)")
    drop = float(y[-1] - y[0])
    sideways = abs(float(x[-1] - x[0]))
    if drop < 0 and abs(drop) >= sideways:
        return Verdict(False, "moves upward (bird)", drop_m=drop)
    if sideways > cfg.max_lateral_ratio * max(drop, 0.0) and sideways > cfg.toss_speed_mps * duration:
        return Verdict(False, "moves sideways (bird)", drop_m=drop)
    if drop < (cfg.short_fall_drop_m if landed else cfg.min_drop_m):
        return Verdict(False, "drops too little", drop_m=drop)
    if midair and drop < cfg.midair_min_drop_m:
        return Verdict(False, "stops in mid-air after a short drop (leaf)", drop_m=drop)
    t = t_s - t_s[0]
    limit = max(cfg.max_residual_m, cfg.max_residual_share * drop)
    inliers = without_outliers(t, xy_m, limit, cfg.max_outlier_share)
    t, x, y = t[inliers], x[inliers], y[inliers]
    coef_y, rms_y = fit_parabola(t, y)
    coef_x, rms_x = fit_line(t, x)
    accel = 2 * coef_y[0]

    def verdict(ok: bool, reason: str) -> Verdict:
        return Verdict(ok, reason, accel=accel, drop_m=drop, coef_y=coef_y, coef_x=coef_x)

    if rms_y > limit:
        return verdict(False, "erratic fall (bird or insect)")
    if rms_x > limit:
        return verdict(False, "erratic sideways motion (leaf or bird)")
    if sparse and (drop < cfg.sparse_min_drop_m or max(rms_x, rms_y) > cfg.sparse_residual * limit):
        return verdict(False, "seen in too few frames (flicker)")
    if abs(coef_x[0]) > cfg.max_lateral_speed_mps:
        return verdict(False, "fast sideways motion (bird)")
    sideways, error = lateral_accel(t, x)
    if t[-1] >= cfg.flight_head_s and abs(sideways) > cfg.max_lateral_accel + 2 * error:
        return verdict(False, "swerves sideways (bird)")
    head = int(np.searchsorted(t, cfg.flight_head_s, side="right")) - 1
    start = Segment(0.0, float(t[head]), (float(x[0]), float(y[0])), (float(x[head]), float(y[head])))
    if is_level_flight(start, cfg):
        return verdict(False, "dives out of level flight (bird)")
    if accel < cfg.accel_min:
        return verdict(False, "no gravity acceleration (leaf, rain or gliding bird)")
    if accel > cfg.accel_max + 2 * accel_error(t, rms_y):
        return verdict(False, "accelerates faster than gravity")  # beyond two standard errors (short tracks)
    end_speed = 2 * coef_y[0] * t[-1] + coef_y[1]
    if end_speed < cfg.min_end_speed_mps:
        return verdict(False, "falls too slowly (leaf)")
    return verdict(True, "falls with gravity")


def without_outliers(t: FloatArray, xy_m: FloatArray, limit_m: float, share: float) -> NDArray[np.bool_]:
    """Which points to fit: all, or all but the few (at most ``share``) farthest from the ballistic fit.

    In noise a track now and then takes a noise blob beside the object for a frame. When the fit
    misses its limit, the points more than twice the limit from it, worst first, are left out.
    """
    keep = np.ones(len(t), dtype=bool)
    if len(t) < 10:
        return keep
    (a, b, c), _ = fit_parabola(t, xy_m[:, 1])
    (p, q), _ = fit_line(t, xy_m[:, 0])
    miss = np.hypot(xy_m[:, 1] - (a * t * t + b * t + c), xy_m[:, 0] - (p * t + q))
    if float(np.sqrt(np.mean(miss**2))) <= limit_m:
        return keep
    worst = np.argsort(miss)[::-1][: int(share * len(t))]
    keep[worst[miss[worst] > 2 * limit_m]] = False
    return keep


def lateral_accel(t: FloatArray, x: FloatArray) -> tuple[float, float]:
    """Sideways acceleration of a track (m/s², from a parabola fitted to x(t)) and its standard error.

    The error of a quadratic coefficient over n evenly spread points spanning T seconds is about
    √(180 / n) σ / T², with σ the fit's residual; the acceleration is twice the coefficient.
    """
    (a, _, _), rms = fit_parabola(t, x)
    return 2 * a, accel_error(t, rms)


def accel_error(t: FloatArray, rms: float) -> float:
    """Standard error of an acceleration fitted over times ``t`` (s) with residual ``rms`` (m): √(180 / n) 2σ / T²."""
    span = max(float(t[-1] - t[0]), 1e-3)
    return 2 * math.sqrt(180 / len(t)) * rms / span**2


def ballistic_rms(t_s: FloatArray, xy_m: FloatArray) -> float:
    """RMS distance (metres) of a track's points from the one ballistic path that fits them best.

    The path falls on a parabola and drifts sideways on a line, as ``judge_trajectory`` fits it.
    """
    t = t_s - t_s[0]
    _, rms_y = fit_parabola(t, xy_m[:, 1])
    _, rms_x = fit_line(t, xy_m[:, 0])
    return math.hypot(rms_x, rms_y)


def fall_part(t_s: FloatArray, xy_m: FloatArray, gap_s: float) -> tuple[int, bool]:
    """How many points of a track are its fall, and whether the object was found lying only after a gap.

    The rest after landing is cut (``trim_rest``). When the first resting point came more than
    ``gap_s`` after the point before it, the object was lost on its way down (a dark object over a
    dark wall) and found lying on the ground later: that point is when it was seen, not when it
    landed, and is cut too. Only a joined track has such a gap (a track ends after ``gap_s`` unseen).
    """
    keep = trim_rest(xy_m)
    if 2 <= keep < len(t_s) and t_s[keep - 1] - t_s[keep - 2] > gap_s:
        return keep - 1, True
    return keep, False


def lands_where_it_lies(
    coef_x: tuple[float, float], coef_y: tuple[float, float, float], found_s: float, lying: FloatArray, near_m: float
) -> bool:
    """Whether a fall's path (t in seconds from its first point) reaches where the object was then found lying.

    It must reach that height before the object was found there (``found_s``, plus a frame or two)
    and within ``near_m`` sideways of it.
    """
    a, b, c = coef_y
    disc = b * b - 4 * a * (c - float(lying[1]))
    if a <= 0 or disc < 0:
        return False
    t = (-b + math.sqrt(disc)) / (2 * a)
    return t <= found_s + 0.1 and abs(coef_x[0] * t + coef_x[1] - float(lying[0])) <= near_m


def fits_one_fall(t_s: FloatArray, xy_m: FloatArray, cfg: ThrowConfig) -> float | None:
    """Whether pieces joined into one track (times and façade metres, in order) fit one ballistic path.

    The trailing rest (a landed object) is left out. Returns the RMS distance from the path when it
    is within the judge's residual limit for that drop and the joined track goes down, else None.
    When the object was found lying only after a gap (``fall_part``), the path must reach it there.
    """
    keep, late = fall_part(t_s, xy_m, cfg.max_gap_s)
    lying = np.median(xy_m[keep:], axis=0) if late else xy_m[-1]
    found_s = float(t_s[min(keep, len(t_s) - 1)] - t_s[0])
    t_s, xy_m = t_s[:keep], xy_m[:keep]
    if len(t_s) < 4:
        return None
    drop = float(xy_m[-1, 1] - xy_m[0, 1])
    if drop <= 0:
        return None
    rms = ballistic_rms(t_s, xy_m)
    if rms > max(cfg.max_residual_m, cfg.max_residual_share * drop):
        return None
    if late:
        t = t_s - t_s[0]
        coef_y, _ = fit_parabola(t, xy_m[:, 1])
        coef_x, _ = fit_line(t, xy_m[:, 0])
        if not lands_where_it_lies(coef_x, coef_y, found_s, lying, cfg.lands_near_m):
            return None
    return rms


def origin_time(verdict: Verdict, max_backtrack_s: float) -> float:
    """When the fall started, in seconds from the first point: the parabola's apex, at most ``max_backtrack_s`` back."""
    a, b, _ = verdict.coef_y
    if a <= 0 or b <= 0:
        return 0.0  # seen from the start (or thrown upward first): the first point is where it left the window
    apex = -b / (2 * a)
    return max(apex, -max_backtrack_s)  # hidden longer: as far back as allowed, not the first sighting


@dataclass(frozen=True)
class FallPath:
    """A reported fall: its fitted parabola (metres, t in seconds after ``t0_s``) and when it was seen."""

    t0_s: float
    t_end_s: float
    coef_x: tuple[float, float]
    coef_y: tuple[float, float, float]

    def at(self, t_s: float) -> tuple[float, float]:
        """Where the fitted path puts the object at stream time t_s."""
        t = t_s - self.t0_s
        a, b, c = self.coef_y
        return self.coef_x[0] * t + self.coef_x[1], a * t * t + b * t + c


def same_fall(earlier: FallPath, t_s: float, x_m: float, y_m: float, within_s: float, near_m: float = 1.0) -> bool:
    """Whether a track first seen at (t_s, x_m, y_m) is the same object as an already reported fall.

    Two tracks may follow one object side by side (a split blob) or one after the other (a lost
    track picked up again): either way the new start lies on, or just after, the reported path.
    """
    if not earlier.t0_s - within_s <= t_s <= earlier.t_end_s + within_s:
        return False
    px, py = earlier.at(min(t_s, earlier.t_end_s + within_s))
    return math.hypot(px - x_m, py - y_m) <= near_m


@dataclass(frozen=True)
class Segment:
    """A track summarised in façade metres: when and where it started and ended."""

    t0_s: float
    t1_s: float
    start: tuple[float, float]
    end: tuple[float, float]

    @property
    def moved(self) -> tuple[float, float]:
        """Displacement (x right, y down), metres."""
        return self.end[0] - self.start[0], self.end[1] - self.start[1]


def follows(first: Segment, then: Segment, cfg: ThrowConfig) -> bool:
    """Whether ``then`` was picked up shortly after ``first`` ended, where it ended: one thing's path in two tracks."""
    gap = then.t0_s - first.t1_s
    near = cfg.turn_near_m + cfg.turn_speed_mps * max(gap, 0.0)
    return -0.05 <= gap <= cfg.turn_gap_s and math.dist(first.end, then.start) <= near


def is_level_flight(segment: Segment, cfg: ThrowConfig) -> bool:
    """Fast, mostly sideways motion followed for a while: a bird flying, not an object leaving a window.

    A shorter piece (under ``min_duration_s``) is as likely a fragment of smoothed noise at dusk.
    """
    dx, dy = segment.moved
    duration = segment.t1_s - segment.t0_s
    if duration < cfg.min_duration_s:
        return False
    return abs(dx) >= cfg.flight_speed_mps * duration and abs(dx) > abs(dy)


def is_climb_or_turn(segment: Segment, cfg: ThrowConfig) -> bool:
    """After a fall: moving up or mostly sideways (a bird pulling up), not lying still or still falling."""
    dx, dy = segment.moved
    return math.hypot(dx, dy) >= cfg.stationary_m and dy < abs(dx)


def flight_around(
    track: Segment, others: list[Segment], ended_midair: bool, cfg: ThrowConfig, start_speed: float = math.inf
) -> str | None:
    """Why a gravity-like track is part of a bird's flight, or None.

    It was picked up where fast level flight ended, already moving at ``start_speed`` (m/s, from its
    fit) of at least ``dive_start_mps`` (a bird starting a dive keeps its speed; an object leaves its
    window slower, even when a bird happens to fly past it), or it ended in mid-air where a climbing
    or turning track began (a bird pulling up, a pigeon opening its wings).
    """
    for other in others:
        if start_speed >= cfg.dive_start_mps and follows(other, track, cfg) and is_level_flight(other, cfg):
            return "dives out of level flight (bird)"
        if ended_midair and follows(track, other, cfg) and is_climb_or_turn(other, cfg):
            return "pulls up in mid-air (bird)"
    return None


# --- tracking ------------------------------------------------------------------------------------------------


class Track:
    """One blob followed across frames (full-frame pixels, stream milliseconds)."""

    __slots__ = ("contested", "id", "points", "sizes")

    def __init__(self, track_id: int, t_ms: float, x: float, y: float, size: float) -> None:
        self.id = track_id
        self.points: list[tuple[float, float, float]] = [(t_ms, x, y)]
        self.sizes: list[float] = [size]
        self.contested: list[bool] = [False]  # per sighting: a rival blob was in the gate too

    @property
    def last_t(self) -> float:
        """Time of the last sighting."""
        return self.points[-1][0]

    def predict(self, t_ms: float, g_px_per_s2: float) -> tuple[float, float, float]:
        """Expected position at t_ms and the length of the expected step (pixels)."""
        t1, x1, y1 = self.points[-1]
        dt = (t_ms - t1) / 1000
        if len(self.points) == 1:
            return x1, y1, 0.0
        t0, x0, y0 = self.points[-2]
        span = max((t1 - t0) / 1000, 1e-3)
        vx, vy = (x1 - x0) / span, (y1 - y0) / span + g_px_per_s2 * span / 2
        px, py = x1 + vx * dt, y1 + vy * dt + g_px_per_s2 * dt * dt / 2
        return px, py, math.hypot(px - x1, py - y1)

    def add(self, t_ms: float, x: float, y: float, size: float) -> None:
        """Append a sighting."""
        self.points.append((t_ms, x, y))
        self.sizes.append(size)


def associate(
    predictions: FloatArray,
    radii: FloatArray,
    blobs: FloatArray,
    fragment_px: float,
    priority: FloatArray | None = None,
) -> list[tuple[int, int, bool]]:
    """Greedy nearest assignment of blobs (rows x, y, size) to tracks within each track's gate.

    Pairs are taken in order of distance / gate radius, scaled by the track's ``priority`` (lower
    first: established tracks keep their object against tracks just started beside it). Returns
    (track index, blob index, contested) triples; contested when another blob at least half the
    chosen one's size, and not a fragment of it (farther than ``fragment_px``), was in the gate too.
    """
    blobs_xy = blobs[:, :2]
    if len(predictions) == 0 or len(blobs_xy) == 0:
        return []
    dist = np.hypot(
        predictions[:, 0:1] - blobs_xy[None, :, 0],
        predictions[:, 1:2] - blobs_xy[None, :, 1],
    )
    inside = dist <= radii[:, None]
    ti, bi = np.nonzero(inside)
    if len(ti) == 0:
        return []
    score = dist[ti, bi] / radii[ti]
    if priority is not None:
        score = score * priority[ti]
    order = np.argsort(score, kind="stable")
    used_t: set[int] = set()
    used_b: set[int] = set()
    pairs: list[tuple[int, int, bool]] = []
    for k in order:
        t, b = int(ti[k]), int(bi[k])
        if t in used_t or b in used_b:
            continue
        used_t.add(t)
        used_b.add(b)
        rivals = np.nonzero(inside[t])[0]
        contested = False
        if len(rivals) > 1:
            gaps = np.hypot(blobs_xy[rivals, 0] - blobs_xy[b, 0], blobs_xy[rivals, 1] - blobs_xy[b, 1])
            contested = bool(np.any((gaps > fragment_px) & (blobs[rivals, 2] >= 0.5 * blobs[b, 2])))
        pairs.append((t, b, contested))
    return pairs


class ShakeMonitor:
    """Global camera motion by phase correlation against a still reference frame."""

    def __init__(self, limit_px: float, settle_frames: int, reset_frames: int, refresh_frames: int) -> None:
        self.limit_px = limit_px
        self.settle_frames = settle_frames
        self.reset_frames = reset_frames
        self.refresh_frames = refresh_frames
        self.reference: Image | None = None
        self.window: Image | None = None
        self.scale = 1.0
        self._since_shaken = 10**9
        self._shaken_run = 0
        self._still_run = 0
        self.last_shift = (0.0, 0.0)

    def check(self, gray: Image) -> tuple[bool, bool]:
        """Return (suppress this frame, the camera has moved for good and the background must be relearnt)."""
        small = gray
        self.scale = 1.0
        while small.shape[1] > 360:
            small = cv2.resize(small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA)
            self.scale *= 2
        # phaseCorrelate's estimate is half a pixel off when its DFT size is odd: use an even, DFT-friendly crop.
        small = small[: even_dft_size(small.shape[0]), : even_dft_size(small.shape[1])]
        if self.window is None or self.window.shape != small.shape:
            self.window = cv2.createHanningWindow((small.shape[1], small.shape[0]), cv2.CV_32F)
            self.reference = None
        # Window the frames ourselves: OpenCV 5's phaseCorrelate multiplies a given window into its inputs in
        # place, which would slowly erase the reference frame.
        current = cv2.multiply(small, self.window, dtype=cv2.CV_32F)
        if self.reference is None:
            self.reference = current
            return False, False
        (dx, dy), _ = cv2.phaseCorrelate(self.reference, current)
        shift = (dx * self.scale, dy * self.scale)
        self.last_shift = shift
        if is_shaken(shift, self.limit_px):
            self._since_shaken = 0
            self._shaken_run += 1
            self._still_run = 0
            if self._shaken_run >= self.reset_frames:
                self.reference = current
                self._shaken_run = 0
                return True, True
            return True, False
        self._shaken_run = 0
        self._since_shaken += 1
        self._still_run += 1
        if self._still_run % self.refresh_frames == 0:
            self.reference = current
        return self._since_shaken <= self.settle_frames, False


# --- the detector ---------------------------------------------------------------------------------------------


class ThrowDetector:
    """Feed frames in order with their stream time; get thrown-object detections back."""

    def __init__(
        self,
        facade: Facade,
        frame_size: tuple[int, int],
        fps: float,
        config: ThrowConfig | None = None,
    ) -> None:
        self.cfg = config or ThrowConfig()
        self.facade = facade
        self.fps = fps if fps > 0 else 25.0
        width, height = frame_size
        self.factor = analysis_factor(facade.px_per_m, self.cfg.target_px_per_m)
        self.roi = facade.roi(width, height, align=self.factor)
        x0, y0, x1, y1 = self.roi
        self.analysis_size = ((x1 - x0) // self.factor, (y1 - y0) // self.factor)
        self.px_per_m = facade.px_per_m  # full-frame pixels per metre (façade average)
        self.g_px = G * self.px_per_m
        self.max_blob_px = self.cfg.max_object_m * self.px_per_m / self.factor
        self.mog = cv2.createBackgroundSubtractorMOG2(
            history=max(50, int(self.cfg.history_s * self.fps)),
            varThreshold=self.cfg.var_threshold,
            detectShadows=False,
        )
        frames = self._frames
        self.shake = ShakeMonitor(
            limit_px=self.cfg.shake_px,
            settle_frames=frames(self.cfg.shake_settle_s),
            reset_frames=frames(self.cfg.shake_reset_s),
            refresh_frames=frames(self.cfg.reference_refresh_s),
        )
        self.tracks: list[Track] = []
        self._next_id = 1
        self._recent: list[FallPath] = []  # falls reported in the last few seconds
        self.stats = ThrowStats()
        width_a, height_a = self.analysis_size
        self.activity = np.zeros((height_a, width_a), dtype=np.float32)  # recent foreground share × 255
        self.noise = 0.0  # the last measured sensor noise (grey levels)
        self.smoothing = -1  # Gaussian kernel before background subtraction (0 none); -1 until measured
        self._noise_frames = frames(self.cfg.noise_every_s)
        self._previous_gray: Image | None = None
        self._open_kernel = np.ones((2, 2), dtype=np.uint8)
        self._finished: list[Segment] = []  # tracks finished in the last moments (a bird's earlier path)
        self._done: list[Track] = []
        self._held: list[Track] = []  # falls that vanished in mid-air, waiting to see what comes next
        self._pieces: list[Track] = []  # tracks set aside lately: maybe the start of a fall whose track broke
        self._now_ms = 0.0
        self.journal: list[Judged] | None = None  # set to a list to keep every judgement (quality evaluation)
        self.activity_rate = 1.0 / max(1.0, self.cfg.busy_memory_s * self.fps)

    def _frames(self, seconds: float) -> int:
        return max(1, round(seconds * self.fps))

    def process(self, frame: Image, t_ms: float) -> list[ThrowDetection]:
        """Analyse one frame taken at stream time t_ms (milliseconds); returns falls judged on this frame."""
        self.stats.frames += 1
        x0, y0, x1, y1 = self.roi
        small = cv2.resize(frame[y0:y1, x0:x1], self.analysis_size, interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        self._measure_noise(gray)
        if self.smoothing > 0:  # poor light: speckle out, then the Gaussian noise down
            small = cv2.GaussianBlur(cv2.medianBlur(small, 3), (self.smoothing, self.smoothing), 0)
        suppress, moved = self.shake.check(gray)
        if moved:
            self.stats.camera_moved += 1
            log.info("camera moved by %.1f px: background relearnt", math.hypot(*self.shake.last_shift))
            self.mog.apply(small, learningRate=1.0)
            self.tracks.clear()
            return []
        if suppress:
            self.stats.shaken_frames += 1
            return self._finish_stale(t_ms, frame)
        mask = clean_mask(self.mog.apply(small), self.smoothing > 0, self._open_kernel)
        blobs = self._blobs(mask)
        if blobs is None:
            return self._finish_stale(t_ms, frame)
        self._track(t_ms, blobs)
        return self._finish_stale(t_ms, frame)

    def flush(self, frame: Image | None = None) -> list[ThrowDetection]:
        """Judge every open track (end of the stream)."""
        done, self.tracks, self._held = self.tracks + self._held, [], []
        return self._judge_all(done, frame, final=True)

    # -- steps ---------------------------------------------------------------------------------------------

    def _measure_noise(self, gray: Image) -> None:
        """Every ``noise_every_s`` (and on the second frame) measure the noise and pick the smoothing."""
        previous, self._previous_gray = self._previous_gray, gray
        if previous is None or not (self.smoothing < 0 or self.stats.frames % self._noise_frames == 0):
            return
        self.noise = noise_sigma(gray, previous)
        smoothing = smoothing_for(self.noise, self.smoothing, self.cfg)
        if smoothing != self.smoothing:
            log.info("sensor noise %.1f grey levels: smoothing %d", self.noise, smoothing)
            self.smoothing = smoothing

    def _blobs(self, mask: Image) -> FloatArray | None:
        """Foreground blobs as rows (x, y, size) in full-frame pixels; None when the frame must be skipped."""
        cfg = self.cfg
        cv2.accumulateWeighted(mask, self.activity, self.activity_rate)
        foreground = cv2.countNonZero(mask)
        if is_global_change(foreground / mask.size, cfg.max_fg_fraction):
            self.stats.global_changes += 1
            return None
        if foreground < cfg.min_blob_px:
            return np.empty((0, 3))
        count, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if count - 1 > cfg.max_blobs:
            self.stats.noisy_frames += 1
            return None
        stats, centroids = stats[1:], centroids[1:]
        area = stats[:, cv2.CC_STAT_AREA]
        keep = area >= cfg.min_blob_px
        stats, centroids, area = stats[keep], centroids[keep], area[keep]
        w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        keep = np.ones(len(area), dtype=bool)
        # size as the diameter of a disc of the blob's foreground area: a compression halo of speckles
        # around a small object widens its box, not its area
        size = 2 * np.sqrt(area / math.pi)
        large = size > self.max_blob_px
        if large.any():
            self.stats.large_blobs += int(large.sum())
            keep &= ~near_boxes(centroids, stats[large, :4], margin=0.25)
        streaks = streak_mask(w, h, area, cfg.streak_max_width_px, cfg.streak_min_elongation)
        n_streaks = int(streaks.sum())
        self.stats.streaks += n_streaks
        if is_rainy(n_streaks, cfg.rain_streaks):
            self.stats.rainy_frames += 1
            keep &= ~streaks
        keep &= ~halo_mask(centroids, size)
        cx = np.clip(centroids[:, 0].astype(np.intp), 0, mask.shape[1] - 1)
        cy = np.clip(centroids[:, 1].astype(np.intp), 0, mask.shape[0] - 1)
        busy = self.activity[cy, cx] > cfg.busy_share * 255
        self.stats.busy_blobs += int((busy & keep).sum())
        keep &= ~busy
        f = self.factor
        out = np.empty((int(keep.sum()), 3))
        out[:, 0] = centroids[keep, 0] * f + self.roi[0]
        out[:, 1] = centroids[keep, 1] * f + self.roi[1]
        out[:, 2] = size[keep] * f
        return out

    def _track(self, t_ms: float, blobs: FloatArray) -> None:
        if len(blobs) == 0:
            return
        tracks = self.tracks
        gate = self.cfg.gate_m * self.px_per_m
        preds = np.empty((len(tracks), 2))
        radii = np.empty(len(tracks))
        for i, track in enumerate(tracks):
            px, py, step = track.predict(t_ms, self.g_px)
            preds[i] = (px, py)
            if len(track.points) == 1:
                dt = (t_ms - track.last_t) / 1000
                radii[i] = gate + self.cfg.new_track_speed_mps * self.px_per_m * dt
            else:
                radii[i] = gate + 0.35 * step
        taken = np.zeros(len(blobs), dtype=bool)
        priority = np.array([0.5 if len(tr.points) >= 3 else 1.0 for tr in tracks])
        for ti, bi, contested in associate(preds, radii, blobs, self.cfg.fragment_m * self.px_per_m, priority):
            track = tracks[ti]
            track.add(t_ms, float(blobs[bi, 0]), float(blobs[bi, 1]), float(blobs[bi, 2]))
            track.contested.append(contested)
            taken[bi] = True
        free = np.nonzero(~taken)[0]
        room = max(0, self.cfg.max_tracks - len(tracks))
        if len(free) > room:
            self.stats.dropped_tracks += len(free) - room
        for bi in free[:room]:
            tracks.append(Track(self._next_id, t_ms, float(blobs[bi, 0]), float(blobs[bi, 1]), float(blobs[bi, 2])))
            self._next_id += 1
            self.stats.tracks += 1

    def _finish_stale(self, t_ms: float, frame: Image) -> list[ThrowDetection]:
        gap_ms = self.cfg.max_gap_s * 1000
        long_ms = self.cfg.max_track_s * 1000
        still_px = self.cfg.landed_m * self.px_per_m
        still_ms = self.cfg.landed_s * 1000
        self._now_ms = t_ms
        found: list[ThrowDetection] = []
        hold_ms = (self.cfg.turn_gap_s + 0.3) * 1000
        released = [tr for tr in self._held if t_ms - tr.last_t >= hold_ms]
        if released:
            self._held = [tr for tr in self._held if t_ms - tr.last_t < hold_ms]
            found += self._judge_all(released, frame, final=True)
        done = [
            tr
            for tr in self.tracks
            if t_ms - tr.last_t > gap_ms
            or tr.last_t - tr.points[0][0] > long_ms
            or has_landed(tr.points, still_px, still_ms)
        ]
        if not done:
            return found
        ids = {tr.id for tr in done}
        self.tracks = [tr for tr in self.tracks if tr.id not in ids]
        return found + self._judge_all(done, frame)

    def _segment(self, track: Track) -> Segment:
        ends = self.facade.to_metres(np.array([track.points[0][1:], track.points[-1][1:]]))
        start, end = (float(ends[0, 0]), float(ends[0, 1])), (float(ends[1, 0]), float(ends[1, 1]))
        return Segment(track.points[0][0] / 1000, track.last_t / 1000, start, end)

    def _neighbours(self, track: Track, done: list[Track]) -> list[Segment]:
        """Segments of the other tracks: live ones, those judged with it, and those finished just before."""
        live = [self._segment(tr) for tr in (*self.tracks, *done) if tr is not track and len(tr.points) >= 3]
        return live + self._finished

    def _judge_all(self, done: list[Track], frame: Image | None, final: bool = False) -> list[ThrowDetection]:
        found: list[ThrowDetection] = []
        self._done = done
        now = max(tr.last_t for tr in done) / 1000 if done else 0.0
        self._finished = [s for s in self._finished if now - s.t1_s <= self.cfg.max_track_s]
        self._finished += [self._segment(tr) for tr in done if len(tr.points) >= 3]
        horizon_ms = (self.cfg.max_track_s + self.cfg.link_gap_s) * 1000
        self._pieces = [p for p in self._pieces if now * 1000 - p.last_t <= horizon_ms][-self.cfg.max_pieces :]
        for track in sorted(done, key=lambda tr: tr.points[0][0]):
            if len(track.points) < self.cfg.link_min_points:
                self._reject(track, "too short")
                continue
            detection = self._judge(track, frame, final)
            if detection is not None:
                found.append(detection)
        return found

    def _reject(self, track: Track, reason: str) -> None:
        self.stats.rejected[reason] += 1
        self._note(track, reason)
        if len(track.points) >= self.cfg.link_min_points:
            self._pieces.append(track)

    def _link(self, track: Track) -> tuple[Track, list[Track]]:
        """The track with the pieces of the same fall that broke off before it, and those pieces.

        Going back from the track's start, the piece set aside lately (or held: it vanished in mid-air)
        that ended just before it (or overlaps it a little) and fits one ballistic path with it best is
        joined, then the next.
        """
        cfg = self.cfg
        chain, used = track, list[Track]()
        while True:
            t0 = chain.points[0][0]
            best: tuple[float, Track, int] | None = None
            for piece in (*self._pieces, *self._held):
                if any(piece is u for u in used) or piece.points[0][0] >= t0:
                    continue
                if not t0 - cfg.link_gap_s * 1000 <= piece.last_t <= t0 + cfg.link_overlap_s * 1000:
                    continue
                head = sum(1 for p in piece.points if p[0] < t0)  # its points before the track began
                if head < cfg.link_min_points:
                    continue
                pts = np.asarray(piece.points[:head] + chain.points, dtype=np.float64)
                rms = fits_one_fall((pts[:, 0] - pts[0, 0]) / 1000, self.facade.to_metres(pts[:, 1:3]), cfg)
                if rms is not None and (best is None or rms < best[0]):
                    best = (rms, piece, head)
            if best is None:
                break
            _, piece, head = best
            joined = Track(chain.id, *piece.points[0], piece.sizes[0])
            joined.points = piece.points[:head] + chain.points
            joined.sizes = piece.sizes[:head] + chain.sizes
            joined.contested = piece.contested[:head] + chain.contested
            chain = joined
            used.append(piece)
        return chain, used

    def _note(self, track: Track, outcome: str) -> None:
        if self.journal is not None:
            s = self._segment(track)
            self.journal.append(Judged(s.t0_s, s.t1_s, len(track.points), s.start, s.end, outcome))

    def _ended_midair(self, x_px: float, y_px: float, y_m: float) -> bool:
        """Whether a track's last point is above the ground and well inside the analysed region."""
        if y_m >= self.facade.height_m - self.cfg.ground_margin_m:
            return False  # landed
        x0, _, x1, y1 = self.roi
        edge = self.cfg.gate_m * 2 * self.px_per_m  # the next step would have left the view
        return x0 + edge < x_px < x1 - edge and y_px < y1 - edge

    def _verdict(self, track: Track) -> tuple[Verdict, FloatArray, FloatArray]:
        """The judgement of a track, with its points (t_ms, x, y) and façade metres, the rest after landing cut."""
        pts = np.asarray(track.points, dtype=np.float64)
        t_s = (pts[:, 0] - pts[0, 0]) / 1000
        xy_m = self.facade.to_metres(pts[:, 1:3])
        keep, late = fall_part(t_s, xy_m, self.cfg.max_gap_s)
        grounded = bool(xy_m[-1, 1] >= self.facade.height_m - self.cfg.touchdown_m)
        lying = np.median(xy_m[keep:], axis=0) if late else xy_m[-1]
        found_s = float(t_s[min(keep, len(t_s) - 1)])
        rested_s = float(pts[-1, 0] - pts[keep if late else keep - 1, 0]) / 1000 if grounded else 0.0
        pts, t_s, xy_m = pts[:keep], t_s[:keep], xy_m[:keep]
        size_m = np.asarray(track.sizes[:keep]) / self.px_per_m
        verdict = judge_trajectory(
            t_s,
            xy_m,
            size_m,
            self.cfg,
            clutter=sum(track.contested[:keep]) / keep,  # while it fell: an object lying in a split blob is no clutter
            fps=self.fps,
            midair=not late and self._ended_midair(pts[-1, 1], pts[-1, 2], xy_m[-1, 1]),
            rested_s=rested_s,
            grounded=grounded,
        )
        if (
            late
            and verdict.ok
            and not lands_where_it_lies(verdict.coef_x, verdict.coef_y, found_s, lying, self.cfg.lands_near_m)
        ):
            verdict = Verdict(False, "does not land where it was found lying", verdict.accel, verdict.drop_m)
        return verdict, pts, xy_m

    def _judge(self, track: Track, frame: Image | None, final: bool = True) -> ThrowDetection | None:
        """Judge a finished track, joined to the earlier pieces of its fall when together they fall like an
        object; one that fell like an object but vanished in mid-air is held for a moment (unless ``final``)
        to see whether a bird climbs away from where it vanished."""
        cfg = self.cfg
        joined, pieces = self._link(track)
        if pieces:
            verdict, pts, xy_m = self._verdict(joined)
            if verdict.ok:
                track = joined
                self._pieces = [p for p in self._pieces if not any(p is u for u in pieces)]
                self._held = [p for p in self._held if not any(p is u for u in pieces)]
                self.stats.joined += len(pieces)
        if not pieces or not verdict.ok:
            verdict, pts, xy_m = self._verdict(track)
        if not verdict.ok:
            self._reject(track, verdict.reason)
            return None
        ended_midair = self._ended_midair(pts[-1, 1], pts[-1, 2], xy_m[-1, 1])
        me = self._segment(track)
        others = [s for s in self._neighbours(track, self._done) if s != me]
        start_speed = math.hypot(verdict.coef_x[0], verdict.coef_y[1])  # at the first point of the fit
        flight = flight_around(me, others, ended_midair, cfg, start_speed=start_speed)
        if flight:
            self._reject(track, flight)
            return None
        if ended_midair and not final:
            self._held.append(track)
            return None
        t0 = origin_time(verdict, cfg.max_backtrack_s)
        a, b, c = verdict.coef_y
        p, q = verdict.coef_x
        origin_m = np.array([[p * t0 + q, a * t0 * t0 + b * t0 + c]])
        unit = origin_m / np.array([self.facade.width_m, self.facade.height_m])
        cell = self.facade.cell(float(unit[0, 0]), float(unit[0, 1]))
        if cell is None:
            self._reject(track, "origin outside the façade")
            return None
        start_s = pts[0, 0] / 1000
        path = FallPath(start_s, pts[-1, 0] / 1000, verdict.coef_x, verdict.coef_y)
        if any(same_fall(p, start_s, xy_m[0, 0], xy_m[0, 1], cfg.duplicate_s) for p in self._recent):
            self.stats.duplicates += 1
            self._note(track, "duplicate")
            return None
        self._recent = [r for r in self._recent if start_s - r.t_end_s < 10.0] + [path]
        origin_xy = self.facade.to_image(unit)[0]
        self.stats.detections += 1
        self._note(track, "thrown object")
        return ThrowDetection(
            t_ms=float(pts[0, 0]),
            trajectory=[(float(t), float(x), float(y)) for t, x, y in pts],
            origin_xy=(float(origin_xy[0]), float(origin_xy[1])),
            floor=cell[0],
            column=cell[1],
            accel=verdict.accel,
            frame=frame,
        )
