"""Which household lies behind a window of a façade, in any registry (docs/rules.md#throw).

A thrown-object camera's calibration (``Device.config["calibration"]``) names the building it
faces, its ``floors`` and ``columns``, and may say which units the façade shows from left to right
(``units: [1, 2]``, default every unit of the building in ascending order) and ``reverse: true``
when columns count from the right (a camera facing the back of the building). The columns are split
evenly across the façade's units; within a unit, the households of that floor are taken in the
natural order of their room labels (``301 < 302 < 1201``, ``3-2 < 3-10``). Nothing here reads SQL:
the ingest directory builds the façades and landings once per community (``ingest/directory.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# why no household was named (an evidence value of the ``throw`` alert, translated as value.<reason>)
NO_CALIBRATION = "no_calibration"
OTHER_BUILDING = "other_building"
COLUMN_BEYOND_FACADE = "column_beyond_facade"
FLOOR_BEYOND_FACADE = "floor_beyond_facade"
NO_ROOM = "no_room"

_DIGITS = re.compile(r"(\d+)")


def natural_key(label: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a room label: digit runs by value, the rest by text (``3-2`` before ``3-10``)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(label) if part)


@dataclass(frozen=True)
class Facade:
    """The façade a thrown-object camera faces."""

    building: str
    floors: int
    columns: int
    units: tuple[int, ...]  # left to right as seen from the front
    reverse: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any] | None, building_units: dict[str, int]) -> Facade | None:
        """The façade of a camera's calibration, or None when it has none usable."""
        calibration = (config or {}).get("calibration")
        if not isinstance(calibration, dict):
            return None
        try:
            building = str(calibration["building"])
            floors, columns = int(calibration["floors"]), int(calibration["columns"])
            units = calibration.get("units")
            shown = (
                tuple(int(u) for u in units)
                if isinstance(units, list) and units
                else tuple(range(1, building_units.get(building, 1) + 1))
            )
        except (KeyError, TypeError, ValueError):
            return None
        if floors < 1 or columns < 1:
            return None
        return cls(building, floors, columns, shown, bool(calibration.get("reverse", False)))

    def unit_and_position(self, column: int) -> tuple[int, int] | None:
        """The unit of a column (1 = left) and the column's position (0-based) within that unit, or None
        when the column is not on the façade."""
        if not 1 <= column <= self.columns:
            return None
        k = self.columns - column if self.reverse else column - 1  # 0-based, from the front's left
        n = len(self.units)
        index = k * n // self.columns  # columns split evenly (with a remainder, the first units one wider)
        first = -(-index * self.columns // n)  # the unit's first column: ceil(index * columns / n)
        return self.units[index], k - first


def household_behind(
    facade: Facade | None,
    landings: dict[tuple[str, int, int], list[str]],
    building: str,
    floor: int,
    column: int,
) -> tuple[str | None, str | None]:
    """(household id, None), or (None, why not) for a window of the façade.

    ``landings``: (building, unit, floor) → household ids in the natural order of their rooms.
    """
    if facade is None:
        return None, NO_CALIBRATION
    if building != facade.building:
        return None, OTHER_BUILDING
    if not 1 <= floor <= facade.floors:
        return None, FLOOR_BEYOND_FACADE
    place = facade.unit_and_position(column)
    if place is None:
        return None, COLUMN_BEYOND_FACADE
    unit, position = place
    rooms = landings.get((building, unit, floor), [])
    if position >= len(rooms):
        return None, NO_ROOM
    return rooms[position], None
