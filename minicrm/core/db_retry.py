"""Run a transaction again when the database says a retry may succeed (deadlock, serialization).

Writers lock rows in a stable order, so deadlocks between our own batches are rare; the database
can still pick a victim (PostgreSQL's deadlock detector, InnoDB gap and foreign-key locks), and
the right answer then is to run the same work again in a fresh transaction, not to answer 500.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, IntegrityError, connection, transaction

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Attempts in all (the first one included); each retry waits a little longer, with jitter so that
# the transactions that collided do not collide again.
ATTEMPTS = 5
BACKOFF_SECONDS = 0.05

# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected.
_PG_RETRYABLE = {"40001", "40P01"}
# MySQL/MariaDB error numbers: ER_LOCK_DEADLOCK (InnoDB rolled the whole transaction back).
# A lock wait timeout (1205) is not retried: it already waited; it becomes a 503 (db_errors).
_MYSQL_RETRYABLE = {1213}


def is_retryable(error: BaseException) -> bool:
    """Whether the database reported a failure that a fresh transaction may not meet again."""
    cause = error.__cause__ or error
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _PG_RETRYABLE
    if connection.vendor == "mysql":
        args: tuple[object, ...] = getattr(cause, "args", ())
        return bool(args) and args[0] in _MYSQL_RETRYABLE
    return False


def atomic_with_retry(
    work: Callable[[], T], *, retry_integrity_error: bool = False, attempts: int = ATTEMPTS
) -> T:
    """`work()` in its own transaction, run again (up to `attempts` in all) on a retryable error.

    `retry_integrity_error` also retries a unique violation, for upserts that read which keys
    exist and then insert the rest: the next attempt sees the concurrent insert and updates it.
    Inside an outer transaction nothing is retried (the failure is the outer transaction's to
    handle: MariaDB rolls back the whole transaction on a deadlock, not just a savepoint).
    """
    if connection.in_atomic_block:
        with transaction.atomic():
            return work()
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return work()
        except DatabaseError as error:
            retry = is_retryable(error) or (
                retry_integrity_error and isinstance(error, IntegrityError)
            )
            if not retry or attempt == attempts:
                raise
            logger.info("Transaction retried (attempt %s of %s): %s", attempt + 1, attempts, error)
            time.sleep(BACKOFF_SECONDS * attempt * (1 + random.random()))
    raise AssertionError("unreachable: the last attempt returns or raises")
