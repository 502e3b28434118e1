"""Video commands (interfaces §6): ``video detect`` on a file or stream, ``video watch`` on configured cameras."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cli.main import JsonLogFlag, app, json_logs, settings, user_errors
from core.clock import WallClock
from core.errors import InvalidInput
from core.metrics import start_service
from core.timefmt import parse_rfc3339
from registry.models import Device
from store.evidence import EvidenceStore, evidence_root
from store.sql import make_engine

if TYPE_CHECKING:
    from store.evidence import CommunityEvidence

log = logging.getLogger(__name__)

video_app = typer.Typer(help="Video analytics: thrown objects (高空抛物) and falls.", no_args_is_help=True)
app.add_typer(video_app, name="video")

EvidenceOption = Annotated[
    Path | None,
    typer.Option(
        "--evidence-dir", help="where evidence JPEGs go, a folder per community (default: <var_dir>/evidence)"
    ),
]
CommunityOption = Annotated[
    str | None,
    typer.Option("--community", help="the cameras' community (default: from the registry); their evidence goes there"),
]


def _registered_communities(cameras: list[str]) -> dict[str, str]:
    """camera → its community in the configured registry (empty when there is no registry here)."""
    cfg = settings()
    if cfg.database_url is None and not cfg.sqlite_path.exists():
        return {}  # no registry on this machine; reading would create an empty database
    engine = make_engine(cfg)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Device.id, Device.community_id).where(Device.id.in_(cameras)))
            return {str(camera): str(community) for camera, community in rows}
    except SQLAlchemyError as err:
        log.warning("the registry could not be read, so the cameras' community is unknown: %s", err)
        return {}
    finally:
        engine.dispose()


def _evidence(cameras: list[str], community: str | None, evidence_dir: Path | None) -> CommunityEvidence | None:
    """The evidence folder of the cameras' community: --community, else the registry's; None (events
    without an image) when neither knows it. Evidence is kept per community and named by an opaque
    id, so that an alert can only ever show an image of its own community (docs/video.md)."""
    if community is not None and not 1 <= len(community) <= 32:
        raise InvalidInput("--community: a community id of 1 to 32 characters")
    store = EvidenceStore(evidence_dir if evidence_dir is not None else evidence_root(settings()))
    registered = _registered_communities(cameras)
    if community is not None:
        for camera, other in sorted(registered.items()):
            if other != community:
                raise InvalidInput(f"--community: camera {camera} belongs to community {other}, not {community}")
        return store.community(community)
    communities = sorted(set(registered.values()))
    if len(communities) > 1:
        raise InvalidInput(
            f"the cameras belong to several communities ({', '.join(communities)}): watch each with its --community"
        )
    unknown = [c for c in cameras if c not in registered]
    if unknown or not communities:
        log.warning(
            "camera %s is not in the registry: events go without evidence images (give --community C)", unknown[0]
        )
        return None
    return store.community(communities[0])


def _start_ms(start: str | None, source: str) -> int:
    """Wall time of frame 0: --start, else the file's modification time, else now (a stream)."""
    from analytics.video.frames import is_stream_url  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if start is not None:
        try:
            return parse_rfc3339(start)
        except ValueError:
            raise InvalidInput(
                f"--start: {start!r} is not an RFC 3339 time with an offset (e.g. 2026-05-01T08:00:00+08:00)"
            ) from None
    if not is_stream_url(source):
        path = Path(source)
        if path.is_file():
            return int(path.stat().st_mtime * 1000)
    return WallClock().now_ms()


@video_app.command("detect")
@user_errors
def detect(
    input_: Annotated[str, typer.Option("--input", help="video file, or an RTSP/HTTP stream URL")],
    camera: Annotated[str, typer.Option("--camera", help="the camera's device id (the events' device)")],
    calibration: Annotated[
        Path | None, typer.Option("--calibration", help="façade calibration JSON: thrown-object mode")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="RFC 3339 wall time of frame 0 (default: the file's mtime)")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="throw or fall (default: throw with a calibration, else fall)")
    ] = None,
    evidence_dir: EvidenceOption = None,
    community: CommunityOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="log lines as JSON lines too (the detections are JSON lines already)")
    ] = False,
) -> None:
    """Analyse a video; print one interfaces §2 event (JSON) per line for each detection."""
    json_logs(as_json)
    from analytics.video.calibration import load_calibration  # noqa: PLC0415 — CLI start-up: loaded only by this command
    from analytics.video.pipeline import Kind, choose_kind, detect_file  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if not camera.strip() or len(camera) > 64:
        raise InvalidInput("--camera: a device id of 1 to 64 characters")
    if kind is not None and kind not in {k.value for k in Kind}:
        raise InvalidInput(f"--kind: must be throw or fall, not {kind!r}")
    start_ms = _start_ms(start, input_)
    facade = load_calibration(calibration) if calibration is not None else None
    if facade is not None and facade.camera != camera:
        raise InvalidInput(f"--calibration {calibration} is for camera {facade.camera}, not {camera}")
    mode = choose_kind(Kind(kind) if kind else None, facade)
    evidence = _evidence([camera], community, evidence_dir)
    for event in detect_file(input_, camera, mode, facade, start_ms, evidence):
        typer.echo(json.dumps(event, ensure_ascii=False))
        sys.stdout.flush()


def _watch_token(token: str | None, token_file: Path | None) -> str:
    """The ingest token of ``video watch``: --token, or the first line of --token-file (one of them)."""
    if (token is None) == (token_file is None):
        raise InvalidInput("give the ingest token with --token or --token-file (one of them)")
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise InvalidInput(f"--token-file: cannot read {token_file} ({err.strerror})") from None
    if not (token or "").strip():
        raise InvalidInput("--token-file: empty" if token_file is not None else "--token: empty")
    return (token or "").strip()


@video_app.command("watch")
@user_errors
def watch(
    config: Annotated[Path, typer.Option("--config", help="JSON: cameras (id, url, kind, calibration)")],
    api: Annotated[str, typer.Option("--api", help="the ingest endpoint, e.g. http://host:8050/api/v1/events")],
    token: Annotated[str | None, typer.Option("--token", help="an ingest token of the cameras' community")] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="a file holding the token (a service's: not shown by ps, unlike --token)"),
    ] = None,
    evidence_dir: EvidenceOption = None,
    community: CommunityOption = None,
    as_json: JsonLogFlag = False,
) -> None:
    """Analyse camera streams continuously and post each detection to the ingest API (Ctrl-C stops)."""
    json_logs(as_json)
    from analytics.video.maintainer import VideoMaintainer, check_api_url, load_watch_config  # noqa: PLC0415 — CLI start-up: loaded only by this command

    check_api_url(api)
    token = _watch_token(token, token_file)
    watch_config, calibrations = load_watch_config(config)
    evidence = _evidence([c.id for c in watch_config.cameras], community, evidence_dir)
    start_service(settings().metrics_directory, "video")  # frames analysed and dropped per camera in GET /metrics
    maintainer = VideoMaintainer(watch_config, calibrations, api, token, evidence)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        log.info("signal %d: stopping", signum)
        maintainer.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    maintainer.run()
