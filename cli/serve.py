"""``manage.py serve``: the web app (Dash UI + HTTP API) under gunicorn."""

from __future__ import annotations

import socket
from typing import Annotated, Any

import typer
from gunicorn.app.base import BaseApplication

from cli.main import JsonLogFlag, app, json_logs, say, settings, user_errors
from core.errors import StoreUnavailable
from core.metrics import process_exited, start_service
from store.stores import open_stores

GUNICORN_JSON_LOGS: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "cli.main.JsonLineFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False}},
    # gunicorn merges this over its defaults key by key: their root logger names a "console" handler
    # that our "handlers" replaced, and dictConfig then fails ("Unable to configure root logger")
    "root": {"level": "INFO", "handlers": ["stderr"]},
}


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@app.command()
@user_errors
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on [SANDTABLE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port [SANDTABLE_PORT]")] = None,
    workers: Annotated[int | None, typer.Option(help="web worker processes [SANDTABLE_WEB_WORKERS]")] = None,
    as_json: JsonLogFlag = False,
) -> None:
    """Serve the web app (Dash UI + HTTP API) on --host/--port (default 127.0.0.1:8050)."""
    json_logs(as_json)
    from app import create_app  # noqa: PLC0415 — CLI start-up: loaded only by this command

    cfg = settings()
    host = host or cfg.host
    port = port or cfg.port
    if not port_free(host, port):
        raise StoreUnavailable(f"--port/SANDTABLE_PORT: port {port} on {host} is already in use")
    # Fail fast on a bad store, and migrate, before any worker starts; workers open their own.
    open_stores(cfg).engine.dispose()
    n_workers = workers or cfg.web_workers
    # each gunicorn worker (a fork) writes its ingest figures to this folder; GET /metrics reads them all
    start_service(cfg.metrics_directory, "web")

    class Server(BaseApplication):
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{host}:{port}",
                "workers": n_workers,
                "worker_class": "gthread",
                "threads": cfg.web_threads,
                "timeout": 120,
                "graceful_timeout": 10,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
                "preload_app": False,
                # gunicorn would take X-Forwarded-Proto from any loopback peer; the app alone decides,
                # from SANDTABLE_TRUSTED_PROXIES (api/access.py, TrustedProxyFix)
                "forwarded_allow_ips": "",
                # a worker that ended (recycled, killed): its live gauges no longer count
                "child_exit": lambda _server, worker: process_exited(worker.pid),
            }
            if as_json:  # gunicorn's own lines as JSON lines too (our loggers keep their handlers)
                options["logconfig_dict"] = GUNICORN_JSON_LOGS
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings=cfg).server

    say(f"Sandtable on http://{host}:{port}/", as_json)
    Server().run()
