"""The wall left open: the CPU that headless Chromium (software compositing, as on a station PC
without a graphics card) spends on the police wall at 1,920×1,080 with a smoke alarm open (its card
pulsing, its ring on the map), while nothing changes but the clock, the refresh and the blinks;
against the same page with the blinks as endless CSS animations (the rules of before stop 39: the
live dot, the card's pulse, the ring, a critical notice), measured in the same run. CPU is read from
/proc for every Chromium process (browser, GPU, renderers), over 20 s each.

Last line: {"bench": "wall_idle", "ratio": beat cores / animated cores, "cores": …, "animated_cores": …}
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from selenium.webdriver.common.by import By

from benchmarks.common import (
    Target,
    bench_world,
    devices_by_type,
    ingest_token,
    manage_process,
    run_repeated,
    web_server,
)
from benchmarks.p6_latency import browser

SECONDS = 20.0
TICK = os.sysconf("SC_CLK_TCK")
# the blinks as they were before stop 39: endless CSS animations (Chromium composes the screen at 60
# frames a second while one runs)
ANIMATED = """
var s = document.createElement('style');
s.textContent = '@keyframes b-blink { 0%, 100% { opacity: 1; } 50% { opacity: 0.3; } }'
  + '@keyframes b-pulse { 0%, 100% { box-shadow: 0 0 0 0 rgba(255, 31, 90, 0); background: rgba(8, 18, 34, 0.85); }'
  + ' 50% { box-shadow: 0 0 18px 2px rgba(255, 31, 90, 0.55); background: rgba(70, 10, 28, 0.9); } }'
  + '@keyframes b-ring { 0% { transform: scale(0.4); opacity: 1; } 100% { transform: scale(1.8); opacity: 0; } }'
  + '.st-live::before, .st-notice.st-sev-critical { animation: b-blink 1.6s infinite; }'
  + '.st-pulse { animation: b-pulse 1.2s ease-in-out infinite; }'
  + '.st-alert-marker .st-ring { animation: b-ring 1.6s ease-out infinite; }';
document.head.appendChild(s);
"""


def chromium_cpu_s() -> float:
    """CPU seconds (user + system) of every Chromium process on the machine so far."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"chromium" in command:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def cores_over(seconds: float) -> float:
    """Chromium's CPU over the next ``seconds``, in cores."""
    before = chromium_cpu_s()
    time.sleep(seconds)
    return (chromium_cpu_s() - before) / seconds


def wait_for(driver: Any, css: str, timeout: float = 120.0) -> None:
    """Until the page shows an element matching css."""
    deadline = time.monotonic() + timeout
    while not driver.find_elements(By.CSS_SELECTOR, css):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the wall never showed {css}")
        time.sleep(0.5)


def once() -> dict[str, Any]:
    """One run: the wall idle with its beat, then with the old endless animations added."""
    with bench_world() as bench:
        detector = devices_by_type(bench.stores)["smoke_detector"][0]
        token = ingest_token(bench.stores)
        worker = manage_process(bench, "worker")
        driver: Any = browser()
        try:
            with web_server(bench, workers=1) as url:
                alarm = {
                    "type": "smoke.alarm",
                    "device": detector,
                    "ts": int(time.time() * 1000),
                    "data": {"level": "alarm"},
                }
                requests.post(
                    url + "/api/v1/events",
                    data=json.dumps(alarm),
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    timeout=30,
                ).raise_for_status()
                driver.get(url + "/login")
                driver.find_element(By.NAME, "username").send_keys("police.wanhu")
                driver.find_element(By.NAME, "password").send_keys("sandtable2026")
                driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
                wait_for(driver, ".st-header")
                driver.get(url + "/")
                wait_for(driver, ".st-card.st-pulse")
                wait_for(driver, ".st-alert-marker")
                time.sleep(5)  # the map's fit and the first refreshes are over
                beat = cores_over(SECONDS)
                driver.execute_script(ANIMATED)
                animated = cores_over(SECONDS)
                driver.get("about:blank")
                blank = cores_over(5.0)
        finally:
            driver.quit()
            worker.terminate()
            worker.wait(timeout=30)
    print(f"the idle wall:              {beat:5.2f} cores of Chromium")
    print(f"with the old endless blinks: {animated:5.2f} cores")
    print(f"about:blank:                {blank:5.2f} cores")
    return {
        "bench": "wall_idle",
        "ratio": round(beat / animated, 3) if animated else None,
        "cores": round(beat, 3),
        "animated_cores": round(animated, 3),
        "blank_cores": round(blank, 3),
        "seconds": SECONDS,
    }


def main() -> None:
    """Run the idle-wall benchmark (``--repeat N``: median, min and max)."""
    run_repeated(once, [Target("ratio", 0.25, at_most=True), Target("cores", 0.3, at_most=True)])


if __name__ == "__main__":
    main()
