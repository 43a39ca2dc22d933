"""`manage.py import_csv PATH [--kind customers|orders] [--mapping PRESET|FILE.json]`: import a
CSV now, with a progress bar. `--mapping shopify-orders` reads a Shopify orders export."""

import json
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from tqdm import tqdm

from minicrm.core.errors import ApplicationError
from minicrm.imports.mapping import PRESETS
from minicrm.imports.models import Import
from minicrm.imports.services import import_create, import_process

SHOWN_ERRORS = 10


class _BarOutput:
    """Lets tqdm redraw its line: OutputWrapper would end every write with a newline."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


def _mapping_read(value: str | None) -> dict[str, Any] | str | None:
    """A preset name as it is; anything else is the path of a JSON mapping file."""
    if value is None or value in PRESETS:
        return value
    path = Path(value)
    if not path.is_file():
        raise CommandError(
            f"--mapping {value!r} is neither a preset ({', '.join(PRESETS)}) nor a file."
        )
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CommandError(f"{value} is not a JSON file: {error}") from error
    if not isinstance(loaded, dict):
        raise CommandError(f"{value} must hold a JSON object (kind, key, columns, ...).")
    return loaded


class Command(BaseCommand):
    help = "Import customers or orders from a CSV file, in this process (no worker needed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The CSV file (UTF-8, with a header row).")
        parser.add_argument(
            "--kind", choices=Import.Kind.values, help="Needed unless --mapping says it."
        )
        parser.add_argument(
            "--mapping",
            help=f"A preset ({', '.join(PRESETS)}) or a JSON mapping file; "
            "without it the file uses Mini CRM's own column names.",
        )

    def handle(
        self, *args: Any, path: str, kind: str | None, mapping: str | None, **options: Any
    ) -> None:
        source = Path(path)
        if not source.is_file():
            raise CommandError(f"No such file: {path}")
        if kind is None and mapping is None:
            raise CommandError("Give --kind (customers or orders), or a --mapping that says it.")
        try:
            with source.open("rb") as handle:
                import_ = import_create(
                    file=File(handle, name=source.name),
                    kind=kind,
                    created_by=None,
                    mapping=_mapping_read(mapping),
                    enqueue=False,
                )
        except ApplicationError as error:
            raise CommandError(error.message) from error

        with tqdm(
            unit="rows", desc=source.name, file=_BarOutput(self.stderr), dynamic_ncols=True
        ) as bar:

            def on_progress(current: Import) -> None:
                if bar.total != current.total_rows:
                    bar.total = current.total_rows
                    bar.refresh()
                bar.update(current.processed_rows - bar.n)

            import_ = import_process(import_id=import_.pk, on_progress=on_progress)

        if import_.status == Import.Status.FAILED:
            raise CommandError(f"Import {import_.pk} failed: {import_.failure_reason}")
        self._summary(import_)

    def _summary(self, import_: Import) -> None:
        self.stdout.write(
            f"Import {import_.pk}: {import_.processed_rows:,} rows read, "
            f"{import_.created:,} created, {import_.updated:,} updated, "
            f"{import_.unchanged:,} unchanged, "
            + (f"{import_.grouped_rows:,} line items grouped, " if import_.grouped_rows else "")
            + f"{import_.failed_rows:,} rows failed "
            f"({import_.error_count:,} errors)."
        )
        for note in import_.notes:
            self.stdout.write(note)
        for error in import_.errors[:SHOWN_ERRORS]:
            field = f" {error.get('column') or error['field']}:" if error["field"] else ""
            self.stdout.write(f"  row {error['row']}:{field} {error['message']}")
        if import_.error_count > SHOWN_ERRORS:
            self.stdout.write(f"  … and {import_.error_count - SHOWN_ERRORS:,} more errors.")
        if import_.error_count:
            self.stdout.write(self.style.WARNING("Finished with row errors."))
        else:
            self.stdout.write(self.style.SUCCESS("Finished."))
