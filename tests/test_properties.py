"""Properties of the pure pieces, checked with hypothesis against their definitions (issue 21).

Each property draws bounded, derandomised examples, so a run is the same on every machine. A
defect a property found is kept below its property as a regression test with the shrunk example.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from analytics.video.calibration import Facade, parse_calibration, quadrilateral_problem
from core.errors import InvalidInput
from geodata.gcj02 import HERE, gcj02_to_wgs84, in_mainland_china, wgs84_to_gcj02
from geodata.layers import load_geojson
from registry import validate
from registry.validate import PROVINCES
from store.keys import Keys

BOUNDED = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# --- ID numbers: GB 11643-1999 ------------------------------------------------------------------------------

WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]  # ISO 7064 MOD 11-2
PLACES = ["110105", "320902", "320981", "130102", "410102", "510104", "440305", "650102"]
TODAY = dt.date.today()
# other ways to write a digit: full-width ones are the same digit (NFKC); the other scripts' are not accepted
ODD_DIGITS = "０１９٠٣٩०३९"


def check_character(first17: str) -> str:
    """The check character of 17 digits, by the standard's definition."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def checksum_holds(text: str) -> bool:
    """True for 18 ASCII characters whose last one is the check character of the first 17."""
    return (
        len(text) == 18
        and all(c in "0123456789" for c in text[:17])
        and text[17] in "0123456789X"
        and check_character(text[:17]) == text[17]
    )


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid ID number, built from its parts: place, birth date, sequence (odd for men), check character."""
    place = draw(st.sampled_from(PLACES))
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.integers(0, 999))
    first17 = f"{place}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


@BOUNDED
@given(id_numbers())
def test_every_id_number_built_by_the_standard_is_accepted_as_itself(number: str) -> None:
    assert validate.id_number(number) == number
    assert validate.id_number(number.lower()) == number  # a lower-case x


@BOUNDED
@given(id_numbers(), st.integers(0, 17), st.sampled_from("0123456789Xx" + ODD_DIGITS))
def test_a_changed_character_is_refused_unless_it_is_the_same_number(number: str, at: int, char: str) -> None:
    changed = number[:at] + char + number[at + 1 :]
    same = unicodedata.normalize("NFKC", changed).upper()
    if checksum_holds(same):
        assert validate.id_number(changed) == same == number
    else:
        with pytest.raises(InvalidInput):
            validate.id_number(changed)


@BOUNDED
@given(id_numbers(), st.integers(0, 16))
def test_two_neighbours_swapped_are_refused_when_the_checksum_breaks(number: str, at: int) -> None:
    swapped = number[:at] + number[at + 1] + number[at] + number[at + 2 :]
    assume(swapped != number)
    if at < 16:
        assert not checksum_holds(swapped)  # MOD 11-2 catches every swap of two different digits
    if not checksum_holds(swapped):
        with pytest.raises(InvalidInput):  # the check digit's error, or the digits' one when X moved inside
            validate.id_number(swapped)


@BOUNDED
@given(id_numbers(), st.integers(1, 25).filter(lambda n: n != 18))
def test_other_lengths_and_the_old_15_digit_form_are_refused_naming_the_length(number: str, length: int) -> None:
    text = (number * 2)[:length]
    with pytest.raises(InvalidInput, match=f"not {length}"):
        validate.id_number(text)


def test_digits_of_another_script_are_refused_not_stored_as_another_number() -> None:
    # found by the property above (shrunk: 110105200001010008, "٠" at 7): str.isdigit() and int() take
    # "٠" (Arabic-Indic zero), so the validator accepted 1101052٠0001010008 and returned it as such,
    # a second spelling of one person's number that no hash of the first one matches
    with pytest.raises(InvalidInput, match="17 digits"):
        validate.id_number("1101052\u06600001010008")


# --- plates: GA 36 ------------------------------------------------------------------------------------------

LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, no O
DIGITS = "0123456789"
NEV_KINDS = "DABCEFGHJK"
LAST_MARKS = "挂学警港澳领"


def ga36(plate: str) -> bool:
    """The plate forms of GA 36 the registry takes, position by position (no regular expression)."""
    if len(plate) < 7 or plate[0] not in PROVINCES or plate[1] not in LETTERS:
        return False
    serial = plate[2:]
    if len(serial) == 5:  # ordinary: five letters or digits, the last may be a mark (挂, 警, …)
        return all(c in LETTERS + DIGITS for c in serial[:4]) and serial[4] in LETTERS + DIGITS + LAST_MARKS
    if len(serial) == 6:  # new energy: small (kind first) or large (kind last)
        small = serial[0] in NEV_KINDS and serial[1] in LETTERS + DIGITS and all(c in DIGITS for c in serial[2:])
        large = all(c in DIGITS for c in serial[:5]) and serial[5] in NEV_KINDS
        return small or large
    return False


@st.composite
def plates(draw: st.DrawFn) -> str:
    """A valid plate of one of the three forms, built position by position."""
    head = draw(st.sampled_from(PROVINCES)) + draw(st.sampled_from(LETTERS))
    kind = draw(st.sampled_from(["ordinary", "small", "large"]))
    text = st.text
    if kind == "ordinary":
        return (
            head
            + draw(text(LETTERS + DIGITS, min_size=4, max_size=4))
            + draw(st.sampled_from(LETTERS + DIGITS + LAST_MARKS))
        )
    if kind == "small":
        middle = draw(st.sampled_from(NEV_KINDS)) + draw(st.sampled_from(LETTERS + DIGITS))
        return head + middle + draw(text(DIGITS, min_size=4, max_size=4))
    return head + draw(text(DIGITS, min_size=5, max_size=5)) + draw(st.sampled_from(NEV_KINDS))


@BOUNDED
@given(plates())
def test_every_plate_built_by_ga36_is_accepted_as_itself(plate: str) -> None:
    assert validate.plate(plate) == plate


@BOUNDED
@given(plates())
def test_full_width_lower_case_and_separators_give_the_same_plate(plate: str) -> None:
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isascii() else c for c in plate.lower())
    assert validate.plate(f" {wide[:2]}·{wide[2:]} ") == plate


@BOUNDED
@given(plates(), st.integers(0, 7), st.sampled_from(LETTERS + DIGITS + "IO" + NEV_KINDS + LAST_MARKS + "京苏中国使#"))
def test_a_changed_character_is_accepted_exactly_when_ga36_allows_it(plate: str, at: int, char: str) -> None:
    assume(at < len(plate))
    changed = plate[:at] + char + plate[at + 1 :]
    if ga36(changed):
        assert validate.plate(changed) == changed
    else:
        with pytest.raises(InvalidInput):
            validate.plate(changed)


@BOUNDED
@given(plates(), st.integers(0, 8), st.sampled_from("IO"))
def test_the_letters_i_and_o_are_never_accepted(plate: str, at: int, letter: str) -> None:
    for changed in (plate[:at] + letter + plate[at + 1 :], plate[:at] + letter + plate[at:]):
        with pytest.raises(InvalidInput):
            validate.plate(changed)


# --- GCJ-02 -------------------------------------------------------------------------------------------------


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (lat, lon) positions."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def _border_vertices() -> list[tuple[float, float]]:
    area = load_geojson(HERE / "china_gcj02_area.geojson")["features"][0]["geometry"]
    polygons = area["coordinates"] if area["type"] == "MultiPolygon" else [area["coordinates"]]
    return [(lat, lon) for polygon in polygons for ring in polygon for lon, lat in ring]


BORDER = _border_vertices()
coordinate = st.floats(allow_nan=False, allow_infinity=False)
in_box = st.tuples(st.floats(17.5, 54.0), st.floats(73.0, 136.0))
# positions within about 2 km of the border: where the shift crosses it
near_border = st.builds(
    lambda vertex, dlat, dlon: (vertex[0] + dlat, vertex[1] + dlon),
    st.sampled_from(BORDER),
    st.floats(-0.02, 0.02),
    st.floats(-0.02, 0.02),
)
anywhere = st.tuples(st.floats(-90, 90), st.floats(-180, 180))


@BOUNDED
@given(st.one_of(in_box, near_border))
def test_a_position_in_china_comes_back_from_gcj02_to_within_a_metre(position: tuple[float, float]) -> None:
    assume(in_mainland_china(*position))
    assert haversine_m(position, gcj02_to_wgs84(*wgs84_to_gcj02(*position))) < 1.0


@BOUNDED
@given(st.one_of(in_box, near_border))
def test_the_shift_in_china_is_tens_to_hundreds_of_metres(position: tuple[float, float]) -> None:
    assume(in_mainland_china(*position))
    assert 10 < haversine_m(position, wgs84_to_gcj02(*position)) < 700


@BOUNDED
@given(st.one_of(in_box, near_border, anywhere))
def test_a_position_outside_china_is_not_shifted(position: tuple[float, float]) -> None:
    assume(not in_mainland_china(*position))
    assert wgs84_to_gcj02(*position) == position


@BOUNDED
@given(anywhere)
def test_a_position_far_from_china_comes_back_as_itself(position: tuple[float, float]) -> None:
    lat, lon = position
    assume(not (10 < lat < 60 and 65 < lon < 145))
    assert gcj02_to_wgs84(lat, lon) == position


def test_a_position_just_inside_the_northern_border_comes_back_to_itself() -> None:
    # found by the property above (shrunk example): the GCJ-02 position lies across the border, where no
    # shift applies, so the inverse stopped at once and returned it, hundreds of metres from the stored one
    position = (53.548046875, 122.3)
    assert in_mainland_china(*position)
    assert not in_mainland_china(*wgs84_to_gcj02(*position))
    assert haversine_m(position, gcj02_to_wgs84(*wgs84_to_gcj02(*position))) < 1.0


# --- façade calibration -------------------------------------------------------------------------------------


@st.composite
def facades(draw: st.DrawFn) -> Facade:
    """A usable façade: a rectangle seen a little askew (each corner moved by up to 15 % of the size)."""
    left, top = draw(st.floats(0, 300)), draw(st.floats(0, 300))
    width, height = draw(st.floats(150, 900)), draw(st.floats(150, 900))
    rectangle = [(left, top), (left + width, top), (left + width, top + height), (left, top + height)]
    jitter = st.floats(-0.15, 0.15)
    corners = [(x + draw(jitter) * width, y + draw(jitter) * height) for x, y in rectangle]
    assume(quadrilateral_problem(corners) is None)
    floors, columns = draw(st.integers(1, 40)), draw(st.integers(1, 12))
    data = {"camera": "TC-1", "building": "B-1", "floors": floors, "columns": columns, "facade": corners}
    return Facade(parse_calibration(data))


def cell_at(facade: Facade, x: float, y: float) -> tuple[int, int] | None:
    u, v = facade.to_unit(np.array([[x, y]]))[0]
    return facade.cell(float(u), float(v))


@BOUNDED
@given(facades(), st.data())
def test_the_centre_of_a_floors_column_maps_back_to_that_floor_and_column(facade: Facade, data: st.DataObject) -> None:
    floor = data.draw(st.integers(1, facade.floors))
    column = data.draw(st.integers(1, facade.columns))
    assert cell_at(facade, *facade.cell_point(floor, column)) == (floor, column)


@BOUNDED
@given(facades(), st.data())
def test_lower_in_the_image_is_never_a_higher_floor(facade: Facade, data: st.DataObject) -> None:
    column = data.draw(st.integers(1, facade.columns))
    x, _ = facade.cell_point(data.draw(st.integers(1, facade.floors)), column)
    ys = facade.corners[:, 1]
    y1, y2 = sorted(data.draw(st.lists(st.floats(float(ys.min()), float(ys.max())), min_size=2, max_size=2)))
    units = facade.to_unit(np.array([[x, y1], [x, y2]]))
    assume(bool(np.all((units >= 0) & (units <= 1))))  # both on the façade: the segment between is too
    upper, lower = (facade.cell(float(u), float(v)) for u, v in units)
    assert upper is not None and lower is not None
    assert upper[0] >= lower[0]


# --- Redis keys ---------------------------------------------------------------------------------------------


def _reader(keys: Keys, name: str) -> Callable[[], str]:
    return lambda: str(getattr(keys, name))


def _builders() -> tuple[list[Callable[..., str]], list[Callable[..., str]]]:
    """Every key builder of Keys, split into community ones (first argument ``community``) and global ones."""
    community: list[Callable[..., str]] = []
    global_: list[Callable[..., str]] = []
    keys = Keys()
    for name, member in vars(Keys).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            global_.append(_reader(keys, name))
        elif inspect.isfunction(member):
            params = list(inspect.signature(member).parameters)[1:]
            (community if params[:1] == ["community"] else global_).append(getattr(keys, name))
    return community, global_


COMMUNITY_KEYS, GLOBAL_KEYS = _builders()
community_ids = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
any_text = st.text(max_size=40)


def build(builder: Callable[..., str], first: Any, data: st.DataObject) -> str:
    """A key from one builder: ``first`` as its first argument, the others drawn (text or int as annotated)."""
    params = list(inspect.signature(builder).parameters.values())
    args = [
        data.draw(st.integers(0, 10**9) if p.annotation in (int, "int") else any_text)
        for p in params[1 if first is not None else 0 :]
    ]
    return builder(*([first] if first is not None else []), *args)


def hash_tag_of(key: str) -> str | None:
    """The part of a key Redis Cluster hashes: between the first ``{`` and the next ``}``, if not empty."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start >= 0 and end > start + 1 else None


def test_the_builders_are_found() -> None:
    assert len(COMMUNITY_KEYS) > 20 and len(GLOBAL_KEYS) > 5


@BOUNDED
@given(
    st.sampled_from(COMMUNITY_KEYS),
    st.sampled_from(COMMUNITY_KEYS),
    st.one_of(community_ids, any_text),
    st.one_of(community_ids, any_text),
    st.data(),
)
def test_two_communities_never_share_a_key(
    one: Callable[..., str], other: Callable[..., str], first: str, second: str, data: st.DataObject
) -> None:
    assume(first != second)
    assert build(one, first, data) != build(other, second, data)


@BOUNDED
@given(st.sampled_from(COMMUNITY_KEYS), community_ids, st.data())
def test_a_community_key_carries_its_community_as_hash_tag(
    builder: Callable[..., str], community: str, data: st.DataObject
) -> None:
    assert hash_tag_of(build(builder, community, data)) == community


@BOUNDED
@given(st.sampled_from(COMMUNITY_KEYS), any_text, any_text, st.data())
def test_any_community_id_gets_a_hash_tag_of_its_own(
    builder: Callable[..., str], first: str, second: str, data: st.DataObject
) -> None:
    assume(first != second)
    tag = hash_tag_of(build(builder, first, data))
    assert tag is not None and tag != hash_tag_of(build(builder, second, data))


@BOUNDED
@given(st.sampled_from(COMMUNITY_KEYS), st.sampled_from(GLOBAL_KEYS), st.one_of(community_ids, any_text), st.data())
def test_no_community_key_is_a_global_key(
    community_key: Callable[..., str], global_key: Callable[..., str], community: str, data: st.DataObject
) -> None:
    assert build(community_key, community, data) != build(global_key, None, data)


def test_an_empty_community_id_still_gets_a_hash_tag() -> None:
    # found by the property above (shrunk: ""): "st:{}:events" has no hash tag, so Redis Cluster hashes
    # the whole key and the community's keys scatter over slots
    assert hash_tag_of(Keys().events("")) is not None


def test_a_brace_in_a_community_id_does_not_end_its_hash_tag() -> None:
    # the same defect, seen while fixing it: "a}:seen:b" put its keys in community "a"'s slot, and its
    # seen key for event "x" was community "a"'s seen key for event "b}:seen:x"
    keys = Keys()
    assert keys.seen("a}:seen:b", "x") != keys.seen("a", "b}:seen:x")
    assert hash_tag_of(keys.events("a}b")) != "a"
