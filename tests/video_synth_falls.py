"""Synthetic courtyard clips for the fall detector: falls it must find, everyday movement it must not alarm on.

Builds on the courtyard figure of ``tests/video_synth.py`` (poses in standing heights, y up from the
feet) and adds what issue 23 asks for:

- **falls**: sideways falls at the usual distance (``side``), a far figure 60–100 px tall in a
  1280×720 frame across the courtyard (``far``), dark clothes on dark paving at dusk with strong,
  partly blotchy sensor noise (``dusk``), and a fall toward the camera (``toward``, staged near,
  far and at dusk in turn): the camera looks down at the yard, so a body lying along the line of
  sight projects short and *below* the feet; its box gets shorter and lower, not wider;
- **distractors**: sitting down on the ground or on a bench, bending to tie a shoe, lying down
  slowly on a bench, a child crouching, a dog, a cyclist, and a person walking toward the camera
  and out of the frame at the bottom (the box is cut off by the frame edge and shortens).

Everything is drawn with numpy and OpenCV, deterministically from a seed. ``fall_case`` and
``distractor_case`` draw one randomised clip of a kind; ``FALL_KINDS`` and ``DISTRACTOR_KINDS``
list the kinds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from analytics.video.fall import FallConfig, FallDetection, FallDetector
from tests.video_synth import (
    Figure,
    Image,
    Joints,
    Move,
    blend_pose,
    sitting_bench_pose,
    standing_pose,
    tipped_pose,
)

FALL_KINDS = ("side", "far", "dusk", "toward")
DISTRACTOR_KINDS = (
    "sit on the ground",
    "sit on a bench",
    "bend to tie a shoe",
    "lie down on a bench",
    "child crouching",
    "dog",
    "cyclist",
    "walk out at the bottom",
)
CONDITIONS = ("near", "far", "dusk")  # where a distractor is staged

# Camera depression: a point one standing height toward the camera along the ground projects this many
# standing heights lower in the image (tan of the angle the camera looks down at, about 30°).
DEPTH_K = 0.55


# --- poses ----------------------------------------------------------------------------------------------------


def bent_pose() -> Joints:
    """Bending forward with the knees bent, hands at the feet (tying a shoe)."""
    return {
        "foot_l": (0.05, 0.0),
        "foot_r": (-0.05, 0.0),
        "knee_l": (0.12, 0.24),
        "knee_r": (0.08, 0.24),
        "hip": (-0.08, 0.44),
        "shoulder": (0.18, 0.52),
        "hand_l": (0.1, 0.04),
        "hand_r": (0.06, 0.05),
        "head": (0.27, 0.47),
    }


def crouch_pose() -> Joints:
    """Squatting on the heels, looking at something on the ground."""
    return {
        "foot_l": (0.06, 0.0),
        "foot_r": (-0.04, 0.0),
        "knee_l": (0.16, 0.24),
        "knee_r": (0.12, 0.22),
        "hip": (-0.06, 0.2),
        "shoulder": (0.03, 0.45),
        "hand_l": (0.2, 0.08),
        "hand_r": (0.16, 0.1),
        "head": (0.07, 0.56),
    }


def bench_lying_pose(direction: int) -> Joints:
    """Lying on a bench (seat at a quarter of the standing height), head toward ``direction``."""
    lying = tipped_pose(standing_pose(), math.pi / 2, direction)
    return {j: (x - direction * 0.45, y + 0.25) for j, (x, y) in lying.items()}


def toward_pose(pose: Joints, angle: float, depth_k: float = DEPTH_K) -> Joints:
    """The pose tipped ``angle`` radians about the feet toward the camera, as the camera sees it.

    A joint ``y`` high ends ``y·cos`` high and ``y·sin`` nearer the camera; nearer projects lower in
    the image by ``depth_k`` per standing height. The body's thickness keeps it above the ground.
    """
    c, s = math.cos(angle), math.sin(angle)
    lift = 0.07 * s
    return {j: (x, y * c - depth_k * y * s + lift) for j, (x, y) in pose.items()}


# --- actors ---------------------------------------------------------------------------------------------------


class Actor(Protocol):
    """Something drawn into the courtyard."""

    @property
    def end_s(self) -> float:
        """When it is done."""
        ...

    def draw(self, img: Image, t: float) -> None:
        """Draw it at time t (seconds)."""
        ...


@dataclass
class Person(Figure):
    """The courtyard figure with more moves and skin that darkens at dusk.

    Extra move kinds: ``fall_toward``; ``bend``/``bent``/``unbend``; ``crouch``/``crouched``/``rise``;
    ``liebench`` (from sitting on the bench to lying on it, slowly).
    """

    def _apply(self, move: Move, dt: float, x: float, phase: float, last: Joints) -> tuple[float, float, Joints]:
        k = dt / move.duration if move.duration > 0 else 1.0
        if move.kind == "fall_toward":
            return x, phase, toward_pose(standing_pose(), math.pi / 2 * k * k)
        if move.kind in ("bend", "bent", "unbend"):
            k = {"bend": k, "bent": 1.0, "unbend": 1.0 - k}[move.kind]
            return x, phase, blend_pose(standing_pose(), bent_pose(), k)
        if move.kind in ("crouch", "crouched", "rise"):
            k = {"crouch": k, "crouched": 1.0, "rise": 1.0 - k}[move.kind]
            return x, phase, blend_pose(standing_pose(), crouch_pose(), k)
        if move.kind == "liebench":
            return x, phase, blend_pose(sitting_bench_pose(), bench_lying_pose(move.direction), k)
        return super()._apply(move, dt, x, phase, last)


@dataclass
class Approacher:
    """A person walking toward the camera: lower in the image and larger each step, out at the bottom edge."""

    x: float
    ground_y: float  # feet at the start
    height_px: float  # standing height at the start
    horizon_y: float  # where the ground meets the horizon (sizes scale with the distance below it)
    speed: float  # image pixels per second the feet move down, at the start
    start_s: float
    frame_height: int
    shirt: tuple[int, int, int] = (60, 60, 180)
    trousers: tuple[int, int, int] = (70, 50, 40)
    skin: tuple[int, int, int] = (150, 180, 220)

    @property
    def end_s(self) -> float:
        """When the head has left the frame (the feet reach far below the bottom edge)."""
        t, y = 0.0, self.ground_y
        while y - self._height(y) < self.frame_height + 2 and t < 60:
            y = self._feet(t)
            t += 0.05
        return self.start_s + t

    def _height(self, y: float) -> float:
        return self.height_px * (y - self.horizon_y) / (self.ground_y - self.horizon_y)

    def _feet(self, dt: float) -> float:
        # constant walking speed in metres: the image speed grows with the scale
        d0 = self.ground_y - self.horizon_y
        return self.horizon_y + d0 * math.exp(self.speed * dt / d0)

    def draw(self, img: Image, t: float) -> None:
        """Draw the walker at time t."""
        dt = t - self.start_s
        if dt < 0 or t > self.end_s:
            return
        y = self._feet(dt)
        fig = Person(
            x0=self.x,
            ground_y=y,
            height_px=self._height(y),
            script=[Move("walk", 1e6, speed=0.0)],
            shirt=self.shirt,
            trousers=self.trousers,
            skin=self.skin,
        )
        # legs swing with the steps, seen from the front: a smaller stride
        fig.script = [Move("stand", 1e6)] if int(dt * 3.6) % 2 else [Move("walk", 1e6, speed=0.0)]
        fig.draw(img, 0.1 + (dt % 0.28))


@dataclass
class Dog:
    """A dog trotting across, stopping to sniff on the way: a low, wide, moving blob."""

    x0: float
    ground_y: float
    length_px: float  # nose to tail
    speed: float  # pixels per second, signed
    start_s: float
    trot_s: float  # trots this long, sniffs ``sniff_s``, trots on for ``trot_s`` again
    sniff_s: float
    colour: tuple[int, int, int] = (40, 70, 110)

    @property
    def end_s(self) -> float:
        """When the second trot ends."""
        return self.start_s + 2 * self.trot_s + self.sniff_s

    def draw(self, img: Image, t: float) -> None:
        """Draw the dog at time t."""
        dt = t - self.start_s
        if dt < 0 or t > self.end_s:
            return
        moving = min(dt, self.trot_s) + max(0.0, dt - self.trot_s - self.sniff_s)
        sniffing = self.trot_s < dt < self.trot_s + self.sniff_s
        x = self.x0 + self.speed * moving
        L = self.length_px
        d = 1 if self.speed >= 0 else -1
        gy = self.ground_y
        body_y = gy - 0.42 * L
        phase = 2 * math.pi * 3.0 * moving
        for off in (-0.28, 0.28):
            for sign in (1, -1):
                swing = 0.0 if sniffing else sign * 0.08 * L * math.sin(phase + (off > 0) * math.pi)
                hip = (round(x + off * L), round(body_y))
                foot = (round(x + off * L + swing), round(gy))
                cv2.line(img, hip, foot, self.colour, max(1, round(0.06 * L)), cv2.LINE_AA)
        axes = (max(2, round(0.34 * L)), max(1, round(0.12 * L)))
        cv2.ellipse(img, (round(x), round(body_y)), axes, 0, 0, 360, self.colour, -1, cv2.LINE_AA)
        head_y = gy - (0.15 if sniffing else 0.6) * L
        head = (round(x + d * 0.42 * L), round(head_y))
        cv2.line(img, (round(x + d * 0.3 * L), round(body_y)), head, self.colour, max(1, round(0.1 * L)), cv2.LINE_AA)
        cv2.circle(img, head, max(2, round(0.09 * L)), self.colour, -1, cv2.LINE_AA)
        tail = (round(x - d * 0.5 * L), round(body_y - 0.15 * L))
        cv2.line(img, (round(x - d * 0.32 * L), round(body_y)), tail, self.colour, max(1, round(0.03 * L)), cv2.LINE_AA)


@dataclass
class Cyclist:
    """A person riding a bicycle across the yard: a wide, fast blob about as tall as it is long."""

    x0: float
    ground_y: float
    height_px: float  # the rider's standing height
    speed: float  # pixels per second, signed
    start_s: float
    frame_width: int
    shirt: tuple[int, int, int] = (200, 90, 30)
    frame_colour: tuple[int, int, int] = (30, 30, 30)

    @property
    def end_s(self) -> float:
        """When the bicycle has crossed the frame."""
        span = self.frame_width + 2 * self.height_px
        return self.start_s + span / abs(self.speed)

    def draw(self, img: Image, t: float) -> None:
        """Draw the cyclist at time t."""
        dt = t - self.start_s
        if dt < 0 or t > self.end_s:
            return
        h = self.height_px
        d = 1 if self.speed >= 0 else -1
        x = self.x0 + self.speed * dt
        gy = self.ground_y
        r = 0.2 * h
        back, front = (x - d * 0.32 * h, gy - r), (x + d * 0.32 * h, gy - r)
        thick = max(1, round(0.025 * h))
        for cx, cy in (back, front):
            cv2.circle(img, (round(cx), round(cy)), round(r), self.frame_colour, thick, cv2.LINE_AA)
        seat = (x - d * 0.1 * h, gy - 0.55 * h)
        bar = (x + d * 0.25 * h, gy - 0.6 * h)
        crank = (x, gy - r)
        for a, b in ((back, seat), (seat, crank), (crank, back), (crank, bar), (bar, front), (seat, bar)):
            cv2.line(img, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), self.frame_colour, thick, cv2.LINE_AA)
        shoulder = (x + d * 0.08 * h, gy - 0.88 * h)
        head = (round(x + d * 0.14 * h), round(gy - 0.98 * h))
        pedal = 2 * math.pi * 1.2 * dt
        for ph in (0.0, math.pi):
            foot = (x + 0.1 * h * math.cos(pedal + ph), gy - r + 0.1 * h * math.sin(pedal + ph))
            knee = (x + d * 0.12 * h, gy - 0.42 * h + 0.05 * h * math.sin(pedal + ph))
            leg = max(2, round(0.08 * h))
            cv2.line(img, (round(seat[0]), round(seat[1])), (round(knee[0]), round(knee[1])), (70, 50, 40), leg)
            cv2.line(img, (round(knee[0]), round(knee[1])), (round(foot[0]), round(foot[1])), (70, 50, 40), leg)
        torso = max(3, round(0.17 * h))
        cv2.line(img, (round(seat[0]), round(seat[1])), (round(shoulder[0]), round(shoulder[1])), self.shirt, torso)
        cv2.line(img, (round(shoulder[0]), round(shoulder[1])), (round(bar[0]), round(bar[1])), self.shirt, 2)
        cv2.circle(img, head, max(2, round(0.075 * h)), (150, 180, 220), -1, cv2.LINE_AA)


# --- the yard -------------------------------------------------------------------------------------------------


@dataclass
class Yard:
    """A paved courtyard by day or at dusk, with benches and actors.

    ``noise_sigma`` is per-pixel sensor noise; ``blotch_sigma`` adds noise in 8-px blotches, as a
    camera's denoiser and compression leave it (it does not average away when the frame is downscaled).
    """

    width: int = 320
    height: int = 240
    fps: float = 10.0
    duration_s: float = 20.0
    dusk: bool = False
    noise_sigma: float = 2.0
    blotch_sigma: float = 0.0
    benches: list[tuple[float, float, float, float]] = field(default_factory=list)  # x0, x1, seat y, ground y (px)
    actors: list[Any] = field(default_factory=list)
    seed: int = 0

    @property
    def horizon_y(self) -> float:
        """The back of the yard (the lawn's lower edge)."""
        return self.height * 0.22

    def base(self) -> Image:
        """The empty yard."""
        rng = np.random.default_rng(self.seed)
        w, h = self.width, self.height
        paving, joints, lawn = ((150, 155, 160), (135, 140, 145), (90, 140, 90))
        if self.dusk:
            paving, joints, lawn = ((52, 54, 56), (46, 48, 50), (30, 42, 32))
        img = np.full((h, w, 3), paving, dtype=np.uint8)
        hy = round(self.horizon_y)
        img[:hy] = lawn
        # paving joints in perspective: converging lines and rows closer together far away
        for i in range(-8, 25):
            x_near = i * w / 16
            x_far = w / 2 + (x_near - w / 2) * 0.35
            cv2.line(img, (round(x_far), hy), (round(x_near), h), joints, 1, cv2.LINE_AA)
        for j in range(1, 14):
            y = hy + (h - hy) * (j / 13) ** 1.6
            cv2.line(img, (0, round(y)), (w, round(y)), joints, 1)
        wood = (30, 45, 60) if self.dusk else (40, 80, 120)
        for x0, x1, seat_y, ground_y in self.benches:
            thick = max(2, round((ground_y - seat_y) * 0.18))
            cv2.rectangle(img, (round(x0), round(seat_y - thick)), (round(x1), round(seat_y)), wood, -1)
            back = seat_y - 1.4 * (ground_y - seat_y)
            cv2.rectangle(img, (round(x0), round(back)), (round(x1), round(back + thick)), wood, -1)
            for x in (x0 + thick, x1 - 2 * thick):
                cv2.rectangle(img, (round(x), round(back)), (round(x + thick), round(ground_y)), wood, -1)
        texture = rng.normal(0, 3, img.shape)
        return np.clip(img + texture, 0, 255).astype(np.uint8)

    def _noise(self, rng: np.random.Generator) -> list[tuple[Image, Image]]:
        """A few frames of noise, each as the part to add and the part to subtract (saturating, fast)."""
        bank = []
        shape = (self.height, self.width, 3)
        for _ in range(6):
            n = rng.normal(0.0, self.noise_sigma, shape)
            if self.blotch_sigma > 0:
                small = rng.normal(0.0, self.blotch_sigma, (self.height // 8 + 1, self.width // 8 + 1))
                n += cv2.resize(small, (self.width, self.height), interpolation=cv2.INTER_LINEAR)[:, :, None]
            bank.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
        return bank

    def frames(self) -> Iterator[tuple[float, Image]]:
        """Yield (t_ms, BGR frame) for the whole clip."""
        base = self.base()
        rng = np.random.default_rng(self.seed + 1)
        bank = self._noise(rng)
        order = rng.permutation(997) % len(bank)
        for i in range(round(self.duration_s * self.fps)):
            t = i / self.fps
            img = base.copy()
            for actor in self.actors:
                actor.draw(img, t)
            pos, neg = bank[order[i % len(order)]]
            cv2.add(img, pos, dst=img)
            cv2.subtract(img, neg, dst=img)
            yield i * 1000.0 / self.fps, img


@dataclass
class Case:
    """One synthetic clip and what is in it."""

    kind: str
    condition: str
    clip: Yard
    falls_s: list[float]  # when each fall ends (the person is on the ground), seconds
    person_px: float  # standing height of the main actor, full-frame pixels


# --- randomised cases -----------------------------------------------------------------------------------------

DAY_CLOTHES = [((60, 60, 180), (70, 50, 40)), ((200, 90, 30), (40, 40, 40)), ((40, 170, 60), (120, 110, 100))]
DAY_CLOTHES += [((235, 235, 235), (90, 60, 30)), ((30, 130, 245), (60, 60, 60)), ((25, 25, 25), (25, 25, 25))]


def _stage(condition: str, rng: np.random.Generator, fps: float) -> tuple[Yard, float, float]:
    """A yard for a condition, with the ground line and a person's standing height (px)."""
    if condition == "near":  # reduced frames; the person is 40 % of the frame tall
        yard = Yard(320, 240, fps, dusk=False, noise_sigma=2.0, seed=int(rng.integers(1 << 30)))
        return yard, float(rng.uniform(0.78, 0.9)) * 240, float(rng.uniform(0.34, 0.44)) * 240
    if condition == "far":  # 720p, 60–100 px tall, across the yard
        yard = Yard(1280, 720, fps, dusk=False, noise_sigma=3.0, seed=int(rng.integers(1 << 30)))
        return yard, float(rng.uniform(0.33, 0.5)) * 720, float(rng.uniform(60, 100))
    if condition == "dusk":  # 640×360 (a 720p stream analysed at half size), dark on dark, noisy
        yard = Yard(640, 360, fps, dusk=True, noise_sigma=6.0, blotch_sigma=3.0, seed=int(rng.integers(1 << 30)))
        return yard, float(rng.uniform(0.6, 0.9)) * 360, float(rng.uniform(0.22, 0.4)) * 360
    raise ValueError(condition)


def _clothes(yard: Yard, rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    if yard.dusk:  # dark clothes 12–22 grey levels below the paving, a face in shadow
        top = int(52 - rng.uniform(12, 22))
        legs = int(52 - rng.uniform(12, 22))
        face = int(52 + rng.uniform(8, 18))
        return {"shirt": (top, top + 1, top + 3), "trousers": (legs, legs, legs), "skin": (face - 8, face, face + 6)}
    shirt, trousers = DAY_CLOTHES[int(rng.integers(len(DAY_CLOTHES)))]
    return {"shirt": shirt, "trousers": trousers}


def _walk_in(yard: Yard, h: float, rng: np.random.Generator) -> tuple[float, float, list[Move], int]:
    """Start time and x, and a walk to somewhere in the middle third of the frame; the direction walked.

    In reduced frames the walk starts at a side edge; in wide frames, where that would take half a
    minute, the person steps out 2–4 s away (from a doorway or from behind a hedge) after 1.5 s.
    """
    d = 1 if rng.random() < 0.5 else -1
    target = float(rng.uniform(0.3, 0.7)) * yard.width
    speed = float(rng.uniform(0.3, 0.6))
    if yard.width <= 320:
        x0, start = (-0.3 * h if d > 0 else yard.width + 0.3 * h), 0.0
    else:
        x0, start = target - d * speed * h * float(rng.uniform(2.0, 4.0)), 1.5
    seconds = abs(target - x0) / (speed * h)
    return start, x0, [Move("walk", seconds, speed=d * speed)], d


def fall_case(kind: str, seed: int, fps: float = 10.0, condition: str | None = None) -> Case:
    """A randomised clip of a person who walks in and falls (``kind`` in ``FALL_KINDS``), then lies still.

    Falls toward the camera are staged near, far and at dusk in turn (by seed), unless ``condition`` says.
    """
    rng = np.random.default_rng([seed, FALL_KINDS.index(kind), 23])
    staged = {"side": "near", "toward": CONDITIONS[seed % 3], "far": "far", "dusk": "dusk"}[kind]
    condition = condition or staged
    yard, ground, h = _stage(condition, rng, fps)
    if kind == "toward":  # the body ends up below the feet in the image: room for it above the bottom edge
        ground = min(ground, yard.height - h * float(rng.uniform(0.75, 1.1)))
    start, x0, script, d = _walk_in(yard, h, rng)
    if rng.random() < 0.5:
        script.append(Move("stand", float(rng.uniform(0.3, 1.5))))
    fall_s = float(rng.uniform(0.5, 1.1))
    if kind == "toward":
        script.append(Move("fall_toward", fall_s))
    else:
        direction = d if rng.random() < 0.7 else -d
        feet = x0 + script[0].speed * h * script[0].duration
        if not 0 < feet + direction * 1.1 * h < yard.width:  # lie within the frame
            direction = -direction
        script.append(Move("fall", fall_s, direction=direction))
    down = start + sum(m.duration for m in script)
    script.append(Move("lie", float(rng.uniform(7.0, 9.0))))
    person = Person(x0=x0, ground_y=ground, height_px=h, script=script, start_s=start, **_clothes(yard, rng))
    yard.actors.append(person)
    yard.duration_s = person.end_s + 0.3
    return Case(kind, condition, yard, [down], h)


def distractor_case(kind: str, condition: str, seed: int, fps: float = 10.0) -> Case:
    """A randomised clip of everyday movement (``kind`` in ``DISTRACTOR_KINDS``) staged in ``condition``."""
    rng = np.random.default_rng([seed, DISTRACTOR_KINDS.index(kind), CONDITIONS.index(condition), 5])
    yard, ground, h = _stage(condition, rng, fps)
    clothes = _clothes(yard, rng)
    actor: Any
    if kind == "dog":
        length = h * float(rng.uniform(0.35, 0.6))
        speed = h * float(rng.uniform(0.6, 1.8)) * (1 if rng.random() < 0.5 else -1)
        x0 = -length if speed > 0 else yard.width + length
        trot = abs(float(rng.uniform(0.3, 0.7)) * yard.width - x0) / abs(speed)
        colour = (
            clothes["trousers"] if yard.dusk else [(40, 70, 110), (25, 25, 25), (200, 200, 200)][int(rng.integers(3))]
        )
        actor = Dog(x0, ground, length, speed, 0.5, trot, float(rng.uniform(2, 6)), colour)
    elif kind == "cyclist":
        speed = h * float(rng.uniform(1.5, 3.5)) * (1 if rng.random() < 0.5 else -1)
        x0 = -h if speed > 0 else yard.width + h
        actor = Cyclist(x0, ground, h, speed, 0.5, yard.width, shirt=clothes["shirt"])
        if yard.dusk:
            actor.frame_colour = clothes["trousers"]
    elif kind == "walk out at the bottom":
        ground = float(rng.uniform(0.55, 0.8)) * yard.height
        size = h * (ground - yard.horizon_y) / (yard.height * 0.84 - yard.horizon_y)
        actor = Approacher(
            x=float(rng.uniform(0.2, 0.8)) * yard.width,
            ground_y=ground,
            height_px=size,
            horizon_y=yard.horizon_y,
            speed=size * float(rng.uniform(0.3, 0.5)),
            start_s=0.5,
            frame_height=yard.height,
            **clothes,
        )
    else:
        if kind == "child crouching":
            h *= float(rng.uniform(0.5, 0.65))
        start, x0, script, d = _walk_in(yard, h, rng)
        down = float(rng.uniform(0.6, 1.6))
        hold = float(rng.uniform(3, 10))
        back = float(rng.uniform(0.6, 1.5))
        if kind in ("sit on the ground", "sit on a bench"):
            seat = "ground" if kind == "sit on the ground" else "bench"
            script += [
                Move("sit", down + 0.3, seat=seat),
                Move("sitting", hold, seat=seat),
                Move("standup", back, seat=seat),
            ]
        elif kind == "bend to tie a shoe":
            script += [Move("bend", down), Move("bent", hold), Move("unbend", back)]
        elif kind == "child crouching":
            script += [Move("crouch", float(rng.uniform(0.3, 0.8))), Move("crouched", hold), Move("rise", back)]
        elif kind == "lie down on a bench":
            script += [Move("sit", down + 0.3, seat="bench"), Move("sitting", float(rng.uniform(0.5, 3)), seat="bench")]
            script += [
                Move("liebench", float(rng.uniform(1.5, 3.5)), direction=-d),
                Move("lie", float(rng.uniform(6, 9))),
            ]
        else:
            raise ValueError(kind)
        if kind != "lie down on a bench":
            script.append(Move("walk", float(rng.uniform(2, 4)), speed=-d * float(rng.uniform(0.3, 0.6))))
        feet_x = x0 + sum(m.speed * h * m.duration for m in script if m.kind == "walk" and m is script[0])
        if "bench" in kind:  # the bench stands where the person sits down
            seat_y = ground - 0.25 * h
            yard.benches.append((feet_x - 0.5 * h, feet_x + 0.5 * h, seat_y, ground))
        actor = Person(x0=x0, ground_y=ground, height_px=h, script=script, start_s=start, **clothes)
    yard.actors.append(actor)
    yard.duration_s = actor.end_s + 0.5
    return Case(kind, condition, yard, [], h)


# --- running the detector on a case ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """What the detector made of a case: falls found, false alarms, and the clip's length."""

    kind: str
    condition: str
    seconds: float
    falls: int
    found: int  # falls detected within ``MATCH_S`` of the moment the person was down
    false_alarms: int  # every other detection, a second one of the same fall included
    detections: list[tuple[float, bool]]  # (when down, s; foreshortened)


MATCH_S = 1.0


def run_case(case: Case, config: FallConfig | None = None) -> CaseResult:
    """Feed a case's clip through a fresh ``FallDetector`` and score its detections."""
    clip = case.clip
    detector = FallDetector((clip.width, clip.height), clip.fps, config)
    found: list[FallDetection] = []
    for t_ms, frame in clip.frames():
        found += detector.process(frame, t_ms)
    found += detector.flush()
    # each fall is matched by at most one detection; any other detection (a repeat too) is a false alarm
    unmatched = [d.t_ms / 1000 for d in found]
    matched = 0
    for fall in case.falls_s:
        near = [t for t in unmatched if abs(t - fall) <= MATCH_S]
        if near:
            unmatched.remove(near[0])
            matched += 1
    return CaseResult(
        case.kind,
        case.condition,
        clip.duration_s,
        len(case.falls_s),
        matched,
        len(unmatched),
        [(d.t_ms / 1000, d.foreshortened) for d in found],
    )
