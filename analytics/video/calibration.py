"""Façade calibration of a thrown-object camera (interfaces §6) and the geometry built on it.

The four façade corners give a homography between image pixels and the façade plane. A point
on the plane is expressed as unit coordinates ``(u, v)``: ``u`` 0→1 left→right, ``v`` 0→1
top→bottom. Floors count from 1 at the bottom, columns from 1 on the left.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import InvalidInput

Coordinate = Annotated[float, Field(allow_inf_nan=False)]
Point = tuple[Coordinate, Coordinate]

# Smallest façade we accept, in image pixels²: anything smaller cannot be resolved into floors.
MIN_FACADE_AREA_PX = 100.0


class FacadeCalibration(BaseModel):
    """The calibration JSON of a thrown-object camera (interfaces §6)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: str = Field(min_length=1, max_length=64)
    building: str = Field(min_length=1, max_length=64)
    floors: int = Field(ge=1, le=300)
    columns: int = Field(ge=1, le=300)
    facade: list[Point] = Field(min_length=4, max_length=4)
    storey_height_m: float = Field(default=3.0, ge=2.0, le=10.0, description="floor-to-floor height")
    # which household is behind a column (registry/facade.py): the units shown, left to right, and
    # whether columns count from the right (a camera facing the back of the building)
    units: list[Annotated[int, Field(ge=1, le=50)]] | None = Field(default=None, min_length=1, max_length=50)
    reverse: bool = False

    @field_validator("facade")
    @classmethod
    def _check_quadrilateral(cls, corners: list[Point]) -> list[Point]:
        problem = quadrilateral_problem(corners)
        if problem:
            raise ValueError(problem)
        return corners


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def quadrilateral_problem(corners: list[Point]) -> str | None:
    """Why four corners (tl, tr, br, bl) are not a usable façade, or None when they are."""
    turns = [_cross(corners[i], corners[(i + 1) % 4], corners[(i + 2) % 4]) for i in range(4)]
    scale = max(abs(t) for t in turns) or 1.0
    signs = {t > 0 for t in turns if abs(t) > 1e-9 * scale}
    if len(signs) > 1:
        return "the corners do not form a convex quadrilateral (crossed or concave)"
    area = 0.5 * sum(
        corners[i][0] * corners[(i + 1) % 4][1] - corners[(i + 1) % 4][0] * corners[i][1] for i in range(4)
    )
    if abs(area) < MIN_FACADE_AREA_PX:
        return "the four corners enclose no area (degenerate quadrilateral)"
    # Three corners on one line leave a triangle: demand a real turn at every corner.
    if any(abs(t) < 1e-6 * abs(area) for t in turns):
        return "three corners are on one line (degenerate quadrilateral)"
    if all(t < 0 for t in turns):
        return "the corners must be in the order top-left, top-right, bottom-right, bottom-left"
    tl, tr, br, bl = corners
    if max(tl[1], tr[1]) >= min(bl[1], br[1]):
        return "the top corners must be above the bottom corners"
    return None


def parse_calibration(data: Any, source: str = "calibration") -> FacadeCalibration:
    """Validate calibration data; InvalidInput names the first bad field in one line."""
    try:
        return FacadeCalibration.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{source}: {field}: {message}") from None


def load_calibration(path: Path) -> FacadeCalibration:
    """Read and validate a calibration JSON file; InvalidInput says what is wrong in one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"calibration file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"cannot read calibration file {path}: {err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidInput(f"calibration {path} is not JSON: {err.msg} at line {err.lineno}") from None
    return parse_calibration(data, source=f"calibration {path}")


class Facade:
    """Image ↔ façade-plane geometry of one calibration."""

    def __init__(self, calibration: FacadeCalibration) -> None:
        self.calibration = calibration
        self.floors = calibration.floors
        self.columns = calibration.columns
        self.corners = np.array(calibration.facade, dtype=np.float64)
        unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
        self.unit_to_image = np.asarray(
            cv2.getPerspectiveTransform(unit, self.corners.astype(np.float32)), dtype=np.float64
        )
        self.image_to_unit = np.asarray(np.linalg.inv(self.unit_to_image), dtype=np.float64)
        tl, tr, br, bl = self.corners
        side_px = (math.dist(tl, bl) + math.dist(tr, br)) / 2
        across_px = (math.dist(tl, tr) + math.dist(bl, br)) / 2
        self.height_m = calibration.floors * calibration.storey_height_m
        self.px_per_m = side_px / self.height_m
        # Width in metres is not calibrated: take square pixels, which is close enough for drift checks.
        self.width_m = across_px / self.px_per_m

    def to_unit(self, points: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Image points (N×2) as façade unit coordinates (N×2)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)
        return np.asarray(cv2.perspectiveTransform(pts, self.image_to_unit), dtype=np.float64).reshape(-1, 2)

    def to_image(self, units: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Façade unit coordinates (N×2) as image points (N×2)."""
        pts = np.asarray(units, dtype=np.float64).reshape(-1, 1, 2)
        return np.asarray(cv2.perspectiveTransform(pts, self.unit_to_image), dtype=np.float64).reshape(-1, 2)

    def to_metres(self, points: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Image points (N×2) as metres on the façade plane: x right of the left edge, y down from the top."""
        unit = self.to_unit(points)
        return unit * np.array([self.width_m, self.height_m])

    def cell(self, u: float, v: float, margin: float = 0.5) -> tuple[int, int] | None:
        """Floor and column of a façade point; within ``margin`` cells outside it snaps to the edge, else None."""
        if not (math.isfinite(u) and math.isfinite(v)):
            return None
        fu, fv = u * self.columns, v * self.floors
        if not (-margin <= fu <= self.columns + margin and -margin <= fv <= self.floors + 0.25):
            return None
        column = min(self.columns, max(1, math.floor(fu) + 1))
        floor = min(self.floors, max(1, self.floors - math.floor(fv)))
        return floor, column

    def cell_point(self, floor: int, column: int) -> tuple[float, float]:
        """The image point at the centre of a floor's column (the inverse of ``cell``)."""
        u = (column - 0.5) / self.columns
        v = (self.floors - floor + 0.5) / self.floors
        x, y = self.to_image(np.array([[u, v]]))[0]
        return float(x), float(y)

    def roi(self, width: int, height: int, align: int = 1) -> tuple[int, int, int, int]:
        """The image region where falls are watched: the façade widened by half a column, down to the frame bottom.

        Returns ``(x0, y0, x1, y1)`` clipped to the frame, with x0/y0 and the size multiples of ``align``.
        """
        xs, ys = self.corners[:, 0], self.corners[:, 1]
        pad_x = (xs.max() - xs.min()) / self.columns * 0.5
        pad_y = (ys.max() - ys.min()) / self.floors * 0.5
        x0 = max(0, int(xs.min() - pad_x))
        x1 = min(width, math.ceil(xs.max() + pad_x))
        y0 = max(0, int(ys.min() - pad_y))
        y1 = height
        x0 -= x0 % align
        y0 -= y0 % align
        x1 = x0 + max(align, (x1 - x0) // align * align)
        y1 = y0 + max(align, (y1 - y0) // align * align)
        return x0, y0, min(x1, width), min(y1, height)
