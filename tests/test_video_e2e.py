"""From a thrown-object video to the alert on the console, with its evidence image."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from registry.models import Building, Device
from registry.queries import household_labels
from store.stores import Stores
from tests.browser import browser_login, click_text, wait_for
from tests.conftest import LiveServer, run_manage, save_screenshot
from tests.test_video_cli import throws_clip, write_video
from tests.test_wall import feed

pytestmark = pytest.mark.browser


def test_a_thrown_object_in_a_video_reaches_the_console_with_its_image(world: Stores, tmp_path: Path, browser) -> None:
    with world.sessions() as session:
        camera, building = session.execute(
            select(Device.id, Building.id)
            .join(Building, Building.id == Device.building_id)
            .where(Device.type == "throw_camera", Device.community_id == "wanhu", Building.floors == 6)
            .order_by(Device.id)
        ).first() or ("", "")
    assert camera
    clip = throws_clip([5], [2], seed=3)
    video = write_video(tmp_path / "facade.mp4", clip.frames(), clip.scene.fps, (clip.scene.width, clip.scene.height))
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps(clip.scene.calibration(camera, building)))
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)).isoformat(timespec="seconds")
    result = run_manage(
        world.settings,
        "video",
        "detect",
        "--input",
        str(video),
        "--camera",
        camera,
        "--calibration",
        str(calibration),
        "--start",
        start,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [e["data"]["origin"]["floor"] for e in events] == [5]
    # the registry knows the camera's community: its evidence went there, named by an opaque id
    (image,) = [e["data"]["image"] for e in events]
    assert re.fullmatch(r"[0-9a-f]{32}", image)
    assert (world.settings.var_dir / "evidence" / "wanhu" / f"{image}.jpg").is_file()
    feed(world, events)

    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "police.wanhu")
        browser.get(server.url + "/console")
        click_text(browser, ".st-row", "高空抛物")
        image = wait_for(browser, "img.st-evidence-image")[0]
        loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
        for _ in range(50):
            if loaded:
                break
            loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
        assert loaded and loaded > 100
        with world.sessions() as session:
            flat = household_labels(session, [f"{building}-1-502"], "zh")[f"{building}-1-502"]
        assert flat in browser.find_element(By.CSS_SELECTOR, ".st-kv").text  # traced to a household, by its address
        # the evidence reads as labelled fields, times in Beijing time (no raw JSON, no UTC "Z")
        evidence = browser.find_element(By.CSS_SELECTOR, "table.st-evidence").text
        assert "抛物起点" in evidence and "楼层 5" in evidence and "发现时间" in evidence
        assert "Z" not in evidence and "{" not in evidence

        save_screenshot(browser, "console_throw_evidence")
    finally:
        server.stop()
