"""The OpenAPI document (issue #21): served at /api/v1/openapi.json, valid OpenAPI 3.1, naming exactly
the routes Flask serves; unknown paths and methods under /api/ answer JSON 404/405 for anyone;
the API page is readable in Chinese and English from local assets only."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.openapi import document
from api.paging import PAGED_ROUTES
from app import create_app
from store.stores import Stores
from tests.conftest import LiveServer, http_login, save_screenshot

DOCUMENTED_PLAIN_ROUTES = {("/healthz", "get"), ("/geo/basemap.geojson", "get")}


def served_routes(stores: Stores) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every /api/ rule of the real app's Flask server."""
    server = create_app(stores).server
    found = set()
    for rule in server.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((path, method.lower()))
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item}


def test_the_document_names_every_api_route_flask_serves_and_no_other(stores: Stores) -> None:
    served = served_routes(stores)
    doc = documented(document())
    assert served - doc == set(), "served but not documented"
    assert doc - served - DOCUMENTED_PLAIN_ROUTES == set(), "documented but not served"


def test_every_paged_route_says_its_limit_and_cursor_and_next_page_headers() -> None:
    doc = document()
    for path, method in PAGED_ROUTES.items():
        op = doc["paths"][path][method]
        names = {p["name"] for p in op["parameters"]}
        assert {"limit", "cursor"} <= names, path
        limit = next(p for p in op["parameters"] if p["name"] == "limit")
        assert limit["schema"]["maximum"] == 1000
        assert {"Link", "X-Next-Cursor"} <= set(op["responses"]["200"]["headers"]), path
    person = doc["components"]["schemas"]["Person"]["properties"]
    assert person["households"]["type"] == "array"


def test_the_request_bodies_are_the_structs_that_decode_them() -> None:
    schemas = document()["components"]["schemas"]
    search = schemas["SearchBody"]
    assert set(search["required"]) == {"community", "from", "to"}
    assert search["additionalProperties"] is False
    assert schemas["RawEvent"]["required"] == ["type", "device", "ts"]


def test_the_served_document_is_valid_openapi_3_1_and_public(demo_server: LiveServer) -> None:
    response = requests.get(demo_server.url + "/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    assert "/api/v1/events/search" in doc["paths"]


def test_an_unknown_api_path_is_a_json_404_for_anyone(demo_server: LiveServer) -> None:
    police = http_login(demo_server.url, "police.wanhu")
    token_less = requests.Session()
    for who in (token_less, police):
        for path in ("/api/v1/nothing-here", "/api/v2/alerts", "/api/", "/api/v1/alerts/x"):
            response = who.get(demo_server.url + path, timeout=30, allow_redirects=False)
            assert response.status_code == 404, (path, response.text[:200])
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.json()["error"]
    # a page outside /api/ still gets the app
    assert police.get(demo_server.url + "/console", timeout=30).headers["Content-Type"].startswith("text/html")


def test_a_wrong_method_on_a_known_api_route_is_a_json_405_naming_the_allowed_ones(demo_server: LiveServer) -> None:
    police = http_login(demo_server.url, "police.wanhu")
    for who in (requests.Session(), police):
        response = who.get(demo_server.url + "/api/v1/incidents", timeout=30)
        assert response.status_code == 405
        assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
        assert "POST" in response.json()["error"]
        deleted = who.delete(demo_server.url + "/api/v1/alerts", headers={"Origin": demo_server.url}, timeout=30)
        assert deleted.status_code == 405
        assert "GET" in deleted.headers["Allow"]


def test_an_unknown_map_layer_is_a_json_404(demo_server: LiveServer) -> None:
    police = http_login(demo_server.url, "police.wanhu")
    response = police.get(demo_server.url + "/api/v1/map/wanhu/nothing.geojson", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]


@pytest.mark.browser
def test_the_api_page_lists_every_route_in_chinese_and_in_english(demo_server: LiveServer, browser: Any) -> None:
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get(demo_server.url + "/api/v1/docs")
    WebDriverWait(browser, 30).until(lambda d: "接口文档" in d.find_element(By.TAG_NAME, "h1").text)
    doc = document()
    sections = browser.find_elements(By.CSS_SELECTOR, "section.op h2 .path")
    shown = {s.text for s in sections}
    assert set(doc["paths"]) <= shown
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "权限" in text and "响应" in text and "read.alerts" in text
    for resource in browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"):
        assert resource.startswith(demo_server.url), resource  # nothing from outside
    save_screenshot(browser, "api-docs-zh")
    alerts = browser.find_element(By.ID, "get--api-v1-alerts")
    browser.execute_script("arguments[0].scrollIntoView()", alerts)
    assert "limit" in alerts.text and "X-Next-Cursor" in alerts.text and "read.alerts" in alerts.text
    save_screenshot(browser, "api-docs-zh-alerts")
    browser.find_element(By.CSS_SELECTOR, "header a.lang").click()
    WebDriverWait(browser, 30).until(lambda d: "API reference" in d.find_element(By.TAG_NAME, "h1").text)
    assert "Responses" in browser.find_element(By.TAG_NAME, "body").text
    save_screenshot(browser, "api-docs-en")
