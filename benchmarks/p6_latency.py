"""P6 — event-to-screen latency in headless Chromium: a guard's position is posted to the ingest
API and timed until the wall screen draws the guard at the new place, against the refresh interval.

Last line: {"bench": "P6", "ratio": p95 latency / interval, "p95_ms": …, "median_ms": …, "interval_ms": …}
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from benchmarks.common import bench_world, devices_by_type, ingest_token, manage_process, report, web_server

SAMPLES = 25
GUARD_JS = """
var out = [];
document.querySelectorAll('path.st-guard').forEach(function (p) { out.push(p.getAttribute('d')); });
return out.join('|');
"""


def browser() -> object:
    """Headless Chromium through chromedriver."""
    options = Options()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1920,1080",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main() -> None:
    """Run P6."""
    with bench_world() as bench:
        wearable = devices_by_type(bench.stores)["wearable"][0]
        token = ingest_token(bench.stores)
        interval_ms = bench.settings.refresh_seconds * 1000
        worker = manage_process(bench, "worker")
        driver = browser()
        latencies: list[float] = []
        try:
            with web_server(bench, workers=1) as url:

                def post(lat: float, lon: float) -> float:
                    event = {
                        "type": "guard.position",
                        "device": wearable,
                        "ts": int(time.time() * 1000),
                        "data": {"lat": lat, "lon": lon},
                    }
                    sent = time.perf_counter()
                    requests.post(
                        url + "/api/v1/events",
                        data=json.dumps(event),
                        timeout=30,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    )
                    return sent

                post(33.3885, 120.1530)
                driver.get(url + "/login")  # type: ignore[attr-defined]
                driver.find_element(By.NAME, "username").send_keys("police.wanhu")  # type: ignore[attr-defined]
                driver.find_element(By.NAME, "password").send_keys("sandtable2026")  # type: ignore[attr-defined]
                driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[attr-defined]
                time.sleep(2)
                driver.get(url + "/")  # type: ignore[attr-defined]
                deadline = time.monotonic() + 60
                while not driver.find_elements(By.CSS_SELECTOR, "path.st-guard-active"):  # type: ignore[attr-defined]
                    if time.monotonic() > deadline:
                        raise RuntimeError("the guard never appeared on the wall")
                    time.sleep(0.1)
                time.sleep(interval_ms / 1000 * 2)
                for i in range(SAMPLES):
                    before = driver.execute_script(GUARD_JS)  # type: ignore[attr-defined]
                    sent = post(33.3870 + 0.0002 * (i % 20), 120.1515 + 0.0003 * (i % 15))
                    while True:
                        now = driver.execute_script(GUARD_JS)  # type: ignore[attr-defined]
                        if now != before:
                            latencies.append((time.perf_counter() - sent) * 1000)
                            break
                        if time.perf_counter() - sent > 20:
                            latencies.append(20_000.0)
                            break
                        time.sleep(0.02)
                    time.sleep((i % 7) * 0.29)  # land at different points of the refresh cycle
        finally:
            driver.quit()  # type: ignore[attr-defined]
            worker.terminate()
            worker.wait(timeout=30)
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(
        f"event-to-screen latency over {len(latencies)} events: median {statistics.median(latencies):.0f} ms, "
        f"p95 {p95:.0f} ms, refresh interval {interval_ms:.0f} ms"
    )
    report(
        {
            "bench": "P6",
            "ratio": round(p95 / interval_ms, 3),
            "p95_ms": round(p95),
            "median_ms": round(statistics.median(latencies)),
            "interval_ms": interval_ms,
            "samples": len(latencies),
        }
    )


if __name__ == "__main__":
    main()
