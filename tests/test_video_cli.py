"""``manage.py video detect`` and ``video watch`` on video files written by the tests themselves."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from analytics.video.maintainer import EventPoster, WatchConfig
from core.settings import ROOT
from core.timefmt import parse_rfc3339
from tests import forked
from tests.video_synth import FacadeClip, FacadeScene, Move, Throw, courtyard, random_throw

START = "2026-05-01T08:00:00+08:00"
START_MS = parse_rfc3339(START)


def write_video(path: Path, frames: Iterator[tuple[float, Any]], fps: float, size: tuple[int, int]) -> Path:
    """Encode frames with OpenCV (mp4v for .mp4, MJPG for .avi)."""
    fourcc = cv2.VideoWriter.fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert writer.isOpened()
    for _, frame in frames:
        writer.write(frame)
    writer.release()
    return path


def throws_clip(floors: list[int], columns: list[int], seed: int, settle_s: float = 2.0) -> FacadeClip:
    """A façade clip with one throw per (floor, column), a couple of seconds apart."""
    scene = FacadeScene(width=480, height=270, fps=25.0, seed=seed)
    rng = np.random.default_rng(seed)
    actors: list[Any] = []
    t = settle_s
    for floor, column in zip(floors, columns, strict=True):
        throw = random_throw(scene, rng, t, floor, column)
        actors.append(throw)
        t = throw.end_s + 1.0
    lit = {(f, c): float((f + c) % 3 == 0) for f in range(1, 7) for c in range(1, 5)}
    return FacadeClip(scene, t + 0.5, actors, initial_lit=lit)


@dataclass
class ThrowVideo:
    """A thrown-object video file, its calibration and what was thrown."""

    video: Path
    calibration: Path
    throws: list[Throw]


@pytest.fixture(scope="module")
def throw_video(tmp_path_factory: pytest.TempPathFactory) -> ThrowVideo:
    """Three throws (floors 2, 4, 6) encoded as mp4v, with the façade calibration."""
    folder = tmp_path_factory.mktemp("throw")
    clip = throws_clip([2, 4, 6], [1, 3, 4], seed=21)
    scene = clip.scene
    video = write_video(folder / "facade.mp4", clip.frames(), scene.fps, (scene.width, scene.height))
    calibration = folder / "calibration.json"
    calibration.write_text(json.dumps(scene.calibration("TC-B7", "B7")), encoding="utf-8")
    return ThrowVideo(video, calibration, clip.throws)


@pytest.fixture(scope="module")
def fall_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A courtyard clip (MJPG) in which a person walks in, falls and lies still."""
    clip = courtyard([Move("walk", 3.0, speed=0.5), Move("stand", 0.5), Move("fall", 0.7), Move("lie", 6.5)])
    path = tmp_path_factory.mktemp("fall") / "courtyard.avi"
    return write_video(path, clip.frames(), clip.fps, (clip.width, clip.height))


def video_env(var_dir: Path) -> dict[str, str]:
    """The environment of a manage.py child: settings only from here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDTABLE_")}
    env["SANDTABLE_VAR_DIR"] = str(var_dir)
    return env


def manage(var_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py video …`` and wait for it (a process of its own: tests/forked.py)."""
    return forked.run(["video", *args], video_env(var_dir), ROOT, var_dir / "manage", timeout)


def detect_throws(var_dir: Path, video: ThrowVideo, *extra: str) -> subprocess.CompletedProcess[str]:
    """``video detect`` on the thrown-object video with its calibration."""
    return manage(
        var_dir,
        "detect",
        "--input",
        str(video.video),
        "--camera",
        "TC-B7",
        "--calibration",
        str(video.calibration),
        *extra,
    )


def events_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The JSON lines a detect run printed."""
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def assert_valid_event(event: dict[str, Any], event_type: str, device: str, var_dir: Path) -> None:
    """The event has the shape interfaces §2 asks for; its image is a JPEG of Wanhu Xincun's evidence."""
    assert set(event) == {"id", "type", "device", "ts", "data"}
    assert event["type"] == event_type
    assert event["device"] == device
    assert 1 <= len(event["id"]) <= 64
    assert event["ts"].endswith("Z") or "+" in event["ts"][-6:]
    parse_rfc3339(event["ts"])
    image = var_dir / "evidence" / "wanhu" / f"{event['data']['image']}.jpg"
    assert image.is_file() and image.read_bytes()[:2] == b"\xff\xd8"  # a JPEG


# --- detect -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def throw_run(throw_video: ThrowVideo, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """One detect run over the thrown-object video."""
    var = tmp_path_factory.mktemp("var")
    result = detect_throws(var, throw_video, "--start", START, "--community", "wanhu")
    return var, events_of(result)


def test_detect_prints_one_throw_event_per_thrown_object(
    throw_run: tuple[Path, list[dict[str, Any]]], throw_video: ThrowVideo
) -> None:
    var, events = throw_run
    assert len(events) == len(throw_video.throws) == 3
    for event, throw in zip(events, throw_video.throws, strict=True):
        assert_valid_event(event, "camera.throw", "TC-B7", var)
        assert event["data"]["origin"] == {"building": "B7", "floor": throw.floor, "column": throw.column}
        # ts = --start + the time of the first trajectory point, which is when the object was released
        assert abs(parse_rfc3339(event["ts"]) - START_MS - throw.start_s * 1000) <= 200


def test_the_trajectory_falls_through_the_image(throw_run: tuple[Path, list[dict[str, Any]]]) -> None:
    _, events = throw_run
    for event in events:
        trajectory = event["data"]["trajectory"]
        assert len(trajectory) >= 6
        assert trajectory[0][0] == 0
        times = [p[0] for p in trajectory]
        assert times == sorted(times)
        assert trajectory[-1][2] > trajectory[0][2] + 20  # y grows downwards: it fell


def test_evidence_images_go_to_the_communitys_folder_under_an_opaque_id(
    throw_run: tuple[Path, list[dict[str, Any]]],
) -> None:
    var, events = throw_run
    for event in events:
        image = event["data"]["image"]
        assert re.fullmatch(r"[0-9a-f]{32}", image)  # an id, no path of this machine
        path = var / "evidence" / "wanhu" / f"{image}.jpg"
        assert hashlib.sha256(path.read_bytes()).hexdigest()[:32] == image
        assert cv2.imread(str(path)) is not None
    assert len({e["data"]["image"] for e in events}) == len(events)


def test_a_camera_of_no_known_community_gives_events_without_images(throw_video: ThrowVideo, tmp_path: Path) -> None:
    result = detect_throws(tmp_path, throw_video, "--start", START)
    events = events_of(result)
    assert len(events) == 3 and all("image" not in e["data"] for e in events)
    assert "--community" in result.stderr  # it says how to have them
    assert not (tmp_path / "evidence").exists()


def test_running_the_same_file_again_gives_the_same_ids(
    throw_run: tuple[Path, list[dict[str, Any]]], throw_video: ThrowVideo, tmp_path: Path
) -> None:
    _, first = throw_run
    again = events_of(detect_throws(tmp_path, throw_video, "--start", START))
    assert [e["id"] for e in again] == [e["id"] for e in first]


def test_without_start_the_file_time_is_frame_zero(throw_video: ThrowVideo, tmp_path: Path) -> None:
    video = tmp_path / "copy.mp4"
    video.write_bytes(throw_video.video.read_bytes())
    os.utime(video, (START_MS / 1000, START_MS / 1000))
    events = events_of(
        manage(
            tmp_path,
            "detect",
            "--input",
            str(video),
            "--camera",
            "TC-B7",
            "--calibration",
            str(throw_video.calibration),
        )
    )
    first = throw_video.throws[0]
    assert abs(parse_rfc3339(events[0]["ts"]) - START_MS - first.start_s * 1000) <= 200


def test_detect_without_calibration_looks_for_falls(fall_video: Path, tmp_path: Path) -> None:
    events = events_of(
        manage(
            tmp_path,
            "detect",
            *("--input", str(fall_video), "--camera", "CAM-Y1", "--start", START, "--community", "wanhu"),
        )
    )
    assert len(events) == 1
    event = events[0]
    assert_valid_event(event, "camera.fall", "CAM-Y1", tmp_path)
    bbox = event["data"]["bbox"]
    assert len(bbox) == 4 and all(isinstance(v, int) for v in bbox)
    w, h = bbox[2], bbox[3]
    assert w > 2 * h
    assert abs(parse_rfc3339(event["ts"]) - START_MS - 4200) <= 600  # the fall ends about 4.2 s in


def test_a_facade_video_without_calibration_gives_no_throw_events(throw_video: ThrowVideo, tmp_path: Path) -> None:
    events = events_of(manage(tmp_path, "detect", "--input", str(throw_video.video), "--camera", "TC-B7"))
    assert all(e["type"] == "camera.fall" for e in events)


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_a_missing_input_is_one_line(tmp_path: Path) -> None:
    result = manage(tmp_path, "detect", "--input", str(tmp_path / "none.mp4"), "--camera", "C1")
    _one_line_error(result, "--input", "no such file")


def test_an_input_that_is_not_video_is_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 100, encoding="utf-8")
    _one_line_error(manage(tmp_path, "detect", "--input", str(text), "--camera", "C1"), "--input")


def test_an_unreachable_stream_is_one_line(tmp_path: Path) -> None:
    result = manage(tmp_path, "detect", "--input", "rtsp://127.0.0.1:9/none", "--camera", "C1", timeout=90)
    _one_line_error(result, "--input", "rtsp://127.0.0.1:9/none")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({"floors": 0}, ["floors", "greater than or equal to 1"]),
        ({"facade": [[0, 0], [10, 0], [10, 10]]}, ["facade", "at least 4"]),
        ({"facade": [[0, 0], [400, 0], [0, 300], [400, 300]]}, ["facade", "convex"]),
        ({"camera": "TC-OTHER"}, ["TC-OTHER", "TC-B7"]),
        ({"zoom": 2}, ["zoom", "Extra inputs"]),
    ],
)
def test_a_bad_calibration_is_one_line_naming_the_field(
    throw_video: ThrowVideo, tmp_path: Path, content: dict[str, Any], words: list[str]
) -> None:
    calibration = json.loads(throw_video.calibration.read_text(encoding="utf-8"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**calibration, **content}), encoding="utf-8")
    result = manage(
        tmp_path, "detect", "--input", str(throw_video.video), "--camera", "TC-B7", "--calibration", str(bad)
    )
    _one_line_error(result, *words)


def test_a_calibration_that_is_not_json_is_one_line(throw_video: ThrowVideo, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("floors = 6", encoding="utf-8")
    result = manage(
        tmp_path, "detect", "--input", str(throw_video.video), "--camera", "TC-B7", "--calibration", str(bad)
    )
    _one_line_error(result, "not JSON")


@pytest.mark.parametrize("start", ["yesterday", "2026-05-01T08:00:00", "2026-13-01T08:00:00+08:00"])
def test_a_bad_start_is_one_line(throw_video: ThrowVideo, tmp_path: Path, start: str) -> None:
    result = manage(tmp_path, "detect", "--input", str(throw_video.video), "--camera", "C1", "--start", start)
    _one_line_error(result, "--start", "RFC 3339")


def test_throw_mode_without_calibration_is_one_line(throw_video: ThrowVideo, tmp_path: Path) -> None:
    result = manage(tmp_path, "detect", "--input", str(throw_video.video), "--camera", "C1", "--kind", "throw")
    _one_line_error(result, "calibration")


# --- watch --------------------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """What a tiny ingest endpoint received, and how it answers."""

    posts: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # status codes to give first, then 202
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def ingest() -> Iterator[tuple[str, Recorder]]:
    """A local HTTP server standing in for ``POST /api/v1/events``."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with recorder.lock:
                recorder.posts.append((self.path, dict(self.headers), json.loads(body)))
                status = recorder.answers.pop(0) if recorder.answers else 202
            reply = json.dumps({"accepted": 1, "duplicates": 0, "rejected": []}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/events", recorder
    server.shutdown()
    server.server_close()


def _events_posted(recorder: Recorder) -> list[dict[str, Any]]:
    with recorder.lock:
        bodies = [body for _, _, body in recorder.posts]
    return [e for body in bodies for e in (body if isinstance(body, list) else [body])]


def test_watch_posts_detections_reconnects_and_stops_on_sigterm(ingest: tuple[str, Recorder], tmp_path: Path) -> None:
    url, recorder = ingest
    clip = throws_clip([4], [2], seed=5, settle_s=1.5)
    scene = clip.scene
    video = write_video(tmp_path / "camera.mp4", clip.frames(), scene.fps, (scene.width, scene.height))
    config = tmp_path / "cameras.json"
    (tmp_path / "tc.json").write_text(json.dumps(scene.calibration("TC-W1", "B9")), encoding="utf-8")
    config.write_text(
        json.dumps(
            {
                "cameras": [
                    {"id": "TC-W1", "url": str(video), "kind": "throw", "calibration": "tc.json"},
                    {"id": "CAM-GONE", "url": str(tmp_path / "gone.mp4"), "kind": "fall"},
                ],
                "reconnect_initial_s": 0.2,
                "reconnect_max_s": 1.0,
            }
        ),
        encoding="utf-8",
    )
    command = [
        "video",
        "watch",
        "--config",
        str(config),
        "--api",
        url,
        "--token",
        "secret-token",
        "--community",
        "wanhu",
    ]
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *command],
        env=video_env(tmp_path / "var"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_events_posted(recorder)) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        events = _events_posted(recorder)
        assert len(events) >= 2, "the file stream was not analysed twice"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "CAM-GONE" in stderr  # the broken camera was logged, and the other went on
    assert "reconnecting" in stderr
    path, headers, _ = recorder.posts[0]
    assert path == "/api/v1/events"
    assert headers["Authorization"] == "Bearer secret-token"
    assert headers["Content-Type"] == "application/json"
    for event in events[:2]:
        assert_valid_event(event, "camera.throw", "TC-W1", tmp_path / "var")
        assert event["data"]["origin"] == {"building": "B9", "floor": 4, "column": 2}
    assert events[0]["id"] != events[1]["id"]  # each replay is a new stream session with its own time


def test_watch_with_a_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "cameras.json"
    config.write_text(json.dumps({"cameras": [{"id": "TC-1", "url": "x.mp4", "kind": "throw"}]}), encoding="utf-8")
    result = manage(tmp_path, "watch", "--config", str(config), "--api", "http://127.0.0.1:9/api", "--token", "t")
    _one_line_error(result, "cameras.0", "calibration")


def _poster(url: str) -> tuple[EventPoster, threading.Event]:
    config = WatchConfig.model_validate(
        {"cameras": [{"id": "C", "url": "x", "kind": "fall"}], "post_retry_s": 0.05, "post_attempts": 3}
    )
    stop = threading.Event()
    poster = EventPoster(url, "tok", config, stop)
    poster.thread.start()
    return poster, stop


def _wait(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_poster_retries_when_the_api_is_unavailable(ingest: tuple[str, Recorder]) -> None:
    url, recorder = ingest
    recorder.answers = [503, 503]
    poster, stop = _poster(url)
    poster.submit({"id": "e1", "type": "camera.fall", "device": "C", "ts": "2026-05-01T00:00:00Z", "data": {}})
    _wait(lambda: poster.posted == 1)
    stop.set()
    poster.thread.join(5)
    assert poster.posted == 1 and poster.dropped == 0
    assert len(recorder.posts) == 3


def test_the_poster_does_not_retry_what_the_api_refuses(ingest: tuple[str, Recorder]) -> None:
    url, recorder = ingest
    recorder.answers = [401]
    poster, stop = _poster(url)
    poster.submit({"id": "e1", "type": "camera.fall", "device": "C", "ts": "2026-05-01T00:00:00Z", "data": {}})
    _wait(lambda: poster.dropped == 1)
    stop.set()
    poster.thread.join(5)
    assert poster.dropped == 1 and poster.posted == 0
    assert len(recorder.posts) == 1
