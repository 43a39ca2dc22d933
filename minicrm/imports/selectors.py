"""Reads for CSV imports: the list, one import, its mapping page, its error report as CSV."""

import csv
import io
from dataclasses import dataclass

from django.db.models import QuerySet

from minicrm.core.csv_stream import formula_defused
from minicrm.core.errors import ApplicationError, NotFoundError

from .mapping import ColumnMap, header_hash, mapping_check, mapping_guess
from .models import ColumnMapping, Import
from .reader import header_names, rows_preview

# Rows of the file shown on the mapping page, so a person sees what each column holds.
PREVIEW_ROWS = 5


def import_list() -> QuerySet[Import]:
    return Import.objects.select_related("created_by")


def import_get(*, import_id: int) -> Import:
    try:
        return import_list().get(pk=import_id)
    except Import.DoesNotExist as error:
        raise NotFoundError(f"Import {import_id} does not exist.") from error


@dataclass(frozen=True)
class MappingPreview:
    names: list[str]
    rows: list[list[str]]
    mapping: ColumnMap
    how: str


def import_mapping_preview(*, import_: Import, kind: str | None = None) -> MappingPreview:
    """The file's header and first rows, and the mapping to offer: the one remembered for this
    header, else a preset or names alike. `kind` asks for a guess of that kind instead."""
    with import_.file.open("rb") as file:
        delimiter, names = header_names(file)
        rows = rows_preview(file, delimiter=delimiter, limit=PREVIEW_ROWS)
    remembered = ColumnMapping.objects.filter(header_hash=header_hash(names)).first()
    if remembered is not None and kind in (None, remembered.mapping.get("kind")):
        try:
            mapping = mapping_check(ColumnMap.model_validate(remembered.mapping), names)
        except (ApplicationError, ValueError):
            pass  # a mapping kept from an older version of the fields: guess again
        else:
            return MappingPreview(names, rows, mapping, "The mapping last used for this header.")
    guessed, how = mapping_guess(names, kind=kind or import_.kind)
    if kind and guessed.kind != kind:
        guessed, how = mapping_guess(names, kind=kind, presets=False)
    return MappingPreview(names, rows, guessed, how)


def _cell(value: object) -> str:
    # The error report quotes values from the uploaded file: defused like every CSV we write.
    return formula_defused(str(value))


def import_error_report(*, import_: Import) -> str:
    """The kept row errors as CSV (row, field, message), in row order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "column", "value", "message"])
    for error in import_.errors:
        column = error.get("column") or error["field"]
        writer.writerow(
            [error["row"], _cell(column), _cell(error.get("value", "")), _cell(error["message"])]
        )
    return buffer.getvalue()
