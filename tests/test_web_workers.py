"""The web app under gunicorn with several workers keeps no per-process state: sessions, sign-outs,
rate limits and the live views behave the same whichever worker answers."""

from __future__ import annotations

import requests

from store.stores import Stores
from tests.conftest import DEMO_PASSWORD, LiveServer

CLOSE = {"Connection": "close"}  # a new connection per request: the kernel hands each to any worker


def test_sessions_sign_outs_and_limits_hold_across_workers(world: Stores) -> None:
    settings = world.settings.model_copy(update={"web_workers": 3, "web_threads": 2, "login_rate_per_minute": 6})
    server = LiveServer(settings)
    try:
        session = requests.Session()
        session.headers.update({"Origin": server.url, **CLOSE})
        response = session.post(
            f"{server.url}/login",
            data={"username": "police.wanhu", "password": DEMO_PASSWORD, "next": "/"},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302
        # signed in on one worker, known to all of them
        for _ in range(24):
            response = session.get(f"{server.url}/api/v1/map/wanhu/grids.geojson", timeout=30)
            assert response.status_code == 200 and response.json()["features"]
        # signed out on one worker, signed out everywhere
        session.get(f"{server.url}/logout", allow_redirects=False, timeout=30)
        for _ in range(12):
            assert session.get(f"{server.url}/api/v1/map/wanhu/grids.geojson", timeout=30).status_code == 401
        # the login limit counts every worker's attempts: 6 per minute per address, one used above
        # (or, on a slow machine, slid out of the window by now), so the 7th is refused whichever
        # worker takes it; one worker alone would have seen 3 of these 8
        codes = [
            requests.post(
                f"{server.url}/login",
                data={"username": "nobody", "password": "wrong-password-1"},
                headers={"Origin": server.url, **CLOSE},
                allow_redirects=False,
                timeout=30,
            ).status_code
            for _ in range(8)
        ]
        assert 429 not in codes[:5] and codes[6:] == [429, 429], codes
    finally:
        server.stop()
