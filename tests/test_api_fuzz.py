"""The API fuzzed from its own OpenAPI document (issue #21): schemathesis draws requests for every
operation of /api/v1/openapi.json and each is sent to a real server on a copy of the demo registry
with each role's token (admin, police, grid worker of wanhu-G1, property, wall, ingest, none).

Every answer must: not be a 5xx; have a documented status, content type, headers and body schema;
hold nothing outside the caller's scope (a grid worker: only their grid's rows; every community
token: only its community's rows); give the wall and property staff no personal data (no whole ID
number or phone); and a refused request (4xx) must write nothing — the business tables' row counts
and the Redis event streams are the same after it as before (the audit log of a denial is expected
and not counted).

Bounded and repeatable: ``FUZZ_EXAMPLES`` (env ST_FUZZ_EXAMPLES, default 4) examples per
operation, hypothesis derandomized (its seed fixed by the test's name), no example database."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select, text

from api.openapi import document
from auth.service import create_token
from core.settings import Settings
from registry.models import Device, Household, Residency
from store.stores import Stores
from tests.conftest import DEMO_TEMPLATE, LiveServer, close_world, open_world

FUZZ_EXAMPLES = int(os.environ.get("ST_FUZZ_EXAMPLES", "4"))
COMMUNITY = "wanhu"
GRID = "wanhu-G1"
ROLES = ("admin", "police", "grid_worker", "property", "wall", "ingest", "none")
NO_PERSONAL_DATA = ("wall", "property")
NOT_COUNTED = {"audit_log", "audit_purge_floor", "api_token", "web_session"}  # denials are audited
ID_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9X](?![0-9])")
PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SCHEMA = schemathesis.openapi.from_dict(document())
OPERATIONS = [(path, method) for path, item in document()["paths"].items() for method in item]


@pytest.fixture(scope="module")
def fuzz_world(
    demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory, redis_url: str, request: pytest.FixtureRequest
) -> Iterator[Stores]:
    """One private copy of the demo registry for the whole module (the requests may write to it)."""
    root = tmp_path_factory.mktemp("fuzz")
    url = demo_settings.effective_database_url
    if url.startswith("sqlite:///"):
        target = root / "world.db"
        shutil.copyfile(Path(url.removeprefix("sqlite:///")), target)
        database = f"sqlite:///{target}"
    else:
        pg = request.getfixturevalue("pg_server")
        database = pg.url(pg.create_database(template=DEMO_TEMPLATE))
    opened = open_world(demo_settings, root, database, redis_url)
    yield opened
    close_world(opened)


@pytest.fixture(scope="module")
def fuzz_server(fuzz_world: Stores) -> Iterator[LiveServer]:
    server = LiveServer(fuzz_world.settings)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(fuzz_world: Stores) -> dict[str, dict[str, str]]:
    """The Authorization header of each role (none: no header)."""
    out: dict[str, dict[str, str]] = {"none": {}}
    with fuzz_world.sessions.begin() as session:
        for role in ROLES[:-2]:
            _, raw = create_token(
                session,
                scope="role",
                role=role,
                community=None if role == "admin" else COMMUNITY,
                grid=GRID if role == "grid_worker" else None,
                name=f"fuzz {role}",
            )
            out[role] = {"Authorization": f"Bearer {raw}"}
        _, raw = create_token(session, scope="ingest", community=COMMUNITY, name="fuzz ingest")
        out["ingest"] = {"Authorization": f"Bearer {raw}"}
    return out


@pytest.fixture(scope="module")
def grid_rows(fuzz_world: Stores) -> dict[str, set[str]]:
    """The ids of the devices, households and people of the grid worker's grid."""
    with fuzz_world.sessions() as session:
        households = set(session.scalars(select(Household.id).where(Household.grid_id == GRID)))
        return {
            "devices": set(session.scalars(select(Device.id).where(Device.grid_id == GRID))),
            "households": households,
            "people": set(session.scalars(select(Residency.person_id).where(Residency.household_id.in_(households)))),
        }


class Snapshot:
    """What a refused request must not change: the row count of each business table and the length
    of each Redis stream of the world's namespace."""

    def __init__(self, world: Stores) -> None:
        self.world = world
        with world.engine.connect() as conn:
            names = [n for n in world.engine.dialect.get_table_names(conn) if n not in NOT_COUNTED]
        names = [n for n in names if n != "alembic_version"]
        self.query = text("SELECT " + ", ".join(f'(SELECT count(*) FROM "{n}")' for n in names))
        self.names = names

    def take(self) -> dict[str, int]:
        with self.world.engine.connect() as conn:
            counts = dict(zip(self.names, conn.execute(self.query).one(), strict=True))
        r = self.world.redis
        for key in r.scan_iter(match=f"{self.world.settings.key_prefix}:*", _type="STREAM", count=1000):
            counts[f"redis {key!r}"] = r.xlen(key)
        return counts


@pytest.fixture(scope="module")
def snapshot(fuzz_world: Stores) -> Snapshot:
    return Snapshot(fuzz_world)


def out_of_scope(role: str, path: str, body: Any, grid_rows: dict[str, set[str]]) -> list[str]:
    """What an answer holds that the role may not see (empty when nothing)."""
    problems: list[str] = []
    rows = body if isinstance(body, list) else body.get("alerts") if isinstance(body, dict) else None
    if role in ("admin", "none", "ingest") or not isinstance(rows, list):
        return problems
    for row in rows:
        if isinstance(row, dict) and row.get("community") not in (None, COMMUNITY):
            problems.append(f"{row.get('id')} of {row.get('community')}")
    if role == "grid_worker":
        kind = path.rsplit("/", 1)[-1]
        if kind in grid_rows:
            problems += [f"{kind} {row['id']} outside {GRID}" for row in rows if row["id"] not in grid_rows[kind]]
        if kind in ("alerts", "state"):
            problems += [f"alert {a['id']} of grid {a.get('grid')}" for a in rows if a.get("grid") != GRID]
    return problems


def is_json_success(response: schemathesis.Response) -> bool:
    """A 2xx answer with a JSON body."""
    types = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
    return 200 <= response.status_code < 300 and "json" in types[0]


def personal_data(role: str, response: schemathesis.Response, sent: str) -> list[str]:
    """Whole ID numbers or phones in an answer to the wall or property staff (not echoes of the request)."""
    if role not in NO_PERSONAL_DATA or not is_json_success(response):
        return []
    found = ID_NUMBER.findall(response.text) + PHONE.findall(response.text)
    return [f for f in found if f not in sent]


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_every_answer_matches_the_document_and_the_callers_scope(
    path: str,
    method: str,
    fuzz_server: LiveServer,
    fuzz_world: Stores,
    tokens: dict[str, dict[str, str]],
    grid_rows: dict[str, set[str]],
    snapshot: Snapshot,
) -> None:
    operation = SCHEMA[path][method.upper()]
    failures: list[str] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        sent = repr((case.path_parameters, case.query, case.body))
        for role in ROLES:
            before = snapshot.take()
            headers = {**dict(case.headers or {}), **tokens[role]}
            response = case.call(base_url=fuzz_server.url, headers=headers, cookies={}, timeout=30)
            where = f"{role}: {case.method} {response.request.url} → {response.status_code}"
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except Exception as err:  # noqa: BLE001 — every check's failure is reported together below
                failures.append(f"{where}: {err}"[:2000])
                continue
            if 400 <= response.status_code < 500:
                after = snapshot.take()
                changed = {
                    k: (before.get(k), after.get(k))
                    for k in after.keys() | before.keys()
                    if before.get(k) != after.get(k)
                }
                if changed:
                    failures.append(f"{where}: a refused request wrote {changed}")
            elif is_json_success(response):
                failures.extend(f"{where}: {p}" for p in out_of_scope(role, path, response.json(), grid_rows))
            failures.extend(f"{where}: personal data {p}" for p in personal_data(role, response, sent))

    run()
    assert not failures, "\n".join(failures[:20])


LISTS = ["/api/v1/alerts", "/api/v1/devices", "/api/v1/households", "/api/v1/people", "/api/v1/audit"]


@pytest.mark.parametrize("path", LISTS)
def test_each_roles_full_list_matches_the_document_and_holds_only_its_scope(
    path: str,
    fuzz_server: LiveServer,
    tokens: dict[str, dict[str, str]],
    grid_rows: dict[str, set[str]],
) -> None:
    """The lists as a client first reads them (no parameters): the fuzz run's random parameters
    often name another community and are refused; these are answered."""
    operation = SCHEMA[path]["GET"]
    answered = []
    for role in ROLES:
        case = operation.Case(query={"community": COMMUNITY} if role == "admin" else {})
        response = case.call(base_url=fuzz_server.url, headers=tokens[role], timeout=30)
        case.validate_response(response, checks=CHECKS, headers=tokens[role])
        if is_json_success(response):
            answered.append(role)
            assert not out_of_scope(role, path, response.json(), grid_rows)
            assert not personal_data(role, response, "")
    assert "police" in answered or path == "/api/v1/audit"
    assert "none" not in answered
