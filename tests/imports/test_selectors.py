import csv
import io

from minicrm.imports.models import Import
from minicrm.imports.selectors import import_error_report


def test_the_error_report_defuses_values_a_spreadsheet_would_run() -> None:
    import_ = Import(
        errors=[
            {"row": 2, "field": "email", "message": '=HYPERLINK("http://x") is not valid.'},
            {"row": 3, "field": "@field", "message": "+1 is not a name; -2 neither."},
            {"row": 4, "field": "city", "message": "Plain, with a comma."},
            {
                "row": 5,
                "field": "amount",
                "column": "Total",
                "value": "=1+1",
                "message": "amount must be a number, got '=1+1'.",
            },
        ]
    )

    rows = list(csv.reader(io.StringIO(import_error_report(import_=import_))))

    assert rows == [
        ["row", "column", "value", "message"],
        ["2", "email", "", '\'=HYPERLINK("http://x") is not valid.'],
        ["3", "'@field", "", "'+1 is not a name; -2 neither."],
        ["4", "city", "", "Plain, with a comma."],
        ["5", "Total", "'=1+1", "amount must be a number, got '=1+1'."],
    ]
