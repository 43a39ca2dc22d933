"""Writes for CSV imports: store an upload, then process it in chunks through ingestion services.

Each chunk is stored and the import's progress saved in one transaction, so a poller sees the
numbers move and a crashed run resumes exactly after the last chunk it committed. The run holds a
lease on the import (minicrm.core.leases): when its worker dies, the recovery sweep queues the
import again, and a run writes a chunk only while the import still carries its token.
"""

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from minicrm.accounts.models import AuditEvent, User
from minicrm.accounts.services import audit_record
from minicrm.core.errors import ApplicationError, ConflictError, NotFoundError
from minicrm.core.leases import lease_kept, lease_token, lease_until
from minicrm.core.limits import MAX_WORK_RECOVERIES
from minicrm.core.tasks import enqueue_on_commit
from minicrm.core.text import text_problem
from minicrm.customers.services import (
    MAX_BATCH_ROWS,
    BulkResult,
    customers_bulk_upsert,
    orders_bulk_upsert,
)

from .columns import COLUMNS
from .mapping import ColumnMap, header_hash, mapping_parse
from .models import MAX_STORED_ERRORS, ColumnMapping, Import
from .reader import (
    DataRow,
    Header,
    ImportFileError,
    header_mapped,
    header_names,
    header_read,
    row_values,
    rows_count,
    rows_read,
)
from .shaping import ShapeError, row_key, row_shape
from .tasks import import_process_task

logger = logging.getLogger(__name__)

# One transaction a chunk: at a million customers each commit costs as much as the rows in it
# (bench/README.md), so chunks are as large as a bulk batch by default (MINICRM_IMPORT_CHUNK_ROWS
# may make them smaller, never larger); progress still moves every second.
CHUNK_SIZE = MAX_BATCH_ROWS
Upsert = Callable[..., BulkResult]
ProgressCallback = Callable[[Import], None]

# A cell quoted in a row error is cut to this many characters.
SHOWN_VALUE_CHARS = 100
# How many of the columns an import leaves out its note names.
NOTED_COLUMNS = 8


def _upsert(mapping: ColumnMap, rows: list[dict[str, str]]) -> BulkResult:
    if mapping.kind == Import.Kind.CUSTOMERS:
        return customers_bulk_upsert(rows=rows, key=mapping.key)
    if mapping.kind == Import.Kind.ORDERS:
        return orders_bulk_upsert(rows=rows, customer_key=mapping.key)
    raise ValueError(f"Unknown import kind {mapping.kind!r}")


def _kind_check(kind: str) -> Import.Kind:
    if kind not in Import.Kind.values:
        choices = " or ".join(Import.Kind.values)
        raise ApplicationError(f"Kind must be {choices}, not {kind!r}.", field="kind")
    return Import.Kind(kind)


def import_create(
    *,
    file: File[Any],
    kind: str | None,
    created_by: User | None,
    mapping: dict[str, Any] | str | None = None,
    enqueue: bool = True,
    await_mapping: bool = False,
    ip_address: str | None = None,
) -> Import:
    """Store an uploaded CSV after checking its header, then queue its processing.

    The header is checked here so that an empty file, a wrong encoding or a missing column is
    answered at once (a 400 naming the column) instead of after a trip through the queue.
    Without `mapping` the file uses our own column names; with one (a preset name or a JSON
    mapping, see minicrm.imports.mapping) its columns are mapped, and the mapping is remembered
    for its header. `await_mapping` (the import page) stores the file and waits for the person
    to confirm a mapping (`import_mapping_confirm`).
    """
    _size_check(file)
    delimiter, names = header_names(file)
    notes: list[str] = []
    stored_mapping: dict[str, Any] = {}
    status = Import.Status.QUEUED
    if await_mapping:
        import_kind = _kind_check(kind or "")
        status = Import.Status.MAPPING
    elif mapping is not None:
        column_map = mapping_parse(mapping, names, kind=_kind_check(kind) if kind else None)
        import_kind = Import.Kind(column_map.kind)
        header = header_mapped(names, columns=column_map.columns, delimiter=delimiter)
        notes = _header_notes(header, mapped=True)
        stored_mapping = column_map.model_dump()
    else:
        import_kind = _kind_check(kind or "")
        notes = _header_notes(header_read(file, spec=COLUMNS[import_kind]))
    filename = os.path.basename(file.name or "upload.csv")[:255] or "upload.csv"
    file.seek(0)
    with transaction.atomic():
        import_ = Import.objects.create(
            kind=import_kind,
            file=File(file, name=filename),
            original_filename=filename,
            created_by=created_by,
            notes=notes,
            mapping=stored_mapping,
            status=status,
        )
        if stored_mapping:
            _mapping_remember(names, stored_mapping, created_by)
        if status == Import.Status.QUEUED:
            _audit_started(import_, actor=created_by, ip_address=ip_address)
        if enqueue and status == Import.Status.QUEUED:
            enqueue_on_commit(import_process_task, import_.pk)
    return import_


def _audit_started(import_: Import, *, actor: User | None, ip_address: str | None) -> None:
    # Rows are counted by the worker, later; the file's size says how big the import is now.
    audit_record(
        action=AuditEvent.Action.IMPORT_STARTED,
        actor=actor,
        target=f"Import “{import_.original_filename}” (#{import_.pk})",
        details={
            "kind": import_.kind,
            "file": import_.original_filename,
            "bytes": import_.file.size,
        },
        ip_address=ip_address,
    )


def import_mapping_confirm(
    *,
    import_id: int,
    mapping: dict[str, Any] | str,
    confirmed_by: User | None,
    ip_address: str | None = None,
) -> Import:
    """Start an import uploaded on the import page with the mapping the person confirmed; the
    mapping is remembered for files with the same header."""
    with transaction.atomic():
        import_ = _import_lock(import_id)
        if import_.status != Import.Status.MAPPING:
            raise ConflictError(f"Import {import_id} is already {import_.get_status_display()}.")
        try:
            with import_.file.open("rb") as file:
                delimiter, names = header_names(file)
        except FileNotFoundError as error:
            raise ApplicationError("The uploaded file is gone; upload it again.") from error
        column_map = mapping_parse(mapping, names, kind=None)
        header = header_mapped(names, columns=column_map.columns, delimiter=delimiter)
        import_.kind = Import.Kind(column_map.kind)
        import_.mapping = column_map.model_dump()
        import_.notes = _header_notes(header, mapped=True)
        import_.status = Import.Status.QUEUED
        import_.save(update_fields=["kind", "mapping", "notes", "status", "updated_at"])
        _mapping_remember(names, import_.mapping, confirmed_by)
        _audit_started(import_, actor=confirmed_by, ip_address=ip_address)
        enqueue_on_commit(import_process_task, import_id)
    return import_


def _mapping_remember(names: Sequence[str], mapping: dict[str, Any], user: User | None) -> None:
    ColumnMapping.objects.update_or_create(
        header_hash=header_hash(names),
        defaults={"header": list(names), "mapping": mapping, "updated_by": user},
    )


def _size_check(file: File[Any]) -> None:
    limit = settings.MINICRM_MAX_IMPORT_BYTES
    if file.size is not None and file.size > limit:
        raise ApplicationError(
            f"The file is {_megabytes(file.size)}; an import takes at most {_megabytes(limit)}. "
            "Split it into smaller files (each keeps the header row).",
            field="file",
        )


def _megabytes(size: int) -> str:
    return f"{size / 1024**2:,.0f} MB" if size >= 1024**2 else f"{size:,} bytes"


def _header_notes(header: Header, *, mapped: bool = False) -> list[str]:
    if not header.ignored:
        return []
    names = ", ".join(f'"{name}"' for name in header.ignored[:NOTED_COLUMNS])
    more = len(header.ignored) - NOTED_COLUMNS
    if more > 0:
        names += f" and {more:,} more"
    if mapped:
        return [f"Column(s) not mapped to a field, so not imported: {names}."]
    return [f"Ignored column(s) that Mini CRM does not know: {names}."]


class ImportTakenOverError(Exception):
    """Another run of the same import committed a chunk first; this run stops."""


def _import_lock(import_id: int) -> Import:
    try:
        return Import.objects.select_for_update().get(pk=import_id)
    except Import.DoesNotExist as error:
        raise NotFoundError(f"Import {import_id} does not exist.") from error


def _chunk_rows() -> int:
    return max(1, min(int(settings.MINICRM_IMPORT_CHUNK_ROWS), CHUNK_SIZE))


def _lease_take(import_id: int, token: str) -> Import | None:
    """Take the import for this run; None if it is finished or another live run holds it."""
    now = timezone.now()
    with transaction.atomic():
        import_ = _import_lock(import_id)
        if not import_.is_active:
            return None
        held = import_.lease_expires_at is not None and import_.lease_expires_at >= now
        if import_.lease_token and held:
            logger.info("Import %s is being processed by another run; this one stops", import_id)
            return None
        if import_.status == Import.Status.QUEUED:
            import_.status = Import.Status.RUNNING
            import_.started_at = now
        import_.lease_token = token
        import_.lease_expires_at = lease_until(now)
        import_.save(
            update_fields=["status", "started_at", "lease_token", "lease_expires_at", "updated_at"]
        )
    return import_


def _lease_renew(import_id: int, token: str) -> int:
    return Import.objects.filter(pk=import_id, lease_token=token).update(
        lease_expires_at=lease_until()
    )


def _lease_release(import_id: int, token: str) -> None:
    """Give the lease up at once after an error, so the retry or the sweep need not wait for it."""
    try:
        Import.objects.filter(pk=import_id, lease_token=token).update(
            lease_token="", lease_expires_at=timezone.now()
        )
    except DatabaseError:
        logger.warning("Import %s: could not release its lease; it expires on its own", import_id)


def import_process(
    *, import_id: int, on_progress: ProgressCallback | None = None, chunk_size: int | None = None
) -> Import:
    """Process a queued (or interrupted) import; a finished one, or one that another live run
    holds, is returned untouched."""
    token = lease_token()
    import_ = _lease_take(import_id, token)
    if import_ is None:
        return _import_get(import_id)
    try:
        with lease_kept(lambda: _lease_renew(import_id, token), name=f"import {import_id}"):
            return _import_run(import_, on_progress=on_progress, chunk_size=chunk_size)
    except Exception:
        _lease_release(import_id, token)
        raise


def _import_get(import_id: int) -> Import:
    try:
        return Import.objects.get(pk=import_id)
    except Import.DoesNotExist as error:
        raise NotFoundError(f"Import {import_id} does not exist.") from error


def _import_run(
    import_: Import, *, on_progress: ProgressCallback | None, chunk_size: int | None
) -> Import:
    chunk_size = chunk_size or _chunk_rows()
    token = import_.lease_token
    try:
        with import_.file.open("rb") as file:
            reading = _reading_start(import_, file)
            total = rows_count(file, header=reading.header)
            if total == 0:
                raise ImportFileError("The file has a header row but no data rows.", field="file")
            import_.total_rows = total
            import_.save(update_fields=["total_rows", "updated_at"])
            if on_progress:
                on_progress(import_)
            chunk: list[DataRow] = []
            for index, row in enumerate(rows_read(file, header=reading.header)):
                if index < import_.processed_rows:
                    # Rows stored by an earlier run: only their keys, so repeats stay errors.
                    reading.rows_prepare([row], errors=[])
                    continue
                if len(chunk) >= chunk_size and not reading.continues_order(chunk[-1], row):
                    _chunk_store(import_, chunk=chunk, reading=reading, on_progress=on_progress)
                    chunk = []
                chunk.append(row)
            if chunk:
                _chunk_store(import_, chunk=chunk, reading=reading, on_progress=on_progress)
    except (ImportFileError, FileNotFoundError) as error:
        reason = error.message if isinstance(error, ImportFileError) else "The file is missing."
        return import_fail(import_id=import_.pk, reason=reason, token=token)
    except ImportTakenOverError:
        logger.info("Import %s is carried on by another run; this one stops", import_.pk)
        return Import.objects.get(pk=import_.pk)
    with transaction.atomic():
        stored = _import_lock(import_.pk)
        if stored.lease_token != token or stored.status != Import.Status.RUNNING:
            logger.info("Import %s was taken over before it finished; this run stops", stored.pk)
            return stored
        stored.status = Import.Status.SUCCEEDED
        stored.finished_at = timezone.now()
        stored.lease_token, stored.lease_expires_at = "", None
        stored.save(
            update_fields=[
                "status",
                "finished_at",
                "lease_token",
                "lease_expires_at",
                "updated_at",
            ]
        )
    # Every row is stored and the errors are kept on the import: the upload is no longer needed
    # (a failed import keeps its file, so it can be resumed).
    stored.file.delete(save=False)
    return stored


@dataclass
class _Reading:
    """One run through a file: its header, its mapping, and the keys met so far.

    A key repeated in one file is a row error, wherever the two rows are: nothing is overwritten
    silently, and a person sees both row numbers. Line items (rows right after their order's
    first row, sharing its external_id) are folded into that order instead.
    """

    header: Header
    mapping: ColumnMap
    seen: dict[str, int] = field(default_factory=dict)
    last_key: str = ""

    def continues_order(self, previous: DataRow, row: DataRow) -> bool:
        """Whether `row` is a line item of the order `previous` belongs to (never split)."""
        if not self.mapping.line_items:
            return False
        position = self.header.positions["external_id"]
        cells = previous.cells, row.cells
        if any(len(c) != self.header.width for c in cells):
            return False
        return previous.cells[position].strip() == row.cells[position].strip()

    def rows_prepare(
        self, chunk: Sequence[DataRow], *, errors: list[dict[str, Any]]
    ) -> tuple[list[dict[str, str]], list[DataRow], int]:
        """The ingestion rows of a chunk, the file rows they came from, and the line-item rows
        folded into their orders; errors found on the way are added to `errors`."""
        rows: list[dict[str, str]] = []
        sources: list[DataRow] = []
        grouped = 0
        header, mapping = self.header, self.mapping
        for row in chunk:
            if len(row.cells) != header.width:
                message = f"Expected {header.width} columns, found {len(row.cells)}."
                errors.append(_row_error(row.number, message=message))
                continue
            values = row_values(row, header=header)
            key = row_key(values, mapping)
            if mapping.line_items and key and key == self.last_key:
                grouped += 1
                continue
            self.last_key = key
            if key:
                earlier = self.seen.setdefault(key, row.number)
                if earlier != row.number:
                    key_field = (
                        "email"
                        if mapping.kind == "customers" and mapping.key == "email"
                        else "external_id"
                    )
                    errors.append(
                        self.error_for(
                            row,
                            key_field,
                            f"{key!r} already appears in row {earlier} of this file; "
                            "each record may appear only once.",
                        )
                    )
                    continue
            try:
                rows.append(row_shape(values, mapping))
            except ShapeError as error:
                errors.append(self.error_for(row, error.field, error.message))
                continue
            sources.append(row)
        return rows, sources, grouped

    def error_for(self, row: DataRow, field_name: str, message: str) -> dict[str, Any]:
        column = self.mapping.column_of(field_name)
        position = self.header.positions.get(field_name)
        value = row.cells[position] if position is not None and position < len(row.cells) else ""
        return _row_error(row.number, field_name, column, value, message=message)


def _row_error(
    number: int, field_name: str = "", column: str = "", value: str = "", *, message: str
) -> dict[str, Any]:
    """A row error as an import keeps it: the spreadsheet row, our field, the file's column, the
    value found there, and what is wrong in plain words."""
    shown = value[:SHOWN_VALUE_CHARS]
    if text_problem(shown):
        # A NUL or a lone surrogate cannot be stored in the import's errors on every database.
        shown = shown.encode("unicode_escape").decode("ascii")
    return {
        "row": number,
        "field": field_name,
        "column": column,
        "value": shown,
        "message": message,
    }


def _reading_start(import_: Import, file: Any) -> _Reading:
    if import_.mapping:
        delimiter, names = header_names(file)
        mapping = ColumnMap.model_validate(import_.mapping)
        header = header_mapped(names, columns=mapping.columns, delimiter=delimiter)
        return _Reading(header=header, mapping=mapping)
    # Our own column names: each known column feeds the field of its name.
    header = header_read(file, spec=COLUMNS[import_.kind])
    own = ColumnMap(kind=import_.kind, columns={name: name for name in header.positions})  # type: ignore[arg-type]
    return _Reading(header=header, mapping=own)


def _chunk_store(
    import_: Import,
    *,
    chunk: Sequence[DataRow],
    reading: _Reading,
    on_progress: ProgressCallback | None,
) -> None:
    errors: list[dict[str, Any]] = []
    rows, sources, grouped = reading.rows_prepare(chunk, errors=errors)
    with transaction.atomic():
        # The lock makes a second run on the same import (one resumed while the first was only
        # slow) wait; the check makes the one that lost its lease stop instead of counting twice.
        stored = _import_lock(import_.pk)
        if (stored.status, stored.lease_token, stored.processed_rows) != (
            Import.Status.RUNNING,
            import_.lease_token,
            import_.processed_rows,
        ):
            raise ImportTakenOverError(f"Import {import_.pk} moved on in another worker.")
        if rows:
            result = _upsert(reading.mapping, rows)
            import_.created += result.created
            import_.updated += result.updated
            import_.unchanged += result.unchanged
            errors.extend(
                reading.error_for(sources[error.index], error.field, error.message)
                for error in result.errors
            )
        import_.grouped_rows += grouped
        errors.sort(key=lambda error: error["row"])
        # Totals saved with the chunk (absolute values: the lock above makes this worker the
        # only writer) let a resumed run carry on after the last committed chunk.
        import_.processed_rows += len(chunk)
        import_.error_count += len(errors)
        room = MAX_STORED_ERRORS - len(import_.errors)
        if room > 0 and errors:
            import_.errors = [*import_.errors, *errors[:room]]
        import_.lease_expires_at = lease_until()
        import_.save(
            update_fields=[
                "processed_rows",
                "created",
                "updated",
                "unchanged",
                "grouped_rows",
                "error_count",
                "errors",
                "lease_expires_at",
                "updated_at",
            ]
        )
    if on_progress:
        on_progress(import_)


def import_fail(*, import_id: int, reason: str, token: str | None = None) -> Import:
    """Record why an import stopped for good; its stored rows stay (upserts are idempotent).

    With `token`, only while that run still holds the import (a run taken over fails nothing).
    """
    with transaction.atomic():
        import_ = _import_lock(import_id)
        if token is not None and import_.lease_token != token:
            return import_
        _fail(import_, reason)
    return import_


def _fail(import_: Import, reason: str) -> None:
    import_.status = Import.Status.FAILED
    import_.failure_reason = reason
    import_.finished_at = timezone.now()
    import_.lease_token, import_.lease_expires_at = "", None
    import_.save(
        update_fields=[
            "status",
            "failure_reason",
            "finished_at",
            "lease_token",
            "lease_expires_at",
            "updated_at",
        ]
    )


def import_resume(*, import_id: int) -> Import:
    """Queue an import again after its worker died; it carries on after its last chunk.

    The recovery sweep does this by itself; the button stays for a setup without one. A run
    that still holds a live lease is left alone.
    """
    with transaction.atomic():
        import_ = _import_lock(import_id)
        if not import_.is_active:
            raise ConflictError(f"Import {import_id} has finished ({import_.status}).")
        if import_.status == Import.Status.RUNNING and not import_.is_recovering:
            raise ConflictError(f"Import {import_id} is still running.")
        _requeue(import_)
    return import_


def _requeue(import_: Import) -> None:
    # No holder, and a fresh expiry: the queued run may start at once, and the sweep does not
    # queue it again unless that run has not started within one lease.
    import_.lease_token, import_.lease_expires_at = "", lease_until()
    import_.save(update_fields=["lease_token", "lease_expires_at", "updated_at"])
    enqueue_on_commit(import_process_task, import_.pk)


def imports_recover() -> int:
    """Queue again every running import whose lease expired (its worker is gone); fail one that
    lost its worker more than MAX_WORK_RECOVERIES times. Returns how many were handled.

    The run queued again resumes after the last committed chunk. The claim is a conditional
    UPDATE on the lease seen, so two sweepers never queue the same import twice.
    """
    now = timezone.now()
    expired = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    # Read first: on SQLite even an UPDATE that matches nothing waits for the write lock.
    seen = list(
        Import.objects.filter(expired, status=Import.Status.RUNNING)
        .order_by("pk")
        .values_list("pk", "lease_token", "lease_expires_at")
    )
    handled = 0
    for import_id, token, expires in seen:
        with transaction.atomic():
            claimed = Import.objects.filter(
                pk=import_id,
                status=Import.Status.RUNNING,
                lease_token=token,
                lease_expires_at=expires,
            ).update(
                lease_token="", lease_expires_at=lease_until(now), recoveries=F("recoveries") + 1
            )
            if not claimed:
                continue
            import_ = _import_lock(import_id)
            where = f"after {import_.processed_rows:,} of {import_.total_rows or 0:,} rows"
            if import_.recoveries > MAX_WORK_RECOVERIES:
                _fail(
                    import_,
                    f"The worker stopped {import_.recoveries} times while processing this "
                    f"import (last {where}). The rows stored so far stay; check the file, "
                    "then upload the rest again.",
                )
                logger.error("Import %s lost its worker too often; failed", import_id)
            else:
                import_.notes = [
                    *import_.notes,
                    f"The worker stopped {where}; the import was resumed automatically from there.",
                ]
                import_.save(update_fields=["notes", "updated_at"])
                _requeue(import_)
                logger.warning("Import %s lost its worker %s; queued again", import_id, where)
        handled += 1
    return handled
