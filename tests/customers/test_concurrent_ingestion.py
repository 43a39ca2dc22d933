"""Concurrent bulk upserts on PostgreSQL and MariaDB: 8 clients send the same keys in different
row orders at once; every answer is exact (no deadlock, no error rows) and every customer's
stats equal a recount from the orders afterwards. (SQLite runs one writer at a time; its
concurrency test is test_sqlite_write_load.py.)
"""

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count, Sum

from minicrm.customers.models import Customer, CustomerTag, Order
from minicrm.customers.services import (
    BulkResult,
    customer_stats_rebuild,
    customers_bulk_upsert,
    orders_bulk_upsert,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.server_database,
    pytest.mark.timeout(120),
]

CLIENTS = 8
CUSTOMERS = 200
ORDERS = 400


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Key lists are read and locked in chunks of 5,000 on these databases; chunks of 50 show
    what a 10,000-row batch does with a few hundred rows (locks taken chunk after chunk)."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; see test_sqlite_write_load.py")
    monkeypatch.setattr(type(connection.features), "max_query_params", 50)


def _concurrently(works: list[Callable[[], BulkResult]]) -> list[BulkResult]:
    """Run each work in its own thread (its own connection), all released at the same moment."""
    start = threading.Barrier(len(works))

    def run(work: Callable[[], BulkResult]) -> BulkResult:
        try:
            start.wait(timeout=30)
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(len(works)) as pool:
        futures = [pool.submit(run, work) for work in works]
        # .result() re-raises a client's exception (a deadlock would fail the test here).
        return [future.result(timeout=90) for future in futures]


def _shuffled(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    copy = list(rows)
    random.Random(seed).shuffle(copy)
    return copy


def _customers(first_name: str = "") -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"C-{n:04d}",
            "first_name": first_name or f"Name {n}",
            "tags": ["vip", f"t{n % 7}"],
        }
        for n in range(CUSTOMERS)
    ]


def _orders(*, status: str = "completed", cents: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"O-{n:05d}",
            "customer_external_id": f"C-{n % CUSTOMERS:04d}",
            "amount": str(Decimal(10 + n % 90) + Decimal(cents) / 100),
            "ordered_at": f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z",
            "status": status if n % 3 else "completed",
        }
        for n in range(ORDERS)
    ]


def _recount() -> dict[str, tuple[Decimal, int]]:
    completed = Order.objects.filter(status="completed").order_by()
    grouped = completed.values("customer__external_id").annotate(
        total=Sum("amount"), orders=Count("id")
    )
    cents = Decimal("0.01")
    return {
        row["customer__external_id"]: (Decimal(row["total"]).quantize(cents), row["orders"])
        for row in grouped
    }


def _stored_stats() -> dict[str, tuple[Decimal, int]]:
    return {
        key: (total, count)
        for key, total, count in Customer.objects.filter(order_count__gt=0).values_list(
            "external_id", "total_spend", "order_count"
        )
    }


def _clean(results: list[BulkResult]) -> list[tuple[int, int, int, int]]:
    return [(r.created, r.updated, r.unchanged, len(r.errors)) for r in results]


def test_new_customers_sent_by_eight_clients_in_different_orders_are_created_once() -> None:
    rows = _customers()

    results = _concurrently(
        [lambda seed=seed: customers_bulk_upsert(rows=_shuffled(rows, seed)) for seed in range(8)]
    )

    assert all(result.errors == [] for result in results)
    assert all(r.created + r.updated + r.unchanged == CUSTOMERS for r in results)
    assert sum(result.created for result in results) == CUSTOMERS
    assert sum(result.updated for result in results) == 0
    assert Customer.objects.count() == CUSTOMERS
    assert CustomerTag.objects.count() == CUSTOMERS * 2


def test_existing_customers_updated_by_eight_clients_in_different_orders() -> None:
    customers_bulk_upsert(rows=_customers())

    results = _concurrently(
        [
            lambda seed=seed: customers_bulk_upsert(
                rows=_shuffled(_customers(first_name=f"Client {seed}"), seed)
            )
            for seed in range(CLIENTS)
        ]
    )

    # Each client's batch replaced every first name with its own: all rows updated, none failed.
    assert _clean(results) == [(0, CUSTOMERS, 0, 0)] * CLIENTS
    names = set(Customer.objects.values_list("first_name", flat=True))
    assert len(names) == 1
    assert names <= {f"Client {seed}" for seed in range(CLIENTS)}


def test_orders_sent_by_eight_clients_in_different_orders_keep_stats_exact() -> None:
    customers_bulk_upsert(rows=_customers())
    # Half the orders exist already; every client changes them (amount, status) and adds the rest.
    orders_bulk_upsert(rows=_orders()[: ORDERS // 2])

    batches = [_shuffled(_orders(status="cancelled", cents=seed), seed) for seed in range(CLIENTS)]
    results = _concurrently(
        [lambda batch=batch: orders_bulk_upsert(rows=batch) for batch in batches]
    )

    assert all(result.errors == [] for result in results)
    assert all(r.created + r.updated + r.unchanged == ORDERS for r in results)
    assert sum(result.created for result in results) == ORDERS // 2
    assert Order.objects.count() == ORDERS
    stored = _stored_stats()
    assert stored == _recount()
    assert sum(count for _total, count in stored.values()) == len(range(0, ORDERS, 3))
    assert customer_stats_rebuild() == 0
