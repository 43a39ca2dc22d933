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
        ]
    )

    rows = list(csv.reader(io.StringIO(import_error_report(import_=import_))))

    assert rows == [
        ["row", "field", "message"],
        ["2", "email", '\'=HYPERLINK("http://x") is not valid.'],
        ["3", "'@field", "'+1 is not a name; -2 neither."],
        ["4", "city", "Plain, with a comma."],
    ]
