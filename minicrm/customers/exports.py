"""Orders as CSV: each in the shop currency with what it was sent as beside it (issue 16).

Streamed in keyset pages of ids, so memory stays flat at any number of orders and no database
cursor stays open between chunks. Cells a spreadsheet would run as a formula are quoted.
"""

from collections.abc import Iterator
from datetime import date
from typing import Any

from django.db.models import QuerySet

from minicrm.core.formatting import shop_currency

from .models import Order
from .selectors import order_list

ORDER_EXPORT_COLUMNS = (
    "external_id",
    "customer_external_id",
    "status",
    "ordered_at",
    # What stats and rules add up, in `shop_currency`; the order as sent is in the last two.
    "amount",
    "shop_currency",
    "original_amount",
    "currency",
)
CHUNK_ROWS = 2000


def order_export_rows(
    *,
    customer_id: int | None = None,
    customer_external_id: str = "",
    status: str = "",
    ordered_from: date | None = None,
    ordered_to: date | None = None,
    chunk_size: int = CHUNK_ROWS,
) -> Iterator[tuple[Any, ...]]:
    """Every order matching the filters (those of `order_list`) as a row of
    ORDER_EXPORT_COLUMNS, by id. The filters are checked here, before the first row is asked
    for, so a bad one is a 4xx rather than a broken download."""
    orders = order_list(
        customer_id=customer_id,
        customer_external_id=customer_external_id,
        status=status,
        ordered_from=ordered_from,
        ordered_to=ordered_to,
    ).order_by("id")
    return _rows(orders, shop=shop_currency(), chunk_size=chunk_size)


def _rows(orders: QuerySet[Order], *, shop: str, chunk_size: int) -> Iterator[tuple[Any, ...]]:
    last_id = 0
    while True:
        chunk = list(
            orders.filter(id__gt=last_id).values_list(
                "id",
                "external_id",
                "customer__external_id",
                "status",
                "ordered_at",
                "amount",
                "original_amount",
                "currency",
            )[:chunk_size]
        )
        if not chunk:
            return
        for _id, external_id, customer, state, ordered_at, amount, original, currency in chunk:
            yield (external_id, customer, state, ordered_at, amount, shop, original, currency)
        last_id = chunk[-1][0]
