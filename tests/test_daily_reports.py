"""The daily report is complete (issue #21): it waits until the worker has worked off the day's
backlog — whichever of the workers sharing the group holds it — then counts every event; late
events of that day make it again; a community that sent nothing gets its report after a wait,
saying so. Real Redis, real SQL, the real worker and ingest code, a hand-moved clock."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from analytics.scheduled import THREAD_NAME
from analytics.worker import Worker
from core.clock import ManualClock
from ingest.service import IngestService
from registry.models import Person
from reports.completeness import Backlog, day_end_ms, judge
from reports.model import Coverage
from reports.scheduler import Sidecar, daily_path, run_due_reports
from store.stores import Stores
from tests.test_pipeline import devices_of, drain
from tests.test_reports import local_ms, pdf_text

DAY = dt.date(2026, 3, 2)
NEXT = DAY + dt.timedelta(days=1)
END = day_end_ms(DAY)


def daily_stores(world: Stores) -> Stores:
    settings = world.settings.model_copy(
        update={
            "report_daily_enabled": True,
            "report_daily_at": "07:00",
            "report_daily_wait_minutes": 60,
            "report_daily_recheck_minutes": 10,
        }
    )
    return Stores(settings=settings, engine=world.engine, keys=world.keys)


def passages(world: Stores, day: dt.date, hour: int, minutes: range) -> list[dict[str, Any]]:
    """Residents coming in through the face gate, one a minute."""
    gate = devices_of(world, "face_gate", 1)[0]
    with world.sessions() as session:
        people = list(session.scalars(select(Person.id).where(Person.community_id == "wanhu").limit(len(minutes))))
    return [
        {"type": "gate.face", "device": gate, "ts": local_ms(day, hour, m), "data": {"direction": "in", "person": p}}
        for m, p in zip(minutes, people, strict=True)
    ]


def test_the_daily_report_waits_for_the_backlog_then_counts_every_event_and_late_ones(world: Stores) -> None:
    stores = daily_stores(world)
    clock = ManualClock(local_ms(NEXT, 7, 30))  # the report time has passed
    ingest = IngestService(stores, clock=clock)
    evening = passages(world, DAY, 20, range(40))  # 40 passages on the day
    after_midnight = passages(world, NEXT, 0, range(5, 10))  # 5 on the next day
    assert ingest.ingest("wanhu", evening + after_midnight).accepted == 45
    path = daily_path(stores.settings, "wanhu", DAY)

    # no worker has run: the day's events wait in the stream, so no report, however late it is
    assert run_due_reports(stores, clock.now_ms()) == [] and not path.exists()

    # two workers share the group: one takes the first batch and has not finished it; the other works
    # off the rest, which moves the frontier past midnight: still no report
    slow, fast = Worker(stores, consumer="slow", clock=clock), Worker(stores, consumer="fast", clock=clock)
    for worker in (slow, fast):
        worker.start_community("wanhu")
    held = slow.events.read(["wanhu"], "slow", count=10, block_ms=None)
    drain(fast)
    assert (stores.redis.zscore(stores.keys.frontier("wanhu"), "events") or 0) >= END
    assert run_due_reports(stores, clock.now_ms()) == [] and not path.exists()

    # the first batch is worked off: the report appears and counts every passage of the day
    slow.process(held)
    clock.advance(60_000)
    assert run_due_reports(stores, clock.now_ms()) == [path]
    first = Sidecar.read(path)
    assert first is not None and first.renders == 1
    assert first.counts["gate_passages"] == 40 and first.coverage == Coverage(END - 1, complete=True)
    text = pdf_text(path)
    assert "出入口通行进 40 人次" in text and "数据截至 3月2日 23:59" in text

    # nothing new: the recheck finds nothing to do
    clock.advance(11 * 60_000)
    assert run_due_reports(stores, clock.now_ms()) == []

    # a gateway's backlog: 6 passages of that evening arrive late and are worked off
    assert ingest.ingest("wanhu", passages(world, DAY, 22, range(6))).accepted == 6
    drain(fast)
    assert run_due_reports(stores, clock.now_ms()) == []  # rechecked a moment ago: not yet
    clock.advance(10 * 60_000)
    assert run_due_reports(stores, clock.now_ms()) == [path]  # made again, the file replaced
    again = Sidecar.read(path)
    assert again is not None and again.counts["gate_passages"] == 46 and again.renders == 2
    assert again.first_rendered_ms == first.rendered_ms < again.rendered_ms
    assert "出入口通行进 46 人次" in pdf_text(path)
    assert not list(path.parent.glob(".*"))  # no partial file left
    clock.advance(10 * 60_000)
    assert run_due_reports(stores, clock.now_ms()) == []  # and never again without new data

    # xingbang sent nothing at all (it might not have started sending yet): its report waited an hour
    # from when it was first due (07:30), and says it holds no event data
    quiet = daily_path(stores.settings, "xingbang", DAY)
    assert not quiet.exists()
    clock.set(local_ms(NEXT, 8, 30))
    assert run_due_reports(stores, clock.now_ms()) == [quiet]
    sidecar = Sidecar.read(quiet)
    assert sidecar is not None and sidecar.coverage == Coverage(None, complete=False)
    assert "尚无事件数据" in pdf_text(quiet)


HEAD_LATER = Backlog(idle=False, head_ms=END + 5)
HEAD_OF_THE_DAY = Backlog(idle=False, head_ms=END - 5)


@pytest.mark.parametrize(
    ("frontier", "backlog", "waited", "expected"),
    [
        (END, Backlog(idle=True), False, Coverage(END - 1, True)),  # past the end, nothing left
        (END + 9, HEAD_LATER, False, Coverage(END - 1, True)),  # live events in flight, all later
        (END + 9, HEAD_OF_THE_DAY, True, None),  # a worker still holds an entry of the day
        (END + 9, Backlog(idle=False), False, Coverage(END - 1, True)),  # a poison entry holds no data
        (END - 9, Backlog(idle=True), False, None),  # quiet since before midnight: wait
        (END - 9, Backlog(idle=True), True, Coverage(END - 9, False)),  # waited: as far as the data runs
        (END - 9, HEAD_LATER, True, None),  # waited, but the group is not idle
        (None, Backlog(idle=True), True, Coverage(None, False)),  # never an event
        (None, HEAD_OF_THE_DAY, True, None),  # the backlog not started on
    ],
)
def test_when_a_day_is_complete(
    frontier: int | None, backlog: Backlog, waited: bool, expected: Coverage | None
) -> None:
    assert judge(frontier, backlog, END, waited=waited) == expected


def test_a_worker_renders_the_daily_report_on_a_thread_of_its_own(world: Stores, caplog) -> None:
    """With SANDTABLE_SCHEDULED_JOBS=workers the worker's sweep starts the due report on a thread and
    goes back to its events (a render takes seconds: an alert must not wait for it); a worker told to
    stop lets the render finish."""
    stores = daily_stores(world)
    stores = Stores(
        settings=stores.settings.model_copy(update={"scheduled_jobs": "workers", "sweep_seconds": 0.1}),
        engine=world.engine,
        keys=world.keys,
    )
    clock = ManualClock(local_ms(NEXT, 7, 30))
    ingest = IngestService(stores, clock=clock)
    assert ingest.ingest("wanhu", passages(world, DAY, 20, range(12)) + passages(world, NEXT, 0, range(3))).accepted
    path = daily_path(stores.settings, "wanhu", DAY)
    worker = Worker(stores, consumer="w1", clock=clock)
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="reports.scheduler")
    loop = threading.Thread(target=worker.run, args=(stop,), name="worker-loop")
    loop.start()
    try:
        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        loop.join(180)
    assert not loop.is_alive()
    sidecar = Sidecar.read(path)
    assert sidecar is not None and sidecar.counts["gate_passages"] == 12
    written = [r for r in caplog.records if r.getMessage().startswith("daily report of wanhu")]
    assert written and {r.threadName for r in written} == {THREAD_NAME}
    assert worker.jobs is not None and not worker.jobs.running  # the stopped worker waited for it
