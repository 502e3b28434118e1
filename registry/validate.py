"""Validation at the registry's boundary: ID numbers, phones, plates, polygons.

Each function returns the normalised value or raises InvalidInput with one sentence a user
can act on. The registry never stores a value that did not pass through here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from functools import lru_cache
from typing import Any

from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from core.errors import InvalidInput

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_LETTER = "A-HJ-NP-Z"  # plates use no I and no O
_ORDINARY = re.compile(rf"^[{PROVINCES}][{_LETTER}][{_LETTER}0-9]{{4}}[{_LETTER}0-9挂学警港澳领]$")
_NEV_SMALL = re.compile(rf"^[{PROVINCES}][{_LETTER}][DABCEFGHJK][{_LETTER}0-9][0-9]{{4}}$")
_NEV_LARGE = re.compile(rf"^[{PROVINCES}][{_LETTER}][0-9]{{5}}[DABCEFGHJK]$")
# ASCII digits only: str.isdigit() and int() also take other scripts' digits (٣, ३), which NFKC keeps
_ID_CHARS = re.compile(r"[0-9]{17}[0-9X]")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE = re.compile(r"^0[1-9][0-9]{1,2}-?[1-9][0-9]{6,7}$")


def normalise_text(value: str) -> str:
    """Full-width characters to half-width (NFKC), surrounding space removed."""
    return unicodedata.normalize("NFKC", value).strip()


def id_number(value: Any) -> str:
    """A resident ID number (GB 11643): 18 characters, a real birth date, a known place code, checksum.

    python-stdnum's ``ric.validate`` also demands that the place code existed in the birth
    year; numbers issued in the 1980s to people born earlier (most elders) carry the code of
    their place at issuance, so that rule would reject real numbers. We use stdnum's checksum,
    date and code table, and accept a code that existed at any time.
    """
    if value is None or str(value).strip() == "":
        raise InvalidInput(key="validate.id.empty")
    text = normalise_text(str(value)).upper().replace(" ", "")
    if len(text) != 18:
        raise InvalidInput(key="validate.id.length", n=len(text))
    if not _ID_CHARS.fullmatch(text):
        raise InvalidInput(key="validate.id.digits")
    if ric.calc_check_digit(text) != text[17]:
        raise InvalidInput(key="validate.id.check")
    try:
        born = ric.get_birth_date(text)
    except ValidationError:
        raise InvalidInput(key="validate.id.birth") from None
    if not dt.date(1880, 1, 1) <= born <= dt.date.today():
        raise InvalidInput(key="validate.id.birth_range")
    if not _known_place(text[:6]):
        raise InvalidInput(key="validate.id.place", code=text[:6])
    return text


@lru_cache(maxsize=4096)
def _known_place(code: str) -> bool:
    return any(props for _part, props in numdb.get("cn/loc").info(code))


def phone(value: Any) -> str:
    """A mainland mobile number (11 digits, 13x–19x) or a landline with area code."""
    if value is None or str(value).strip() == "":
        raise InvalidInput(key="validate.phone.empty")
    text = normalise_text(str(value))
    text = re.sub(r"[\s()（）]", "", text)
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    digits = text.replace("-", "")
    if _MOBILE.match(digits):
        return digits
    if _LANDLINE.match(text):
        return text
    raise InvalidInput(key="validate.phone.format")


def plate(value: Any) -> str:
    """A vehicle plate (GA 36, new-energy plates included), full-width characters normalised."""
    if value is None or str(value).strip() == "":
        raise InvalidInput(key="validate.plate.empty")
    text = normalise_text(str(value)).upper()
    text = re.sub(r"[\s·•\-.]", "", text)
    if not text or text[0] not in PROVINCES:
        raise InvalidInput(key="validate.plate.province")
    if _ORDINARY.match(text) or _NEV_SMALL.match(text) or _NEV_LARGE.match(text):
        return text
    if len(text) not in (7, 8):
        raise InvalidInput(key="validate.plate.length", n=len(text))
    if "I" in text or "O" in text:
        raise InvalidInput(key="validate.plate.io")
    raise InvalidInput(key="validate.plate.format")


def _check_degrees(geom: BaseGeometry) -> None:
    min_x, min_y, max_x, max_y = geom.bounds
    if not (-180 <= min_x <= max_x <= 180 and -90 <= min_y <= max_y <= 90):
        raise InvalidInput("coordinates are not WGS-84 degrees (is the file in a projected CRS without a .prj?)")


def polygon(value: Any) -> dict[str, Any]:
    """A valid WGS-84 Polygon or MultiPolygon as a GeoJSON mapping."""
    geom = _geometry(value)
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidInput(f"geometry must be a polygon, not a {geom.geom_type}")
    if not geom.is_valid:
        raise InvalidInput(f"polygon is not valid: {explain_validity(geom)}")
    if geom.area == 0:
        raise InvalidInput("polygon has no area")
    _check_degrees(geom)
    return dict(mapping(geom))


def linestring(value: Any) -> dict[str, Any]:
    """A WGS-84 LineString as a GeoJSON mapping."""
    geom = _geometry(value)
    if geom.geom_type != "LineString":
        raise InvalidInput(f"geometry must be a line, not a {geom.geom_type}")
    if geom.length == 0:
        raise InvalidInput("line has no length")
    _check_degrees(geom)
    return dict(mapping(geom))


def lat_lon(lat: Any, lon: Any) -> tuple[float, float]:
    """A WGS-84 position in degrees."""
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        raise InvalidInput("lat and lon must be numbers (WGS-84 degrees)") from None
    if not (-90 <= lat_f <= 90 and -180 <= lon_f <= 180) or math.isnan(lat_f) or math.isnan(lon_f):
        raise InvalidInput("lat must be within ±90 and lon within ±180 degrees")
    return lat_f, lon_f


def _geometry(value: Any) -> BaseGeometry:
    if isinstance(value, BaseGeometry):
        geom = value
    else:
        try:
            geom = shape(value)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise InvalidInput(f"geometry is not GeoJSON ({err})") from None
    if geom is None or geom.is_empty:
        raise InvalidInput("geometry is empty")
    return geom
