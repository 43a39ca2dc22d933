"""Statement timeouts: a read that runs too long is stopped by the database and becomes a clear
error for its request or task (`StatementTimeoutError`), never a wedged server or worker.

`statement_timeout(seconds)` bounds every statement run inside it: PostgreSQL by
`SET LOCAL statement_timeout` (in a transaction or savepoint of its own), MariaDB by
`SET STATEMENT max_statement_time=N FOR ...` on each statement (MySQL by the
`MAX_EXECUTION_TIME` hint), SQLite by a progress handler that aborts a statement past its
deadline. Reads of the in-process DuckDB snapshot look up the same budget
(`active_timeout_seconds`). Budgets come from settings: `web_timeout_seconds()` for requests,
`worker_timeout_seconds()` for background tasks. Nested blocks keep the shorter budget.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from .db_router import read_alias
from .errors import ApplicationError

# MariaDB's ER_STATEMENT_TIMEOUT and MySQL's ER_QUERY_TIMEOUT; PostgreSQL's query_canceled.
MARIADB_TIMEOUT_CODES = (1969, 3024)
POSTGRESQL_QUERY_CANCELED = "57014"
# SQLite calls the progress handler every this many virtual machine instructions (~0.1 ms).
SQLITE_PROGRESS_STEPS = 10_000

_active = threading.local()


class StatementTimeoutError(ApplicationError):
    """A query ran past its time budget and was stopped; the request or task fails cleanly."""

    status_code = 503

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The query took too long (over {seconds:g} s) and was stopped. Try narrower rules "
            "or try again later."
        )
        self.seconds = seconds


def web_timeout_seconds() -> float:
    """The budget of one statement in a web request (MINICRM_WEB_STATEMENT_TIMEOUT)."""
    return float(settings.MINICRM_WEB_STATEMENT_TIMEOUT)


def worker_timeout_seconds() -> float:
    """The budget of one statement in a background task (MINICRM_WORKER_STATEMENT_TIMEOUT)."""
    return float(settings.MINICRM_WORKER_STATEMENT_TIMEOUT)


def active_timeout_seconds() -> float | None:
    """The budget of the innermost `statement_timeout` block of this thread, if any."""
    stack: list[float] = getattr(_active, "stack", [])
    return stack[-1] if stack else None


@contextmanager
def statement_timeout(seconds: float, *, using: str | None = None) -> Iterator[None]:
    """Stop any statement inside the block that runs longer than `seconds` (or than the budget
    of an enclosing block, if shorter), raising StatementTimeoutError.

    On the database `using`, by default the one reads go to here (the read replica inside
    `replica_reads`, which also bounds the replica when it starts inside this block)."""
    outer = active_timeout_seconds()
    budget = min(seconds, outer) if outer is not None else seconds
    connection = connections[using or read_alias()]
    limits: Callable[[BaseDatabaseWrapper, float], Any] = {
        "postgresql": _postgresql,
        "mysql": _mysql,
        "sqlite": _sqlite,
    }.get(connection.vendor, _unbounded)
    stack = getattr(_active, "stack", [])
    _active.stack = [*stack, budget]
    try:
        with limits(connection, budget):
            yield
    except DatabaseError as error:
        if _is_timeout(connection, error):
            raise StatementTimeoutError(budget) from error
        raise
    finally:
        _active.stack = stack


def _is_timeout(connection: BaseDatabaseWrapper, error: DatabaseError) -> bool:
    cause = error.__cause__
    if connection.vendor == "postgresql":
        return getattr(cause, "sqlstate", None) == POSTGRESQL_QUERY_CANCELED
    if connection.vendor == "mysql":
        code = error.args[0] if error.args else None
        return code in MARIADB_TIMEOUT_CODES
    if connection.vendor == "sqlite":
        return bool(getattr(connection, "_minicrm_deadline_passed", False))
    return False


@contextmanager
def _unbounded(connection: BaseDatabaseWrapper, seconds: float) -> Iterator[None]:
    yield


@contextmanager
def _postgresql(connection: BaseDatabaseWrapper, seconds: float) -> Iterator[None]:
    # SET LOCAL needs a transaction: the block gets one (a savepoint in an outer transaction),
    # opened up front so that any atomic block inside nests within it. In a savepoint, SET
    # LOCAL would outlive the block, so the previous value is put back on the way out; a failed
    # block rolls the savepoint back, which restores it too.
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('statement_timeout'), "
                "set_config('statement_timeout', %s, true)",
                [f"{max(1, round(seconds * 1000))}ms"],
            )
            row = cursor.fetchone()
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [row[0]])


@contextmanager
def _mysql(connection: BaseDatabaseWrapper, seconds: float) -> Iterator[None]:
    # Per statement, so no session state outlives the block (nor a failure inside it).
    if connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        prefix = f"SET STATEMENT max_statement_time={seconds:.3f} FOR SELECT"
    else:
        prefix = f"SELECT /*+ MAX_EXECUTION_TIME({max(1, round(seconds * 1000))}) */"

    def bounded(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        stripped = sql.lstrip()
        if stripped[:6].upper() == "SELECT":
            sql = prefix + stripped[6:]
        return execute(sql, params, many, context)

    with connection.execute_wrapper(bounded):
        yield


@contextmanager
def _sqlite(connection: BaseDatabaseWrapper, seconds: float) -> Iterator[None]:
    connection.ensure_connection()
    raw = connection.connection
    deadline = [time.monotonic() + seconds]
    connection._minicrm_deadline_passed = False  # type: ignore[attr-defined]

    def restart(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        deadline[0] = time.monotonic() + seconds  # the budget is per statement, as elsewhere
        return execute(sql, params, many, context)

    def progress() -> int:
        if time.monotonic() <= deadline[0]:
            return 0
        connection._minicrm_deadline_passed = True  # type: ignore[attr-defined]
        return 1  # non-zero: SQLite stops the statement with "interrupted"

    # sqlite3 cannot read back a handler, so an enclosing block's is kept here to put it back.
    handlers: list[Callable[[], int]] = getattr(connection, "_minicrm_progress_handlers", [])
    connection._minicrm_progress_handlers = [*handlers, progress]  # type: ignore[attr-defined]
    raw.set_progress_handler(progress, SQLITE_PROGRESS_STEPS)
    try:
        with connection.execute_wrapper(restart):
            yield
    finally:
        connection._minicrm_progress_handlers = handlers  # type: ignore[attr-defined]
        if connection.connection is raw:
            raw.set_progress_handler(handlers[-1] if handlers else None, SQLITE_PROGRESS_STEPS)
