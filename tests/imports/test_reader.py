import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicrm.imports.reader import (
    ColumnSpec,
    ImportFileError,
    header_match,
    header_read,
    row_values,
    rows_count,
    rows_read,
)

SPEC = ColumnSpec(required=("external_id", "amount"), optional=("email",))


def _file(text: str | bytes) -> io.BytesIO:
    return io.BytesIO(text.encode() if isinstance(text, str) else text)


def test_headers_match_without_case_or_surrounding_spaces() -> None:
    header = header_read(_file(" External_ID ,AMOUNT,Email\nc1,5,a@x.io\n"), spec=SPEC)

    assert header.positions == {"external_id": 0, "amount": 1, "email": 2}
    assert header.width == 3
    assert header.ignored == ()


def test_unknown_columns_are_listed_as_ignored() -> None:
    header = header_read(_file("external_id,amount,Loyalty Tier,\nc1,5,gold,\n"), spec=SPEC)

    assert header.positions == {"external_id": 0, "amount": 1}
    assert header.ignored == ("Loyalty Tier",)
    assert header.width == 4


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(ImportFileError) as caught:
        header_read(_file("Email,name\na@x.io,A\n"), spec=SPEC)

    assert caught.value.message == (
        'Missing required columns: "external_id", "amount". The header row has: "Email", "name".'
    )
    assert caught.value.field == "file"


def test_a_column_twice_is_refused() -> None:
    with pytest.raises(ImportFileError, match='Column "amount" appears more than once'):
        header_match(["external_id", "amount", "Amount "], spec=SPEC)


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(content: bytes) -> None:
    with pytest.raises(ImportFileError, match="The file is empty"):
        header_read(_file(content), spec=SPEC)


def test_an_excel_workbook_is_refused_with_advice() -> None:
    with pytest.raises(ImportFileError, match="looks like an Excel workbook"):
        header_read(_file(b"PK\x03\x04\x14\x00\x06\x00rest-of-zip"), spec=SPEC)


def test_a_latin1_header_is_refused_as_not_utf8() -> None:
    with pytest.raises(ImportFileError) as caught:
        header_read(_file("external_id,amount,Prénom\n".encode("latin-1")), spec=SPEC)

    assert caught.value.message.startswith(
        "The file is not UTF-8 encoded (byte 0xE9 on line 1 cannot be read)."
    )
    assert "CSV UTF-8" in caught.value.message


def _rows_then_cp1252(count: int) -> bytes:
    content = "external_id,amount,email\n" + "".join(f"c{i:05d},5,\n" for i in range(count))
    return content.encode() + "c-last,5,Zoë\n".encode("cp1252")


def test_a_bad_byte_early_in_the_file_is_found_with_the_header() -> None:
    with pytest.raises(ImportFileError, match=r"byte 0xEB on line 1,002 cannot be read"):
        header_read(_file(_rows_then_cp1252(1000)), spec=SPEC)


def test_a_bad_byte_deep_in_the_file_is_found_by_the_counting_pass() -> None:
    content = _rows_then_cp1252(10_000)
    header = header_read(_file(content), spec=SPEC)

    with pytest.raises(ImportFileError, match=r"byte 0xEB on line 10,002 cannot be read"):
        rows_count(_file(content), header=header)


def test_a_utf8_bom_and_windows_line_endings_are_fine() -> None:
    file = _file("\ufeffexternal_id,amount\r\nc1,5\r\nc2,6\r\n".encode())
    header = header_read(file, spec=SPEC)

    rows = list(rows_read(file, header=header))

    assert header.positions == {"external_id": 0, "amount": 1}
    assert [row_values(row, header=header) for row in rows] == [
        {"external_id": "c1", "amount": "5"},
        {"external_id": "c2", "amount": "6"},
    ]


def test_semicolon_separated_files_are_read() -> None:
    file = _file("external_id;amount\nc1;5,50\n")
    header = header_read(file, spec=SPEC)

    rows = list(rows_read(file, header=header))

    assert header.delimiter == ";"
    assert row_values(rows[0], header=header) == {"external_id": "c1", "amount": "5,50"}


def test_rows_are_numbered_as_a_spreadsheet_shows_them() -> None:
    # Header = row 1; a quoted line break stays inside row 2; blank rows count but are skipped.
    file = _file('external_id,amount\n"c\n1",5\n\n,\nc2,6\n')
    header = header_read(file, spec=SPEC)

    rows = list(rows_read(file, header=header))

    assert [(row.number, row.cells) for row in rows] == [(2, ["c\n1", "5"]), (5, ["c2", "6"])]
    assert rows_count(file, header=header) == 2


def test_reading_can_resume_after_some_rows() -> None:
    file = _file("external_id,amount\nc1,1\nc2,2\n\nc3,3\n")
    header = header_read(file, spec=SPEC)

    rows = list(rows_read(file, header=header, skip=2))

    assert [(row.number, row.cells) for row in rows] == [(5, ["c3", "3"])]


def test_the_file_stays_open_for_another_pass() -> None:
    file = _file("external_id,amount\nc1,1\n")
    header = header_read(file, spec=SPEC)

    assert rows_count(file, header=header) == 1
    assert len(list(rows_read(file, header=header))) == 1
    assert not file.closed


cells = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8)


@given(st.lists(st.tuples(cells, cells), max_size=15))
def test_any_table_written_as_csv_reads_back_the_same(table: list[tuple[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["external_id", "amount"])
    writer.writerows(table)
    file = _file(buffer.getvalue())
    header = header_read(file, spec=SPEC)

    rows = list(rows_read(file, header=header))

    # Rows whose cells are all blank are skipped; every other row comes back exactly.
    expected = [
        (number, list(row))
        for number, row in enumerate(table, start=2)
        if any(cell.strip() for cell in row)
    ]
    assert [(row.number, row.cells) for row in rows] == expected


def test_a_nul_in_a_data_cell_is_read_so_that_row_can_be_refused_alone() -> None:
    file = _file("external_id,amount\nc1,5\nc\x002,6\nc3,7\n")
    header = header_read(file, spec=SPEC)

    values = [row_values(row, header=header) for row in rows_read(file, header=header)]

    assert values == [
        {"external_id": "c1", "amount": "5"},
        {"external_id": "c\x002", "amount": "6"},
        {"external_id": "c3", "amount": "7"},
    ]


def test_a_nul_in_the_header_refuses_the_file() -> None:
    with pytest.raises(ImportFileError) as error:
        header_read(_file("external_id,amount,no\x00te\nc1,5,x\n"), spec=SPEC)

    assert error.value.message == (
        "The header row cannot be stored. Must not contain the NUL character (\\u0000)."
    )
    assert error.value.field == "file"


def test_an_encoded_surrogate_is_not_utf8() -> None:
    # UTF-8 has no encoding of a lone surrogate: the bytes CESU-8 would write are refused.
    with pytest.raises(ImportFileError) as error:
        rows_count(
            _file(b"external_id,amount\nc\xed\xa0\x801,5\n"),
            header=header_read(_file("external_id,amount\n"), spec=SPEC),
        )

    assert error.value.message.startswith(
        "The file is not UTF-8 encoded (byte 0xED on line 2 cannot be read)."
    )
