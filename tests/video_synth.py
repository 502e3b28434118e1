"""Synthetic videos for the video analytics tests: a façade seen from below, and a courtyard.

Everything is drawn with numpy and OpenCV, deterministically from a seed. The façade scene is
perspective-correct: actors move in metres on the façade plane and are projected into the image
through the same kind of homography the calibration describes, so a thrown object falls with
real gravity (pixels per metre follow from the façade's height).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[Any]
G = 9.81

PALETTE: dict[str, tuple[int, int, int]] = {  # BGR
    "white": (245, 245, 245),
    "black": (25, 25, 25),
    "red": (40, 40, 210),
    "blue": (200, 90, 30),
    "green": (60, 170, 50),
    "yellow": (40, 220, 240),
    "orange": (30, 130, 245),
    "brown": (40, 70, 110),
    "grey": (110, 110, 110),
    "pink": (180, 120, 250),
}


def _noise_bank(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: float, count: int = 8
) -> list[tuple[Image, Image]]:
    bank = []
    for _ in range(count):
        n = rng.normal(0.0, sigma, shape)
        bank.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
    return bank


# --- façade ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lighting:
    """How a façade looks in one light: colours (BGR), sensor noise and the contrast of thrown objects."""

    sky: tuple[float, float]  # grey level at the top and the bottom of the frame (tinted blue)
    wall: tuple[int, int, int]
    floor_line: tuple[int, int, int]
    ground: tuple[int, int, int]
    window_dark: tuple[int, int, int]
    window_lit: tuple[int, int, int]
    noise_sigma: float  # Gaussian sensor noise, grey levels per channel
    speckle: float = 0.0  # share of pixels hit by impulse noise (hot or dead pixels) in each frame
    object_contrast: tuple[float, float] | None = None  # thrown objects this many grey levels off the wall


LIGHTING: dict[str, Lighting] = {
    "day": Lighting((235, 200), (170, 185, 200), (140, 150, 165), (90, 110, 100), (85, 70, 60), (150, 215, 250), 2.0),
    # dusk: a dim wall, the camera's gain up; objects 10-20 grey levels off the wall
    "dusk": Lighting(
        (120, 85), (80, 86, 94), (64, 68, 75), (42, 52, 47), (42, 36, 31), (115, 175, 215), 5.0, 0.0005, (10, 20)
    ),
    # night: a dark wall lit from below, bright windows, strong noise with hot and dead pixels
    "night": Lighting(
        (22, 14), (34, 37, 41), (27, 29, 32), (17, 21, 19), (16, 14, 13), (120, 190, 235), 7.0, 0.002, (10, 20)
    ),
}


@dataclass
class FacadeScene:
    """A building façade seen from below: geometry, window grid and the base image."""

    width: int = 640
    height: int = 360
    fps: float = 25.0
    floors: int = 6
    columns: int = 4
    storey_m: float = 3.0
    seed: int = 0
    noise_sigma: float | None = None  # None: the lighting's
    light: str = "day"  # a key of LIGHTING
    roll_deg: float = 0.0  # the camera rolled about its axis (positive: the image turns clockwise)

    def __post_init__(self) -> None:
        w, h = self.width, self.height
        self.lighting = LIGHTING[self.light]
        if self.noise_sigma is None:
            self.noise_sigma = self.lighting.noise_sigma
        # Looking up: the top of the façade is narrower than the bottom. The homography of this trapezoid is
        # a real perspective, so floors also shrink with height (the top storey is about half the bottom one).
        corners = np.array(
            [[0.22 * w, 0.07 * h], [0.78 * w, 0.07 * h], [0.90 * w, 0.90 * h], [0.10 * w, 0.90 * h]], dtype=np.float64
        )
        if self.roll_deg:
            roll = cv2.getRotationMatrix2D((w / 2, h / 2), -self.roll_deg, 1.0)
            corners = corners @ roll[:, :2].T + roll[:, 2]
        self.corners = corners
        unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
        self.unit_to_image = cv2.getPerspectiveTransform(unit, self.corners.astype(np.float32))
        self.height_m = self.floors * self.storey_m
        side_px = (math.dist(self.corners[0], self.corners[3]) + math.dist(self.corners[1], self.corners[2])) / 2
        across_px = (math.dist(self.corners[0], self.corners[1]) + math.dist(self.corners[3], self.corners[2])) / 2
        self.px_per_m = side_px / self.height_m
        self.width_m = across_px / self.px_per_m
        self.column_m = self.width_m / self.columns
        rng = np.random.default_rng(self.seed)
        self._texture = rng.normal(0, 3, (h, w, 3)).astype(np.int16)
        poor = self.light != "day"
        # poor light: a bigger bank, shifted randomly in every frame, so that strong noise does not repeat
        self.noise = _noise_bank(rng, (h, w, 3), self.noise_sigma, count=16 if poor else 8)
        self._metres: NDArray[np.float32] | None = None
        self._sunlit: NDArray[np.uint8] | None = None

    @property
    def analysis_factor(self) -> int:
        """The detector's downscale factor for this scene (about 10 analysed pixels per metre)."""
        return max(1, math.floor(self.px_per_m / 10.0))

    def wall_grey(self) -> float:
        """Grey level of the wall."""
        b, g, r = self.lighting.wall
        return 0.114 * b + 0.587 * g + 0.299 * r

    def metres_map(self) -> NDArray[np.float32]:
        """Façade metres (x, y) of every image pixel (h×w×2), for effects painted on the façade plane."""
        if self._metres is None:
            ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
            pts = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
            inverse = np.linalg.inv(self.unit_to_image)
            unit = cv2.perspectiveTransform(pts, inverse).reshape(self.height, self.width, 2)
            self._metres = (unit * np.array([self.width_m, self.height_m], dtype=np.float32)).astype(np.float32)
        return self._metres

    def sunlit(self) -> NDArray[np.uint8]:
        """Mask of what the sun lights (the façade and the ground, not the sky)."""
        if self._sunlit is None:
            mask = np.zeros((self.height, self.width), dtype=np.uint8)
            cv2.fillConvexPoly(mask, self.corners.round().astype(np.int32), 1)
            cv2.fillConvexPoly(mask, self._ground_polygon(), 1)
            self._sunlit = mask
        return self._sunlit

    def _ground_polygon(self) -> NDArray[np.int32]:
        """The ground below the façade's bottom edge, extended to the frame's sides."""
        (x1, y1), (x2, y2) = self.corners[3], self.corners[2]
        slope = (y2 - y1) / (x2 - x1)
        left = y1 - slope * x1
        right = y1 + slope * (self.width - x1)
        h, w = self.height, self.width
        return np.array([[0, left], [w, right], [w, h], [0, h]]).round().astype(np.int32)

    def calibration(self, camera: str = "TC-TEST", building: str = "B-TEST") -> dict[str, Any]:
        """The calibration JSON of this scene (interfaces §6)."""
        return {
            "camera": camera,
            "building": building,
            "floors": self.floors,
            "columns": self.columns,
            "facade": [[round(float(x), 2), round(float(y), 2)] for x, y in self.corners],
        }

    def project(self, x_m: float, y_m: float) -> tuple[float, float]:
        """Façade metres (x from the left edge, y down from the top) to image pixels."""
        p = np.array([[[x_m / self.width_m, y_m / self.height_m]]], dtype=np.float64)
        q = cv2.perspectiveTransform(p, self.unit_to_image)[0, 0]
        return float(q[0]), float(q[1])

    def local_px_per_m(self, x_m: float, y_m: float) -> float:
        """Image pixels per metre around a façade point."""
        a = self.project(x_m, y_m)
        b = self.project(x_m, y_m + 1.0)
        return math.dist(a, b)

    def floor_of(self, y_m: float) -> int:
        """The floor a façade height (metres down from the top) belongs to."""
        return self.floors - math.floor(y_m / self.storey_m)

    def window_polygon(self, floor: int, column: int) -> NDArray[np.int32]:
        """Image polygon of a window (floor 1 at the bottom, column 1 on the left)."""
        left = (column - 1 + 0.2) * self.column_m
        right = (column - 0.2) * self.column_m
        bottom = (self.floors - floor + 1) * self.storey_m - 0.9
        top = bottom - 1.5
        pts = [
            self.project(left, top),
            self.project(right, top),
            self.project(right, bottom),
            self.project(left, bottom),
        ]
        return np.array(pts, dtype=np.float64).round().astype(np.int32)

    def base(self, lit: dict[tuple[int, int], float]) -> Image:
        """The still scene with windows lit to the given brightness (0 = dark, 1 = lit)."""
        w, h = self.width, self.height
        look = self.lighting
        img = np.empty((h, w, 3), dtype=np.uint8)
        sky = np.linspace(look.sky[0], look.sky[1], h, dtype=np.float64)
        img[:, :, 0] = sky.astype(np.uint8)[:, None]
        img[:, :, 1] = (sky * 0.9).astype(np.uint8)[:, None]
        img[:, :, 2] = (sky * 0.8).astype(np.uint8)[:, None]
        if self.roll_deg:
            cv2.fillConvexPoly(img, self._ground_polygon(), look.ground)
        else:
            img[int(self.corners[2, 1]) :, :] = look.ground
        cv2.fillConvexPoly(img, self.corners.round().astype(np.int32), look.wall, lineType=cv2.LINE_AA)
        for f in range(1, self.floors):
            y = f * self.storey_m
            a, b = self.project(0, y), self.project(self.width_m, y)
            cv2.line(img, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), look.floor_line, 2, cv2.LINE_AA)
        dark, light = np.array(look.window_dark), np.array(look.window_lit)
        for floor in range(1, self.floors + 1):
            for column in range(1, self.columns + 1):
                level = lit.get((floor, column), 0.0)
                colour = tuple(int(c) for c in dark + (light - dark) * level)
                cv2.fillConvexPoly(img, self.window_polygon(floor, column), colour, lineType=cv2.LINE_AA)
        out = np.clip(img.astype(np.int16) + self._texture, 0, 255).astype(np.uint8)
        return out


class Actor:
    """Something drawn into a frame while it is active."""

    start_s: float
    end_s: float

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Draw the actor at time t (seconds) if it is active."""
        raise NotImplementedError


@dataclass
class Throw(Actor):
    """An object released at a window and falling under gravity to the ground, then lying there a moment."""

    start_s: float
    floor: int
    column: int
    x0_m: float
    y0_m: float
    vx: float = 0.0
    vy: float = 0.0  # metres/s, positive down
    g: float = G
    size_m: float = 0.3
    colour: str = "white"
    exposure_s: float = 0.01
    rest_s: float = 1.0
    bgr: tuple[int, int, int] | None = None  # overrides ``colour`` (a low-contrast object at dusk or night)
    width_px: int | None = None  # overrides ``size_m``: an object this many image pixels wide (a cigarette)
    end_s: float = field(init=False)
    landing_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.landing_s = 0.0  # set by land() once the ground is known
        self.end_s = self.start_s

    def land(self, ground_m: float) -> Throw:
        """Compute when it reaches the ground (façade bottom)."""
        d = ground_m - self.y0_m
        t = (-self.vy + math.sqrt(self.vy * self.vy + 2 * self.g * d)) / self.g
        self.landing_s = t
        self.end_s = self.start_s + t + self.rest_s
        return self

    def position(self, dt: float) -> tuple[float, float]:
        """Façade metres dt seconds after release (resting after landing)."""
        dt = min(dt, self.landing_s)
        return self.x0_m + self.vx * dt, self.y0_m + self.vy * dt + 0.5 * self.g * dt * dt

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Draw the object with a little motion blur."""
        dt = t - self.start_s
        if dt < 0 or t > self.end_s:
            return
        x, y = self.position(dt)
        xp, yp = self.position(max(0.0, dt - self.exposure_s))
        a, b = scene.project(x, y), scene.project(xp, yp)
        colour = self.bgr or PALETTE[self.colour]
        if self.width_px:  # a tiny object: a hard-edged stroke exactly this wide
            cv2.line(img, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), colour, self.width_px, cv2.LINE_8)
            return
        radius = max(1, round(self.size_m * scene.local_px_per_m(x, y) / 2))
        cv2.line(img, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), colour, 2 * radius, cv2.LINE_AA)
        cv2.circle(img, (round(a[0]), round(a[1])), radius, colour, -1, cv2.LINE_AA)


@dataclass
class Bird(Actor):
    """A bird crossing the façade: flapping, bobbing, climbing, gliding down or swooping."""

    start_s: float
    x0_m: float
    y0_m: float
    vx: float  # m/s (sign = direction)
    vy: float = 0.0  # m/s, positive down (gliding)
    bob_m: float = 0.25
    flap_hz: float = 4.0
    swoop_m: float = 0.0  # depth of a U-shaped swoop over the crossing
    span_m: float = 0.5
    duration_s: float = 4.0
    end_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.end_s = self.start_s + self.duration_s

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Draw a dark body with wings whose height flaps."""
        dt = t - self.start_s
        if dt < 0 or dt > self.duration_s:
            return
        phase = dt / self.duration_s
        x = self.x0_m + self.vx * dt
        y = (
            self.y0_m
            + self.vy * dt
            + self.bob_m * math.sin(2 * math.pi * self.flap_hz / 2 * dt)
            + self.swoop_m * math.sin(math.pi * phase)
        )
        cx, cy = scene.project(x, y)
        s = scene.local_px_per_m(x, y) * self.span_m
        flap = math.sin(2 * math.pi * self.flap_hz * dt)
        body = (30, 30, 35)
        cv2.ellipse(img, (round(cx), round(cy)), (max(1, round(s * 0.2)), max(1, round(s * 0.08))), 0, 0, 360, body, -1)
        tip = s * 0.5
        for side in (-1, 1):
            wing = np.array(
                [[cx, cy], [cx + side * tip, cy - flap * s * 0.3], [cx + side * tip * 0.4, cy + s * 0.05]],
                dtype=np.float64,
            )
            cv2.fillConvexPoly(img, wing.round().astype(np.int32), body, lineType=cv2.LINE_AA)


@dataclass
class Leaf(Actor):
    """A leaf drifting down slowly, swaying and fluttering."""

    start_s: float
    x0_m: float
    y0_m: float
    fall_mps: float = 1.0
    sway_m: float = 0.8
    sway_hz: float = 0.7
    drift_mps: float = 0.0
    size_m: float = 0.12
    colour: str = "green"
    duration_s: float = 6.0
    end_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.end_s = self.start_s + self.duration_s

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Draw a small rotating ellipse."""
        dt = t - self.start_s
        if dt < 0 or dt > self.duration_s:
            return
        w = 2 * math.pi * self.sway_hz
        x = self.x0_m + self.drift_mps * dt + self.sway_m * math.sin(w * dt)
        # flutter: it sinks fastest at the bottom of each swing
        y = self.y0_m + self.fall_mps * dt + 0.3 * self.fall_mps / w * math.sin(2 * w * dt)
        cx, cy = scene.project(x, y)
        r = max(1.0, self.size_m * scene.local_px_per_m(x, y) / 2)
        angle = math.degrees(w * dt) * 2
        axes = (max(1, round(r)), max(1, round(r * (0.4 + 0.6 * abs(math.cos(w * dt))))))
        cv2.ellipse(img, (round(cx), round(cy)), axes, angle, 0, 360, PALETTE[self.colour], -1, cv2.LINE_AA)


@dataclass
class Rain(Actor):
    """Rain close to the camera: many thin streaks at constant speed, a few thicker near ones."""

    start_s: float
    end_s: float
    drops: int = 150
    seed: int = 0
    wind: float = 0.15
    near_share: float = 0.05
    _state: NDArray[np.float64] | None = field(default=None, init=False, repr=False)
    _last_t: float = field(default=0.0, init=False, repr=False)

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Move and draw every drop."""
        if not self.start_s <= t <= self.end_s:
            self._state = None
            return
        h, w = img.shape[:2]
        rng = np.random.default_rng(self.seed + round(t * 1000))
        speed_scale = h * 2.2  # pixels per second: a drop crosses the frame in about half a second
        if self._state is None:
            state = np.empty((self.drops, 4))
            state[:, 0] = rng.uniform(0, w, self.drops)
            state[:, 1] = rng.uniform(0, h, self.drops)
            state[:, 2] = rng.uniform(0.7, 1.3, self.drops) * speed_scale
            state[:, 3] = (rng.uniform(0, 1, self.drops) < self.near_share).astype(np.float64)
            self._state = state
            self._last_t = t
        state = self._state
        dt = t - self._last_t
        self._last_t = t
        state[:, 1] += state[:, 2] * dt
        state[:, 0] += state[:, 2] * self.wind * dt
        gone = (state[:, 1] > h) | (state[:, 0] > w)
        k = int(gone.sum())
        if k:
            state[gone, 0] = rng.uniform(-0.1 * w, w, k)
            state[gone, 1] = rng.uniform(-0.2 * h, 0, k)
        streak = 0.4 / scene.fps  # the streak is the motion during 40 % of a frame
        for x, y, v, near in state:
            length = v * streak
            x2, y2 = x - self.wind * length, y - length
            thickness = 2 if near else 1
            colour = (215, 215, 220) if not near else (200, 200, 205)
            cv2.line(img, (int(x), int(y)), (int(x2), int(y2)), colour, thickness, cv2.LINE_AA)


@dataclass
class Insect(Actor):
    """An insect on or near the lens: a huge blurred blob wandering erratically."""

    start_s: float
    duration_s: float = 2.0
    radius_frac: float = 0.1
    seed: int = 0
    end_s: float = field(init=False)
    _path: NDArray[np.float64] | None = field(default=None, init=False, repr=False)
    _sprite: NDArray[np.float32] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.end_s = self.start_s + self.duration_s

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Blend a blurred dark disc at a wandering position."""
        dt = t - self.start_s
        if dt < 0 or dt > self.duration_s:
            return
        h, w = img.shape[:2]
        r = max(4, round(self.radius_frac * w))
        if self._sprite is None:
            size = 4 * r + 1
            disc = np.zeros((size, size), dtype=np.float32)
            cv2.circle(disc, (2 * r, 2 * r), r, 1.0, -1)
            self._sprite = cv2.GaussianBlur(disc, (0, 0), r / 2.5) * 0.75
            rng = np.random.default_rng(self.seed)
            steps = rng.normal(0, 1, (int(self.duration_s * 50) + 2, 2)) * w * 0.02
            self._path = np.cumsum(steps, axis=0) + rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h])
        assert self._path is not None
        cx, cy = self._path[min(len(self._path) - 1, int(dt * 50))]
        sprite = self._sprite
        size = sprite.shape[0]
        x0, y0 = int(cx) - size // 2, int(cy) - size // 2
        xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + size), min(h, y0 + size)
        if xa >= xb or ya >= yb:
            return
        alpha = sprite[ya - y0 : yb - y0, xa - x0 : xb - x0, None]
        region = img[ya:yb, xa:xb].astype(np.float32)
        img[ya:yb, xa:xb] = (region * (1 - alpha) + np.float32(40) * alpha).astype(np.uint8)


def _draw_bird(img: Image, cx: float, cy: float, span_px: float, flap: float, colour: tuple[int, int, int]) -> None:
    """A bird's body and two wings; ``flap`` -1…1 lifts the wing tips."""
    s = span_px
    cv2.ellipse(img, (round(cx), round(cy)), (max(1, round(s * 0.2)), max(1, round(s * 0.08))), 0, 0, 360, colour, -1)
    tip = s * 0.5
    for side in (-1, 1):
        wing = np.array(
            [[cx, cy], [cx + side * tip, cy - flap * s * 0.3], [cx + side * tip * 0.4, cy + s * 0.05]],
            dtype=np.float64,
        )
        cv2.fillConvexPoly(img, wing.round().astype(np.int32), colour, lineType=cv2.LINE_AA)


def _integrate(velocity: NDArray[np.float64], x0: float, y0: float, step_s: float) -> NDArray[np.float64]:
    """Positions (N×2, metres) from velocities sampled every ``step_s``."""
    return np.vstack([[x0, y0], np.array([x0, y0]) + np.cumsum(velocity * step_s, axis=0)])


PATH_HZ = 200.0  # sampling of precomputed flight paths


@dataclass
class DivingBird(Actor):
    """A bird that flies in, dives steeply and pulls up before the ground, then flies off climbing.

    Along the dive it speeds up by ``accel`` (m/s²), which is well under g for a gliding dive and
    can come close to it for a bird folding its wings; either way it pulls up in view.
    """

    start_s: float
    x0_m: float
    y0_m: float
    direction: int  # +1 flies right
    speed_mps: float
    dive_deg: float  # dive angle below the horizontal
    accel: float
    dive_s: float
    pullup_s: float = 0.4
    span_m: float = 0.5
    duration_s: float = 5.0
    end_s: float = field(init=False)
    _path: NDArray[np.float64] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.end_s = self.start_s + self.duration_s

    def path(self) -> NDArray[np.float64]:
        """Positions every 1/PATH_HZ s: level flight for 0.6 s, the dive, the pull-up, then climbing away."""
        if self._path is None:
            n = int(self.duration_s * PATH_HZ) + 1
            t = np.arange(n) / PATH_HZ
            level_s = 0.6
            dive = math.radians(self.dive_deg)
            climb = math.radians(-25.0)
            heading = np.where(t < level_s, 0.0, dive)
            turn = np.clip((t - level_s - self.dive_s) / self.pullup_s, 0, 1)
            heading = np.where(t >= level_s + self.dive_s, dive + (climb - dive) * turn, heading)
            heading = np.where(t < level_s, 0.0, heading)
            into_dive = np.clip(t - level_s, 0, self.dive_s)
            speed = self.speed_mps + self.accel * into_dive
            velocity = np.stack([self.direction * speed * np.cos(heading), speed * np.sin(heading)], axis=1)
            self._path = _integrate(velocity[:-1], self.x0_m, self.y0_m, 1 / PATH_HZ)
        return self._path

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Draw the bird; its wings are folded while it dives."""
        dt = t - self.start_s
        if dt < 0 or dt > self.duration_s:
            return
        x, y = self.path()[min(len(self.path()) - 1, round(dt * PATH_HZ))]
        cx, cy = scene.project(float(x), float(y))
        diving = 0.6 <= dt <= 0.6 + self.dive_s
        span = scene.local_px_per_m(float(x), float(y)) * self.span_m * (0.45 if diving else 1.0)
        _draw_bird(img, cx, cy, span, 0.0 if diving else math.sin(2 * math.pi * 5 * dt), (30, 30, 35))


@dataclass
class Pigeon(Actor):
    """A pigeon that sits on a ledge, drops off it (falling freely for a moment) and then flies away."""

    start_s: float  # when it takes off; it sits on the ledge from the clip's start
    x0_m: float
    y0_m: float
    drop_s: float  # free fall before the wings open (0.25-0.45 s: 0.3-0.9 m)
    direction: int
    fly_mps: float = 6.0
    climb_mps: float = 1.5
    span_m: float = 0.6
    duration_s: float = 5.0
    end_s: float = field(init=False)
    _path: NDArray[np.float64] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.end_s = self.start_s + self.duration_s

    def path(self) -> NDArray[np.float64]:
        """Positions every 1/PATH_HZ s from the take-off."""
        if self._path is None:
            n = int(self.duration_s * PATH_HZ) + 1
            t = np.arange(n) / PATH_HZ
            falling = t < self.drop_s
            v_drop = 0.9 * G * self.drop_s
            recover = np.clip((t - self.drop_s) / 0.35, 0, 1)  # wings open: the fall turns into a climb
            vy = np.where(falling, 0.9 * G * t, v_drop + (-self.climb_mps - v_drop) * recover)
            vx = np.where(falling, 0.3 * self.direction, self.direction * self.fly_mps * np.maximum(recover, 0.1))
            self._path = _integrate(np.stack([vx, vy], axis=1)[:-1], self.x0_m, self.y0_m, 1 / PATH_HZ)
        return self._path

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Draw the pigeon, sitting until ``start_s`` and flying after."""
        dt = max(0.0, t - self.start_s)
        if dt > self.duration_s:
            return
        x, y = self.path()[min(len(self.path()) - 1, round(dt * PATH_HZ))]
        cx, cy = scene.project(float(x), float(y))
        span = scene.local_px_per_m(float(x), float(y)) * self.span_m
        opened = dt > self.drop_s
        flap = math.sin(2 * math.pi * 6 * dt) if opened else 0.0
        _draw_bird(img, cx, cy, span if opened else span * 0.5, flap, (105, 105, 112))


@dataclass
class Laundry(Actor):
    """A cloth hanging below a window sill, swinging in the wind (in gusts) and staying attached."""

    start_s: float
    end_s: float
    floor: int
    column: int
    length_m: float = 0.9
    width_m: float = 0.6
    sway_m: float = 0.3  # sideways swing of the hem
    sway_hz: float = 0.8
    gust_hz: float = 0.07  # the swing grows and dies down with gusts
    colour: tuple[int, int, int] = (200, 60, 60)

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Draw the cloth as a quadrilateral whose hem swings and lifts like a pendulum."""
        if not self.start_s <= t <= self.end_s:
            return
        gust = 0.35 + 0.65 * math.sin(math.pi * self.gust_hz * t) ** 2
        swing = self.sway_m * gust * math.sin(2 * math.pi * self.sway_hz * t)
        flutter = 0.25 * swing * math.sin(2 * math.pi * 2.3 * self.sway_hz * t)
        lift = swing * swing / (2 * self.length_m) + 0.3 * abs(flutter)
        top = (scene.floors - self.floor + 1) * scene.storey_m - 0.9
        left = (self.column - 0.5) * scene.column_m - self.width_m / 2
        right = left + self.width_m
        hem = top + self.length_m - lift
        corners = [(left, top), (right, top), (right + swing - flutter, hem), (left + swing + flutter, hem)]
        pts = np.array([scene.project(x, y) for x, y in corners]).round().astype(np.int32)
        cv2.fillConvexPoly(img, pts, self.colour, lineType=cv2.LINE_AA)


@dataclass
class CloudShadow(Actor):
    """The soft-edged shadow of a cloud sweeping across the façade and the ground.

    Its edges are slanted, so at any one column the shadow's edge also slides down (or up) the wall.
    """

    start_s: float
    speed_mps: float  # sideways, signed
    width_m: float = 15.0
    soft_m: float = 4.0  # penumbra
    depth: float = 0.35  # share of the light taken away
    slant: float = 0.6  # the edge's sideways offset per metre down the façade
    end_s: float = field(init=False)
    reach_m: float = field(default=80.0, init=False)

    def __post_init__(self) -> None:
        self.end_s = self.start_s + self.reach_m / abs(self.speed_mps)

    def draw(self, img: Image, t: float, scene: FacadeScene) -> None:
        """Darken the sunlit part of the frame under the shadow."""
        dt = t - self.start_s
        if dt < 0 or t > self.end_s:
            return
        metres = scene.metres_map()
        edge = -self.width_m - 20 + abs(self.speed_mps) * dt  # the leading edge, along the direction of travel
        along = metres[:, :, 0] if self.speed_mps > 0 else scene.width_m - metres[:, :, 0]
        along = along + self.slant * metres[:, :, 1]
        inside = np.minimum(edge - along, along - (edge - self.width_m)) / self.soft_m
        shade = 1.0 - self.depth * np.clip(inside + 0.5, 0.0, 1.0) * scene.sunlit()
        img[:] = cv2.multiply(img, cv2.merge([shade.astype(np.float32)] * 3), dtype=cv2.CV_8U)


@dataclass
class FacadeClip:
    """A timeline on a façade scene: actors, window lights, camera shake."""

    scene: FacadeScene
    duration_s: float
    actors: list[Actor] = field(default_factory=list)
    light_toggles: list[tuple[float, int, int, float]] = field(default_factory=list)  # (t, floor, column, level)
    shakes: list[tuple[float, float, float]] = field(default_factory=list)  # (start, end, amplitude px)
    moves: list[tuple[float, float, float]] = field(default_factory=list)  # (t, dx, dy): camera bumped for good
    initial_lit: dict[tuple[int, int], float] = field(default_factory=dict)

    @property
    def throws(self) -> list[Throw]:
        """The thrown objects of the clip (ground truth)."""
        return [a for a in self.actors if isinstance(a, Throw)]

    def shift_at(self, t: float) -> tuple[float, float]:
        """The camera's displacement (pixels) at time t."""
        dx = dy = 0.0
        for when, mx, my in self.moves:
            if t >= when:
                dx += mx
                dy += my
        for start, end, amp in self.shakes:
            if start <= t <= end:
                k = t - start
                dx += amp * (math.sin(2 * math.pi * 7.3 * k) + 0.4 * math.sin(2 * math.pi * 2.1 * k + 1.0))
                dy += amp * 0.6 * math.cos(2 * math.pi * 5.1 * k)
        return dx, dy

    def frames(self) -> Iterator[tuple[float, Image]]:
        """Yield (t_ms, BGR frame) for the whole clip."""
        scene = self.scene
        lit = dict(self.initial_lit)
        toggles = sorted(self.light_toggles)
        ti = 0
        base = scene.base(lit)
        n = round(self.duration_s * scene.fps)
        actors = sorted(self.actors, key=lambda a: a.start_s)
        poor = scene.light != "day"
        rng = np.random.default_rng(scene.seed + 7)  # per-frame noise offsets and speckle (poor light only)
        speckles = round(scene.lighting.speckle * scene.width * scene.height)
        for i in range(n):
            t = i / scene.fps
            changed = False
            while ti < len(toggles) and toggles[ti][0] <= t:
                _, f, c, level = toggles[ti]
                lit[(f, c)] = level
                ti += 1
                changed = True
            if changed:
                base = scene.base(lit)
            img = base.copy()
            for actor in actors:
                if actor.start_s > t:
                    break
                if t <= actor.end_s + 0.5:
                    actor.draw(img, t, scene)
            dx, dy = self.shift_at(t)
            if dx or dy:
                m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
                img = cv2.warpAffine(img, m, (scene.width, scene.height), borderMode=cv2.BORDER_REPLICATE)
            pos, neg = scene.noise[i % len(scene.noise)]
            if poor:  # shift the bank's noise so that it never repeats
                shift = (int(rng.integers(0, scene.height)), int(rng.integers(0, scene.width)))
                pos, neg = np.roll(pos, shift, axis=(0, 1)), np.roll(neg, shift, axis=(0, 1))
            cv2.add(img, pos, dst=img)
            cv2.subtract(img, neg, dst=img)
            if speckles:  # hot and dead pixels, and impulse noise of a high-gain sensor
                flat = img.reshape(-1, 3)
                where = rng.integers(0, len(flat), speckles)
                jolt = rng.integers(-90, 90, (speckles, 1))
                flat[where] = np.clip(flat[where].astype(np.int16) + jolt, 0, 255).astype(np.uint8)
            yield i * 1000.0 / scene.fps, img


# --- scenario builders ----------------------------------------------------------------------------------------


def random_throw(
    scene: FacadeScene, rng: np.random.Generator, start_s: float, floor: int, column: int, small: bool = False
) -> Throw:
    """A throw from a window of (floor, column) with a random object and a random toss.

    At dusk and at night the object is 10-20 grey levels off the wall, lighter or darker; ``small``
    makes it the size of a cigarette, 2-3 pixels wide in the detector's analysed frame.
    """
    x0 = (column - 0.5 + rng.uniform(-0.25, 0.25)) * scene.column_m
    floor_bottom = (scene.floors - floor + 1) * scene.storey_m
    y0 = floor_bottom - rng.uniform(0.9, 1.8)
    throw = Throw(
        start_s=start_s,
        floor=floor,
        column=column,
        x0_m=x0,
        y0_m=y0,
        vx=float(rng.uniform(-1.5, 1.5)),
        vy=float(rng.uniform(-1.5, 1.5)),
        g=G * float(rng.uniform(0.8, 1.0)),
        size_m=float(rng.uniform(0.2, 0.5)),
        colour=str(rng.choice(list(PALETTE))),
        rest_s=float(rng.uniform(0.5, 1.5)),
    )
    contrast = scene.lighting.object_contrast
    if contrast is not None:
        delta = float(rng.uniform(*contrast)) * (1 if rng.uniform() < 0.5 else -1)
        throw.bgr = tuple(int(np.clip(c + delta, 0, 255)) for c in scene.lighting.wall)  # type: ignore[assignment]
    if small:
        throw.width_px = int(rng.integers(2, 4)) * scene.analysis_factor
        throw.g = G * float(rng.uniform(0.9, 1.0))  # a small dense object: little drag
    return throw.land(scene.height_m)


def throw_clip(
    scene: FacadeScene,
    count: int,
    seed: int,
    gap_s: float = 3.5,
    distractors: bool = True,
    small: bool = False,
    pairs: bool = False,
) -> FacadeClip:
    """``count`` throws spread over floors and columns, a few seconds apart, with some everyday distractors.

    ``pairs``: each throw comes with a second one from another floor and column, released within
    0.5 s of it (two objects in the air at once); ``small``: cigarette-sized objects.
    """
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng(seed + 1_000)  # draws of the options, so the plain set stays as it was
    actors: list[Actor] = []
    t = 2.0  # let the background settle first
    for k in range(count):
        floor = k % scene.floors + 1
        column = int(rng.integers(1, scene.columns + 1))
        throw = random_throw(scene, rng, t, floor, column, small=small)
        actors.append(throw)
        end = throw.end_s
        if pairs:
            other_floor = int(extra.choice([f for f in range(1, scene.floors + 1) if f != floor]))
            other_column = int(extra.choice([c for c in range(1, scene.columns + 1) if c != column]))
            second = random_throw(scene, extra, t + float(extra.uniform(0, 0.5)), other_floor, other_column, small)
            actors.append(second)
            end = max(end, second.end_s)
        t = end + gap_s * float(rng.uniform(0.6, 1.0))
    duration = t + 1.0
    lit = {(f, c): float(rng.uniform() < 0.4) for f in range(1, scene.floors + 1) for c in range(1, scene.columns + 1)}
    clip = FacadeClip(scene, duration, actors, initial_lit=lit)
    if distractors:
        for _ in range(int(duration / 6)):
            when = float(rng.uniform(2, duration))
            f, c = int(rng.integers(1, scene.floors + 1)), int(rng.integers(1, scene.columns + 1))
            clip.light_toggles.append((when, f, c, float(rng.uniform() < 0.5)))
        for _ in range(int(duration / 20)):
            clip.actors.append(_random_bird(scene, rng, float(rng.uniform(2, duration - 4))))
    return clip


def _random_bird(scene: FacadeScene, rng: np.random.Generator, start_s: float) -> Bird:
    kind = rng.choice(["level", "climb", "glide", "swoop"])
    speed = float(rng.uniform(5, 12)) * (1 if rng.uniform() < 0.5 else -1)
    duration = (scene.width_m + 4) / abs(speed)
    x0 = -2.0 if speed > 0 else scene.width_m + 2.0
    y0 = float(rng.uniform(0.5, scene.height_m - 3))
    vy = {"level": 0.0, "climb": -float(rng.uniform(1, 3)), "glide": float(rng.uniform(1, 4)), "swoop": 0.0}[str(kind)]
    return Bird(
        start_s=start_s,
        x0_m=x0,
        y0_m=y0,
        vx=speed,
        vy=vy,
        swoop_m=float(rng.uniform(2, 5)) if kind == "swoop" else 0.0,
        span_m=float(rng.uniform(0.3, 0.7)),
        flap_hz=float(rng.uniform(3, 6)),
        duration_s=duration,
    )


def _random_leaf(scene: FacadeScene, rng: np.random.Generator, start_s: float) -> Leaf:
    return Leaf(
        start_s=start_s,
        x0_m=float(rng.uniform(0, scene.width_m)),
        y0_m=float(rng.uniform(-1, scene.height_m * 0.5)),
        fall_mps=float(rng.uniform(0.6, 1.8)),
        sway_m=float(rng.uniform(0.3, 1.5)),
        sway_hz=float(rng.uniform(0.4, 1.2)),
        drift_mps=float(rng.uniform(-1.5, 1.5)),
        size_m=float(rng.uniform(0.08, 0.2)),
        colour=str(rng.choice(["green", "brown", "yellow", "orange"])),
        duration_s=float(rng.uniform(4, 9)),
    )


def _random_diving_bird(scene: FacadeScene, rng: np.random.Generator, start_s: float) -> DivingBird:
    direction = 1 if rng.uniform() < 0.5 else -1
    hard = rng.uniform() < 0.5  # folds its wings: speeds up at 0.6-1.0 g, but pulls up in view
    dive_s = float(rng.uniform(0.6, 1.2))
    accel = G * float(rng.uniform(0.6, 1.0) if hard else rng.uniform(0.0, 0.35))
    speed = float(rng.uniform(3, 8))
    dive_deg = float(rng.uniform(55, 85))
    drop = (speed * dive_s + accel * dive_s**2 / 2) * math.sin(math.radians(dive_deg))
    y0 = float(rng.uniform(0.5, max(1.0, scene.height_m - drop - 2.5)))
    x0 = float(rng.uniform(0.25, 0.75)) * scene.width_m - direction * 4.0
    return DivingBird(
        start_s=start_s,
        x0_m=x0,
        y0_m=y0,
        direction=direction,
        speed_mps=speed,
        dive_deg=dive_deg,
        accel=accel,
        dive_s=dive_s,
        pullup_s=float(rng.uniform(0.3, 0.6)),
        span_m=float(rng.uniform(0.3, 0.7)),
        duration_s=float(rng.uniform(3.5, 5.0)),
    )


def _random_pigeon(scene: FacadeScene, rng: np.random.Generator, start_s: float) -> Pigeon:
    floor = int(rng.integers(2, scene.floors + 1))
    column = int(rng.integers(1, scene.columns + 1))
    return Pigeon(
        start_s=start_s,
        x0_m=(column - 0.5 + rng.uniform(-0.3, 0.3)) * scene.column_m,
        y0_m=(scene.floors - floor + 1) * scene.storey_m - 0.9,  # on the window sill
        drop_s=float(rng.uniform(0.25, 0.45)),
        direction=1 if rng.uniform() < 0.5 else -1,
        fly_mps=float(rng.uniform(4, 9)),
        climb_mps=float(rng.uniform(0.5, 2.5)),
        span_m=float(rng.uniform(0.5, 0.7)),
        duration_s=float(rng.uniform(3, 5)),
    )


def _random_laundry(scene: FacadeScene, rng: np.random.Generator, duration_s: float) -> Laundry:
    return Laundry(
        start_s=0.0,
        end_s=duration_s,
        floor=int(rng.integers(1, scene.floors + 1)),
        column=int(rng.integers(1, scene.columns + 1)),
        length_m=float(rng.uniform(0.6, 1.4)),
        width_m=float(rng.uniform(0.4, 0.9)),
        sway_m=float(rng.uniform(0.15, 0.6)),
        sway_hz=float(rng.uniform(0.4, 1.2)),
        gust_hz=float(rng.uniform(0.04, 0.15)),
        colour=tuple(int(c) for c in rng.integers(30, 240, 3)),  # type: ignore[arg-type]
    )


def _random_cloud_shadow(rng: np.random.Generator, start_s: float) -> CloudShadow:
    return CloudShadow(
        start_s=start_s,
        speed_mps=float(rng.uniform(3, 12)) * (1 if rng.uniform() < 0.5 else -1),
        width_m=float(rng.uniform(8, 30)),
        soft_m=float(rng.uniform(2, 8)),
        depth=float(rng.uniform(0.15, 0.45)),
        slant=float(rng.uniform(-1.0, 1.0)),
    )


DISTRACTOR_KINDS = ("birds", "leaves", "rain", "lights", "shake", "insects", "mixed")
# things that move downwards without gravity (issue 23); "downward" mixes them with window lights
DOWNWARD_KINDS = ("diving birds", "pigeons", "laundry", "cloud shadows", "downward")


def distractor_clip(scene: FacadeScene, kind: str, duration_s: float, seed: int) -> FacadeClip:
    """A clip of one kind of distractor (or all of them mixed) and no thrown object."""
    rng = np.random.default_rng(seed)
    lit = {(f, c): float(rng.uniform() < 0.4) for f in range(1, scene.floors + 1) for c in range(1, scene.columns + 1)}
    clip = FacadeClip(scene, duration_s, initial_lit=lit)
    mixed = kind == "mixed"
    start = 2.0
    if kind in ("birds", "mixed"):
        for _ in range(int(duration_s / (3 if not mixed else 8))):
            clip.actors.append(_random_bird(scene, rng, float(rng.uniform(start, duration_s))))
    if kind in ("leaves", "mixed"):
        for _ in range(int(duration_s / (1.5 if not mixed else 5))):
            clip.actors.append(_random_leaf(scene, rng, float(rng.uniform(start, duration_s))))
    if kind in ("rain", "mixed"):
        t = start
        while t < duration_s:
            length = float(rng.uniform(15, 60))
            clip.actors.append(Rain(t, min(duration_s, t + length), drops=int(rng.integers(60, 260)), seed=seed))
            t += length + float(rng.uniform(2, 10) if not mixed else rng.uniform(20, 60))
    if kind in ("lights", "mixed"):
        rate = 1.5 if not mixed else 5.0
        for _ in range(int(duration_s / rate * 4)):
            f, c = int(rng.integers(1, scene.floors + 1)), int(rng.integers(1, scene.columns + 1))
            when = float(rng.uniform(start, duration_s))
            clip.light_toggles.append((when, f, c, float(rng.choice([0.0, 0.3, 0.7, 1.0]))))
        # a television: one window flickering for a while
        f, c = int(rng.integers(1, scene.floors + 1)), int(rng.integers(1, scene.columns + 1))
        t0 = float(rng.uniform(start, duration_s / 2))
        for k in range(int(min(60.0, duration_s / 2) * 4)):
            clip.light_toggles.append((t0 + k * 0.25, f, c, float(rng.uniform(0.3, 0.9))))
    if kind in ("shake", "mixed"):
        t = start + 1
        while t < duration_s:
            length = float(rng.uniform(0.5, 3.0))
            clip.shakes.append((t, t + length, float(rng.uniform(0.7, 4.0))))
            t += length + float(rng.uniform(3, 10) if not mixed else rng.uniform(15, 40))
        clip.moves.append((float(rng.uniform(start, duration_s)), float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3))))
    downward = kind == "downward"
    if kind in ("diving birds", "downward"):
        for _ in range(int(duration_s / (5 if not downward else 15))):
            clip.actors.append(_random_diving_bird(scene, rng, float(rng.uniform(start, duration_s - 3))))
    if kind in ("pigeons", "downward"):
        for _ in range(int(duration_s / (5 if not downward else 15))):
            clip.actors.append(_random_pigeon(scene, rng, float(rng.uniform(start + 2, duration_s - 2))))
    if kind in ("laundry", "downward"):
        for _ in range(3 if not downward else 1):
            clip.actors.append(_random_laundry(scene, rng, duration_s))
    if kind in ("cloud shadows", "downward") and scene.light != "night":  # no sun, no cloud shadows
        t = start + float(rng.uniform(0, 5))
        while t < duration_s:
            shadow = _random_cloud_shadow(rng, t)
            clip.actors.append(shadow)
            t = shadow.end_s + float(rng.uniform(2, 10) if not downward else rng.uniform(10, 30))
    if downward:
        for _ in range(int(duration_s / 2)):
            f, c = int(rng.integers(1, scene.floors + 1)), int(rng.integers(1, scene.columns + 1))
            clip.light_toggles.append((float(rng.uniform(start, duration_s)), f, c, float(rng.choice([0.0, 0.5, 1.0]))))
    if kind in ("insects", "mixed"):
        for _ in range(int(duration_s / (6 if not mixed else 20))):
            clip.actors.append(
                Insect(
                    start_s=float(rng.uniform(start, duration_s)),
                    duration_s=float(rng.uniform(1, 4)),
                    radius_frac=float(rng.uniform(0.05, 0.15)),
                    seed=int(rng.integers(0, 1_000_000)),
                )
            )
    return clip


# --- poor-light conditions (issue 23) -------------------------------------------------------------------------

# Each condition changes one thing from the daylight set: the light, the object, the frame rate,
# the camera's roll, or the number of objects in the air.
THROW_CONDITIONS = ("day", "dusk", "night", "small", "fps15", "roll", "two")


def condition_scene(condition: str, width: int, height: int, seed: int) -> FacadeScene:
    """The façade scene of a condition: its light, frame rate and camera roll."""
    light = condition if condition in ("dusk", "night") else "day"
    fps = 15.0 if condition == "fps15" else 25.0
    roll = 0.0
    if condition == "roll":
        rng = np.random.default_rng(seed + 2_000)
        roll = float(rng.uniform(2, 5)) * (1 if rng.uniform() < 0.5 else -1)
    return FacadeScene(width=width, height=height, fps=fps, seed=seed, light=light, roll_deg=roll)


def condition_throw_clip(condition: str, count: int, seed: int, width: int = 480, height: int = 270) -> FacadeClip:
    """``count`` throws (``count`` pairs for "two") under one condition, with everyday distractors."""
    if condition not in THROW_CONDITIONS:
        raise ValueError(condition)
    scene = condition_scene(condition, width, height, seed)
    return throw_clip(scene, count, seed, small=condition == "small", pairs=condition == "two")


# --- courtyard ------------------------------------------------------------------------------------------------

Joints = dict[str, tuple[float, float]]  # in standing heights, relative to the point between the feet, y up


def standing_pose(phase: float = 0.0, stride: float = 0.0) -> Joints:
    """Upright; ``stride`` > 0 swings the legs with the walking phase (radians)."""
    swing = stride * math.sin(phase)
    return {
        "foot_l": (swing, 0.0),
        "foot_r": (-swing, 0.0),
        "knee_l": (swing * 0.5, 0.27),
        "knee_r": (-swing * 0.5, 0.27),
        "hip": (0.0, 0.52),
        "shoulder": (0.0, 0.82),
        "hand_l": (-swing * 0.6, 0.5),
        "hand_r": (swing * 0.6, 0.5),
        "head": (0.0, 0.93),
    }


def sitting_ground_pose() -> Joints:
    """Sitting on the ground with the legs stretched out in front."""
    return {
        "foot_l": (0.48, 0.03),
        "foot_r": (0.45, 0.03),
        "knee_l": (0.25, 0.09),
        "knee_r": (0.24, 0.09),
        "hip": (0.0, 0.06),
        "shoulder": (0.0, 0.36),
        "hand_l": (0.12, 0.1),
        "hand_r": (0.1, 0.12),
        "head": (0.02, 0.47),
    }


def sitting_bench_pose() -> Joints:
    """Sitting on a bench (seat at a quarter of the standing height)."""
    return {
        "foot_l": (0.24, 0.0),
        "foot_r": (0.2, 0.0),
        "knee_l": (0.24, 0.27),
        "knee_r": (0.2, 0.27),
        "hip": (0.0, 0.27),
        "shoulder": (0.0, 0.57),
        "hand_l": (0.15, 0.3),
        "hand_r": (0.12, 0.3),
        "head": (0.0, 0.68),
    }


def blend_pose(a: Joints, b: Joints, k: float) -> Joints:
    """Linear blend from pose a (k=0) to pose b (k=1)."""
    return {j: (a[j][0] + (b[j][0] - a[j][0]) * k, a[j][1] + (b[j][1] - a[j][1]) * k) for j in a}


def tipped_pose(pose: Joints, angle: float, direction: int) -> Joints:
    """The pose rotated about the feet by ``angle`` radians towards ``direction`` (+1 right, -1 left)."""
    c, s = math.cos(angle), math.sin(angle)
    lift = 0.07 * math.sin(angle)  # the body's thickness keeps it above the ground when lying
    return {j: (direction * y * s + x * c, y * c - direction * x * s + lift) for j, (x, y) in pose.items()}


@dataclass
class Move:
    """One step of a figure's script."""

    kind: str  # walk, stand, fall, lie, getup, sit, sitting, standup, liedown
    duration: float
    speed: float = 0.0  # walk: standing heights per second (signed)
    direction: int = 1  # fall/liedown: which way
    seat: str = "ground"  # sit/sitting/standup: ground or bench


@dataclass
class Figure:
    """A person-like figure following a script of moves."""

    x0: float  # pixels: where the feet start
    ground_y: float
    height_px: float
    script: list[Move]
    shirt: tuple[int, int, int] = (60, 60, 180)
    trousers: tuple[int, int, int] = (70, 50, 40)
    start_s: float = 0.0
    skin: tuple[int, int, int] = (150, 180, 220)

    @property
    def end_s(self) -> float:
        """When the script ends."""
        return self.start_s + sum(m.duration for m in self.script)

    def pose_at(self, t: float) -> tuple[float, Joints] | None:
        """Feet position (pixels) and pose at time t, or None outside the script."""
        dt = t - self.start_s
        if dt < 0:
            return None
        x = self.x0
        phase = 0.0
        last: Joints = standing_pose()
        for move in self.script:
            if dt > move.duration:
                x, phase, last = self._apply(move, move.duration, x, phase, last)
                dt -= move.duration
                continue
            x, phase, pose = self._apply(move, dt, x, phase, last)
            return x, pose
        return None

    def _apply(self, move: Move, dt: float, x: float, phase: float, last: Joints) -> tuple[float, float, Joints]:
        k = dt / move.duration if move.duration > 0 else 1.0
        seated = sitting_ground_pose() if move.seat == "ground" else sitting_bench_pose()
        lying = tipped_pose(standing_pose(), math.pi / 2, move.direction)
        if move.kind == "walk":
            x += move.speed * self.height_px * dt
            phase += 2 * math.pi * 1.8 * dt
            return x, phase, standing_pose(phase, 0.13)
        if move.kind == "stand":
            return x, phase, standing_pose()
        if move.kind == "fall":
            return x, phase, tipped_pose(standing_pose(), math.pi / 2 * k * k, move.direction)
        if move.kind == "liedown":  # slowly: kneel/sit first, then lie
            if k < 0.5:
                return x, phase, blend_pose(standing_pose(), sitting_ground_pose(), k * 2)
            return x, phase, blend_pose(sitting_ground_pose(), lying, (k - 0.5) * 2)
        if move.kind == "lie":
            return x, phase, last
        if move.kind == "getup":
            return x, phase, blend_pose(last, standing_pose(), k)
        if move.kind == "sit":
            return x, phase, blend_pose(standing_pose(), seated, k)
        if move.kind == "sitting":
            return x, phase, seated
        if move.kind == "standup":
            return x, phase, blend_pose(seated, standing_pose(), k)
        raise ValueError(move.kind)

    def draw(self, img: Image, t: float) -> None:
        """Draw the figure at time t."""
        state = self.pose_at(t)
        if state is None:
            return
        x, pose = state
        h = self.height_px

        def p(name: str) -> tuple[int, int]:
            jx, jy = pose[name]
            return round(x + jx * h), round(self.ground_y - jy * h)

        leg, torso, arm = max(2, round(0.09 * h)), max(3, round(0.2 * h)), max(1, round(0.05 * h))
        for side in ("l", "r"):
            cv2.line(img, p("hip"), p(f"knee_{side}"), self.trousers, leg, cv2.LINE_AA)
            cv2.line(img, p(f"knee_{side}"), p(f"foot_{side}"), self.trousers, leg, cv2.LINE_AA)
        cv2.line(img, p("hip"), p("shoulder"), self.shirt, torso, cv2.LINE_AA)
        for side in ("l", "r"):
            cv2.line(img, p("shoulder"), p(f"hand_{side}"), self.shirt, arm, cv2.LINE_AA)
        cv2.circle(img, p("head"), max(2, round(0.075 * h)), self.skin, -1, cv2.LINE_AA)


@dataclass
class CourtyardClip:
    """A paved courtyard with a bench and figures following scripts."""

    width: int = 320
    height: int = 240
    fps: float = 10.0
    duration_s: float = 20.0
    figures: list[Figure] = field(default_factory=list)
    seed: int = 0

    def base(self) -> Image:
        """The empty courtyard."""
        rng = np.random.default_rng(self.seed)
        w, h = self.width, self.height
        img = np.full((h, w, 3), (150, 155, 160), dtype=np.uint8)
        img[: h // 4] = (90, 140, 90)  # lawn at the back
        for x in range(0, w, max(8, w // 16)):
            cv2.line(img, (x, h // 4), (x, h), (135, 140, 145), 1)
        for y in range(h // 4, h, max(8, h // 12)):
            cv2.line(img, (0, y), (w, y), (135, 140, 145), 1)
        cv2.rectangle(img, (int(w * 0.7), int(h * 0.55)), (int(w * 0.9), int(h * 0.6)), (40, 80, 120), -1)
        cv2.circle(img, (int(w * 0.15), int(h * 0.12)), int(h * 0.1), (40, 110, 50), -1)
        texture = rng.normal(0, 3, img.shape)
        return np.clip(img + texture, 0, 255).astype(np.uint8)

    def frames(self) -> Iterator[tuple[float, Image]]:
        """Yield (t_ms, BGR frame) for the whole clip."""
        base = self.base()
        rng = np.random.default_rng(self.seed + 1)
        noise = _noise_bank(rng, base.shape, 2.0)
        for i in range(round(self.duration_s * self.fps)):
            t = i / self.fps
            img = base.copy()
            for figure in self.figures:
                figure.draw(img, t)
            pos, neg = noise[i % len(noise)]
            cv2.add(img, pos, dst=img)
            cv2.subtract(img, neg, dst=img)
            yield i * 1000.0 / self.fps, img


def courtyard(
    script: list[Move], fps: float = 10.0, width: int = 320, height: int = 240, **figure: Any
) -> CourtyardClip:
    """A courtyard with one figure that walks in from the left edge and then follows ``script``."""
    h = height * 0.42
    person = Figure(x0=-0.2 * h, ground_y=height * 0.85, height_px=h, script=script, **figure)
    return CourtyardClip(width, height, fps, person.end_s + 0.5, [person])
