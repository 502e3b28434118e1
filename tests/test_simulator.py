"""The simulator's demo world: elders go out through the face gates and leave their door alone
while out, so the live demo exercises elder.routine as the rule expects real elders to behave."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import defaultdict

from core.timefmt import utc_to_ms
from simulator.generate import make_story
from simulator.run import window
from simulator.world import load_world
from store.stores import Stores

DAY_MS = 24 * 3_600_000


def test_elders_go_out_through_the_gates_and_their_doors_rest_meanwhile(demo_stores: Stores) -> None:
    with demo_stores.sessions() as session:
        world = load_world(session, "wanhu", random.Random(7))
    anchor = utc_to_ms(dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC))  # local midnight
    story = make_story(world, anchor, seed=7)
    events = window(world, story, anchor - 3 * DAY_MS, anchor, seed=7)
    elders = {e.person: e.sensor for e in world.elders}
    passages: dict[str, list[tuple[int, str]]] = defaultdict(list)
    doors: dict[str, list[int]] = defaultdict(list)
    for event in events:
        person = event["data"].get("person")
        if event["type"] == "gate.face" and person in elders:
            passages[person].append((event["ts"], event["data"]["direction"]))
        elif event["type"] == "door.contact":
            doors[event["device"]].append(event["ts"])
    outings = [
        (person, leave, back)
        for person, seen in passages.items()
        for (leave, d1), (back, d2) in itertools.pairwise(seen)
        if d1 == "out" and d2 == "in" and back - leave < 4 * 3_600_000
    ]
    assert len(outings) >= len(elders) // 3  # about a third of the elders' days have an outing
    for person, leave, back in outings:
        inside = [ts for ts in doors[elders[person]] if leave < ts < back]
        assert inside == [], (person, leave, back)
