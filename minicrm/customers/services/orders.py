"""Order upserts and deletes: by external_id, the customer named by external_id or email, the
customers' stats kept exact in the same transaction."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from minicrm.core.db_retry import atomic_with_retry
from minicrm.core.errors import NotFoundError

from ..conversion import orders_convert
from ..ingestion import (
    BulkResult,
    OrderByEmailRow,
    OrderRow,
    RowError,
    rows_check_size,
    rows_validate,
)
from ..models import Customer, Order
from ..sql import (
    chunks,
    datetime_adapter,
    executemany,
    ids_by_key,
    insert_sql,
    rows_by_key,
    update_sql,
)
from .batch import CustomerKey, batch_atomic, gc_paused, with_errors
from .customers import email_owner, external_ids_by_email
from .stats import (
    CENTS,
    COMPLETED,
    StatsRoom,
    customer_stats_recompute,
    stats_add,
    stats_increment,
)

# id, customer id, amount, original amount, currency, status, ordered_at
StoredOrder = tuple[int, int, Decimal, Decimal, str, str, datetime]
# The columns of a new order, in the order of the parameter tuples (the demo data uses them too).
ORDER_INSERT_FIELDS = (
    "external_id",
    "customer",
    "amount",
    "original_amount",
    "currency",
    "status",
    "ordered_at",
    "created_at",
    "updated_at",
)


def orders_bulk_upsert(
    *, rows: Sequence[Any], customer_key: CustomerKey = "external_id"
) -> BulkResult:
    """Create or update up to 10,000 orders by `external_id` and keep customer stats exact.

    The customer is named by `customer_external_id` (or by `customer_email` with
    `customer_key="email"`); an unknown one is a row error on that field. An existing order may
    change status, amount, date, currency or customer.
    """
    rows_check_size(rows)
    with gc_paused():
        if customer_key == "email":
            by_email, errors = rows_validate(rows, OrderByEmailRow)
            return with_errors(batch_atomic(lambda: _orders_store_by_email(by_email)), errors)
        if customer_key != "external_id":
            raise ValueError(f"Unknown customer key {customer_key!r}")
        valid, errors = rows_validate(rows, OrderRow)
        return with_errors(batch_atomic(lambda: _orders_store(valid)), errors)


def _orders_store_by_email(valid: list[tuple[int, OrderByEmailRow]]) -> BulkResult:
    owners = external_ids_by_email(row.customer_email for _index, row in valid)
    keyed: list[tuple[int, OrderRow]] = []
    errors: list[RowError] = []
    for index, row in valid:
        found = owners.get(row.customer_email, [])
        if not found:
            message = f"No customer has the email {row.customer_email!r}; import customers first."
            errors.append(RowError(index, "customer_email", message))
            continue
        owner = email_owner(row.customer_email, found, None)
        if isinstance(owner, RowError):
            errors.append(RowError(index, "customer_email", owner.message))
            continue
        values = {
            name: getattr(row, name)
            for name in OrderByEmailRow.model_fields
            if name != "customer_email"
        }
        fields_set = (row.model_fields_set - {"customer_email"}) | {"customer_external_id"}
        keyed.append(
            (index, OrderRow.model_construct(fields_set, customer_external_id=owner, **values))
        )
    return with_errors(_orders_store(keyed), errors)


def _orders_store(valid: list[tuple[int, OrderRow]]) -> BulkResult:
    result = BulkResult()
    now = timezone.now()
    adapt = datetime_adapter()
    stamp = adapt(now)
    existing = ids_by_key(
        Order, "external_id", [row.external_id for _index, row in valid], lock=True
    )
    stored_by_key: dict[str, StoredOrder] = {}
    for chunk in chunks(sorted(existing.values())):
        for order_id, key, *values in Order.objects.filter(id__in=chunk).values_list(
            "id",
            "external_id",
            "customer_id",
            "amount",
            "original_amount",
            "currency",
            "status",
            "ordered_at",
        ):
            stored_by_key[key] = (order_id, *values)  # type: ignore[assignment]
    customer_ids: dict[str, int] = {}
    stored_stats: dict[int, tuple[Decimal, int]] = {}
    for key, (customer_id, spend, count) in rows_by_key(
        Customer,
        "external_id",
        list({row.customer_external_id for _index, row in valid}),
        ["id", "total_spend", "order_count"],
        lock=True,
    ):
        customer_ids[key] = customer_id
        stored_stats[customer_id] = (_decimal(spend), count)
    room = StatsRoom(stored_stats)
    converted = orders_convert(
        valid, stored_currencies={key: stored[4] for key, stored in stored_by_key.items()}
    )

    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    # customer id -> [total, count, first, last] of the new completed orders in this batch
    additions: dict[int, list[Any]] = {}
    recompute: set[int] = set()
    for index, row in valid:
        customer_id = customer_ids.get(row.customer_external_id)
        if customer_id is None:
            message = f"No customer has external_id {row.customer_external_id!r}."
            result.errors.append(RowError(index, "customer_external_id", message))
            continue
        conversion = converted[index]
        if isinstance(conversion, RowError):
            result.errors.append(conversion)
            continue
        currency, amount = conversion
        stored = stored_by_key.get(row.external_id)
        if stored is None:
            status = row.status or COMPLETED
            if status == COMPLETED:
                problem = room.move(None, (customer_id, amount), row.customer_external_id)
                if problem:
                    result.errors.append(RowError(index, *problem))
                    continue
            ordered_at = adapt(row.ordered_at)
            inserts.append(
                (
                    row.external_id,
                    customer_id,
                    amount,
                    row.amount,
                    currency,
                    status,
                    ordered_at,
                    stamp,
                    stamp,
                )
            )
            if status == COMPLETED:
                stats_add(additions, customer_id, amount, ordered_at)
            result.created += 1
            continue
        order_id, old_customer, old_amount, old_original, old_currency, old_status, old_at = stored
        status = row.status or old_status
        counted = (customer_id, amount, status, row.ordered_at)
        counted_before = (old_customer, old_amount, old_status, old_at)
        if counted == counted_before and (currency, row.amount) == (old_currency, old_original):
            result.unchanged += 1
            continue
        if COMPLETED in (status, old_status) and counted != counted_before:
            problem = room.move(
                (old_customer, old_amount) if old_status == COMPLETED else None,
                (customer_id, amount) if status == COMPLETED else None,
                row.customer_external_id,
            )
            if problem:
                result.errors.append(RowError(index, *problem))
                continue
        updates.append(
            (
                customer_id,
                amount,
                row.amount,
                currency,
                status,
                adapt(row.ordered_at),
                stamp,
                order_id,
            )
        )
        result.updated += 1
        if COMPLETED in (status, old_status) and counted != counted_before:
            recompute.update((old_customer, customer_id))

    # Keys sorted: two batches inserting the same new keys wait for each other at the first one.
    executemany(insert_sql(Order, ORDER_INSERT_FIELDS), sorted(inserts))
    executemany(
        update_sql(
            Order,
            [
                "customer",
                "amount",
                "original_amount",
                "currency",
                "status",
                "ordered_at",
                "updated_at",
            ],
        ),
        sorted(updates, key=lambda params: params[-1]),
    )
    stats_increment(
        {key: value for key, value in additions.items() if key not in recompute}, now=now
    )
    customer_stats_recompute(customer_ids=recompute, now=now, touch=True)
    return result


def _decimal(value: Any) -> Decimal:
    # SQLite hands a raw decimal column back as a float (or an int); its shortest repr is exact
    # to the cent at every value the column holds.
    return value if isinstance(value, Decimal) else Decimal(str(value)).quantize(CENTS)


def orders_bulk_delete(*, external_ids: Sequence[str]) -> int:
    """Delete the orders with these external ids and correct their customers' stats.

    Unknown ids are skipped; returns how many orders were deleted.
    """
    keys = sorted(set(external_ids))

    def delete() -> int:
        found: list[tuple[int, int, str]] = []
        for chunk in chunks(keys):
            locked = Order.objects.select_for_update().filter(external_id__in=chunk)
            found += locked.order_by("id").values_list("id", "customer_id", "status")
        for order_ids in chunks(sorted(order_id for order_id, _customer, _status in found)):
            Order.objects.filter(id__in=order_ids).delete()
        customer_stats_recompute(
            customer_ids={customer for _id, customer, status in found if status == COMPLETED},
            touch=True,
        )
        return len(found)

    return atomic_with_retry(delete)


def order_delete(*, external_id: str) -> None:
    """Delete one order (raises NotFoundError if there is none) and correct its customer's stats."""
    if not orders_bulk_delete(external_ids=[external_id]):
        raise NotFoundError(f"No order has external_id {external_id!r}.")
