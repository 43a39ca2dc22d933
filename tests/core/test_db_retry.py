"""Tests for minicrm/core/db_retry.py: retry what the database reports as retryable, a bounded
number of times, and never inside an outer transaction."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction

from minicrm.core import db_retry
from minicrm.core.db_retry import ATTEMPTS, atomic_with_retry, is_retryable
from minicrm.customers.models import Customer
from tests.factories import CustomerFactory


class _DriverError(Exception):
    def __init__(self, *args: object, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        if sqlstate is not None:
            self.sqlstate = sqlstate


def _wrapped(cause: Exception, kind: type[Exception] = OperationalError) -> Exception:
    error = kind(str(cause))
    error.__cause__ = cause
    return error


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_retry.time, "sleep", lambda _seconds: None)


@pytest.mark.parametrize(
    ("cause", "retryable"),
    [
        (_DriverError("deadlock detected", sqlstate="40P01"), True),
        (_DriverError("could not serialize access", sqlstate="40001"), True),
        (_DriverError("canceling statement due to lock timeout", sqlstate="55P03"), False),
        (_DriverError("duplicate key", sqlstate="23505"), False),
        (_DriverError("database is locked"), False),
    ],
)
def test_postgresql_and_sqlite_errors_that_are_retried(cause: Exception, retryable: bool) -> None:
    assert is_retryable(_wrapped(cause)) is retryable


def test_mariadb_deadlocks_are_retried_but_lock_wait_timeouts_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection, "vendor", "mysql")

    assert is_retryable(_wrapped(_DriverError(1213, "Deadlock found"))) is True
    assert is_retryable(_wrapped(_DriverError(1205, "Lock wait timeout exceeded"))) is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_sleep")
def test_a_retryable_error_is_retried_until_the_work_succeeds() -> None:
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        Customer.objects.create(external_id=f"C-{len(calls)}")
        if len(calls) < 3:
            raise _wrapped(_DriverError("deadlock detected", sqlstate="40P01"))
        return "done"

    assert atomic_with_retry(work) == "done"
    assert len(calls) == 3
    # The failed attempts were rolled back: only the last one's row is stored.
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["C-3"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_sleep")
def test_the_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    calls: list[int] = []
    deadlock = _wrapped(_DriverError("deadlock detected", sqlstate="40P01"))

    def work() -> None:
        calls.append(1)
        raise deadlock

    with pytest.raises(OperationalError) as error:
        atomic_with_retry(work)

    assert error.value is deadlock
    assert len(calls) == ATTEMPTS


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_sleep")
def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise _wrapped(_DriverError("duplicate key", sqlstate="23505"), IntegrityError)

    with pytest.raises(IntegrityError):
        atomic_with_retry(work)
    assert len(calls) == 1

    calls.clear()
    with pytest.raises(IntegrityError):
        atomic_with_retry(work, retry_integrity_error=True, attempts=2)
    assert len(calls) == 2


@pytest.mark.django_db
def test_nothing_is_retried_inside_an_outer_transaction() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise _wrapped(_DriverError("deadlock detected", sqlstate="40P01"))

    with pytest.raises(OperationalError), transaction.atomic():
        atomic_with_retry(work)
    assert len(calls) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
@pytest.mark.server_database
def test_a_real_deadlock_is_retried_and_both_transactions_succeed() -> None:
    """Two transactions lock two rows in opposite orders; the database picks a victim, which runs
    again after the backoff (without it, the retry can take the first row again before the
    survivor gets it, and deadlock again) and succeeds."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no row locks: its writers never deadlock")
    first, second = CustomerFactory(), CustomerFactory()
    both_hold_one = threading.Barrier(2)
    attempts: list[str] = []

    def lock(ids: tuple[int, int], name: str) -> str:
        def work() -> str:
            attempts.append(name)
            Customer.objects.select_for_update().get(pk=ids[0])
            if attempts.count(name) == 1:
                both_hold_one.wait(timeout=20)  # only the first attempt waits for the other
            Customer.objects.filter(pk=ids[1]).update(city=name)
            return name

        try:
            return atomic_with_retry(work)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lock, [(first.pk, second.pk), (second.pk, first.pk)], ["one", "two"])
        )

    assert results == ["one", "two"]
    assert len(attempts) >= 3  # a victim ran again
    assert {first.pk, second.pk} == set(Customer.objects.values_list("pk", flat=True))
