"""What the customers tests send and read back: an order row as the bulk upsert takes it, the
moment a row's day means, a customer's stored stats, and every stored value (to compare before
and after a refused write)."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from minicrm.customers.models import Customer, CustomerTag, Order

Stats = tuple[Decimal, int, datetime | None, datetime | None]


def order_row(
    key: str, customer: str = "C-1", amount: Any = "100.00", day: int = 10, **extra: Any
) -> dict[str, Any]:
    """An order of `customer` on day `day` of January 2025 at 10:00 UTC (see `at`)."""
    return {
        "external_id": key,
        "customer_external_id": customer,
        "amount": str(amount),
        "ordered_at": f"2025-01-{day:02d}T10:00:00Z",
        **extra,
    }


def at(day: int) -> datetime:
    """The moment an `order_row` of that day was ordered at."""
    return datetime(2025, 1, day, 10, tzinfo=UTC)


def stats(external_id: str = "C-1") -> Stats:
    customer = Customer.objects.get(external_id=external_id)
    return (
        customer.total_spend,
        customer.order_count,
        customer.first_order_at,
        customer.last_order_at,
    )


def snapshot() -> list[tuple[Any, ...]]:
    """Every stored value of every customer, tag and order."""
    return [
        *Customer.objects.order_by("id").values_list(),
        *CustomerTag.objects.order_by("id").values_list(),
        *Order.objects.order_by("id").values_list(),
    ]
