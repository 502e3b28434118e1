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
    noise_sigma: float = 2.0

    def __post_init__(self) -> None:
        w, h = self.width, self.height
        # looking up: the top of the façade is narrower than the bottom
        self.corners = np.array(
            [[0.22 * w, 0.07 * h], [0.78 * w, 0.07 * h], [0.90 * w, 0.90 * h], [0.10 * w, 0.90 * h]], dtype=np.float64
        )
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
        self.noise = _noise_bank(rng, (h, w, 3), self.noise_sigma)

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
        img = np.empty((h, w, 3), dtype=np.uint8)
        sky = np.linspace(235, 200, h, dtype=np.float64)
        img[:, :, 0] = sky.astype(np.uint8)[:, None]
        img[:, :, 1] = (sky * 0.9).astype(np.uint8)[:, None]
        img[:, :, 2] = (sky * 0.8).astype(np.uint8)[:, None]
        ground_y = int(self.corners[2, 1])
        img[ground_y:, :] = (90, 110, 100)
        cv2.fillConvexPoly(img, self.corners.round().astype(np.int32), (170, 185, 200), lineType=cv2.LINE_AA)
        for f in range(1, self.floors):
            y = f * self.storey_m
            a, b = self.project(0, y), self.project(self.width_m, y)
            cv2.line(img, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), (140, 150, 165), 2, cv2.LINE_AA)
        dark, light = np.array((85, 70, 60)), np.array((150, 215, 250))
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
        radius = max(1, round(self.size_m * scene.local_px_per_m(x, y) / 2))
        colour = PALETTE[self.colour]
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
            cv2.add(img, pos, dst=img)
            cv2.subtract(img, neg, dst=img)
            yield i * 1000.0 / scene.fps, img


# --- scenario builders ----------------------------------------------------------------------------------------


def random_throw(scene: FacadeScene, rng: np.random.Generator, start_s: float, floor: int, column: int) -> Throw:
    """A throw from a window of (floor, column) with a random object and a random toss."""
    x0 = (column - 0.5 + rng.uniform(-0.25, 0.25)) * scene.column_m
    floor_bottom = (scene.floors - floor + 1) * scene.storey_m
    y0 = floor_bottom - rng.uniform(0.9, 1.8)
    return Throw(
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
    ).land(scene.height_m)


def throw_clip(scene: FacadeScene, count: int, seed: int, gap_s: float = 3.5, distractors: bool = True) -> FacadeClip:
    """``count`` throws spread over floors and columns, a few seconds apart, with some everyday distractors."""
    rng = np.random.default_rng(seed)
    actors: list[Actor] = []
    t = 2.0  # let the background settle first
    for k in range(count):
        floor = k % scene.floors + 1
        column = int(rng.integers(1, scene.columns + 1))
        throw = random_throw(scene, rng, t, floor, column)
        actors.append(throw)
        t = throw.end_s + gap_s * float(rng.uniform(0.6, 1.0))
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


DISTRACTOR_KINDS = ("birds", "leaves", "rain", "lights", "shake", "insects", "mixed")


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
