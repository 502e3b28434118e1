"""P14 — the wall's 3D view refreshing: the payload of one tick when 1 % of 10,000 devices and all 200
guards change every second, against re-sending the whole 3D figure; and the server time of a 3D tick
against a 2D tick of the same wall (the map's refresh, P5) on the same changes, in the same run.
Measured through the real callback endpoint, the two views' ticks interleaved.

Last line: {"bench": "P14", "ratio": delta_bytes / full_figure_bytes, "time_ratio": 3D ms / 2D ms (medians), …}
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app
from benchmarks.common import Target, bench_world, run_repeated
from benchmarks.p5_wall_refresh import grow_world, move
from callbacks.requests import wall_refresh_request
from layouts import ids

TICKS = 20


def once() -> dict[str, Any]:
    """One run on a fresh world."""
    with bench_world() as bench:
        devices, guards = grow_world(bench)
        app = create_app(bench.stores)
        client = app.server.test_client()
        origin = {"Origin": "http://localhost"}
        signed_in = client.post(
            "/login", data={"username": "police.wanhu", "password": "sandtable2026"}, headers=origin
        )
        assert signed_in.status_code == 302
        client.get("/_dash-layout")

        def tick(state: dict[str, Any], view: str) -> tuple[int, float, dict[str, Any], dict[str, Any]]:
            body = wall_refresh_request(state, view=view)
            began = time.perf_counter()
            response = client.post("/_dash-update-component", json=body, headers=origin)
            elapsed = (time.perf_counter() - began) * 1000
            if response.status_code == 204:
                return 0, elapsed, state, {}
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            data = response.get_json()["response"]
            return len(response.get_data()), elapsed, data[ids.LIVE_STATE]["data"], data

        rng = random.Random(1)
        move(bench, devices, guards, rng, int(time.time() * 1000))
        flat = {"community": "wanhu", "since": 0, "ver": -1, "full_at": 0, "lang": "zh"}
        solid = dict(flat)
        _, _, flat, _ = tick(flat, "2d")
        first_bytes, first_ms, solid, first = tick(solid, "3d")
        figure = first[ids.SCENE]["figure"]
        full_figure = len(json.dumps(figure, ensure_ascii=False).encode())
        points = sum(len(trace.get("x") or []) for trace in figure["data"])
        sizes, times_3d, times_2d, sizes_2d = [], [], [], []
        for _ in range(TICKS):
            time.sleep(1.0)
            move(bench, devices, guards, rng, int(time.time() * 1000))
            now = int(time.time() * 1000)
            flat["full_at"] = solid["full_at"] = now  # the 30 s full refresh is not part of a tick
            size, ms, solid, answer = tick(solid, "3d")
            assert ids.SCENE not in answer or "__dash_patch_update" in json.dumps(answer[ids.SCENE]["figure"])[:40]
            sizes.append(size)
            times_3d.append(ms)
            size_2d, ms_2d, flat, _ = tick(flat, "2d")
            times_2d.append(ms_2d)
            sizes_2d.append(size_2d)
    delta = statistics.mean(sizes)
    median_3d, median_2d = statistics.median(times_3d), statistics.median(times_2d)
    print(f"3D figure: {full_figure:,} bytes ({points:,} points); first answer {first_bytes:,} B, {first_ms:.0f} ms")
    print(
        f"3D tick: mean {delta:,.0f} bytes, server median {median_3d:.1f} ms; 2D tick: mean "
        f"{statistics.mean(sizes_2d):,.0f} bytes, server median {median_2d:.1f} ms"
    )
    return {
        "bench": "P14",
        "ratio": round(delta / full_figure, 4),
        "delta_bytes": round(delta),
        "full_figure_bytes": full_figure,
        "time_ratio": round(median_3d / median_2d, 3),
        "server_ms_median_3d": round(median_3d, 1),
        "server_ms_median_2d": round(median_2d, 1),
        "server_ms_p95_3d": round(sorted(times_3d)[int(len(times_3d) * 0.95) - 1], 1),
        "server_ms_p95_2d": round(sorted(times_2d)[int(len(times_2d) * 0.95) - 1], 1),
        "delta_bytes_2d": round(statistics.mean(sizes_2d)),
        "first_3d_ms": round(first_ms),
        "devices": len(devices),
        "guards": len(guards),
        "ticks": TICKS,
    }


def main() -> None:
    """Run P14 (``--repeat N``: median, min and max of N runs)."""
    run_repeated(once, [Target("ratio", 0.05, at_most=True), Target("time_ratio", 2.0, at_most=True)])


if __name__ == "__main__":
    main()
