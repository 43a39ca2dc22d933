"""Tests for minicrm/core/text.py: the text every database can store."""

import json

import pytest

from minicrm.core.text import text_problem

NUL = "Must not contain the NUL character (\\u0000)."
SURROGATE = "Must not contain a lone surrogate (\\ud800-\\udfff); send valid Unicode text."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", None),
        ("accents é, emoji 😀, CJK 漢字", None),
        (json.loads('"\\ud83d\\ude00"'), None),  # a valid pair from JSON is one code point
        ("a\x00b", NUL),
        ("\x00", NUL),
        (json.loads('"x\\ud800"'), SURROGATE),
        (json.loads('"\\udfff"'), SURROGATE),
        ({"plan": ["gold", "x\udc00"]}, SURROGATE),
        ({"ke\x00y": 1}, NUL),
        (("a", "b\x00"), NUL),
        ({"plan": "gold", "n": 3, "ok": True, "none": None}, None),
        (12, None),
        (None, None),
    ],
)
def test_text_problem(value: object, expected: str | None) -> None:
    assert text_problem(value) == expected
