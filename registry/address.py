"""Households by the address people say: building, unit and room (e.g. 2幢 1单元 301室).

Used where someone outside the registry names a household (a visitor's application): only the
household that matches comes back, never a list to choose from.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.models import Building, Household
from registry.validate import normalise_text

_CHINESE_DIGITS = {"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_BUILDING_PREFIX = re.compile(r"^(第|no\.?|bldg\.?|building|block)")
_BUILDING_SUFFIX = re.compile(r"(号楼|號樓|幢|栋|棟|楼|樓|号|號|座|bldg\.?|building|block)$")
_UNIT_WORDS = re.compile(r"^(第|unit)|(单元|單元|unit)$")
_ROOM_WORDS = re.compile(r"^(no\.?|room|#)|(室|房|号|號|room)$")


def _plain(text: str) -> str:
    """Full-width to half-width, lower case, no spaces."""
    return re.sub(r"\s+", "", normalise_text(text)).lower()


def building_key(text: str) -> str:
    """What identifies a building in what people type: '2幢', '2号楼', 'Bldg 2' and '2' are all '2'."""
    key = _plain(text)
    key = _BUILDING_SUFFIX.sub("", _BUILDING_PREFIX.sub("", key))
    return "".join(_CHINESE_DIGITS.get(c, c) for c in key) if len(key) == 1 else key


def unit_number(text: str) -> int | None:
    """'1', '1单元', '一单元' → 1; empty or not a number → None."""
    key = _UNIT_WORDS.sub("", _plain(text))
    key = _CHINESE_DIGITS.get(key, key)
    return int(key) if key.isdecimal() and len(key) <= 4 else None  # isdigit() admits '᧚', int() does not


def room_key(text: str) -> str:
    """'301', '301室', 'Room 301' → '301'."""
    return _ROOM_WORDS.sub("", _plain(text)).upper()


def find_households(session: Session, community: str, building: str, unit: str, room: str) -> list[Household]:
    """The households of the community at that address (several only when the unit was left out)."""
    wanted, room_text = building_key(building), room_key(room)
    if not wanted or not room_text:
        return []
    buildings = [
        b.id
        for b in session.scalars(select(Building).where(Building.community_id == community))
        if wanted in (building_key(b.name), building_key(b.name_en or ""))
    ]
    if not buildings:
        return []
    query = select(Household).where(Household.building_id.in_(buildings), func.upper(Household.room) == room_text)
    if unit.strip():
        number = unit_number(unit)
        if number is None:
            return []
        query = query.where(Household.unit == number)
    return list(session.scalars(query.order_by(Household.id)))
