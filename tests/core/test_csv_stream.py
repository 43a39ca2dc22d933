"""Every CSV we hand out writes its cells one way: formulas defused, moments in the time zone."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings

from minicrm.core.csv_stream import csv_cell, csv_line, csv_lines, formula_defused


@pytest.mark.parametrize("text", ["=1+1", "+91 98", "-5", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_gets_a_leading_apostrophe(text: str) -> None:
    assert formula_defused(text) == "'" + text
    assert csv_cell(text) == "'" + text


def test_other_values_pass_unchanged() -> None:
    assert formula_defused("Asha") == "Asha"
    assert csv_cell(Decimal("12.50")) == Decimal("12.50")
    assert csv_cell(None) is None


@override_settings(TIME_ZONE="Asia/Kolkata")
def test_moments_are_written_in_the_configured_time_zone() -> None:
    moment = datetime(2026, 3, 4, 18, 45, tzinfo=UTC)

    assert csv_cell(moment) == "2026-03-05T00:15:00+05:30"


def test_lines_quote_as_csv_does_and_defuse_every_cell() -> None:
    lines = list(csv_lines(["name", "note"], [["Asha, K", "=HYPERLINK()"], ["Ravi", 'say "hi"']]))

    assert lines == ["name,note\r\n", '"Asha, K",\'=HYPERLINK()\r\n', 'Ravi,"say ""hi"""\r\n']
    assert csv_line(["EXPORT INCOMPLETE: -3 rows"]) == "EXPORT INCOMPLETE: -3 rows\r\n"
