"""The soak under faults, 75 s of it (benchmarks/soak.py; the 30-minute ledgers are in
docs/reliability.md): every fault kind at least once while events flow, a fault every 15 s, then the
loss ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import ROOT

pytestmark = pytest.mark.slow


def test_every_kind_of_fault_under_load_loses_nothing_acknowledged_and_duplicates_nothing(tmp_path: Path) -> None:
    # the five kinds of fault in 75 s (the schedule's first five are one of each; --every-fault sends on
    # while a kind is still owed, e.g. a power cut on a machine too busy for one to fit)
    args = ["--minutes", "1.25", "--rate", "500", "--fault-every", "15", "--seed", "11", "--every-fault"]
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.stdout.strip(), run.stderr[-3000:]
    ledger = json.loads(run.stdout.strip().splitlines()[-1])
    story = run.stdout[-3000:] + run.stderr[-2000:]
    assert all(ledger["faults"][kind] >= 1 for kind in ledger["faults"]), story
    assert ledger["power_cuts"] >= 1, story
    assert ledger["drained"], story
    assert ledger["acknowledged"] == ledger["sent"] > 20_000, story  # 37,500 at the full rate
    assert ledger["duplicated_effects"] == 0, story
    assert ledger["lost_after_ack"] == 0, story
    assert ledger["alert_counts_short"] == ledger["alert_counts_extra"] == 0, story
    # what a power cut took is the documented window, and the system found and counted it itself
    assert ledger["lost_reported_by_the_system"] == ledger["lost_in_aof_window"], story
    assert ledger["processed_once"] + ledger["lost_in_aof_window"] == ledger["acknowledged"], story
    # every poison entry and rejected event is one dead letter, but those a power cut took first
    assert ledger["dead_lettered"] + ledger["dead_letters_lost_in_aof_window"] == ledger["poison_sent"] > 0, story
    assert ledger["alerts_found"] == ledger["alerts_expected"] > 0, story
    assert ledger["unexpected_exits"] == [], story
    assert run.returncode == 0, story
