"""Property: whatever orders go through the services, every customer's stats equal the aggregate
of their completed orders, and resending a batch changes nothing."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minicrm.customers.models import Customer, CustomerTag, Order
from minicrm.customers.services import (
    customers_bulk_upsert,
    orders_bulk_delete,
    orders_bulk_upsert,
)

CUSTOMERS = ("A", "B", "C")
ORDER_KEYS = tuple(f"O-{n}" for n in range(6))

order_rows = st.fixed_dictionaries(
    {
        "external_id": st.sampled_from(ORDER_KEYS),
        "customer_external_id": st.sampled_from(CUSTOMERS),
        # Free orders (0.00) are orders: they must count without adding to spend.
        "amount": st.one_of(st.just(0), st.integers(min_value=1, max_value=100_000)).map(
            lambda cents: f"{cents / 100:.2f}"
        ),
        "ordered_at": st.integers(min_value=1, max_value=28).map(lambda day: f"2025-02-{day:02d}"),
    },
    optional={"status": st.sampled_from(["completed", "cancelled", "refunded"])},
)


@dataclass(frozen=True)
class Upsert:
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Delete:
    keys: list[str]


@dataclass(frozen=True)
class Resend:
    """Send the previous upsert again."""


operations = st.lists(
    st.one_of(
        st.builds(Upsert, st.lists(order_rows, min_size=1, max_size=6)),
        st.builds(Delete, st.lists(st.sampled_from(ORDER_KEYS), min_size=1, max_size=3)),
        st.just(Resend()),
    ),
    min_size=1,
    max_size=8,
)


def expected_after(model: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Apply an upsert to the model: first row of a key wins, a missing status keeps the old."""
    seen: set[str] = set()
    for row in rows:
        if row["external_id"] in seen:
            continue
        seen.add(row["external_id"])
        old = model.get(row["external_id"], {"status": "completed"})
        model[row["external_id"]] = {
            "customer": row["customer_external_id"],
            "amount": Decimal(row["amount"]),
            "status": row.get("status", old["status"]),
            "ordered_at": datetime.fromisoformat(row["ordered_at"]).replace(tzinfo=UTC),
        }


def everything() -> list[tuple[Any, ...]]:
    return [
        *Customer.objects.order_by("id").values_list(),
        *Order.objects.order_by("id").values_list(),
    ]


def check(model: dict[str, dict[str, Any]]) -> None:
    stored = {
        key: {"customer": customer, "amount": amount, "status": status, "ordered_at": at}
        for key, customer, amount, status, at in Order.objects.values_list(
            "external_id", "customer__external_id", "amount", "status", "ordered_at"
        )
    }
    assert stored == model
    for customer in Customer.objects.all():
        completed = [
            order
            for order in stored.values()
            if order["customer"] == customer.external_id and order["status"] == "completed"
        ]
        assert customer.total_spend == sum((o["amount"] for o in completed), Decimal("0"))
        assert customer.order_count == len(completed)
        assert customer.first_order_at == min((o["ordered_at"] for o in completed), default=None)
        assert customer.last_order_at == max((o["ordered_at"] for o in completed), default=None)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=operations)
def test_stats_always_equal_the_aggregate_of_completed_orders(steps: list[Any]) -> None:
    # Hypothesis runs every example inside the same test transaction: start each from nothing.
    Order.objects.all().delete()
    CustomerTag.objects.all().delete()
    Customer.objects.all().delete()
    customers_bulk_upsert(rows=[{"external_id": key} for key in CUSTOMERS])
    model: dict[str, dict[str, Any]] = {}
    previous: list[dict[str, Any]] = []
    for step in steps:
        if isinstance(step, Upsert):
            orders_bulk_upsert(rows=step.rows)
            expected_after(model, step.rows)
            previous = step.rows
        elif isinstance(step, Delete):
            orders_bulk_delete(external_ids=step.keys)
            for key in step.keys:
                model.pop(key, None)
            previous = []
        elif previous:
            before = everything()
            result = orders_bulk_upsert(rows=previous)
            assert (result.created, result.updated) == (0, 0)
            assert everything() == before
        check(model)
