"""What every customer and order batch shares: the key that names customers, the transaction it
runs in (again when the database asks for it) and the garbage collector paused around it."""

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from minicrm.core.db_retry import atomic_with_retry

from ..ingestion import BulkResult, RowError

CustomerKey = Literal["external_id", "email"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch.

    A 10,000-row batch allocates a few hundred thousand short-lived objects without reference
    cycles; the collections they trigger scan the whole heap and cost about an eighth of the
    batch (measured in bench/ingest.py). Reference counting still frees everything at once.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def batch_atomic(store: Callable[[], BulkResult]) -> BulkResult:
    """Run `store` in a transaction, again if a concurrent batch inserted one of our keys first
    (the retry sees its rows as existing and updates them) or the database chose this one as a
    deadlock victim. SQLite never retries: its IMMEDIATE transactions run one writer at a time.
    """
    return atomic_with_retry(store, retry_integrity_error=True)


def with_errors(result: BulkResult, errors: list[RowError]) -> BulkResult:
    """`result` with the errors of rows that never reached the store (invalid, ambiguous) added,
    all in row order."""
    result.errors = sorted([*errors, *result.errors], key=lambda error: error.index)
    return result
