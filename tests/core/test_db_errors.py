"""Tests for minicrm/core/db_errors.py: a lock timeout answers 503 with Retry-After, never 500."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import Client

from minicrm.core.db_errors import BUSY_MESSAGE, RETRY_AFTER_SECONDS, is_lock_timeout
from minicrm.customers.models import Order

pytestmark = pytest.mark.django_db


def _real_sqlite_lock_error(tmp_path: Path) -> sqlite3.OperationalError:
    """The error SQLite raises when its busy timeout passes while another writer holds the lock."""
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0.05)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as error:
            waiter.execute("BEGIN IMMEDIATE")
        return error.value
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        waiter.close()


def _wrapped(cause: BaseException) -> OperationalError:
    error = OperationalError(*getattr(cause, "args", ()))
    error.__cause__ = cause
    return error


class _DriverError(Exception):
    def __init__(self, *args: object, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        if sqlstate is not None:
            self.sqlstate = sqlstate


def test_lock_timeouts_are_recognised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = _real_sqlite_lock_error(tmp_path)
    assert str(locked) == "database is locked"

    assert is_lock_timeout(_wrapped(locked)) is True
    assert is_lock_timeout(_wrapped(_DriverError("lock timeout", sqlstate="55P03"))) is True
    assert is_lock_timeout(_wrapped(_DriverError("deadlock", sqlstate="40P01"))) is True
    assert is_lock_timeout(_wrapped(sqlite3.OperationalError("no such table: x"))) is False
    assert is_lock_timeout(_wrapped(_DriverError("canceled", sqlstate="57014"))) is False
    assert is_lock_timeout(ValueError("database is locked")) is False
    monkeypatch.setattr(connection, "vendor", "mysql")
    assert is_lock_timeout(_wrapped(_DriverError(1205, "Lock wait timeout exceeded"))) is True
    assert is_lock_timeout(_wrapped(_DriverError(1213, "Deadlock found"))) is True
    assert is_lock_timeout(_wrapped(_DriverError(1054, "Unknown column"))) is False


def _raise(error: BaseException) -> Any:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise error

    return fail


def test_a_bulk_request_that_cannot_get_the_lock_answers_503_json(
    api_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = _wrapped(_real_sqlite_lock_error(tmp_path))
    monkeypatch.setattr("minicrm.customers.api.orders_bulk_upsert", _raise(locked))

    response = api_client.post(
        "/api/v1/orders/bulk", data={"rows": []}, content_type="application/json"
    )

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == {"detail": BUSY_MESSAGE}
    assert not Order.objects.exists()


def test_a_page_that_cannot_get_the_lock_answers_a_503_page(
    marketer_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = _wrapped(_real_sqlite_lock_error(tmp_path))
    monkeypatch.setattr("minicrm.customers.views.customer_list", _raise(locked))

    response = marketer_client.get("/customers/")

    assert response.status_code == 503
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert b"The database is busy with other writes" in response.content


def test_other_database_errors_still_fail_loudly(
    api_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _wrapped(sqlite3.OperationalError("no such table: customers_order"))
    monkeypatch.setattr("minicrm.customers.api.orders_bulk_upsert", _raise(broken))

    with pytest.raises(OperationalError, match="no such table"):
        api_client.post("/api/v1/orders/bulk", data={"rows": []}, content_type="application/json")


def test_a_lock_timeout_answers_503_in_debug_mode_too(
    api_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.DEBUG = True
    locked = _wrapped(_real_sqlite_lock_error(tmp_path))
    monkeypatch.setattr("minicrm.customers.api.orders_bulk_upsert", _raise(locked))

    response = api_client.post(
        "/api/v1/orders/bulk", data={"rows": []}, content_type="application/json"
    )

    assert response.status_code == 503
    assert response.json() == {"detail": BUSY_MESSAGE}
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
