"""Writes for CSV imports: store an upload, then process it in chunks through ingestion services.

Each chunk is stored and the import's progress saved in one transaction, so a poller sees the
numbers move and a crashed run resumes exactly after the last chunk it committed. The run holds a
lease on the import (minicrm.core.leases): when its worker dies, the recovery sweep queues the
import again, and a run writes a chunk only while the import still carries its token.
"""

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from minicrm.accounts.models import User
from minicrm.core.errors import ApplicationError, ConflictError, NotFoundError
from minicrm.core.leases import lease_kept, lease_token, lease_until
from minicrm.core.limits import MAX_WORK_RECOVERIES
from minicrm.customers.services import (
    MAX_BATCH_ROWS,
    BulkResult,
    customers_bulk_upsert,
    orders_bulk_upsert,
)

from .columns import COLUMNS
from .models import MAX_STORED_ERRORS, Import
from .reader import DataRow, Header, ImportFileError, header_read, row_values, rows_count, rows_read
from .tasks import import_process_task

logger = logging.getLogger(__name__)

# One transaction a chunk: at a million customers each commit costs as much as the rows in it
# (bench/README.md), so chunks are as large as a bulk batch by default (MINICRM_IMPORT_CHUNK_ROWS
# may make them smaller, never larger); progress still moves every second.
CHUNK_SIZE = MAX_BATCH_ROWS
Upsert = Callable[..., BulkResult]
ProgressCallback = Callable[[Import], None]

UPSERTS: dict[str, Upsert] = {
    Import.Kind.CUSTOMERS: customers_bulk_upsert,
    Import.Kind.ORDERS: orders_bulk_upsert,
}


def _kind_check(kind: str) -> Import.Kind:
    if kind not in Import.Kind.values:
        choices = " or ".join(Import.Kind.values)
        raise ApplicationError(f"Kind must be {choices}, not {kind!r}.", field="kind")
    return Import.Kind(kind)


def import_create(
    *, file: File[Any], kind: str, created_by: User | None, enqueue: bool = True
) -> Import:
    """Store an uploaded CSV after checking its header, then queue its processing.

    The header is checked here so that an empty file, a wrong encoding or a missing column is
    answered at once (a 400 naming the column) instead of after a trip through the queue.
    """
    import_kind = _kind_check(kind)
    _size_check(file)
    header = header_read(file, spec=COLUMNS[import_kind])
    filename = os.path.basename(file.name or "upload.csv")[:255] or "upload.csv"
    file.seek(0)
    with transaction.atomic():
        import_ = Import.objects.create(
            kind=import_kind,
            file=File(file, name=filename),
            original_filename=filename,
            created_by=created_by,
            notes=_header_notes(header),
        )
        if enqueue:
            import_id = import_.pk
            transaction.on_commit(lambda: import_process_task.enqueue(import_id))
    return import_


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


def _header_notes(header: Header) -> list[str]:
    if not header.ignored:
        return []
    names = ", ".join(f'"{name}"' for name in header.ignored)
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
            header = header_read(file, spec=COLUMNS[import_.kind])
            total = rows_count(file, header=header)
            if total == 0:
                raise ImportFileError("The file has a header row but no data rows.", field="file")
            import_.total_rows = total
            import_.save(update_fields=["total_rows", "updated_at"])
            if on_progress:
                on_progress(import_)
            chunk: list[DataRow] = []
            for row in rows_read(file, header=header, skip=import_.processed_rows):
                chunk.append(row)
                if len(chunk) >= chunk_size:
                    _chunk_store(import_, chunk=chunk, header=header, on_progress=on_progress)
                    chunk = []
            if chunk:
                _chunk_store(import_, chunk=chunk, header=header, on_progress=on_progress)
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


def _batches(
    chunk: Sequence[DataRow], *, header: Header, errors: list[dict[str, Any]]
) -> Iterator[tuple[list[Mapping[str, str]], list[int]]]:
    """Split a chunk into batches of well-formed rows, each holding an external_id only once.

    The ingestion services refuse a key repeated within one batch; in a file, rows apply in
    order, so a repeated key starts a new batch and the later row updates the earlier one, as
    it would had the two rows fallen into different chunks.
    """
    rows: list[Mapping[str, str]] = []
    numbers: list[int] = []
    keys: set[str] = set()
    for row in chunk:
        if len(row.cells) != header.width:
            message = f"Expected {header.width} columns, found {len(row.cells)}."
            errors.append({"row": row.number, "field": "", "message": message})
            continue
        values = row_values(row, header=header)
        key = values.get("external_id", "")
        if key and key in keys:
            yield rows, numbers
            rows, numbers, keys = [], [], set()
        keys.add(key)
        rows.append(values)
        numbers.append(row.number)
    if rows:
        yield rows, numbers


def _chunk_store(
    import_: Import,
    *,
    chunk: Sequence[DataRow],
    header: Header,
    on_progress: ProgressCallback | None,
) -> None:
    errors: list[dict[str, Any]] = []
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
        for rows, numbers in _batches(chunk, header=header, errors=errors):
            result = UPSERTS[import_.kind](rows=rows)
            import_.created += result.created
            import_.updated += result.updated
            import_.unchanged += result.unchanged
            errors.extend(
                {"row": numbers[error.index], "field": error.field, "message": error.message}
                for error in result.errors
            )
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
    import_id = import_.pk
    transaction.on_commit(lambda: import_process_task.enqueue(import_id))


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
