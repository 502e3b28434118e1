"""Validation at the registry's boundary."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from registry import validate
from registry.demo import check_digit


def with_check(first17: str) -> str:
    return first17 + check_digit(first17)


@pytest.mark.parametrize("number", ["11010519491231002X", with_check("32090219400101991"), " 11010519491231002x "])
def test_valid_id_numbers_are_accepted_and_normalised(number: str) -> None:
    assert validate.id_number(number) == number.strip().upper()


def test_an_elder_born_before_the_place_code_existed_is_accepted() -> None:
    # Tinghu district's code dates from the 1980s; numbers issued then to people born in 1936 carry it.
    assert validate.id_number(with_check("32090219360101991")).startswith("320902")


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("110105194912310021", "check digit is wrong"),
        (with_check("11010519491331002"), "impossible birth date"),
        (with_check("99010519491231002"), "unknown place code 990105"),
        (with_check("11010529491231002"), "in the future"),
        ("1101051949123100", "18 characters, not 16"),
        ("11010519491231002Y", "17 digits and a digit or X"),
        ("", "empty"),
    ],
)
def test_invalid_id_numbers_say_why(number: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        validate.id_number(number)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("0515-88881234", "0515-88881234"),
    ],
)
def test_phones_are_normalised(raw: str, expected: str) -> None:
    assert validate.phone(raw) == expected


@pytest.mark.parametrize("raw", ["12812345678", "1381234567", "abc", "138123456789"])
def test_bad_phones_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="phone number"):
        validate.phone(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("苏J12345", "苏J12345"),
        ("苏Ｊ·１２３４５", "苏J12345"),
        ("苏jd12345", "苏JD12345"),
        ("苏J12345D", "苏J12345D"),
        ("京A8888警", "京A8888警"),
        (" 苏 J-A1B2C ", "苏JA1B2C"),
    ],
)
def test_plates_follow_ga36_and_full_width_is_normalised(raw: str, expected: str) -> None:
    assert validate.plate(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("J12345", "province"), ("苏J1234", "7 characters"), ("苏JI2345", "I and O"), ("苏1A2345", "GA 36")],
)
def test_bad_plates_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        validate.plate(raw)


def test_a_self_intersecting_polygon_is_refused() -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[120.0, 33.0], [120.001, 33.001], [120.001, 33.0], [120.0, 33.001], [120.0, 33.0]]],
    }
    with pytest.raises(InvalidInput, match="not valid: Self-intersection"):
        validate.polygon(bowtie)


def test_projected_coordinates_are_not_taken_for_degrees() -> None:
    square = {
        "type": "Polygon",
        "coordinates": [
            [[40500000, 3690000], [40500100, 3690000], [40500100, 3690100], [40500000, 3690100], [40500000, 3690000]]
        ],
    }
    with pytest.raises(InvalidInput, match="not WGS-84 degrees"):
        validate.polygon(square)


def test_a_point_is_not_a_polygon() -> None:
    with pytest.raises(InvalidInput, match="must be a polygon, not a Point"):
        validate.polygon({"type": "Point", "coordinates": [120.0, 33.0]})
