"""Hazards and security at the devices: smoke, blacklisted vehicles, thrown objects, falls."""

from __future__ import annotations

from typing import Any

from analytics.context import RuleContext
from analytics.rules.base import Rule, location_of
from core.timefmt import iso_utc
from ingest.directory import CommunityFacts
from ingest.schema import DeviceInfo, Event
from registry.facade import household_behind
from store.evidence import evidence_id  # ingest made it an id; a path left in the stream by an older version is dropped


class Smoke(Rule):
    """A smoke detector in alarm (a test is logged, not alerted)."""

    name = "smoke"
    events = frozenset({"smoke.alarm"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        if event.data.get("level", "alarm") != "alarm":
            return
        ctx.alert(
            self.name,
            severity="critical",
            subject={"device": device.id, "household": device.household, "building": device.building},
            identity={"device": device.id},
            location=location_of(device),
            grid=device.grid,
            evidence={"alarm_at": iso_utc(event.ts), "floor": device.floor},
        )


class GateBlacklist(Rule):
    """A blacklisted vehicle at a barrier."""

    name = "gate.blacklist"
    events = frozenset({"gate.vehicle"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        plate = str(event.data.get("plate"))
        vehicle = ctx.facts.vehicles.get(plate)
        if vehicle is None or not vehicle["blacklisted"]:
            return
        ctx.alert(
            self.name,
            severity="high",
            subject={"plate": plate, "device": device.id},
            identity={"plate": plate},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "direction": event.data.get("direction"),
                "seen_at": iso_utc(event.ts),
                "note": vehicle.get("note", ""),
            },
        )


def household_at(
    facts: CommunityFacts, camera: str, building: str, floor: int, column: int
) -> tuple[str | None, str | None]:
    """The household behind a window of the façade the camera faces, or None and why not (registry/facade.py)."""
    return household_behind(facts.facades.get(camera), facts.landings, building, floor, column)


class Throw(Rule):
    """An object thrown from a high floor, traced to floor, column and household."""

    name = "throw"
    events = frozenset({"camera.throw"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        origin: dict[str, Any] = event.data["origin"]
        building, floor, column = str(origin["building"]), int(origin["floor"]), int(origin["column"])
        household, why_not = household_at(ctx.facts, device.id, building, floor, column)
        ctx.alert(
            self.name,
            severity="high",
            subject={"building": building, "household": household, "device": device.id},
            identity={"device": device.id, "building": building, "floor": floor, "column": column},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "origin": origin,
                "trajectory": event.data.get("trajectory", [])[:200],
                "image": evidence_id(event.data.get("image")),
                "seen_at": iso_utc(event.ts),
                "household_reason": why_not,  # None when found; the console hides an empty field
            },
        )


class Fall(Rule):
    """A person who fell and stays down in a camera's view."""

    name = "fall"
    events = frozenset({"camera.fall"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        ctx.alert(
            self.name,
            severity="high",
            subject={"device": device.id, "building": device.building},
            identity={"device": device.id},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "bbox": event.data.get("bbox"),
                "image": evidence_id(event.data.get("image")),
                "seen_at": iso_utc(event.ts),
            },
        )
