"""Signs of life of an elder living alone: every event that says the elder is up and about, whatever
device saw it (issue 23). The elder rules (``elder.inactive``, ``elder.routine``) reset their watch
on any of them; ``elder.no_water`` reads the water meter alone. See docs/rules.md "Signs of life".

- ``door.contact`` of the elder's bedroom door sensor;
- ``meter.water`` of the flat's water meter with ``litres`` > 0;
- ``meter.power`` of the flat's power meter above the fridge and standby: mean ``watts`` over
  ``elder_power_active_watts``, or ``wh`` over that power for ``meter_reading_minutes``;
- ``lock.open`` of the flat's smart lock by the elder, or with no identity (a key, a password);
  an opening by somebody else (a registered face, card or ID of another person) is a visitor;
- ``gate.face`` that recognised the elder (either direction).
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.rules.occupancy import opener, person_of
from core.settings import Settings
from ingest.directory import CommunityFacts
from ingest.schema import DeviceInfo, Event

LIFE_EVENTS = frozenset({"door.contact", "meter.water", "meter.power", "lock.open", "gate.face"})


@dataclass(frozen=True)
class Sign:
    """An elder seen alive: who, by what (door, water, power, lock, gate) and when."""

    person: str
    kind: str
    ts: int


def power_active(data: dict[str, object], settings: Settings) -> bool:
    """True when a power reading is above what the fridge and standby draw on their own."""
    watts = data.get("watts")
    if isinstance(watts, (int, float)):
        return float(watts) > settings.elder_power_active_watts
    wh = data.get("wh")
    if isinstance(wh, (int, float)):
        return float(wh) > settings.elder_power_active_watts * settings.meter_reading_minutes / 60
    return False


def sign_of_life(facts: CommunityFacts, event: Event, device: DeviceInfo, settings: Settings) -> Sign | None:
    """The elder living alone this event shows up and about, or None."""
    if event.type == "door.contact":
        elder = facts.elder_sensors.get(device.id)
        return None if elder is None else Sign(elder[0], "door", event.ts)
    if event.type == "gate.face":
        person = person_of(facts, opener(event.data))
        watched = person is not None and (person in facts.elder_sensor_of or person in facts.elder_water_meter_of)
        return Sign(person, "gate", event.ts) if watched and person is not None else None
    person = facts.elder_devices.get(device.id)
    if person is None:
        return None
    if event.type == "meter.water":
        litres = event.data.get("litres")
        return Sign(person, "water", event.ts) if isinstance(litres, (int, float)) and litres > 0 else None
    if event.type == "meter.power":
        return Sign(person, "power", event.ts) if power_active(event.data, settings) else None
    if event.type == "lock.open":
        who = opener(event.data)
        return Sign(person, "lock", event.ts) if who is None or person_of(facts, who) == person else None
    return None
