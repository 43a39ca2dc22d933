"""`manage.py import_rates FILE.csv`: store exchange rates (columns date,currency,rate).

Rows are upserted by (currency, date), so importing the same file again changes nothing; bad
rows are reported with their line numbers and the others stored. Orders the new rates affect
are re-converted by the worker (a RateReconversion each batch, listed at GET /api/v1/rates).
"""

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from minicrm.core.limits import MAX_BATCH_ROWS
from minicrm.customers.rates import rates_upsert

COLUMNS = ("date", "currency", "rate")
SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = "Import exchange rates from a CSV file with the columns date,currency,rate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The CSV file (UTF-8, header date,currency,rate).")

    def handle(self, *args: Any, path: str, **options: Any) -> None:
        source = Path(path)
        if not source.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            with source.open(encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (UnicodeDecodeError, csv.Error) as error:
            raise CommandError(f"{path} is not a UTF-8 CSV file: {error}") from error
        header = set(rows[0]) if rows else set()
        missing = [name for name in COLUMNS if name not in header]
        if rows and missing:
            raise CommandError(
                f"{path} has no {', '.join(missing)} column (needs date,currency,rate)."
            )
        created = updated = unchanged = 0
        errors: list[str] = []
        reconversions: list[int] = []
        with tqdm(total=len(rows), unit="rate", disable=len(rows) < 50_000 or None) as progress:
            for start in range(0, len(rows), MAX_BATCH_ROWS):
                batch = [
                    {name: row.get(name) for name in COLUMNS}
                    for row in rows[start : start + MAX_BATCH_ROWS]
                ]
                result = rates_upsert(rows=batch, source="import_rates")
                created += result.created
                updated += result.updated
                unchanged += result.unchanged
                # Line 1 is the header.
                errors += [
                    f"line {start + error.index + 2}: {error.field}: {error.message}"
                    for error in result.errors
                ]
                if result.reconversion_id is not None:
                    reconversions.append(result.reconversion_id)
                progress.update(len(batch))
        for line in errors[:SHOWN_ERRORS]:
            self.stderr.write(line)
        if len(errors) > SHOWN_ERRORS:
            self.stderr.write(f"... and {len(errors) - SHOWN_ERRORS:,} more errors")
        summary = (
            f"Rates: {created:,} created, {updated:,} updated, {unchanged:,} unchanged, "
            f"{len(errors):,} errors."
        )
        if reconversions:
            ids = ", ".join(str(reconversion) for reconversion in reconversions)
            summary += f" Orders they affect are re-converted by the worker (re-conversion {ids})."
        self.stdout.write(self.style.WARNING(summary) if errors else self.style.SUCCESS(summary))
