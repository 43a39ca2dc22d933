"""Reads for CSV imports: the list, one import, and its error report as CSV."""

import csv
import io

from django.db.models import QuerySet

from minicrm.core.errors import NotFoundError

from .models import Import

# A spreadsheet treats a cell starting with one of these as a formula; the error report quotes
# values from the uploaded file, so they are defused with a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def import_list() -> QuerySet[Import]:
    return Import.objects.select_related("created_by")


def import_get(*, import_id: int) -> Import:
    try:
        return import_list().get(pk=import_id)
    except Import.DoesNotExist as error:
        raise NotFoundError(f"Import {import_id} does not exist.") from error


def _cell(value: object) -> str:
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def import_error_report(*, import_: Import) -> str:
    """The kept row errors as CSV (row, field, message), in row order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "field", "message"])
    for error in import_.errors:
        writer.writerow([error["row"], _cell(error["field"]), _cell(error["message"])])
    return buffer.getvalue()
