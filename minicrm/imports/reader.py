"""Reading an uploaded CSV: encoding, delimiter, header matching and numbered data rows.

Files must be UTF-8 (a BOM, as Excel's "CSV UTF-8" writes, is fine). Anything else is refused
with a message saying how to fix it rather than guessed: a wrong guess (cp1252 for a file that is
really Latin-9 or Shift-JIS) would store garbled names for good and overwrite good ones on upsert.
"""

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from minicrm.core.errors import ApplicationError
from minicrm.core.text import text_problem

ENCODING = "utf-8-sig"
DELIMITERS = (",", ";", "\t")
# Enough for the header line of any sensible CSV; the rest of the file is read as a stream.
HEADER_PEEK_BYTES = 64 * 1024
ZIP_MAGIC = b"PK\x03\x04"
FIX_ENCODING = 'Save it as "CSV UTF-8" (in Excel: File → Save As → CSV UTF-8) and upload it again.'


class ImportFileError(ApplicationError):
    """The file as a whole cannot be imported; the message says why and what to do."""


@dataclass(frozen=True)
class ColumnSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass(frozen=True)
class Header:
    """Where each known column sits in the file, and which columns were not recognised."""

    delimiter: str
    width: int
    positions: dict[str, int]
    ignored: tuple[str, ...]


@dataclass(frozen=True)
class DataRow:
    number: int  # as a spreadsheet shows it: the header is row 1
    cells: list[str]


def _sniff_delimiter(first_line: str) -> str:
    # Excel in many European locales writes ";"; some tools write tabs. Column names never
    # contain these characters, so the most frequent one in the header line is the delimiter.
    counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _not_utf8(error: UnicodeDecodeError, *, line: int) -> ImportFileError:
    byte = error.object[error.start : error.start + 1].hex().upper()
    return ImportFileError(
        f"The file is not UTF-8 encoded (byte 0x{byte} on line {line:,} cannot be read). "
        + FIX_ENCODING,
        field="file",
    )


def _first_bad_line(file: IO[bytes]) -> tuple[int, UnicodeDecodeError] | None:
    """Find the first line that is not UTF-8 (only after decoding failed, so rarely run).

    Lines can be decoded one by one because no multi-byte UTF-8 character contains a newline byte.
    """
    file.seek(0)
    for number, line in enumerate(file, start=1):
        try:
            line.decode(ENCODING)
        except UnicodeDecodeError as error:
            return number, error
    return None


def header_read(file: IO[bytes], *, spec: ColumnSpec) -> Header:
    """Read and check the header row; raise ImportFileError naming what is wrong."""
    delimiter, names = header_names(file)
    return header_match(names, spec=spec, delimiter=delimiter)


def header_names(file: IO[bytes]) -> tuple[str, list[str]]:
    """The delimiter and the column names of the header row, as the file spells them."""
    file.seek(0)
    head = file.read(HEADER_PEEK_BYTES)
    if head.startswith(ZIP_MAGIC):
        raise ImportFileError(
            "This looks like an Excel workbook, not a CSV file. "
            'Export it as "CSV UTF-8" and upload that file.',
            field="file",
        )
    # The peek may end in the middle of a multi-byte character; decode as a stream would.
    try:
        text = codecs.getincrementaldecoder(ENCODING)(errors="strict").decode(head, final=False)
    except UnicodeDecodeError as error:
        raise _not_utf8(error, line=head[: error.start].count(b"\n") + 1) from error
    if not text.strip():
        raise ImportFileError(
            "The file is empty: it needs a header row and data rows.", field="file"
        )
    delimiter = _sniff_delimiter(text.splitlines()[0])
    try:
        names = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as error:
        raise ImportFileError("The header row cannot be read as CSV.", field="file") from error
    problem = text_problem(names)
    if problem:
        raise ImportFileError(f"The header row cannot be stored. {problem}", field="file")
    return delimiter, names


def header_mapped(names: list[str], *, columns: dict[str, str], delimiter: str) -> Header:
    """Where each mapped field's column sits; the mapping was checked against these names."""
    normalised = [name.strip().lower() for name in names]
    positions: dict[str, int] = {}
    for field, column in columns.items():
        found = [index for index, name in enumerate(normalised) if name == column.strip().lower()]
        if len(found) != 1:
            raise ImportFileError(
                f"The column {column!r} (for {field}) appears {len(found)} times in the header.",
                field="file",
            )
        positions[field] = found[0]
    used = {position for position in positions.values()}
    ignored = tuple(name.strip() for index, name in enumerate(names) if index not in used)
    return Header(
        delimiter=delimiter,
        width=len(names),
        positions=positions,
        ignored=tuple(filter(None, ignored)),
    )


def header_match(names: list[str], *, spec: ColumnSpec, delimiter: str = ",") -> Header:
    """Match column names without regard to case or surrounding spaces.

    A NUL character in a data cell is that row's error (the row models refuse it); in the header
    it is the file's, as ignored column names are kept in the import's notes.
    """
    problem = text_problem(names)
    if problem:
        raise ImportFileError(f"The header row cannot be stored. {problem}", field="file")
    normalised = [name.strip().lower() for name in names]
    duplicates = sorted({name for name in normalised if name and normalised.count(name) > 1})
    if duplicates:
        raise ImportFileError(
            f"Column {_names(duplicates)} appears more than once in the header row.", field="file"
        )
    missing = [column for column in spec.required if column not in normalised]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ImportFileError(
            f"Missing required column{plural}: {_names(missing)}. "
            f"The header row has: {_names([name for name in names if name.strip()]) or 'nothing'}.",
            field="file",
        )
    positions = {name: index for index, name in enumerate(normalised) if name in spec.all}
    ignored = tuple(name.strip() for name in names if name.strip().lower() not in spec.all)
    return Header(
        delimiter=delimiter,
        width=len(names),
        positions=positions,
        ignored=tuple(filter(None, ignored)),
    )


def _names(names: list[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _records(file: IO[bytes], *, header: Header) -> Iterator[tuple[int, list[str]]]:
    """Every record after the header with its spreadsheet row number; blank ones are skipped."""
    file.seek(0)
    # newline="" hands line endings to the csv module, so quoted fields may hold line breaks.
    text = io.TextIOWrapper(file, encoding=ENCODING, errors="strict", newline="")
    reader = csv.reader(text, delimiter=header.delimiter)
    number = 1
    try:
        next(reader, None)
        for number, cells in enumerate(reader, start=2):
            if any(cell.strip() for cell in cells):
                yield number, cells
    except UnicodeDecodeError as error:
        # The decoder reads ahead of the csv module, so the row in hand is not the culprit.
        found = _first_bad_line(file)
        line, culprit = found if found else (number + 1, error)
        raise _not_utf8(culprit, line=line) from error
    except csv.Error as error:
        message = f"Row {number + 1:,} cannot be read as CSV: {error}."
        raise ImportFileError(message, field="file") from error
    finally:
        # Closing the wrapper would close the caller's file, which may be read again.
        text.detach()


def rows_preview(file: IO[bytes], *, delimiter: str, limit: int) -> list[list[str]]:
    """The first `limit` data rows as cells, for the mapping page (the file was checked)."""
    header = Header(delimiter=delimiter, width=0, positions={}, ignored=())
    preview: list[list[str]] = []
    for _number, cells in _records(file, header=header):
        preview.append(cells)
        if len(preview) >= limit:
            break
    return preview


def rows_count(file: IO[bytes], *, header: Header) -> int:
    """Count the data rows, reading the whole file once so a bad byte fails before any write."""
    return sum(1 for _ in _records(file, header=header))


def rows_read(file: IO[bytes], *, header: Header, skip: int = 0) -> Iterator[DataRow]:
    """The data rows in order, after skipping the first `skip` of them (to resume an import)."""
    for index, (number, cells) in enumerate(_records(file, header=header)):
        if index >= skip:
            yield DataRow(number=number, cells=cells)


def row_values(row: DataRow, *, header: Header) -> dict[str, str]:
    """The known columns of one row, trimmed; the caller checks the width first."""
    return {name: row.cells[position].strip() for name, position in header.positions.items()}
