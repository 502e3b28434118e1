"""Every registered Dash callback and API route, called by hand by every role with crafted
inputs (another community's and another grid's ids, pattern-matching ids): nothing out of scope
comes back, and no response carries an unmasked ID number or phone (except an audited unmask)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from auth.callbacks import callback_permission
from auth.service import create_token
from registry.models import Building, Household, Person, Residency
from store.stores import Stores, open_stores
from tests.conftest import DEMO_PASSWORD

ID_RE = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")
PHONE_RE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
# cache-busting file times in asset URLs, and Dash's per-page-load signed token (random salt and
# hex signature), are not phone numbers even when 11 of their digits happen to line up
NOT_PERSONAL = re.compile(r'[?&]m=[0-9.]+|\.v[0-9_]+m[0-9]+|"end_id":"[^"]*"')
ORIGIN = {"Origin": "http://localhost"}
# guard.wanhu-GD04: an auxiliary policeman's account of the guard role (万家卫士: their tasks page only)
ROLES = ("anonymous", "police.wanhu", "grid.wanhu-G1", "guard.wanhu-GD04", "property.wanhu", "wall.wanhu", "kiosk.wall")
# the page each callback permission belongs to: a role may call a page's callbacks exactly when it
# may open that page (the visitor-approval panel sits on both the console and the tasks page)
PAGE_OF = {
    "view.wall": "/",
    "view.console": "/console",
    "view.tasks": "/tasks",
    "view.reports": "/reports",
    "investigate": "/cases",  # issue #19: the cases page (and the Investigate page) need investigate
    "modes.set": "/console",  # issue #20: the maintenance and away panel, on the console (police and admins)
    "routes.edit": "/routes",  # issue #20: the patrol route editor
}
CITY_PAGE = "/city"  # city-wide accounts only: a community's wall display opens it and sees nothing


@pytest.fixture(scope="module")
def app(demo_settings: Any) -> Iterator[Any]:
    stores = open_stores(demo_settings, run_migrations=False)
    dash_app = create_app(stores)
    dash_app.server.config["PROPAGATE_EXCEPTIONS"] = False
    yield dash_app
    stores.engine.dispose()


@pytest.fixture(scope="module")
def world(demo_settings: Any) -> dict[str, Any]:
    """Ids to craft requests with, and what each role must never see."""
    stores: Stores = open_stores(demo_settings, run_migrations=False)
    with stores.sessions() as session:

        def person_in(grid: str) -> str:
            return (
                session.execute(
                    select(Person.id)
                    .join(Residency, Residency.person_id == Person.id)
                    .join(Household, Household.id == Residency.household_id)
                    .where(Household.grid_id == grid)
                )
                .scalars()
                .first()
                or ""
            )

        other_grid_buildings = list(session.scalars(select(Building.id).where(Building.grid_id == "wanhu-G3")))
        other_grid_households = list(session.scalars(select(Household.id).where(Household.grid_id == "wanhu-G3")))
        world = {
            "person_g1": person_in("wanhu-G1"),
            "person_g3": person_in("wanhu-G3"),
            "person_xb": person_in("xingbang-G1"),
            "building_g3": other_grid_buildings[0],
            "household_g3": other_grid_households[0],
            "g3_markers": [f'"{b}"' for b in other_grid_buildings] + [f'"{h}"' for h in other_grid_households[:200]],
            "names": [n for n in session.scalars(select(Person.name).limit(400)) if len(n) == 3][:100],
        }
    stores.engine.dispose()
    return world


def client_for(app: Any, role: str) -> FlaskClient:
    client: FlaskClient = app.server.test_client()
    if role == "kiosk.wall":  # a station's wall screen: a display token moved into the kiosk cookie
        stores = app.server.extensions["sandtable"].stores
        with stores.sessions.begin() as session:
            _, token = create_token(session, scope="role", role="wall", community="wanhu", name="matrix kiosk")
        assert client.get(f"/wall?kiosk=1&token={token}").status_code == 302
    elif role != "anonymous":
        response = client.post("/login", data={"username": role, "password": DEMO_PASSWORD}, headers=ORIGIN)
        assert response.status_code == 302, role
    return client


def opens(client: FlaskClient, path: str) -> bool:
    """True when the page renders for the client (not the refusal the layouts show instead)."""
    payload = {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [{"id": "_pages_content", "property": "children"}, {"id": "_pages_store", "property": "data"}],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": ""},
        ],
        "state": [],
        "changedPropIds": ["_pages_location.pathname"],
    }
    response = client.post("/_dash-update-component", json=payload, headers=ORIGIN)
    return response.status_code == 200 and "无权访问" not in json.dumps(response.get_json(), ensure_ascii=False)


def forbidden_markers(role: str, world: dict[str, Any]) -> list[str]:
    markers = ['"xingbang-', "xingbang-B", "xingbang-P0", "兴邦中央公园"]
    if role == "grid.wanhu-G1":
        markers += world["g3_markers"] + [world["person_g3"]]
    if role in ("wall.wanhu", "kiosk.wall", "anonymous", "guard.wanhu-GD04"):
        markers += ["wanhu-P0", *world["names"]]
    return markers


def check_body(role: str, where: str, body: str, world: dict[str, Any], *, unmask_ok: bool = False) -> None:
    for marker in forbidden_markers(role, world):
        assert marker not in body, f"{role} got {marker!r} from {where}"
    body = NOT_PERSONAL.sub("", body)
    if not unmask_ok:
        assert not ID_RE.search(body), f"{role} got an unmasked ID number from {where}"
        assert not PHONE_RE.search(body), f"{role} got an unmasked phone from {where}"


def route_urls(app: Any, world: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, url) for every API and page route, with crafted path values."""
    values = {
        "community": ["wanhu", "xingbang"],
        "layer": ["boundary", "grids", "buildings", "paths", "devices"],
        "person_id": [world["person_g1"], world["person_g3"], world["person_xb"]],
        "code": ["en"],
        "job_id": ["AAAAAAAAAAAAAAAAAAAAAAAA"],  # a well-formed id of nobody's report
        "alert_id": ["0123456789abcdef"],  # a well-formed id of no alert
        "day": ["2026-11-24", "2026-13-99"],
        "device": ["FG-wanhu-GATE-E-1", "FG-xingbang-GATE-E-1"],  # gates of both communities
    }
    out: list[tuple[str, str]] = []
    for rule in app.server.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith(("/_dash-component-suites", "/assets", "/_reload")):
            continue
        names = sorted(rule.arguments)
        if any(n not in values for n in names if n != "path"):
            pytest.fail(f"no crafted values for route {rule.rule}")
        combos = itertools.product(*(values.get(n, ["x"]) for n in names))
        for combo in combos:
            url = rule.rule
            for name, value in zip(names, combo, strict=True):
                url = re.sub(rf"<(?:[a-z]+:)?{name}>", value, url)
            queries = ["", "?community=xingbang", "?tag=elderly_alone", "?community=wanhu&category=rental"]
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                for query in queries if method == "GET" else [""]:
                    out.append((method, url + query))
    return out


@pytest.mark.parametrize("role", ROLES)
def test_every_route_stays_in_scope(app: Any, world: dict[str, Any], role: str) -> None:
    client = client_for(app, role)
    urls = route_urls(app, world)
    assert len(urls) > 40
    for method, url in urls:
        if url.startswith(("/logout", "/login")):
            continue
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, json={"reason": "matrix test"}, headers=ORIGIN)
        assert response.status_code < 500, f"{role} {method} {url}: {response.status_code}"
        body = response.get_data().decode("utf-8", "replace")
        unmask = url.endswith("/unmask") and response.status_code == 200
        if unmask:
            assert role == "police.wanhu" and world["person_xb"] not in url
        check_body(role, f"{method} {url}", body, world, unmask_ok=unmask)
        if role == "anonymous" and url.startswith("/api/") and not url.startswith(("/api/v1/openapi", "/api/v1/docs")):
            assert response.status_code == 401, url


def crafted_values(world: dict[str, Any]) -> list[Any]:
    return [
        "xingbang",
        "wanhu",
        world["building_g3"],
        world["household_g3"],
        world["person_g3"],
        world["person_xb"],
        "/?community=xingbang",
        "?community=xingbang",
        {"community": "xingbang"},
        None,
        1,
    ]


def callback_payloads(app: Any, world: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for output, spec in app.callback_map.items():
        if "callback" not in spec:
            continue  # a clientside callback: it runs in the browser and has no server endpoint
        for value in crafted_values(world):

            def prop(dep: dict[str, Any], value: Any = value) -> dict[str, Any]:
                dep_id = dep["id"]
                if dep_id.startswith("{"):
                    parsed = json.loads(dep_id)
                    parsed = {k: (world["building_g3"] if isinstance(v, dict) else v) for k, v in parsed.items()}
                    return {"id": parsed, "property": dep["property"], "value": value}
                return {"id": dep_id, "property": dep["property"], "value": value}

            inputs = [prop(d) for d in spec["inputs"]]
            state = [prop(d) for d in spec.get("state", [])]
            outputs = [
                {"id": o.split(".")[0], "property": o.split(".")[-1]} for o in output.strip(".").split("...") if o
            ]
            yield (
                output,
                {
                    "output": output,
                    "outputs": outputs if len(outputs) > 1 else outputs[0],
                    "inputs": inputs,
                    "state": state,
                    "changedPropIds": [
                        f"{i['id'] if isinstance(i['id'], str) else json.dumps(i['id'])}.{i['property']}"
                        for i in inputs
                    ],
                },
            )


@pytest.mark.parametrize("role", ROLES)
def test_every_dash_callback_stays_in_scope(app: Any, world: dict[str, Any], role: str) -> None:
    client = client_for(app, role)
    client.get("/_dash-layout")  # the app's first request wires the callbacks
    pages = {path: role != "anonymous" and opens(client, path) for path in PAGE_OF.values()}
    calls = 0
    for output, payload in callback_payloads(app, world):
        response = client.post("/_dash-update-component", json=payload, headers=ORIGIN)
        calls += 1
        body = response.get_data().decode("utf-8", "replace")
        # Dash's own page router does not type-check its inputs: garbage there is a plain 500, no traceback
        dash_internal = "_pages_" in output
        assert response.status_code < 500 or dash_internal, f"{role} {output}: {response.status_code}"
        assert "Traceback" not in body
        if role == "anonymous":
            assert response.status_code == 401
        elif not dash_internal:
            # the reply matches what the role's own pages show: a page's callbacks answer exactly
            # the roles that may open the page; everyone else gets the access layer's 403
            permission = callback_permission(output)
            assert permission is not None, f"{output} declares no page permission"
            page = PAGE_OF.get(permission)
            may = pages[page] if page else role in ("police.wanhu", "property.wanhu")
            if permission == "view.city":
                may = role in ("police.wanhu", "wall.wanhu", "kiosk.wall")
            if permission == "read.notifications":  # the notifications of every page: every role here reads them
                may = True
            assert (response.status_code != 403) == may, f"{role} {output}: {response.status_code}"
        check_body(role, output, response.get_data().decode("utf-8", "replace"), world)
    assert calls >= 5 * sum(1 for spec in app.callback_map.values() if "callback" in spec)
    assert calls > 0


@pytest.mark.parametrize("role", ROLES[1:])
def test_every_page_layout_is_scoped_and_masked(app: Any, world: dict[str, Any], role: str) -> None:
    client = client_for(app, role)
    client.get("/_dash-layout")
    pages = [
        (p["path"], s)
        for p in __import__("dash").page_registry.values()
        for s in ("", "?community=xingbang", "?community=wanhu")
    ]
    for path, search in pages:
        payload = {
            "output": ".._pages_content.children..._pages_store.data..",
            "outputs": [{"id": "_pages_content", "property": "children"}, {"id": "_pages_store", "property": "data"}],
            "inputs": [
                {"id": "_pages_location", "property": "pathname", "value": path},
                {"id": "_pages_location", "property": "search", "value": search},
            ],
            "state": [],
            "changedPropIds": ["_pages_location.pathname"],
        }
        response = client.post("/_dash-update-component", json=payload, headers=ORIGIN)
        assert response.status_code in (200, 204), f"{role} {path}{search}: {response.status_code}"
        check_body(role, f"page {path}{search}", response.get_data().decode("utf-8", "replace"), world)


def test_a_guard_opens_their_tasks_page_and_nothing_else(app: Any) -> None:
    client = client_for(app, "guard.wanhu-GD04")
    client.get("/_dash-layout")
    assert {path for path in [*PAGE_OF.values(), CITY_PAGE] if opens(client, path)} == {"/tasks"}
    assert client.get("/api/v1/alerts?status=all").status_code == 403
    assert client.get("/api/v1/people?community=wanhu").status_code == 403
