"""deploy/: the systemd units' commands, run exactly as systemd would run them (their ExecStart,
Environment and EnvironmentFile; without systemd), behind Debian's nginx with the site of
deploy/nginx/sandtable.conf on loopback, over TLS with a self-signed certificate made here; a
browser loads the wall over HTTPS and sees an event posted through nginx become an alert."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import typer.main
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from sqlalchemy import select

from auth.models import AuditEntry
from auth.service import create_token
from cli.main import app, register_commands
from core.settings import ROOT, Settings, load_settings
from memory.models import ArchivedEvent
from store.stores import Stores
from tests.browser import until, wait_for
from tests.conftest import ARTIFACTS, env_for, free_port, ingest_token
from tests.test_pipeline import devices_of

register_commands()

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
NGINX = Path("/usr/sbin/nginx")
CODE = "/opt/sandtable"


# --- systemd's unit files, read as systemd reads them ------------------------------------------


@dataclass
class Unit:
    """The [Service] of a unit file: its assignments (a key may repeat), in order."""

    name: str
    entries: list[tuple[str, str]]

    @classmethod
    def read(cls, path: Path) -> Unit:
        """Parse a unit file (sections, comments, ``Key=Value``; no continuation lines are used)."""
        entries, section = [], ""
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            entries.append((f"{section}.{key.strip()}", value.strip()))
        return cls(path.name, entries)

    def all(self, key: str) -> list[str]:
        """Every value of Service.KEY (or Section.KEY)."""
        full = key if "." in key else f"Service.{key}"
        return [v for k, v in self.entries if k == full]

    def one(self, key: str) -> str:
        """The single value of a key."""
        values = self.all(key)
        assert len(values) == 1, f"{self.name}: {key} {values}"
        return values[0]


def specifiers(text: str, instance: str) -> str:
    """systemd's specifiers: %i the instance, %% a percent sign."""
    return re.sub(r"%(.)", lambda m: {"i": instance, "%": "%"}[m.group(1)], text)


def command_line(text: str, instance: str, env: dict[str, str]) -> list[str]:
    """An Exec line as systemd splits and expands it: words (quotes as in a shell), specifiers, then
    ``${NAME}`` from the environment and ``$$`` as a dollar sign."""
    words = shlex.split(specifiers(text, instance))
    return [re.sub(r"\$\$|\$\{(\w+)\}", lambda m: env[m.group(1)] if m.group(1) else "$", w) for w in words]


def environment_file(path: Path) -> dict[str, str]:
    """An EnvironmentFile as systemd reads it: KEY=VALUE lines, comments and blank lines skipped."""
    values = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


class Host:
    """The production paths of deploy/, moved under a temporary folder (the only adaptation)."""

    def __init__(self, root: Path, env_values: dict[str, str]) -> None:
        self.root = root
        self.paths = {
            CODE: str(ROOT),
            "/etc/sandtable": str(root / "etc"),
            "/var/lib/sandtable": str(root / "var"),
            "/var/cache/sandtable": str(root / "cache"),
            "/var/backups/sandtable": str(root / "backups"),
        }
        for folder in ("etc", "var", "cache", "backups"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        (root / "etc" / "sandtable.env").write_text(
            "".join(f"{k}={v}\n" for k, v in env_values.items()), encoding="utf-8"
        )
        self.processes: list[subprocess.Popen[bytes]] = []

    def adapt(self, text: str) -> str:
        """A path of the production host, here."""
        for production, here in self.paths.items():
            text = text.replace(production, here)
        return text

    def environment(self, unit: Unit, instance: str) -> dict[str, str]:
        """The environment systemd gives the unit's process: a clean one, Environment=, EnvironmentFile=."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANDTABLE_")}
        for assignment in unit.all("Environment"):
            key, _, value = specifiers(assignment, instance).partition("=")
            env[key] = self.adapt(value)
        for path in unit.all("EnvironmentFile"):
            env.update(environment_file(Path(self.adapt(path))))
        return env

    def command(self, unit: Unit, instance: str = "", key: str = "ExecStart") -> tuple[list[str], dict[str, str]]:
        """The unit's command line and environment on this host."""
        env = self.environment(unit, instance)
        return command_line(self.adapt(unit.one(key)), instance, env), env

    def start(self, unit: Unit, instance: str = "") -> subprocess.Popen[bytes]:
        """Start a long-running unit's ExecStart as systemd would (its user aside), its log in the folder."""
        argv, env = self.command(unit, instance)
        log = (self.root / f"{unit.name.replace('@', '-')}{instance}.log").open("wb")
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=self.adapt(unit.one("WorkingDirectory")),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped with its children
        )
        self.processes.append(process)
        return process

    def run(self, unit: Unit, instance: str = "") -> subprocess.CompletedProcess[str]:
        """Run a oneshot unit: ExecStart, then ExecStartPost when it succeeded (as systemd does)."""
        argv, env = self.command(unit, instance)
        cwd = self.adapt(unit.one("WorkingDirectory"))
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode == 0:
            for post in unit.all("ExecStartPost"):
                post_argv = command_line(self.adapt(post), instance, env)
                subprocess.run(post_argv, env=env, cwd=cwd, check=True, timeout=60)
        return done

    def check_running(self) -> None:
        """Fail with the log of any process that has stopped (systemd would restart it; a test reports it)."""
        for process in self.processes:
            if process.poll() is not None:
                logs = {p.name: p.read_text(errors="replace")[-1500:] for p in self.root.glob("*.log")}
                raise AssertionError(f"{process.args!r} exited with {process.returncode}: {logs}")

    def stop(self) -> None:
        """Stop every process started (SIGTERM to its group, as systemd's KillMode=control-group)."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def unit(name: str) -> Unit:
    """A unit of deploy/systemd."""
    return Unit.read(UNITS / name)


def self_signed(folder: Path, days: int = 30) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandtable.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "sandtable.crt", folder / "sandtable.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def nginx_site(host: Host, https_port: int, http_port: int, web_ports: tuple[int, int]) -> str:
    """deploy/nginx/sandtable.conf with its ports and paths moved to this host (nothing else changed)."""
    site = (DEPLOY / "nginx" / "sandtable.conf").read_text(encoding="utf-8")
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)  # loopback IPv4 only
    site = site.replace("listen 443 ", f"listen 127.0.0.1:{https_port} ").replace(
        "listen 80;", f"listen 127.0.0.1:{http_port};"
    )
    site = site.replace("127.0.0.1:8050", f"127.0.0.1:{web_ports[0]}").replace(
        "127.0.0.1:8051", f"127.0.0.1:{web_ports[1]}"
    )
    return host.adapt(site.replace("/etc/sandtable/tls/", str(host.root / "etc" / "tls") + "/"))


def start_nginx(host: Host, site: str) -> subprocess.Popen[bytes]:
    """Debian's nginx in the foreground with a configuration of its own that includes the site."""
    prefix = host.root / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    (prefix / "sandtable.conf").write_text(site, encoding="utf-8")
    user = "user root;\n" if os.geteuid() == 0 else ""  # its workers read the test's private folders
    temp = "".join(
        f"{kind}_temp_path {prefix}/tmp/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\ninclude /etc/nginx/mime.types;\naccess_log {prefix}/access.log;\n{temp}"
        f"include {prefix}/sandtable.conf;\n}}\n",
        encoding="utf-8",
    )
    check = subprocess.run(
        [str(NGINX), "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [str(NGINX), "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    host.processes.append(process)
    return process


def production_env(world: Stores, host: Host, cert: Path, web_port: int) -> dict[str, str]:
    """deploy/sandtable.env.example's values, the stores, paths and ports moved to this test's."""
    values = environment_file(DEPLOY / "sandtable.env.example")
    mine = env_for(world.settings)
    values.update(
        SANDTABLE_REDIS_URL=mine["SANDTABLE_REDIS_URL"],
        SANDTABLE_DATABASE_URL=mine["SANDTABLE_DATABASE_URL"],
        SANDTABLE_SECRET_KEY=mine["SANDTABLE_SECRET_KEY"],
        SANDTABLE_KEY_PREFIX=world.settings.key_prefix,  # the test's Redis namespace
        SANDTABLE_VAR_DIR=str(host.root / "var"),
        SANDTABLE_PORT=str(web_port),
        SANDTABLE_WEB_WORKERS="1",  # two instances of one process each: a 2-core machine
        SANDTABLE_TLS_CERTS=str(cert),
    )
    return values


@pytest.fixture
def station(world: Stores, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Web (two instances), a worker and nginx started from deploy/, on loopback."""
    web_ports = (free_port(), free_port())
    https_port, http_port = free_port(), free_port()
    host = Host(tmp_path / "host", {})
    cert, _ = self_signed(host.root / "etc" / "tls")
    host = Host(tmp_path / "host", production_env(world, host, cert, web_ports[0]))
    try:
        for port in web_ports:
            host.start(unit("sandtable-web@.service"), str(port))
        host.start(unit("sandtable-worker@.service"), "1")
        host.start(unit("sandtable-archive.service"))
        start_nginx(host, nginx_site(host, https_port, http_port, web_ports))
        base = f"https://127.0.0.1:{https_port}"

        def both_up() -> bool:
            host.check_running()
            for port in web_ports:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        continue
                return False
            return True

        until(both_up, "both web instances to answer", timeout=180)
        yield {"base": base, "http": f"http://127.0.0.1:{http_port}", "cert": cert, "host": host, "world": world}
    finally:
        host.stop()


def chromium_accepting(cert_note: str) -> Any:
    """Headless Chromium that accepts the test's self-signed certificate."""
    options = Options()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1920,1080",
        "--lang=zh-CN",
    ):
        options.add_argument(arg)
    options.set_capability("acceptInsecureCerts", True)  # cert_note: self-signed, made by the test
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def test_the_units_behind_nginx_serve_the_wall_over_https(station: dict[str, Any]) -> None:
    base, world, cert = station["base"], station["world"], station["cert"]

    # plain HTTP is sent to HTTPS; HTTPS answers with HSTS, and /assets comes from nginx itself
    redirect = requests.get(station["http"] + "/wall", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301 and redirect.headers["Location"].startswith("https://")
    health = requests.get(base + "/healthz", verify=str(cert), timeout=10)
    assert health.status_code == 200
    assert health.headers["Strict-Transport-Security"] == "max-age=31536000"
    css = next(p.name for p in (ROOT / "assets" / "css").glob("*.css"))
    asset = requests.get(f"{base}/assets/css/{css}", verify=str(cert), timeout=10)
    assert asset.status_code == 200 and asset.headers["X-Content-Type-Options"] == "nosniff"
    assert asset.content == (ROOT / "assets" / "css" / css).read_bytes()
    assert requests.get(base + "/metrics", verify=str(cert), timeout=10).status_code == 404

    # a login through nginx: the Origin check sees the browser's https address, the cookie is Secure,
    # and the audit log records nginx's peer, not the X-Forwarded-For the client made up
    session = requests.Session()
    login = session.post(
        base + "/login",
        data={"username": "police.wanhu", "password": "sandtable2026", "next": "/"},
        headers={"Origin": base, "X-Forwarded-For": "203.0.113.77", "X-Forwarded-Proto": "http"},
        allow_redirects=False,
        verify=str(cert),
        timeout=30,
    )
    assert login.status_code == 302, login.text[:300]
    assert "Secure" in login.headers["Set-Cookie"] and "HttpOnly" in login.headers["Set-Cookie"]
    assert login.headers["Content-Security-Policy"].count("frame-ancestors 'none'") == 1
    with world.sessions() as s:
        ips = s.scalars(
            select(AuditEntry.ip).where(AuditEntry.action == "login", AuditEntry.target == "police.wanhu")
        ).all()
    assert ips and set(ips) == {"127.0.0.1"}

    # an event posted through nginx is analysed by the worker unit; the wall shows its alert
    detector = devices_of(world, "smoke_detector", 1)[0]
    event: dict[str, Any] = {
        "type": "smoke.alarm",
        "device": detector,
        "ts": int(time.time() * 1000),
        "data": {"level": "alarm"},
    }
    posted = requests.post(
        base + "/api/v1/events",
        json=event,
        headers={"Authorization": f"Bearer {ingest_token(world)}"},
        verify=str(cert),
        timeout=30,
    )
    assert posted.status_code == 202 and posted.json()["accepted"] == 1
    with world.sessions.begin() as s:
        _, token = create_token(s, scope="role", role="wall", community="wanhu", name="station wall")
    driver = chromium_accepting("self-signed")
    try:
        driver.get(f"{base}/wall?kiosk=1&token={token}")
        wait_for(driver, "path.st-bld", minimum=128)  # the map's buildings drawn
        wait_for(driver, ".st-feed", text="烟感报警")  # the worker's alert, on the wall
        assert driver.current_url.startswith("https://") and "token" not in driver.current_url
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "deploy-wall-over-https.png"))
    finally:
        driver.quit()

    # ... and copied into the event archive by the archive unit (the worker unit does not archive)
    def archived() -> bool:
        station["host"].check_running()
        with world.sessions() as s:
            return s.scalar(select(ArchivedEvent.type).where(ArchivedEvent.device_id == detector)) == "smoke.alarm"

    until(archived, "the archive unit to archive the posted event", timeout=60)

    # the backup unit's command (a oneshot with a shell and the date in its folder's name)
    done = station["host"].run(unit("sandtable-backup.service"))
    assert done.returncode == 0, done.stderr
    backups = list((station["host"].root / "backups").iterdir())
    assert len(backups) == 1 and json.loads(done.stdout)["out"] == str(backups[0])
    assert re.fullmatch(r"\d{8}T\d{6}Z", backups[0].name)


def test_every_unit_runs_a_real_command_as_the_sandtable_user() -> None:
    commands = {" ".join(path[1:]) for path in _command_paths(typer.main.get_command(app))}
    services = sorted(UNITS.glob("*.service"))
    assert {p.name for p in services} >= {
        "sandtable-web@.service",
        "sandtable-worker@.service",
        "sandtable-archive.service",
        "sandtable-video@.service",
        "sandtable-notify.service",
        "sandtable-reports.service",
        "sandtable-purge.service",
        "sandtable-backup.service",
    }
    for path in services:
        service = Unit.read(path)
        assert service.one("User") == "sandtable" and service.one("Group") == "sandtable", path.name
        assert service.one("EnvironmentFile") == "/etc/sandtable/sandtable.env", path.name
        assert service.one("Restart") in ("always", "on-failure"), path.name
        assert service.one("NoNewPrivileges") == "yes" and service.one("ProtectSystem") == "strict", path.name
        args = service.one("ExecStart").split("manage.py ", 1)[1].replace("'", " ").split()
        name = " ".join(args[: next(i for i, a in enumerate(args) if a.startswith("-"))])
        assert name in commands, f"{path.name}: manage.py {name} is no command"
        assert "--json" in args, f"{path.name}: the journal gets JSON lines"
    for timer in UNITS.glob("*.timer"):
        assert (UNITS / timer.name.replace(".timer", ".service")).exists()
        assert Unit.read(timer).all("Timer.OnCalendar"), timer.name


def _command_paths(group: Any, path: tuple[str, ...] = ("manage.py",)) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _command_paths(command, (*path, name))
        yield (*path, name)


def test_the_sample_environment_lists_every_setting_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DEPLOY / "sandtable.env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?SANDTABLE_([A-Z0-9_]+)=", text, flags=re.MULTILINE))
    missing = sorted(f"SANDTABLE_{n.upper()}" for n in Settings.model_fields if n.upper() not in listed)
    assert missing == [], f"add these settings to deploy/sandtable.env.example: {missing}"
    for key in list(os.environ):
        if key.startswith("SANDTABLE_"):
            monkeypatch.delenv(key)
    for key, value in environment_file(DEPLOY / "sandtable.env.example").items():
        monkeypatch.setenv(key, value)
    loaded = load_settings()  # every value is valid
    assert loaded.trusted_proxies == "127.0.0.1" and loaded.scheduled_jobs == "timers"
    assert loaded.redis_url and loaded.redis_url.startswith("redis+cluster://")


def test_forwarded_headers_are_ignored_from_an_untrusted_peer(world: Stores) -> None:
    from app import create_app  # noqa: PLC0415 — the app is built only by the tests that need it

    proxied = world.settings.model_copy(update={"trusted_proxies": "10.0.0.5"})
    server = create_app(stores=Stores(proxied, world.engine, world.keys)).server
    form = {"username": "police.wanhu", "password": "sandtable2026", "next": "/"}
    for peer, secure in (("10.0.0.5", True), ("198.51.100.7", False)):
        answer = server.test_client().post(
            "/login",
            data=form,
            environ_base={"REMOTE_ADDR": peer},
            headers={
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "sandtable.example",
                "Origin": "https://sandtable.example",
            },
        )
        # the proxy's word is taken (the session cookie is Secure: the browser used https); anyone else's is not
        assert answer.status_code == 302
        assert ("Secure" in answer.headers["Set-Cookie"]) is secure
