"""CSV written for people to open in a spreadsheet, streamed line by line.

Every file we hand out (segment members, orders, an import's row errors) goes through here, so
each cell is written the same way: moments in the configured time zone, and text that a
spreadsheet would run as a formula defused with a leading apostrophe (CSV injection).
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.utils import timezone

# A leading =, +, -, @ (or a tab or carriage return) makes a spreadsheet run the cell.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_defused(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def csv_cell(value: object) -> object:
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, str):
        return formula_defused(value)
    return value


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a stream."""

    def write(self, value: str) -> str:
        return value


def csv_line(values: Iterable[object]) -> str:
    """One line of CSV, its cells written by `csv_cell`."""
    return str(csv.writer(_Echo()).writerow([csv_cell(value) for value in values]))


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])
