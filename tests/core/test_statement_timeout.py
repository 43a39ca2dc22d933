"""Statement timeouts: a slow statement is stopped on every database, as a clear error, and the
connection (and any enclosing transaction) stays usable."""

import pytest
from django.db import DatabaseError, connection, transaction

from minicrm.core.statement_timeout import (
    StatementTimeoutError,
    active_timeout_seconds,
    statement_timeout,
)
from minicrm.customers.models import Customer
from tests.factories import CustomerFactory
from tests.segments.slow_sql import run_slow_query


@pytest.mark.django_db
def test_a_slow_statement_is_stopped_and_the_connection_still_works() -> None:
    CustomerFactory(external_id="kept")
    with pytest.raises(StatementTimeoutError) as caught, statement_timeout(0.2):
        run_slow_query()
    assert "took too long" in caught.value.message
    assert caught.value.status_code == 503
    assert active_timeout_seconds() is None
    # The connection is not wedged, and no budget outlives the block.
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["kept"]


@pytest.mark.django_db
def test_a_quick_block_runs_normally_and_restores_the_previous_budget() -> None:
    CustomerFactory(external_id="a")
    with statement_timeout(5):
        assert active_timeout_seconds() == 5
        with statement_timeout(60):
            assert active_timeout_seconds() == 5  # the shorter budget wins
            assert Customer.objects.count() == 1
        assert active_timeout_seconds() == 5
    assert active_timeout_seconds() is None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            outside = cursor.fetchone()
        with transaction.atomic(), statement_timeout(3):
            pass
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            assert cursor.fetchone() == outside


@pytest.mark.django_db
def test_other_database_errors_are_not_reported_as_timeouts() -> None:
    with (
        pytest.raises(DatabaseError) as caught,
        statement_timeout(5),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT * FROM no_such_table_here")
    assert not isinstance(caught.value, StatementTimeoutError)


@pytest.mark.django_db
def test_atomic_blocks_and_writes_inside_the_block_work() -> None:
    with statement_timeout(5):
        with transaction.atomic():
            CustomerFactory(external_id="inside")
        assert Customer.objects.filter(external_id="inside").exists()
    assert Customer.objects.filter(external_id="inside").count() == 1
