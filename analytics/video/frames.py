"""Video sources: files and stream URLs as (stream time, frame) pairs, and a frame queue that drops under load."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
from numpy.typing import NDArray

from core.errors import InvalidInput

Image = NDArray[Any]  # a BGR frame (uint8, height × width × 3)
T = TypeVar("T")

DEFAULT_FPS = 25.0
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def is_stream_url(source: str) -> bool:
    """Whether the source is a network stream rather than a local file."""
    return source.lower().startswith(STREAM_SCHEMES)


def usable_fps(reported: float) -> float:
    """The container's frame rate, or the default when it reports nothing sensible."""
    if not math.isfinite(reported) or not 1.0 <= reported <= 240.0:
        return DEFAULT_FPS
    return reported


@dataclass
class VideoSource:
    """An opened capture with what we know about it."""

    capture: cv2.VideoCapture
    name: str
    fps: float
    size: tuple[int, int]  # width, height
    first: Image  # the first frame, already read

    def frames(self) -> Iterator[tuple[float, Image]]:
        """Every frame with its stream time in milliseconds (frame index / fps)."""
        index = 0
        frame: Image | None = self.first
        step = 1000.0 / self.fps
        while frame is not None:
            yield index * step, frame
            index += 1
            ok, frame = self.capture.read()
            if not ok:
                frame = None

    def close(self) -> None:
        """Release the capture."""
        self.capture.release()


def open_video(source: str) -> VideoSource:
    """Open a file or stream URL and read its first frame; InvalidInput when that is not possible."""
    if not is_stream_url(source):
        path = Path(source)
        if not path.exists():
            raise InvalidInput(f"--input: no such file: {source}")
        if not path.is_file():
            raise InvalidInput(f"--input: not a file: {source}")
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise InvalidInput(f"--input: cannot open as video: {source}")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise InvalidInput(f"--input: no readable video frames in {source}")
    if first.ndim == 2:
        first = cv2.cvtColor(first, cv2.COLOR_GRAY2BGR)
    height, width = first.shape[:2]
    return VideoSource(capture, source, usable_fps(capture.get(cv2.CAP_PROP_FPS)), (width, height), first)


class DropQueue(Generic[T]):
    """A bounded frame queue between a reader and a detector: when full the oldest frame is dropped and counted."""

    def __init__(self, maxlen: int, on_drop: Callable[[], None] | None = None) -> None:
        """on_drop: called for each frame dropped (the camera's ``sandtable_video_frames_dropped_total``)."""
        self._items: deque[T] = deque()
        self._maxlen = maxlen
        self._on_drop = on_drop
        self._cond = threading.Condition()
        self.dropped = 0
        self.closed = False

    def put(self, item: T) -> None:
        """Add a frame without ever blocking the reader."""
        with self._cond:
            if len(self._items) >= self._maxlen:
                self._items.popleft()
                self.dropped += 1
                if self._on_drop is not None:
                    self._on_drop()
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float) -> T | None:
        """The oldest frame, or None after ``timeout`` seconds (or once closed and empty)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._items:
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._items.popleft()

    def close(self) -> None:
        """No more frames will come."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
