"""A rate change racing a batch that converts with the old rate (PostgreSQL and MariaDB; SQLite
runs one writer at a time): the change waits for the batch, and the re-conversion it queues
converts the batch's orders too, so nothing keeps a superseded rate."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from minicrm.customers.models import Customer, ExchangeRate, Order
from minicrm.customers.rates import rates_upsert
from minicrm.customers.services import customers_bulk_upsert, orders_bulk_upsert

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.server_database,
    pytest.mark.timeout(120),
]

HOLD_SECONDS = 1.0


@pytest.fixture(autouse=True)
def _server_database() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers: a rate change cannot interleave with a batch")


def _race(change: list[dict[str, str]]) -> float:
    """A batch converts an EUR order of 2026-03-05 and holds its transaction open; meanwhile
    `change` is upserted. Returns how long the change took."""
    converted = threading.Event()

    def batch() -> None:
        with transaction.atomic():
            result = orders_bulk_upsert(
                rows=[
                    {
                        "external_id": "O-1",
                        "customer_external_id": "C-1",
                        "amount": "10.00",
                        "currency": "EUR",
                        "ordered_at": "2026-03-05T12:00:00Z",
                    }
                ]
            )
            assert result.errors == []
            converted.set()
            time.sleep(HOLD_SECONDS)

    def rates() -> float:
        assert converted.wait(timeout=30)
        started = time.monotonic()
        rates_upsert(rows=change)
        return time.monotonic() - started

    def run(work: Callable[[], Any]) -> Any:
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.submit(run, batch), pool.submit(run, rates)
        first.result(timeout=60)
        return float(second.result(timeout=60))


@pytest.fixture
def shop() -> None:
    ExchangeRate.objects.create(currency="EUR", day=date(2026, 3, 1), rate=Decimal("90"))
    customers_bulk_upsert(rows=[{"external_id": "C-1"}])


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("change", "amount"),
    [
        ([{"date": "2026-03-01", "currency": "EUR", "rate": "95"}], Decimal("950.00")),
        # Added between the old rate and the order: takes the order over from it.
        ([{"date": "2026-03-03", "currency": "EUR", "rate": "100"}], Decimal("1000.00")),
    ],
)
def test_a_rate_change_racing_a_batch_still_reconverts_its_orders(
    change: list[dict[str, str]], amount: Decimal
) -> None:
    waited = _race(change)

    assert waited >= HOLD_SECONDS / 2
    assert Order.objects.get().amount == amount
    assert Customer.objects.values_list("total_spend", flat=True).get() == amount
