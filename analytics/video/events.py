"""Interfaces §2 events from video detections, with a JPEG evidence image for each.

``ts`` is the stream's start (wall time of frame 0) plus the detection's frame time. The event
``id`` is derived from the camera, the event type and ``ts``, so analysing the same file with the
same ``--start`` again yields the same ids (ingest counts repeats as duplicates). The evidence
image goes to the camera's community's evidence folder and the event names it by its opaque id
(``store/evidence.py``), never by a path.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import cv2
import numpy as np

from analytics.video.calibration import Facade
from analytics.video.fall import FallDetection
from analytics.video.frames import Image
from analytics.video.throw import ThrowDetection
from core.timefmt import iso_utc
from store.evidence import CommunityEvidence

log = logging.getLogger(__name__)

JPEG_QUALITY = 85


def event_id(camera: str, event_type: str, ts_ms: int) -> str:
    """A stable id (≤ 64 characters) for a detection of ``event_type`` by ``camera`` at ``ts_ms``."""
    digest = hashlib.sha256(f"{camera}\x1f{event_type}\x1f{ts_ms}".encode()).hexdigest()[:32]
    return f"{event_type.rsplit('.', maxsplit=1)[-1]}-{digest}"


def write_evidence(image: Image, evidence: CommunityEvidence) -> str:
    """Store the image as a JPEG in the community's evidence folder; returns its evidence id."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"cannot encode an evidence image of community {evidence.community}")
    return evidence.put(data.tobytes())


def draw_throw(frame: Image, detection: ThrowDetection, facade: Facade) -> Image:
    """The frame with the façade grid, the trajectory and the traced origin drawn on it."""
    out = frame.copy()
    grid = (200, 200, 200)
    for i in range(facade.floors + 1):
        ends = facade.to_image(np.array([[0.0, i / facade.floors], [1.0, i / facade.floors]]))
        cv2.line(out, _pt(ends[0]), _pt(ends[1]), grid, 1, cv2.LINE_AA)
    for j in range(facade.columns + 1):
        ends = facade.to_image(np.array([[j / facade.columns, 0.0], [j / facade.columns, 1.0]]))
        cv2.line(out, _pt(ends[0]), _pt(ends[1]), grid, 1, cv2.LINE_AA)
    points = np.array([[x, y] for _, x, y in detection.trajectory], dtype=np.float64)
    cv2.polylines(out, [points.round().astype(np.int32)], False, (0, 0, 255), 2, cv2.LINE_AA)
    for p in points:
        cv2.circle(out, _pt(p), 2, (0, 255, 255), -1, cv2.LINE_AA)
    origin = _pt(detection.origin_xy)
    cv2.circle(out, origin, 8, (0, 0, 255), 2, cv2.LINE_AA)
    label = f"floor {detection.floor} column {detection.column}"
    cv2.putText(out, label, (origin[0] + 10, origin[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, label, (origin[0] + 10, origin[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1, cv2.LINE_AA)
    return out


def draw_fall(frame: Image, detection: FallDetection) -> Image:
    """The frame with the fallen person's box drawn on it."""
    out = frame.copy()
    x, y, w, h = detection.bbox
    cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 255), 2, cv2.LINE_AA)
    cv2.putText(out, "fall", (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1, cv2.LINE_AA)
    return out


def _pt(p: Any) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def throw_event(
    detection: ThrowDetection,
    camera: str,
    facade: Facade,
    start_ms: int,
    evidence: CommunityEvidence | None,
) -> dict[str, Any]:
    """The ``camera.throw`` event of a detection; its trajectory times are milliseconds after ``ts``."""
    ts_ms = start_ms + round(detection.t_ms)
    eid = event_id(camera, "camera.throw", ts_ms)
    trajectory = [[round(t - detection.t_ms), round(x, 1), round(y, 1)] for t, x, y in detection.trajectory]
    data: dict[str, Any] = {
        "origin": {
            "building": facade.calibration.building,
            "floor": detection.floor,
            "column": detection.column,
        },
        "trajectory": trajectory,
    }
    if evidence is not None and detection.frame is not None:
        data["image"] = write_evidence(draw_throw(detection.frame, detection, facade), evidence)
    return {"id": eid, "type": "camera.throw", "device": camera, "ts": iso_utc(ts_ms), "data": data}


def fall_event(
    detection: FallDetection, camera: str, start_ms: int, evidence: CommunityEvidence | None
) -> dict[str, Any]:
    """The ``camera.fall`` event of a detection (``ts`` is when the person went down)."""
    ts_ms = start_ms + round(detection.t_ms)
    eid = event_id(camera, "camera.fall", ts_ms)
    data: dict[str, Any] = {"bbox": list(detection.bbox)}
    if evidence is not None and detection.frame is not None:
        data["image"] = write_evidence(draw_fall(detection.frame, detection), evidence)
    return {"id": eid, "type": "camera.fall", "device": camera, "ts": iso_utc(ts_ms), "data": data}
