"""Write tests/durations.json (seconds per test module) from a run's JUnit XML, for the ordering of
modules in tests/conftest.py: ``python -m pytest … --junitxml=run.xml`` then
``python tests/durations.py run.xml``. Setup and teardown count (pytest's JUnit times include them)."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def module_seconds(junit: Path) -> dict[str, float]:
    """Seconds per test module file (tests/test_x.py) in a JUnit XML report."""
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).iter("testcase"):
        module = "tests/" + case.get("classname", "").split(".")[1] + ".py"
        totals[module] += float(case.get("time", 0.0))
    return {name: round(value, 1) for name, value in sorted(totals.items(), key=lambda kv: -kv[1])}


if __name__ == "__main__":
    out = Path(__file__).with_name("durations.json")
    out.write_text(json.dumps(module_seconds(Path(sys.argv[1])), indent=1) + "\n")
    print(f"{out}: {len(json.loads(out.read_text()))} modules")
