"""A database too busy to take a write answers 503 with Retry-After, never 500.

Writers wait their turn (SQLite: BEGIN IMMEDIATE and a busy timeout; MariaDB: the InnoDB lock
wait timeout) and deadlocks are retried (core/db_retry.py). A write that still could not get its
lock was rolled back whole, so the client may simply send it again: the 503 says when.
"""

import logging
import sqlite3
from collections.abc import Callable

from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

from .db_retry import is_retryable

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
BUSY_MESSAGE = "The database is busy with other writes; send the request again in a few seconds."
_SQLITE_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# MySQL/MariaDB: ER_LOCK_WAIT_TIMEOUT (innodb_lock_wait_timeout passed).
_MYSQL_LOCK_TIMEOUT = 1205
# PostgreSQL: lock_not_available (lock_timeout passed).
_PG_LOCK_TIMEOUT = "55P03"


def is_lock_timeout(error: BaseException) -> bool:
    """Whether a write gave up waiting for a lock (or kept losing deadlocks after its retries)."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__ or error
    if isinstance(cause, sqlite3.OperationalError):
        code = getattr(cause, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in _SQLITE_BUSY_CODES
        return "locked" in str(cause) or "busy" in str(cause)
    if getattr(cause, "sqlstate", None) == _PG_LOCK_TIMEOUT:
        return True
    if connection.vendor == "mysql":
        args: tuple[object, ...] = getattr(cause, "args", ())
        if args and args[0] == _MYSQL_LOCK_TIMEOUT:
            return True
    return is_retryable(error)


def database_busy_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: JSON `{"detail": ...}` under /api/, a short page elsewhere."""
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": BUSY_MESSAGE}, status=503)
    else:
        response = HttpResponse(
            "<!doctype html><html lang=en><title>Busy (503)</title>"
            f"<h1>Busy</h1><p>{escape(BUSY_MESSAGE)}</p></html>",
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseBusyMiddleware:
    """Turns a lock timeout raised by a view (django-ninja re-raises what it does not handle
    unless DEBUG) into a 503 with Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_lock_timeout(exception):
            return None
        logger.warning("Database busy, 503 for %s %s: %s", request.method, request.path, exception)
        return database_busy_response(request)
