"""Bars as classes (the CSP allows no style attributes): whole percents, clamped, and a small
real share still visible."""

from pathlib import Path

import pytest

from minicrm.web.templatetags.proportions import percent_class, share_class

CSS = Path(__file__).resolve().parents[2] / "minicrm/web/static/minicrm/css/proportions.css"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "pct-0"),
        (66.7, "pct-67"),
        ("42.4", "pct-42"),
        (100, "pct-100"),
        (130, "pct-100"),
        (-5, "pct-0"),
        ("", "pct-0"),
        (None, "pct-0"),
    ],
)
def test_percent_class(value: object, expected: str) -> None:
    assert percent_class(value) == expected


@pytest.mark.parametrize(
    ("part", "total", "expected"),
    [
        (0, 10, "grow-0"),
        (5, 10, "grow-50"),
        (1, 1000, "grow-1"),
        (10, 10, "grow-100"),
        (3, 0, "grow-0"),
        ("x", 10, "grow-0"),
    ],
)
def test_share_class(part: object, total: object, expected: str) -> None:
    assert share_class(part, total) == expected


def test_every_class_the_filters_give_exists_in_the_stylesheet() -> None:
    css = CSS.read_text()
    for n in range(101):
        assert f".pct-{n} {{ width: {n}%; }}" in css
        assert f".grow-{n} {{ flex-grow: {n}; }}" in css
